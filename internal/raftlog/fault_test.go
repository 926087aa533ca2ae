package raftlog

import (
	"errors"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/diskfault"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
)

func openFaulty(t *testing.T, dir string, in *diskfault.Injector) *Log {
	t.Helper()
	opts := DefaultOptions
	opts.Faults = in
	l, err := OpenOptions(dir, slog.New(slog.NewTextHandler(t.Output(), nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func lastIndex(t *testing.T, l *Log, pid idl.GPID) uint64 {
	t.Helper()
	ms, found, err := l.Group(pid).Load()
	if err != nil || !found {
		t.Fatalf("load %v: found %v, %v", pid, found, err)
	}
	last, _ := ms.LastIndex()
	return last
}

// A failed fsync is never acknowledged, and no later fsync is taken to cover what it
// failed to make durable: the log refuses every write from then on, even once the disk
// works again, and a reopened log holds what was acknowledged and nothing of the failed
// round (the injector drops it, as a kernel may drop the pages of a failed fsync).
func TestFailedSyncIsNeverAcknowledged(t *testing.T) {
	dir := t.TempDir()
	in := diskfault.New()
	l := openFaulty(t, dir, in)
	pid := idl.GPID{AppID: 1, PartitionIndex: 0}
	g := l.Group(pid)
	if err := g.Save(raftpb.HardState{Term: 1, Commit: 3}, ents(1, 5, 1)); err != nil {
		t.Fatal(err)
	}
	in.Set(diskfault.Fault{FailSyncs: true})
	err := g.Save(raftpb.HardState{Term: 1, Commit: 5}, ents(6, 9, 1))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("save with failing fsyncs: %v, want EIO", err)
	}
	select {
	case <-l.Failed():
	default:
		t.Fatal("the log did not report its failure")
	}
	in.Set(diskfault.Fault{})
	if err := g.Save(raftpb.HardState{Term: 1, Commit: 5}, ents(10, 10, 1)); err == nil {
		t.Fatal("a save after a failed fsync succeeded once the disk healed: it would claim the failed round's entries durable")
	}
	h := l.Health()
	if h.Failed == nil || h.SyncErrors == 0 || h.NoSpace {
		t.Fatalf("health after a failed fsync: %+v", h)
	}
	if err := l.Close(); err == nil {
		t.Fatal("close of a failed log reported no error")
	}

	l = openFaulty(t, dir, in)
	defer l.Close()
	if last := lastIndex(t, l, pid); last != 5 {
		t.Fatalf("reopened log ends at %d, want 5 (the acknowledged entries, none of the failed round)", last)
	}
	if err := l.Group(pid).Save(raftpb.HardState{Term: 2, Commit: 5}, ents(6, 7, 2)); err != nil {
		t.Fatalf("save after reopening on a healed disk: %v", err)
	}
}

// A full disk makes writes wait, unacknowledged, and reports it; once space returns they
// are written and acknowledged, and later writes go on as before.
func TestNoSpaceWaitsAndResumes(t *testing.T) {
	dir := t.TempDir()
	in := diskfault.New()
	l := openFaulty(t, dir, in)
	pid := idl.GPID{AppID: 1, PartitionIndex: 0}
	g := l.Group(pid)
	if err := g.Save(raftpb.HardState{Term: 1, Commit: 2}, ents(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	in.Set(diskfault.Fault{NoSpace: true})
	saved := make(chan error, 1)
	go func() { saved <- g.Save(raftpb.HardState{Term: 1, Commit: 3}, ents(4, 6, 1)) }()
	poll.Until(t, "the log reports the full disk", func() bool { return l.Health().NoSpace })
	select {
	case err := <-saved:
		t.Fatalf("a save on a full disk returned %v", err)
	default:
	}
	if h := l.Health(); h.Failed != nil || h.WriteErrors == 0 {
		t.Fatalf("health on a full disk: %+v", h)
	}
	// What is staged stays readable meanwhile.
	if last := lastIndex(t, l, pid); last != 6 {
		t.Fatalf("log ends at %d while the disk is full, want 6", last)
	}
	in.Set(diskfault.Fault{})
	if err := <-saved; err != nil {
		t.Fatalf("save once space returned: %v", err)
	}
	if l.Health().NoSpace {
		t.Fatal("the log still reports a full disk")
	}
	if err := g.Save(raftpb.HardState{Term: 1, Commit: 6}, ents(7, 8, 1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openFaulty(t, dir, in)
	defer l.Close()
	if last := lastIndex(t, l, pid); last != 8 {
		t.Fatalf("reopened log ends at %d, want 8", last)
	}
}

// A log closed while its disk is full answers the waiting writes with ErrNoSpace, and
// reopens with what was acknowledged.
func TestCloseOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	in := diskfault.New()
	l := openFaulty(t, dir, in)
	pid := idl.GPID{AppID: 1, PartitionIndex: 0}
	g := l.Group(pid)
	if err := g.Save(raftpb.HardState{Term: 1}, ents(1, 2, 1)); err != nil {
		t.Fatal(err)
	}
	in.Set(diskfault.Fault{NoSpace: true})
	saved := make(chan error, 1)
	go func() { saved <- g.Save(raftpb.HardState{Term: 1}, ents(3, 4, 1)) }()
	poll.Until(t, "the log reports the full disk", func() bool { return l.Health().NoSpace })
	if err := l.Close(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("close on a full disk: %v, want ErrNoSpace", err)
	}
	select {
	case err := <-saved:
		if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("the waiting save got %v, want ErrNoSpace", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting save was not answered by Close")
	}
	in.Set(diskfault.Fault{})
	l = openFaulty(t, dir, in)
	defer l.Close()
	if last := lastIndex(t, l, pid); last != 2 {
		t.Fatalf("reopened log ends at %d, want 2", last)
	}
}

// Slow fsyncs delay the answers, and lose nothing.
func TestSlowSyncs(t *testing.T) {
	dir := t.TempDir()
	in := diskfault.New()
	in.Set(diskfault.Fault{SyncDelay: 20 * time.Millisecond})
	l := openFaulty(t, dir, in)
	pid := idl.GPID{AppID: 1, PartitionIndex: 0}
	for i := uint64(1); i <= 5; i++ {
		if err := l.Group(pid).Save(raftpb.HardState{Term: 1, Commit: i - 1}, ents(i, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if in.Counts().Syncs < 5 {
		t.Fatalf("fsyncs through the injector: %+v", in.Counts())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openFaulty(t, dir, in)
	defer l.Close()
	if last := lastIndex(t, l, pid); last != 5 {
		t.Fatalf("reopened log ends at %d, want 5", last)
	}
}
