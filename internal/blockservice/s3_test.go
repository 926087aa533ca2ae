package blockservice

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestS3Conformance(t *testing.T) {
	srv := startS3(t)
	runConformance(t, func(t *testing.T) fixture {
		svc, bucket := srv.open(t)
		return fixture{
			svc:     svc,
			bigSize: 2*minPartSizeMB<<20 + 123,
			corrupt: func(t *testing.T, p string) {
				// Other bytes under the object's recorded md5, as a bit flip at rest would be.
				obj, err := srv.client.GetObject(t.Context(), bucket, p, minio.GetObjectOptions{})
				noErr(t, err)
				b, err := io.ReadAll(obj)
				noErr(t, err)
				info, err := obj.Stat()
				noErr(t, err)
				b[len(b)/2] ^= 0xff
				_, err = srv.client.PutObject(t.Context(), bucket, p, bytes.NewReader(b), int64(len(b)),
					minio.PutObjectOptions{UserMetadata: map[string]string{md5Key: entryOf(p, info).MD5}})
				noErr(t, err)
			},
		}
	})

	t.Run("ObjectsOfOtherTools", func(t *testing.T) {
		svc, bucket := srv.open(t)
		// One PUT without our metadata: its ETag is its md5.
		small := []byte("uploaded by pegasus-spark")
		_, err := srv.client.PutObject(t.Context(), bucket, "d/small", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{})
		noErr(t, err)
		e, err := svc.Stat(t.Context(), "d/small")
		noErr(t, err)
		eq(t, Entry{Name: "small", Size: int64(len(small)), MD5: md5hex(small)}, e)
		b, err := readAll(t, svc, "d/small", &ReadOptions{Verify: true})
		noErr(t, err)
		eq(t, small, b)

		// A multipart upload without our metadata: no md5 is known, so a verified read
		// refuses it rather than pass it unchecked.
		big := randomBytes(5, 2*minPartSizeMB<<20)
		_, err = srv.client.PutObject(t.Context(), bucket, "d/big", bytes.NewReader(big), -1,
			minio.PutObjectOptions{PartSize: minPartSizeMB << 20})
		noErr(t, err)
		e, err = svc.Stat(t.Context(), "d/big")
		noErr(t, err)
		eq(t, Entry{Name: "big", Size: int64(len(big))}, e)
		_, err = readAll(t, svc, "d/big", &ReadOptions{Verify: true})
		errIs(t, err, ErrChecksum)
		b, err = readAll(t, svc, "d/big", nil)
		noErr(t, err)
		truth(t, bytes.Equal(big, b))

		// A "directory marker" object and dot-names are not listed.
		for _, k := range []string{"d/", "d/.hidden"} {
			_, err = srv.client.PutObject(t.Context(), bucket, k, bytes.NewReader(nil), 0, minio.PutObjectOptions{})
			noErr(t, err)
		}
		es, err := svc.List(t.Context(), "d")
		noErr(t, err)
		eq(t, []Entry{{Name: "big", Size: int64(len(big))}, {Name: "small", Size: int64(len(small)), MD5: md5hex(small)}}, es)
	})

	t.Run("Prefix", func(t *testing.T) {
		svc, bucket := srv.open(t, "prefix", "/clusters/c1/")
		write(t, svc, "app/0/f", []byte("x"))
		_, err := srv.client.StatObject(t.Context(), bucket, "clusters/c1/app/0/f", minio.StatObjectOptions{})
		noErr(t, err, "the object lives under the prefix")
		es, err := svc.List(t.Context(), "/")
		noErr(t, err)
		eq(t, []Entry{{Name: "app", IsDir: true}}, es)
		noErr(t, svc.RemoveAll(t.Context(), "app"))
		_, err = srv.client.StatObject(t.Context(), bucket, "clusters/c1/app/0/f", minio.StatObjectOptions{})
		truth(t, minio.ToErrorResponse(err).Code == "NoSuchKey", "removed: %v", err)
	})

	t.Run("MissingBucket", func(t *testing.T) {
		svc, err := Open("test", map[string]string{"type": "s3", "args": srv.endpoint + " no-such-bucket",
			"access_key": testAccessKey, "secret_key": testSecretKey, "region": "us-east-1", "bucket_lookup": "path"})
		noErr(t, err)
		// A missing bucket is a configuration error, said as such, not a missing file.
		_, err = svc.Stat(t.Context(), "f")
		truth(t, err != nil && !errors.Is(err, ErrNotFound) && strings.Contains(err.Error(), "bucket"), "stat: %v", err)
		_, err = svc.Read(t.Context(), "f", nil)
		truth(t, err != nil && !errors.Is(err, ErrNotFound) && strings.Contains(err.Error(), "bucket"), "read: %v", err)
		_, err = svc.Write(t.Context(), "f", bytes.NewReader([]byte("x")), nil)
		truth(t, err != nil && strings.Contains(err.Error(), "bucket"), "write: %v", err)
	})

	t.Run("BoundedMemory", func(t *testing.T) {
		// Midway through a write of many parts, what the process holds live is the parts
		// in flight, not the file.
		svc, _ := srv.open(t)
		const size = 24 * minPartSizeMB << 20
		src := &liveHeapAt{r: io.LimitReader(chachaReader(7), size), at: size * 3 / 4}
		runtime.GC()
		runtime.GC() // twice: the first only moves sync.Pool contents to its victim cache
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		e, err := svc.Write(t.Context(), "big", src, nil)
		noErr(t, err)
		eq(t, int64(size), e.Size)
		grew := int64(src.heap) - int64(before.HeapAlloc)
		t.Logf("3/4 through a %d MiB write in %d MiB parts, %d in flight, the live heap had grown %.1f MiB",
			size>>20, minPartSizeMB, DefaultPartsInFlight, float64(grew)/(1<<20))
		truth(t, src.heap != 0 && grew < (DefaultPartsInFlight+1)*minPartSizeMB<<20, "live heap grew %d bytes", grew)
		// Buffers were reused for later parts: the object is the stream, in order.
		rc, err := svc.Read(t.Context(), "big", &ReadOptions{Verify: true})
		noErr(t, err)
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		noErr(t, err)
	})

	t.Run("PartsInFlight", func(t *testing.T) {
		data := randomBytes(8, 5*minPartSizeMB<<20+7)
		for _, n := range []string{"1", "2", "16"} {
			svc, _ := srv.open(t, "parts_in_flight", n)
			write(t, svc, "f", data)
			b, err := readAll(t, svc, "f", &ReadOptions{Verify: true})
			noErr(t, err)
			truth(t, bytes.Equal(data, b), "parts_in_flight=%s", n)
		}
	})
}

// liveHeapAt reads r and, once at bytes are read, records the live heap (after a GC).
type liveHeapAt struct {
	r    io.Reader
	at   int64
	n    int64
	heap uint64
}

func (l *liveHeapAt) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.heap == 0 && l.n >= l.at {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		l.heap = ms.HeapAlloc
	}
	return n, err
}
