package blockservice

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
)

// fixture is a provider under the conformance suite.
type fixture struct {
	svc Service
	// bigSize is a size that takes several parts to upload (a multipart upload on s3).
	bigSize int
	// corrupt replaces the bytes of the file p behind the service's back, keeping the size
	// and md5 recorded for it.
	corrupt func(t *testing.T, p string)
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// chachaReader is an endless stream of bytes that do not compress, the same for the same seed.
func chachaReader(seed uint64) io.Reader {
	return rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
}

// randomBytes returns n bytes of chachaReader(seed).
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(chachaReader(seed), b)
	return b
}

// onlyReader hides every method of r but Read, as a network stream would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func readAll(t *testing.T, s Service, p string, opts *ReadOptions) ([]byte, error) {
	t.Helper()
	rc, err := s.Read(t.Context(), p, opts)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func write(t *testing.T, s Service, p string, data []byte) Entry {
	t.Helper()
	e, err := s.Write(t.Context(), p, bytes.NewReader(data), nil)
	noErr(t, err)
	eq(t, Entry{Name: e.Name, Size: int64(len(data)), MD5: md5hex(data)}, e)
	return e
}

// runConformance runs, against one provider, what every provider must do alike.
func runConformance(t *testing.T, newFixture func(t *testing.T) fixture) {
	t.Run("WriteReadStat", func(t *testing.T) {
		f := newFixture(t)
		data := []byte("checkpoint bytes")
		e := write(t, f.svc, "/c1/1/0/chkpt/000001.sst", data)
		eq(t, "000001.sst", e.Name)
		got, err := f.svc.Stat(t.Context(), "c1/1/0/chkpt/000001.sst")
		noErr(t, err)
		eq(t, e, got)
		for _, v := range []bool{false, true} {
			b, err := readAll(t, f.svc, "c1/1/0/chkpt/000001.sst", &ReadOptions{Verify: v})
			noErr(t, err)
			eq(t, data, b)
		}
		dir, err := f.svc.Stat(t.Context(), "c1/1/0")
		noErr(t, err)
		eq(t, Entry{Name: "0", IsDir: true}, dir)

		// An overwrite replaces the content and its md5.
		data2 := []byte("other bytes, longer than before")
		e2 := write(t, f.svc, "c1/1/0/chkpt/000001.sst", data2)
		b, err := readAll(t, f.svc, "c1/1/0/chkpt/000001.sst", &ReadOptions{Verify: true})
		noErr(t, err)
		eq(t, data2, b)
		got, err = f.svc.Stat(t.Context(), "c1/1/0/chkpt/000001.sst")
		noErr(t, err)
		eq(t, e2, got)

		// An empty file.
		write(t, f.svc, "c1/empty", nil)
		b, err = readAll(t, f.svc, "c1/empty", &ReadOptions{Verify: true})
		noErr(t, err)
		truth(t, len(b) == 0, "empty")
	})

	t.Run("List", func(t *testing.T) {
		f := newFixture(t)
		files := map[string][]byte{"b/x": []byte("x"), "b/a": []byte("aa"), "b/d/y": []byte("yyy"), "top": []byte("t")}
		for p, d := range files {
			write(t, f.svc, p, d)
		}
		es, err := f.svc.List(t.Context(), "/b/")
		noErr(t, err)
		eq(t, []Entry{
			{Name: "a", Size: 2, MD5: md5hex([]byte("aa"))},
			{Name: "d", IsDir: true},
			{Name: "x", Size: 1, MD5: md5hex([]byte("x"))},
		}, es)
		es, err = f.svc.List(t.Context(), "")
		noErr(t, err)
		eq(t, []Entry{{Name: "b", IsDir: true}, {Name: "top", Size: 1, MD5: md5hex([]byte("t"))}}, es)
		es, err = f.svc.List(t.Context(), "b/d")
		noErr(t, err)
		eq(t, []Entry{{Name: "y", Size: 3, MD5: md5hex([]byte("yyy"))}}, es)
		for _, missing := range []string{"nope", "b/nope", "top", "b/x"} {
			_, err := f.svc.List(t.Context(), missing)
			errIs(t, err, ErrNotFound, missing)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		f := newFixture(t)
		write(t, f.svc, "d/present", []byte("p"))
		for _, p := range []string{"absent", "d/absent", "x/y/z", "d/present/below"} {
			_, err := f.svc.Stat(t.Context(), p)
			errIs(t, err, ErrNotFound)
			var e *Error
			truth(t, errors.As(err, &e), "an *Error: %v", err)
			eq(t, "stat", e.Op)
			eq(t, p, e.Path)
			truth(t, e.Provider != "", "provider named")
			_, err = f.svc.Read(t.Context(), p, nil)
			errIs(t, err, ErrNotFound)
			errIs(t, f.svc.Remove(t.Context(), p), ErrNotFound)
		}
		// A directory is not a file.
		_, err := f.svc.Read(t.Context(), "d", nil)
		errIs(t, err, ErrNotFound)
		errIs(t, f.svc.Remove(t.Context(), "d"), ErrNotFound)
	})

	t.Run("Remove", func(t *testing.T) {
		f := newFixture(t)
		for _, p := range []string{"r/1/a", "r/1/b", "r/2/c", "r/top", "keep/k"} {
			write(t, f.svc, p, []byte(p))
		}
		noErr(t, f.svc.Remove(t.Context(), "r/1/a"))
		_, err := f.svc.Stat(t.Context(), "r/1/a")
		errIs(t, err, ErrNotFound)
		_, err = f.svc.Read(t.Context(), "r/1/a", nil)
		errIs(t, err, ErrNotFound)
		errIs(t, f.svc.Remove(t.Context(), "r/1/a"), ErrNotFound)
		es, err := f.svc.List(t.Context(), "r/1")
		noErr(t, err)
		eq(t, []Entry{{Name: "b", Size: 5, MD5: md5hex([]byte("r/1/b"))}}, es)

		noErr(t, f.svc.RemoveAll(t.Context(), "/r"))
		for _, p := range []string{"r", "r/1", "r/2/c", "r/top"} {
			_, err := f.svc.Stat(t.Context(), p)
			errIs(t, err, ErrNotFound, p)
		}
		_, err = f.svc.List(t.Context(), "r")
		errIs(t, err, ErrNotFound)
		b, err := readAll(t, f.svc, "keep/k", nil)
		noErr(t, err)
		eq(t, "keep/k", string(b))
		noErr(t, f.svc.RemoveAll(t.Context(), "r"), "removing what is not there")
		errIs(t, f.svc.RemoveAll(t.Context(), "/"), ErrInvalid)
	})

	t.Run("BigObject", func(t *testing.T) {
		f := newFixture(t)
		data := randomBytes(1, f.bigSize)
		for _, tc := range []struct {
			name string
			opts *WriteOptions
		}{
			{"unknown size", nil},
			{"known size", &WriteOptions{Size: int64(len(data))}},
			{"known md5", &WriteOptions{Size: int64(len(data)), MD5: md5hex(data)}},
		} {
			p := "big/" + tc.name
			e, err := f.svc.Write(t.Context(), p, onlyReader{bytes.NewReader(data)}, tc.opts)
			noErr(t, err, tc.name)
			want := Entry{Name: tc.name, Size: int64(len(data)), MD5: md5hex(data)}
			eq(t, want, e)
			got, err := f.svc.Stat(t.Context(), p)
			noErr(t, err)
			eq(t, want, got, "the md5 is recorded")
			b, err := readAll(t, f.svc, p, &ReadOptions{Verify: true})
			noErr(t, err)
			truth(t, bytes.Equal(data, b), tc.name)
		}
		es, err := f.svc.List(t.Context(), "big")
		noErr(t, err)
		eq(t, 3, len(es))
		for _, e := range es {
			eq(t, md5hex(data), e.MD5, "listing gives the md5 of %s", e.Name)
		}
	})

	t.Run("MD5Check", func(t *testing.T) {
		f := newFixture(t)
		small := []byte("the real content")
		big := randomBytes(2, f.bigSize)
		for _, data := range [][]byte{small, big} {
			p := fmt.Sprintf("m/%d", len(data))
			for _, bad := range []WriteOptions{
				{MD5: md5hex([]byte("something else"))},
				{Size: int64(len(data)) + 1},
				{Size: int64(len(data)) - 1},
			} {
				_, err := f.svc.Write(t.Context(), p, onlyReader{bytes.NewReader(data)}, &bad)
				errIs(t, err, ErrChecksum, "%d bytes, %+v", len(data), bad)
				_, err = f.svc.Stat(t.Context(), p)
				errIs(t, err, ErrNotFound, "a refused write leaves nothing")
			}
			// A refused overwrite leaves the old file.
			write(t, f.svc, p, data)
			_, err := f.svc.Write(t.Context(), p, bytes.NewReader([]byte("new")), &WriteOptions{MD5: md5hex([]byte("old"))})
			errIs(t, err, ErrChecksum)
			b, err := readAll(t, f.svc, p, &ReadOptions{Verify: true})
			noErr(t, err)
			truth(t, bytes.Equal(data, b))

			// Bytes changed behind the service's back: a verified read fails at the end,
			// an unverified one does not look.
			f.corrupt(t, p)
			b, err = readAll(t, f.svc, p, nil)
			noErr(t, err)
			truth(t, !(bytes.Equal(data, b)))
			_, err = readAll(t, f.svc, p, &ReadOptions{Verify: true})
			errIs(t, err, ErrChecksum)
		}
		_, err := f.svc.Write(t.Context(), "m/x", bytes.NewReader(nil), &WriteOptions{MD5: "xyz"})
		errIs(t, err, ErrInvalid)
	})

	t.Run("RangedRead", func(t *testing.T) {
		f := newFixture(t)
		data := randomBytes(3, 1000)
		write(t, f.svc, "r/f", data)
		for _, tc := range []struct {
			off, n int64
			want   []byte
		}{
			{0, 0, data},
			{10, 0, data[10:]},
			{10, 20, data[10:30]},
			{0, 1, data[:1]},
			{990, 100, data[990:]},
			{999, 0, data[999:]},
			{1000, 0, nil},
			{5000, 10, nil},
		} {
			b, err := readAll(t, f.svc, "r/f", &ReadOptions{Offset: tc.off, Length: tc.n})
			noErr(t, err, "offset %d length %d", tc.off, tc.n)
			eq(t, len(tc.want), len(b), "offset %d length %d", tc.off, tc.n)
			truth(t, bytes.Equal(tc.want, b), "offset %d length %d", tc.off, tc.n)
		}
		for _, bad := range []ReadOptions{{Offset: -1}, {Length: -1}, {Offset: 1, Verify: true}, {Length: 5, Verify: true}} {
			_, err := f.svc.Read(t.Context(), "r/f", &bad)
			errIs(t, err, ErrInvalid, "%+v", bad)
		}
	})

	t.Run("ConcurrentWrites", func(t *testing.T) {
		f := newFixture(t)
		const writers = 8
		contents := make([][]byte, writers)
		for i := range contents {
			contents[i] = randomBytes(uint64(10+i), 64<<10+i)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2*writers)
		for i := range writers {
			wg.Go(func() {
				_, errs[i] = f.svc.Write(t.Context(), "same/file", bytes.NewReader(contents[i]), nil)
			})
			wg.Go(func() {
				_, errs[writers+i] = f.svc.Write(t.Context(), fmt.Sprintf("own/%d", i), bytes.NewReader(contents[i]), nil)
			})
		}
		wg.Wait()
		noErr(t, errors.Join(errs...))
		b, err := readAll(t, f.svc, "same/file", &ReadOptions{Verify: true})
		noErr(t, err, "the last write's content under its own md5")
		found := false
		for _, c := range contents {
			found = found || bytes.Equal(b, c)
		}
		truth(t, found, "the file holds one writer's content whole")
		for i := range writers {
			b, err := readAll(t, f.svc, fmt.Sprintf("own/%d", i), &ReadOptions{Verify: true})
			noErr(t, err)
			truth(t, bytes.Equal(contents[i], b))
		}
		es, err := f.svc.List(t.Context(), "own")
		noErr(t, err)
		eq(t, writers, len(es))
	})

	t.Run("InvalidPaths", func(t *testing.T) {
		f := newFixture(t)
		for _, p := range []string{"", "/", "../x", "a/../../x", "a/.hidden", ".x", "a\\b", "a\x00b"} {
			_, err := f.svc.Write(t.Context(), p, bytes.NewReader([]byte("x")), nil)
			errIs(t, err, ErrInvalid, "%q", p)
			_, err = f.svc.Read(t.Context(), p, nil)
			errIs(t, err, ErrInvalid, "%q", p)
			errIs(t, f.svc.Remove(t.Context(), p), ErrInvalid, "%q", p)
		}
		for _, p := range []string{"../x", "a/.hidden"} {
			_, err := f.svc.List(t.Context(), p)
			errIs(t, err, ErrInvalid, "%q", p)
			errIs(t, f.svc.RemoveAll(t.Context(), p), ErrInvalid, "%q", p)
		}
	})

	t.Run("FailedWrite", func(t *testing.T) {
		f := newFixture(t)
		write(t, f.svc, "w/f", []byte("old"))
		boom := errors.New("source broke")
		for _, n := range []int{10, f.bigSize + 10} {
			src := io.MultiReader(bytes.NewReader(randomBytes(4, n)), errReader{boom})
			_, err := f.svc.Write(t.Context(), "w/f", src, nil)
			errIs(t, err, boom)
			b, err := readAll(t, f.svc, "w/f", &ReadOptions{Verify: true})
			noErr(t, err)
			eq(t, "old", string(b), "a failed write leaves the old file")
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := f.svc.Write(ctx, "w/f", bytes.NewReader([]byte("new")), nil)
		errIs(t, err, context.Canceled)
		es, err := f.svc.List(t.Context(), "w")
		noErr(t, err)
		eq(t, []Entry{{Name: "f", Size: 3, MD5: md5hex([]byte("old"))}}, es, "no leftovers listed")
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// what formats a check's optional message: a format and its arguments.
func what(args []any) string {
	if len(args) == 0 {
		return ""
	}
	if f, ok := args[0].(string); ok {
		return ": " + fmt.Sprintf(f, args[1:]...)
	}
	return ": " + fmt.Sprint(args...)
}

func noErr(t testing.TB, err error, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error%s: %v", what(args), err)
	}
}

func errIs(t testing.TB, err, target error, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error%s: got %v, want one wrapping %v", what(args), err, target)
	}
}

func eq[T any](t testing.TB, want, got T, args ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("mismatch%s:\n got %+v\nwant %+v", what(args), got, want)
	}
}

func truth(t testing.TB, ok bool, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf("check failed%s", what(args))
	}
}
