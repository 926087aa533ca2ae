package raftlog

import (
	"log/slog"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

func ents(from, to, term uint64) []raftpb.Entry {
	var out []raftpb.Entry
	for i := from; i <= to; i++ {
		out = append(out, raftpb.Entry{Index: i, Term: term, Data: []byte{byte(i)}})
	}
	return out
}

func TestSaveLoadTruncateRemove(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	g, other := l.Group(idl.GPID{AppID: 1, PartitionIndex: 2}), l.Group(idl.GPID{AppID: 1, PartitionIndex: 3})
	if _, found, err := g.Load(); err != nil || found {
		t.Fatalf("empty group: found %v err %v", found, err)
	}
	if err := g.Save(raftpb.HardState{Term: 1, Commit: 5}, ents(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	if err := other.Save(raftpb.HardState{Term: 7}, ents(1, 3, 7)); err != nil {
		t.Fatal(err)
	}
	// A new leader overwrites the tail from 8 on: 9 and 10 of term 1 must go.
	if err := g.Save(raftpb.HardState{Term: 2, Commit: 7}, ents(8, 8, 2)); err != nil {
		t.Fatal(err)
	}
	if err := g.Truncate(4, 1, raftpb.ConfState{Voters: []uint64{1}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, err = Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g, other = l.Group(idl.GPID{AppID: 1, PartitionIndex: 2}), l.Group(idl.GPID{AppID: 1, PartitionIndex: 3})
	ms, found, err := g.Load()
	if err != nil || !found {
		t.Fatalf("load: %v %v", found, err)
	}
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	if first != 5 || last != 8 {
		t.Fatalf("log spans %d..%d, want 5..8", first, last)
	}
	if term, _ := ms.Term(8); term != 2 {
		t.Fatalf("entry 8 term %d", term)
	}
	hs, cs, _ := ms.InitialState()
	if hs.Term != 2 || hs.Commit != 7 || len(cs.Voters) != 1 {
		t.Fatalf("state %+v %+v", hs, cs)
	}
	if ms2, _, _ := other.Load(); ms2 != nil {
		if last, _ := ms2.LastIndex(); last != 3 {
			t.Fatalf("other group disturbed: last %d", last)
		}
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := g.Load(); found {
		t.Fatal("removed group still found")
	}
}

// Concurrent Saves of many groups share fsyncs (group commit), and every Save is durable.
func TestGroupCommitSharesSyncs(t *testing.T) {
	l, err := Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := l.Syncs()
	const groups, saves = 32, 50
	done := make(chan error, groups)
	for g := range groups {
		go func() {
			grp := l.Group(idl.GPID{AppID: 1, PartitionIndex: int32(g)})
			for i := range saves {
				if err := grp.Save(raftpb.HardState{Term: 1, Commit: uint64(i + 1)}, ents(uint64(i+1), uint64(i+1), 1)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range groups {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	syncs := l.Syncs() - before
	t.Logf("%d synced saves, %d fsyncs", groups*saves, syncs)
	if syncs == 0 || syncs >= groups*saves {
		t.Fatalf("%d fsyncs for %d concurrent synced saves: no group commit", syncs, groups*saves)
	}
}
