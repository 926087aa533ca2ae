package raftlog

import (
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// A lone writer is not held back by the commit window, nor by the delay while fewer client
// writes than the siblings wait: each save gets its own round at once. Time is synctest's
// fake clock, so the durations are exact, not the machine's.
func TestLoneWriterSyncsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := OpenOptions(t.TempDir(), slog.New(slog.DiscardHandler),
			Options{Window: time.Second, Delay: time.Second, Siblings: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		g := l.Group(idl.GPID{AppID: 1})
		g.Writing(1)
		start := time.Now()
		for i := uint64(1); i <= 5; i++ {
			if err := g.Save(raftpb.HardState{Term: 1, Commit: i}, ents(i, i, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("5 lone saves waited %v: the window or the delay was applied", d)
		}
	})
}

// While at least the siblings' number of client writes wait, rounds start at most once per
// delay.
func TestBusyLogSpacesRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 100 * time.Millisecond
		l, err := OpenOptions(t.TempDir(), slog.New(slog.DiscardHandler),
			Options{Delay: delay, Siblings: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		g := l.Group(idl.GPID{AppID: 1})
		g.Writing(2)
		start := time.Now()
		for i := uint64(1); i <= 4; i++ {
			if err := g.Save(raftpb.HardState{Term: 1, Commit: i}, ents(i, i, 1)); err != nil {
				t.Fatal(err)
			}
		}
		// The first round may start at once; the next three each wait for the delay.
		if d := time.Since(start); d < 3*delay || d > 4*delay {
			t.Fatalf("4 saves under load waited %v, want %v to %v: rounds were not spaced by the delay", d, 3*delay, 4*delay)
		}
		g.Writing(-2)
	})
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
