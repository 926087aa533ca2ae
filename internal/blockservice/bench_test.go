package blockservice

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"testing"
)

// benchSize is the file the benchmarks write and read: about a large SST file.
const benchSize = 256 << 20

// BenchmarkLocal and BenchmarkS3 write and read a 256 MiB file; MB/s is the figure. The S3
// server runs on the same machine, so its numbers are of the client, the loopback and the
// server together. WriteKnownMD5 gives the md5 up front, which on s3 spares the server-side
// copy that records it; Read verifies the md5; on s3 Write is measured with 1, 2 and 4 (the
// default) parts in flight:
//
//	go test -run XXX -bench . -benchtime 3x ./internal/blockservice/
func BenchmarkLocal(b *testing.B) {
	svc := openLocal(b, b.TempDir())
	data := randomBytes(9, benchSize)
	b.Run("Write", func(b *testing.B) { benchWrite(b, svc, data, nil) })
	b.Run("WriteKnownMD5", func(b *testing.B) { benchWrite(b, svc, data, &WriteOptions{Size: benchSize, MD5: md5hex(data)}) })
	b.Run("Read", func(b *testing.B) { benchRead(b, svc, data) })
}

func BenchmarkS3(b *testing.B) {
	srv := startS3(b)
	data := randomBytes(9, benchSize)
	var svc Service
	for _, inFlight := range []int{1, 2, 4} {
		svc, _ = srv.open(b, "part_size_mb", strconv.Itoa(DefaultPartSizeMB), "parts_in_flight", strconv.Itoa(inFlight))
		b.Run(fmt.Sprintf("Write/parts_in_flight=%d", inFlight), func(b *testing.B) { benchWrite(b, svc, data, nil) })
	}
	svc, _ = srv.open(b, "part_size_mb", strconv.Itoa(DefaultPartSizeMB))
	b.Run("WriteKnownMD5", func(b *testing.B) { benchWrite(b, svc, data, &WriteOptions{Size: benchSize, MD5: md5hex(data)}) })
	b.Run("Read", func(b *testing.B) { benchRead(b, svc, data) })
}

func benchWrite(b *testing.B, svc Service, data []byte, opts *WriteOptions) {
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Write(b.Context(), "bench/file", onlyReader{bytes.NewReader(data)}, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRead(b *testing.B, svc Service, data []byte) {
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
}
