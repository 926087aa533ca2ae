package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/gopegasus/pegasus/internal/diskfault"
	"github.com/gopegasus/pegasus/internal/wire"
)

// A store on a disk that fills up (as the replica servers run them: no WAL) keeps taking
// applied writes in memory and serving reads; making them durable (the flush before a raft
// log truncation) fails or waits for space, never panics, and succeeds once space returns;
// StartSyncApplied does not wait.
func TestStoreOnFullDisk(t *testing.T) {
	in := diskfault.New()
	d := openTest(t, func(o *Options) {
		o.NoWAL = true
		o.Pebble = &pebble.Options{FS: in.FS(vfs.Default)}
	})
	d.put("h", "a", "1", 0)
	if err := d.SyncApplied(); err != nil {
		t.Fatal(err)
	}
	in.Set(diskfault.Fault{NoSpace: true})
	d.put("h", "b", "2", 0)
	if v, st := d.get("h", "a"); st != wire.StatusOK || v != "1" {
		t.Fatalf("read on a full disk: %q %v", v, st)
	}
	synced := make(chan error, 1)
	go func() { synced <- d.SyncApplied() }()
	select {
	case err := <-synced:
		t.Logf("flush on a full disk: %v", err)
		if err == nil {
			t.Fatal("a flush on a full disk succeeded")
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("flush on a full disk: %v, want ENOSPC", err)
		}
	case <-time.After(2 * time.Second):
		t.Log("flush on a full disk waits")
	}
	started, err := d.StartSyncApplied() // returns at once, full disk or not
	if err != nil {
		t.Fatal(err)
	}
	if in.Counts().Refused == 0 {
		t.Fatal("the store wrote nothing through the injector")
	}
	in.Set(diskfault.Fault{})
	select {
	case <-synced:
	default:
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the flush started on a full disk did not finish once space returned")
	}
	if err := d.SyncApplied(); err != nil {
		t.Fatalf("flush once space returned: %v", err)
	}
	if v, st := d.get("h", "b"); st != wire.StatusOK || v != "2" {
		t.Fatalf("read after the disk healed: %q %v", v, st)
	}
}

// markerFailFS fails the creation of a new MANIFEST's marker as a process out of file
// descriptors does, which Pebble treats as fatal (Logger.Fatalf) inside its Open.
type markerFailFS struct{ vfs.FS }

func (fs markerFailFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if strings.HasPrefix(fs.PathBase(name), "marker.manifest.") {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EMFILE}
	}
	return fs.FS.Create(name, category)
}

// A new store that Pebble cannot finish creating (its Fatalf, a panic through our logger)
// fails to open with an error, not a panic, and opens once the fault is gone.
func TestOpenFatalIsAnError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	_, err := Open(Options{Dir: dir, NoWAL: true, SweepInterval: -1, Pebble: &pebble.Options{FS: markerFailFS{vfs.Default}}})
	if err == nil {
		t.Fatal("open succeeded without its MANIFEST marker")
	}
	var fe *PebbleFatalError
	if !errors.Is(err, syscall.EMFILE) || !errors.As(err, &fe) {
		t.Fatalf("open: %v, want a Pebble fatal error of EMFILE", err)
	}
	d := openTest(t, func(o *Options) { o.Dir = dir; o.NoWAL = true })
	d.put("h", "s", "v", 0)
	if v, code := d.get("h", "s"); code != wire.StatusOK || v != "v" {
		t.Fatalf("get: %q %d", v, code)
	}
}
