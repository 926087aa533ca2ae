package blockservice

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func openLocal(t testing.TB, root string) Service {
	t.Helper()
	s, err := Open("test", map[string]string{"type": "local_service", "args": root})
	noErr(t, err)
	return s
}

func TestLocalConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) fixture {
		root := t.TempDir()
		return fixture{
			svc:     openLocal(t, root),
			bigSize: 3*copyBufferSize + 123,
			corrupt: func(t *testing.T, p string) {
				full := filepath.Join(root, filepath.FromSlash(p))
				b, err := os.ReadFile(full)
				noErr(t, err)
				b[len(b)/2] ^= 0xff
				noErr(t, os.WriteFile(full, b, 0o644))
			},
		}
	})
}

// TestLocalLayout checks the files on disk are where and what Pegasus's local_service
// makes them: the file itself and a sidecar .<name>.meta with its size and md5, as one
// whitespace-free JSON token (Pegasus reads it with `>>`).
func TestLocalLayout(t *testing.T) {
	root := t.TempDir()
	s := openLocal(t, root)
	data := []byte("sst bytes")
	write(t, s, "/c1/backup/1/app_2/0/chkpt_10.0.0.1_34801/000001.sst", data)
	dir := filepath.Join(root, "c1", "backup", "1", "app_2", "0", "chkpt_10.0.0.1_34801")
	b, err := os.ReadFile(filepath.Join(dir, "000001.sst"))
	noErr(t, err)
	eq(t, data, b)
	meta, err := os.ReadFile(filepath.Join(dir, ".000001.sst.meta"))
	noErr(t, err)
	eq(t, `{"size":9,"md5":"`+md5hex(data)+`"}`, string(meta))
	des, err := os.ReadDir(dir)
	noErr(t, err)
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	eq(t, []string{".000001.sst.meta", "000001.sst"}, names, "no temporary files left")
}

// TestLocalReadsPegasusTree reads a tree as Pegasus writes it (its sidecars have the keys in
// the other order), and sees only the files that have a sidecar, as Pegasus does.
func TestLocalReadsPegasusTree(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "cluster", "temp", "0")
	noErr(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	meta := []byte(`{"files":[],"file_total_size":0}`)
	noErr(t, os.WriteFile(filepath.Join(dir, "bulk_load_metadata"), meta, 0o644))
	noErr(t, os.WriteFile(filepath.Join(dir, ".bulk_load_metadata.meta"),
		[]byte(`{"md5":"`+strings.ToUpper(md5hex(meta))+`","size":`+strconv.Itoa(len(meta))+"}\n"), 0o644))
	noErr(t, os.WriteFile(filepath.Join(dir, "orphan.sst"), []byte("no sidecar"), 0o644))
	noErr(t, os.WriteFile(filepath.Join(dir, ".x.sst.1234.tmp"), []byte("a crashed write"), 0o644))
	s := openLocal(t, root)

	es, err := s.List(t.Context(), "cluster/temp/0")
	noErr(t, err)
	eq(t, []Entry{{Name: "bulk_load_metadata", Size: int64(len(meta)), MD5: md5hex(meta)}, {Name: "sub", IsDir: true}}, es)
	b, err := readAll(t, s, "cluster/temp/0/bulk_load_metadata", &ReadOptions{Verify: true})
	noErr(t, err)
	eq(t, meta, b)
	_, err = s.Stat(t.Context(), "cluster/temp/0/orphan.sst")
	errIs(t, err, ErrNotFound, "a file without its sidecar is not there")
	_, err = s.Read(t.Context(), "cluster/temp/0/orphan.sst", nil)
	errIs(t, err, ErrNotFound)

	// A malformed sidecar is a corrupt file, not a missing one.
	noErr(t, os.WriteFile(filepath.Join(dir, ".bulk_load_metadata.meta"), []byte(`{"size":3}`), 0o644))
	_, err = s.Stat(t.Context(), "cluster/temp/0/bulk_load_metadata")
	errIs(t, err, ErrChecksum)
}

// TestLocalSizeMismatch: a file whose length differs from its sidecar fails a verified read.
func TestLocalSizeMismatch(t *testing.T) {
	root := t.TempDir()
	s := openLocal(t, root)
	write(t, s, "f", []byte("12345"))
	for _, content := range []string{"1234", "123456"} {
		noErr(t, os.WriteFile(filepath.Join(root, "f"), []byte(content), 0o644))
		_, err := readAll(t, s, "f", &ReadOptions{Verify: true})
		errIs(t, err, ErrChecksum, "%q", content)
	}
}

// TestLocalWriteOverDirectory refuses to write a file where a directory is, and a file
// below a file.
func TestLocalWriteOverDirectory(t *testing.T) {
	s := openLocal(t, t.TempDir())
	write(t, s, "d/f", []byte("x"))
	_, err := s.Write(t.Context(), "d", bytes.NewReader([]byte("y")), nil)
	errIs(t, err, ErrInvalid)
	_, err = s.Write(t.Context(), "d/f/g", bytes.NewReader([]byte("y")), nil)
	if err == nil {
		t.Fatal("wrote a file below a file")
	}
	errIs(t, s.RemoveAll(t.Context(), "d/f"), ErrInvalid, "RemoveAll of a file")
}

func TestLocalMissingRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "not", "yet")
	s := openLocal(t, root)
	_, err := s.List(t.Context(), "")
	errIs(t, err, ErrNotFound)
	write(t, s, "a/b", []byte("created"))
	es, err := s.List(t.Context(), "")
	noErr(t, err)
	eq(t, []Entry{{Name: "a", IsDir: true}}, es)
	root2, err := s.Stat(t.Context(), "/")
	noErr(t, err)
	eq(t, Entry{IsDir: true}, root2)
}
