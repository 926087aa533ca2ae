package blockservice

import (
	"bytes"
	"io"
	"testing"
)

// benchSize is the file the benchmarks write and read: about a large SST file.
const benchSize = 256 << 20

// BenchmarkLocal and BenchmarkS3 write and read a 256 MiB file (MB/s is the figure; the S3
// server runs on the same machine, so the numbers are of the client, the loopback and the
// server together):
//
//	go test -run XXX -bench . -benchtime 3x ./internal/blockservice/
func BenchmarkLocal(b *testing.B) {
	benchService(b, openLocal(b, b.TempDir()))
}

func BenchmarkS3(b *testing.B) {
	srv := startS3(b)
	svc, _ := srv.open(b, "part_size_mb", "16")
	benchService(b, svc)
}

func benchService(b *testing.B, svc Service) {
	data := randomBytes(9, benchSize)
	b.Run("Write", func(b *testing.B) {
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := svc.Write(b.Context(), "bench/file", onlyReader{bytes.NewReader(data)}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Read", func(b *testing.B) {
		if _, err := svc.Write(b.Context(), "bench/file", bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			rc, err := svc.Read(b.Context(), "bench/file", &ReadOptions{Verify: true})
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			_ = rc.Close()
			if err != nil || n != benchSize {
				b.Fatalf("read %d bytes: %v", n, err)
			}
		}
	})
}
