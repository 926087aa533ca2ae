package blockservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/gopegasus/pegasus/internal/durable"
)

// TypeLocal is the provider type of a directory on a mounted file system.
const TypeLocal = "local_service"

// copyBufferSize is the chunk a local write copies at a time (and checks its ctx between).
const copyBufferSize = 1 << 20

// local is the local_service provider: a directory, laid out as Pegasus's local_service
// lays it out. Every file X has a sidecar .X.meta holding {"size":N,"md5":"…"}; a file
// without its sidecar is not there (Pegasus lists and reads only files that have one).
type local struct {
	root string // absolute
	// stripes serialize the last step of writes and removes of one path (the renames of
	// the file and its sidecar), so that two writers of a path never leave one's data
	// under the other's sidecar.
	stripes [64]sync.Mutex
	bufs    sync.Pool // *[]byte of copyBufferSize
}

var _ provider = (*local)(nil)

// newLocal opens a local_service section: args is the root directory, as in Pegasus.
func newLocal(section map[string]string) (*local, error) {
	if err := checkKeys(section, "type", "args"); err != nil {
		return nil, err
	}
	args := strings.Fields(section["args"])
	if len(args) != 1 {
		return nil, fmt.Errorf("%w: args must be the root directory, got %q", ErrInvalid, section["args"])
	}
	root, err := filepath.Abs(args[0])
	if err != nil {
		return nil, fmt.Errorf("%w: root directory %q: %v", ErrInvalid, args[0], err)
	}
	return &local{root: root}, nil
}

// sidecar is the content of a .X.meta file. Pegasus reads it as one whitespace-free JSON
// token, which encoding/json's compact output is.
type sidecar struct {
	Size int64  `json:"size"`
	MD5  string `json:"md5"`
}

func sidecarName(base string) string { return "." + base + ".meta" }

// notFound: a path through a file (ENOTDIR) names nothing, as on s3; but a write there is
// refused.
func (l *local) notFound(op string, err error) bool {
	return errors.Is(err, fs.ErrNotExist) || (op != "write" && errors.Is(err, syscall.ENOTDIR))
}

func (l *local) full(clean string) string { return filepath.Join(l.root, filepath.FromSlash(clean)) }

func (l *local) stripe(clean string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(clean))
	return &l.stripes[h.Sum32()%uint32(len(l.stripes))]
}

// readSidecar reads the recorded size and md5 of the file full; fs.ErrNotExist if it has
// no sidecar.
func readSidecar(full string) (Entry, error) {
	base := filepath.Base(full)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(full), sidecarName(base)))
	if err != nil {
		return Entry{}, err
	}
	m, err := parseSidecar(b)
	if err != nil {
		return Entry{}, fmt.Errorf("metadata file of %s: %w", base, err)
	}
	return Entry{Name: base, Size: m.Size, MD5: m.MD5}, nil
}

// parseSidecar decodes the content of a sidecar, md5 in lowercase; [ErrChecksum] if it is
// not a size and an md5.
func parseSidecar(b []byte) (sidecar, error) {
	var m sidecar
	if err := json.Unmarshal(b, &m); err != nil {
		return sidecar{}, fmt.Errorf("%w: %v", ErrChecksum, err)
	}
	if !isMD5(m.MD5) || m.Size < 0 {
		return sidecar{}, fmt.Errorf("%w: size %d md5 %q", ErrChecksum, m.Size, m.MD5)
	}
	m.MD5 = strings.ToLower(m.MD5)
	return m, nil
}

// statFile describes the file full: its sidecar's size and md5, if the file and its
// sidecar are both there.
func statFile(full string) (Entry, error) {
	fi, err := os.Stat(full)
	if err != nil {
		return Entry{}, err
	}
	if !fi.Mode().IsRegular() {
		return Entry{}, fmt.Errorf("%w: %s is not a file", ErrNotFound, fi.Name())
	}
	return readSidecar(full)
}

func (l *local) stat(_ context.Context, c string) (Entry, error) {
	full := l.full(c)
	fi, err := os.Stat(full)
	if err != nil {
		return Entry{}, err
	}
	if fi.IsDir() {
		name := ""
		if c != "" {
			name = path.Base(c)
		}
		return Entry{Name: name, IsDir: true}, nil
	}
	return statFile(full)
}

func (l *local) list(_ context.Context, c string) ([]Entry, error) {
	full := l.full(c)
	des, err := os.ReadDir(full)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, de := range des {
		names[de.Name()] = true
	}
	out := []Entry{}
	for _, de := range des {
		n := de.Name()
		if strings.HasPrefix(n, ".") {
			continue // sidecars, temporary files, and nothing of ours
		}
		// A symlink counts as what it points to, as it does for Stat and Read.
		fi, err := os.Stat(filepath.Join(full, n))
		if err != nil {
			continue // removed meanwhile, or a dangling link
		}
		switch {
		case fi.IsDir():
			out = append(out, Entry{Name: n, IsDir: true})
		case fi.Mode().IsRegular() && names[sidecarName(n)]:
			e, err := readSidecar(filepath.Join(full, n))
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (l *local) read(_ context.Context, c string, o ReadOptions) (io.ReadCloser, error) {
	full := l.full(c)
	f, err := os.Open(full)
	if err != nil {
		return nil, err
	}
	// The sidecar is read after the file is open: an open file keeps its bytes whatever a
	// writer renames over it meanwhile, so a verified read never passes torn data.
	e, err := statFile(full)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if o.Verify {
		return newVerifier(f, e), nil
	}
	if o.Offset > 0 {
		if _, err := f.Seek(o.Offset, io.SeekStart); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	if o.Length > 0 {
		return readCloser{io.LimitReader(f, o.Length), f}, nil
	}
	return f, nil
}

// readCloser is a reader with the Close of what it reads from.
type readCloser struct {
	io.Reader
	io.Closer
}

func (l *local) write(ctx context.Context, c string, r io.Reader, o WriteOptions) (Entry, error) {
	full := l.full(c)
	dir, base := filepath.Dir(full), filepath.Base(full)
	if err := mkdirAll(dir); err != nil {
		return Entry{}, err
	}
	if fi, err := os.Stat(full); err == nil && fi.IsDir() {
		return Entry{}, fmt.Errorf("%w: %s is a directory", ErrInvalid, base)
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return Entry{}, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	sum := newSummer(r, o)
	bp, _ := l.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, copyBufferSize)
		bp = &b
	}
	err = copyChunks(ctx, tmp, sum, *bp)
	l.bufs.Put(bp)
	if err != nil {
		return Entry{}, err
	}
	if err := sum.check(); err != nil {
		return Entry{}, err
	}
	if err := tmp.Sync(); err != nil {
		return Entry{}, err
	}
	if err := tmp.Close(); err != nil {
		return Entry{}, err
	}
	meta, err := json.Marshal(sidecar{Size: sum.n, MD5: sum.sum()})
	if err != nil {
		return Entry{}, err
	}

	mu := l.stripe(c)
	mu.Lock()
	defer mu.Unlock()
	// The old sidecar goes first: between the steps (or after a crash between them) the
	// path holds the old file, no file, or the new file, never data under another's md5.
	switch err := os.Remove(filepath.Join(dir, sidecarName(base))); {
	case err == nil:
		if err := durable.SyncDir(dir); err != nil {
			return Entry{}, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return Entry{}, err
	}
	if err := os.Rename(tmp.Name(), full); err != nil {
		return Entry{}, err
	}
	committed = true
	// ReplaceFile syncs the directory after its rename, which makes the file's rename
	// durable too.
	if err := durable.ReplaceFile(filepath.Join(dir, sidecarName(base)), meta); err != nil {
		return Entry{}, err
	}
	return Entry{Name: base, Size: sum.n, MD5: sum.sum()}, nil
}

// mkdirAll creates dir and its missing parents, syncing the parent of each directory it
// creates so that the new directories survive a crash.
func mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%w: %s is not a directory", ErrInvalid, dir)
		}
		return nil
	}
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range missing {
		if err := durable.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func (l *local) remove(_ context.Context, c string) error {
	full := l.full(c)
	dir, base := filepath.Dir(full), filepath.Base(full)
	mu := l.stripe(c)
	mu.Lock()
	defer mu.Unlock()
	if _, err := statFile(full); err != nil {
		return err
	}
	// The sidecar first: once it is gone the file is not there, whatever happens next.
	if err := os.Remove(filepath.Join(dir, sidecarName(base))); err != nil {
		return err
	}
	if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return durable.SyncDir(dir)
}

func (l *local) removeAll(_ context.Context, c string) error {
	full := l.full(c)
	fi, err := os.Stat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: not a directory", ErrInvalid)
	}
	if err := os.RemoveAll(full); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(full))
}
