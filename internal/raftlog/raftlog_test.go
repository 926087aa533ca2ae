package raftlog

import (
	"encoding/binary"
	"log/slog"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/storage"
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

// With DurabilityOS a save is answered once written, with no fsync and no wait, and the
// timer syncs the log every SyncInterval. Time is synctest's fake clock.
func TestDurabilityOSSyncsOnTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		l, err := OpenOptions(t.TempDir(), slog.New(slog.DiscardHandler),
			Options{Durability: DurabilityOS, SyncInterval: interval, Window: time.Second, Delay: time.Second, Siblings: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		g := l.Group(idl.GPID{AppID: 1})
		g.Writing(5)
		defer g.Writing(-5)
		if err := g.Save(raftpb.HardState{Term: 1, Commit: 1}, ents(1, 1, 1)); err != nil {
			t.Fatal(err)
		}
		before := l.Syncs() // the first save created the segment (a directory sync)
		start := time.Now()
		for i := uint64(2); i <= 20; i++ {
			if err := g.Save(raftpb.HardState{Term: 1, Commit: i}, ents(i, i, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("19 saves waited %v: with DurabilityOS neither the window nor the delay applies", d)
		}
		if n := l.Syncs() - before; n != 0 {
			t.Fatalf("%d fsyncs for saves with DurabilityOS, want none before the timer", n)
		}
		time.Sleep(interval)
		synctest.Wait()
		if n := l.Syncs() - before; n != 1 {
			t.Fatalf("%d fsyncs after one sync interval, want 1", n)
		}
		// Nothing new staged: the next tick syncs nothing.
		time.Sleep(interval)
		synctest.Wait()
		if n := l.Syncs() - before; n != 1 {
			t.Fatalf("%d fsyncs after an idle interval, want still 1", n)
		}
	})
}

// A raft log in the Pebble database of earlier versions is imported on Open, and the
// database removed.
func TestImportPebbleLog(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Logger: storage.PebbleLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	key := func(kind byte, pid idl.GPID, index ...uint64) []byte {
		k := []byte{kind}
		k = binary.BigEndian.AppendUint32(k, uint32(pid.AppID))
		k = binary.BigEndian.AppendUint32(k, uint32(pid.PartitionIndex))
		for _, i := range index {
			k = binary.BigEndian.AppendUint64(k, i)
		}
		return k
	}
	put := func(k []byte, v interface{ Marshal() ([]byte, error) }) {
		b, err := v.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Set(k, b, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	a, b := idl.GPID{AppID: 1, PartitionIndex: 0}, idl.GPID{AppID: 2, PartitionIndex: 5}
	for _, e := range ents(1, 6, 2) {
		put(key('e', a, e.Index), &e)
	}
	put(key('h', a), &raftpb.HardState{Term: 2, Vote: 1, Commit: 4})
	for _, e := range ents(3, 9, 1) { // 3 and 4 are before the truncation point: dropped
		put(key('e', b, e.Index), &e)
	}
	put(key('s', b), &raftpb.SnapshotMetadata{Index: 4, Term: 1, ConfState: raftpb.ConfState{Voters: []uint64{9}}})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for round := range 2 {
		l, err := Open(dir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		ms, found, err := l.Group(a).Load()
		if err != nil || !found {
			t.Fatalf("load %v: %v %v", a, found, err)
		}
		want := &model{hs: raftpb.HardState{Term: 2, Vote: 1, Commit: 4}, hasHS: true, ents: ents(1, 6, 2)}
		want.equalLoad(t, a.String(), ms, found)
		ms, found, err = l.Group(b).Load()
		if err != nil {
			t.Fatal(err)
		}
		want = &model{snap: &raftpb.SnapshotMetadata{Index: 4, Term: 1, ConfState: raftpb.ConfState{Voters: []uint64{9}}}, ents: ents(5, 9, 1)}
		want.equalLoad(t, b.String(), ms, found)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			if _, ok := parseSegmentName(de.Name()); !ok {
				t.Fatalf("%s left in the log's directory after the import", de.Name())
			}
		}
	}
}
