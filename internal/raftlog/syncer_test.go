package raftlog

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// A lone writer is not held back by the commit window: each save gets its own round at once.
func TestLoneWriterSyncsAtOnce(t *testing.T) {
	l, err := OpenWindow(t.TempDir(), slog.New(slog.DiscardHandler), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := l.Group(idl.GPID{AppID: 1})
	start := time.Now()
	for i := uint64(1); i <= 5; i++ {
		if err := g.Save(raftpb.HardState{Term: 1, Commit: i}, ents(i, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Five one-second windows would take five seconds.
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("5 lone saves took %v: the window was applied", d)
	}
}

// Staged writes wait for a sync; closing the log answers every waiter.
func TestSyncAfterClose(t *testing.T) {
	l, err := Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	g := l.Group(idl.GPID{AppID: 1})
	if err := g.Stage(raftpb.HardState{Term: 1}, ents(1, 3, 1), 0); err != nil {
		t.Fatal(err)
	}
	if err := <-g.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-g.Sync(); !errors.Is(err, errClosed) {
		t.Fatalf("sync after close: %v, want errClosed", err)
	}
}

// Stage drops a stale tail only when told the log reaches past the new entries.
func TestStageDropsStaleTail(t *testing.T) {
	l, err := Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := l.Group(idl.GPID{AppID: 1})
	if err := g.Stage(raftpb.HardState{Term: 1}, ents(1, 10, 1), 0); err != nil {
		t.Fatal(err)
	}
	if err := g.Stage(raftpb.HardState{Term: 2}, ents(8, 8, 2), 10); err != nil {
		t.Fatal(err)
	}
	if err := <-g.Sync(); err != nil {
		t.Fatal(err)
	}
	ms, _, err := g.Load()
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := ms.LastIndex(); last != 8 {
		t.Fatalf("last index %d after overwriting from 8, want 8", last)
	}
	if term, _ := ms.Term(8); term != 2 {
		t.Fatalf("entry 8 has term %d, want 2", term)
	}
}
