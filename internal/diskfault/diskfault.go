// Package diskfault is a disk that a test controls: it delays fsyncs, fails them with EIO,
// or fails writes with ENOSPC, for the raft log (through [Injector.Write] and
// [Injector.Sync], which raftlog.Options.Faults takes) and for Pebble stores (through
// [Injector.FS], a vfs.FS). A server is given one through replica.Config.Faults; the default
// everywhere is the real disk, untouched. It has no use outside tests.
//
// A failed fsync on Linux may leave the kernel having dropped the dirty pages it could not
// write (the "fsyncgate" behaviour): a later fsync then succeeds although the data is gone.
// [Injector.Sync] imitates that: when it fails an fsync of a file it cuts the file back to
// the size it had at its last successful fsync, so what was written since is lost for good,
// and a log that acknowledged it anyway would be caught out.
package diskfault

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// Fault is what the disk does while it is set. The zero Fault is a healthy disk.
type Fault struct {
	// SyncDelay delays every fsync (of files and directories) by this long.
	SyncDelay time.Duration
	// FailSyncs fails every fsync with EIO (after SyncDelay), dropping what the file held
	// unsynced.
	FailSyncs bool
	// NoSpace fails every write and file creation with ENOSPC, as a full disk does. Reads,
	// removals and fsyncs of what was written before go on working.
	NoSpace bool
}

// Injector is a controllable disk. The zero value is not usable; call [New]. Safe for
// concurrent use.
type Injector struct {
	fault atomic.Pointer[Fault]

	mu     sync.Mutex
	synced map[string]int64 // a file's size at its last successful fsync through Sync

	syncs, failed, refused atomic.Int64
}

// New returns an injector with a healthy disk.
func New() *Injector {
	in := &Injector{synced: map[string]int64{}}
	in.fault.Store(&Fault{})
	return in
}

// Set makes the disk behave as f from now on; Set(Fault{}) heals it.
func (in *Injector) Set(f Fault) { in.fault.Store(&f) }

// Fault returns what the disk does now.
func (in *Injector) Fault() Fault { return *in.fault.Load() }

// Counts are what an injector did.
type Counts struct {
	Syncs   int64 // fsyncs that went through it (delayed or not, failed or not)
	Failed  int64 // fsyncs it failed
	Refused int64 // writes and creations it failed for want of space
}

// Counts returns what the injector did so far.
func (in *Injector) Counts() Counts {
	return Counts{Syncs: in.syncs.Load(), Failed: in.failed.Load(), Refused: in.refused.Load()}
}

// Write is called before a file at path is created or written: it returns ENOSPC while
// the disk is full, nil otherwise.
func (in *Injector) Write(path string) error {
	if in.fault.Load().NoSpace {
		in.refused.Add(1)
		return &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
	}
	return nil
}

// Sync performs sync, the fsync of f (nil for a directory), as the disk would now: after
// the delay, and when fsyncs fail, not at all: f is cut back to its size at its last
// successful fsync (the data written since is lost) and EIO is returned.
func (in *Injector) Sync(f *os.File, sync func() error) error {
	in.syncs.Add(1)
	fl := in.fault.Load()
	if fl.SyncDelay > 0 {
		time.Sleep(fl.SyncDelay)
	}
	if !fl.FailSyncs {
		err := sync()
		if err == nil && f != nil {
			if fi, serr := f.Stat(); serr == nil {
				in.mu.Lock()
				in.synced[f.Name()] = fi.Size()
				in.mu.Unlock()
			}
		}
		return err
	}
	in.failed.Add(1)
	name := "(directory)"
	if f != nil {
		name = f.Name()
		in.mu.Lock()
		size, ok := in.synced[name]
		in.mu.Unlock()
		if ok {
			_ = f.Truncate(size)
		}
	}
	return &os.PathError{Op: "fsync", Path: name, Err: syscall.EIO}
}

// FS wraps fs (a Pebble store's) so that its writes and syncs go through the injector:
// fsyncs are delayed, and creations and writes fail with ENOSPC while the disk is full.
// Failing fsyncs are not passed on to Pebble (a store's flush would be retried until the
// disk heals), and Pebble's MANIFEST files and their marker files are spared the full
// disk: Pebble treats a failed MANIFEST write as fatal and panics, which no server
// survives (see the README, "Disk faults").
func (in *Injector) FS(fs vfs.FS) vfs.FS {
	return errorfs.Wrap(fs, errorfs.InjectorFunc(in.pebbleOp))
}

func (in *Injector) pebbleOp(op errorfs.Op) error {
	fl := in.fault.Load()
	base := filepath.Base(op.Path)
	manifest := strings.HasPrefix(base, "MANIFEST") || strings.HasPrefix(base, "marker.")
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		in.syncs.Add(1)
		if fl.SyncDelay > 0 {
			time.Sleep(fl.SyncDelay)
		}
	case errorfs.OpCreate, errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate, errorfs.OpLink, errorfs.OpReuseForWrite:
		if fl.NoSpace && !manifest {
			in.refused.Add(1)
			return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
		}
	}
	return nil
}

// IsNoSpace reports whether err says the disk is full.
func IsNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }
