package raftlog

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// model is the dumb reference of one group's state: what Load must return.
type model struct {
	snap  *raftpb.SnapshotMetadata
	hs    raftpb.HardState
	hasHS bool
	ents  []raftpb.Entry
}

func (m *model) first() uint64 {
	if m.snap != nil {
		return m.snap.Index + 1
	}
	return 1
}

func (m *model) last() uint64 { return m.first() + uint64(len(m.ents)) - 1 }

func (m *model) lastTerm() uint64 {
	if n := len(m.ents); n > 0 {
		return m.ents[n-1].Term
	}
	if m.snap != nil {
		return m.snap.Term
	}
	return 0
}

func (m *model) term(i uint64) uint64 {
	if m.snap != nil && i == m.snap.Index {
		return m.snap.Term
	}
	return m.ents[i-m.first()].Term
}

// equalLoad fails the test unless ms (from Load) holds exactly m.
func (m *model) equalLoad(t *testing.T, pid string, ms *raft.MemoryStorage, found bool) {
	t.Helper()
	if m == nil || (m.snap == nil && !m.hasHS && len(m.ents) == 0) {
		if found {
			t.Fatalf("%v: found, want no state", pid)
		}
		return
	}
	if !found {
		t.Fatalf("%v: not found", pid)
	}
	hs, cs, _ := ms.InitialState()
	if m.hasHS && !raft.IsEmptyHardState(m.hs) && hs != m.hs {
		t.Fatalf("%v: hard state %+v, want %+v", pid, hs, m.hs)
	}
	snap, _ := ms.Snapshot()
	if m.snap != nil {
		if snap.Metadata.Index != m.snap.Index || snap.Metadata.Term != m.snap.Term || !slices.Equal(cs.Voters, m.snap.ConfState.Voters) {
			t.Fatalf("%v: truncation point %+v, want %+v", pid, snap.Metadata, *m.snap)
		}
	} else if snap.Metadata.Index != 0 {
		t.Fatalf("%v: truncation point %d, want none", pid, snap.Metadata.Index)
	}
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	if first != m.first() || last != m.last() {
		t.Fatalf("%v: entries %d..%d, want %d..%d", pid, first, last, m.first(), m.last())
	}
	if len(m.ents) == 0 {
		return
	}
	got, err := ms.Entries(first, last+1, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		w := m.ents[i]
		if got[i].Index != w.Index || got[i].Term != w.Term || got[i].Type != w.Type || !bytes.Equal(got[i].Data, w.Data) {
			t.Fatalf("%v: entry %d = %d/%d/%q, want %d/%d/%q", pid, w.Index, got[i].Index, got[i].Term, got[i].Data, w.Index, w.Term, w.Data)
		}
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// entryData is the data of entry index of group pid and term: checkable after a crash.
func entryData(pid idl.GPID, index, term uint64, size int) []byte {
	b := fmt.Appendf(nil, "%d.%d/%d/%d|", pid.AppID, pid.PartitionIndex, index, term)
	for len(b) < size {
		b = append(b, byte('a'+(index+uint64(len(b)))%26))
	}
	return b
}

// The log against the reference model: random appends (overwriting tails), hard states,
// truncations, snapshots and removals of a few groups, with small segments so that segments
// rotate, drop and get compacted, and reopens; every group's Load must match the model,
// before and after each reopen. RAFTLOG_SEED=n replays the run the test logged as seed n.
func TestLogMatchesModel(t *testing.T) {
	seed := rand.Uint64()
	if s := os.Getenv("RAFTLOG_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	opts := Options{SegmentSize: 8 << 10}
	l, err := OpenOptions(dir, testLogger(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	const groups = 6
	models := make([]*model, groups)
	pidOf := func(i int) idl.GPID { return idl.GPID{AppID: int32(1 + i%2), PartitionIndex: int32(i)} }
	check := func(when string) {
		t.Helper()
		for i, m := range models {
			ms, found, err := l.Group(pidOf(i)).Load()
			if err != nil {
				t.Fatalf("%s: load %v: %v", when, pidOf(i), err)
			}
			m.equalLoad(t, when+": "+pidOf(i).String(), ms, found)
		}
	}
	steps := 3000
	if testing.Short() {
		steps = 800
	}
	for step := range steps {
		gi := rng.IntN(groups)
		// Group 0 is idle after the start: it holds old segments until compaction moves it.
		if gi == 0 && step > 50 {
			gi = 1 + rng.IntN(groups-1)
		}
		pid := pidOf(gi)
		g := l.Group(pid)
		m := models[gi]
		if m == nil {
			m = &model{}
		}
		switch op := rng.IntN(100); {
		case op < 60: // append, sometimes overwriting the tail
			start := m.last() + 1
			if len(m.ents) > 0 && rng.IntN(5) == 0 {
				start = m.first() + uint64(rng.IntN(len(m.ents)))
			}
			term := max(m.lastTerm(), 1)
			if start <= m.last() {
				term++
			}
			var ents []raftpb.Entry
			for k := range 1 + rng.IntN(6) {
				idx := start + uint64(k)
				ents = append(ents, raftpb.Entry{Index: idx, Term: term, Data: entryData(pid, idx, term, rng.IntN(400))})
			}
			hs := raftpb.HardState{}
			if rng.IntN(2) == 0 {
				hs = raftpb.HardState{Term: term, Vote: uint64(rng.IntN(3)), Commit: min(start-1, m.last())}
				if hs.Commit < m.hs.Commit {
					hs.Commit = m.hs.Commit
				}
			}
			if err := g.Stage(hs, ents, 0); err != nil {
				t.Fatal(err)
			}
			m.ents = append(m.ents[:start-m.first()], ents...)
			if !raft.IsEmptyHardState(hs) {
				m.hs, m.hasHS = hs, true
			}
			if rng.IntN(3) > 0 {
				if err := <-g.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		case op < 70: // hard state alone, unsynced
			hs := raftpb.HardState{Term: max(m.hs.Term, 1), Vote: 1, Commit: m.hs.Commit}
			if err := g.Stage(hs, nil, 0); err != nil {
				t.Fatal(err)
			}
			m.hs, m.hasHS = hs, true
		case op < 85: // truncation
			if len(m.ents) == 0 {
				continue
			}
			at := m.first() + uint64(rng.IntN(len(m.ents)))
			cs := raftpb.ConfState{Voters: []uint64{uint64(1 + rng.IntN(3))}}
			term := m.term(at)
			if err := g.Truncate(at, term, cs); err != nil {
				t.Fatal(err)
			}
			m.ents = slices.Clone(m.ents[at+1-m.first():])
			m.snap = &raftpb.SnapshotMetadata{Index: at, Term: term, ConfState: cs}
		case op < 90: // a snapshot from the leader
			at := m.last() + 1 + uint64(rng.IntN(10))
			term := m.lastTerm() + 1
			hs := raftpb.HardState{Term: term, Commit: at}
			meta := raftpb.SnapshotMetadata{Index: at, Term: term, ConfState: raftpb.ConfState{Voters: []uint64{7}}}
			if err := g.InstallSnapshot(meta, hs); err != nil {
				t.Fatal(err)
			}
			m.ents, m.snap, m.hs, m.hasHS = nil, &meta, hs, true
		case op < 93: // removal
			if err := g.Remove(); err != nil {
				t.Fatal(err)
			}
			m = nil
		case op < 96:
			check(fmt.Sprintf("step %d", step))
		default:
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if l, err = OpenOptions(dir, testLogger(t), opts); err != nil {
				t.Fatalf("step %d: reopen: %v", step, err)
			}
			check(fmt.Sprintf("reopen at step %d", step))
		}
		models[gi] = m
	}
	check("end")
	// Truncate every group to its last entry: with compaction, the log shrinks to a few
	// segments whatever the history.
	for i, m := range models {
		if m == nil || len(m.ents) == 0 {
			continue
		}
		g := l.Group(pidOf(i))
		at := m.last()
		term := m.term(at)
		if err := g.Truncate(at, term, raftpb.ConfState{Voters: []uint64{1}}); err != nil {
			t.Fatal(err)
		}
		m.ents, m.snap = nil, &raftpb.SnapshotMetadata{Index: at, Term: term, ConfState: raftpb.ConfState{Voters: []uint64{1}}}
	}
	before, _ := listSegments(dir)
	for range 5 {
		settle(t, l)
	}
	check("after truncating everything")
	seqs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("segments: %d before settling, %d after", len(before), len(seqs))
	if len(seqs) > compactMinSealed+2 {
		t.Fatalf("%d segments left after every group truncated its whole log: %v", len(seqs), seqs)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err = OpenOptions(dir, testLogger(t), opts); err != nil {
		t.Fatal(err)
	}
	check("final reopen")
}

// settle runs the log's housekeeping to completion, as the maintainer would, without
// waiting on its goroutine: a synced round (which drops empty segments), their removal,
// and compaction.
func settle(t *testing.T, l *Log) {
	t.Helper()
	for range 2 * compactMinSealed {
		if err := l.round(true); err != nil {
			t.Fatal(err)
		}
		l.removeDropped()
		l.compact()
	}
	if err := l.round(true); err != nil {
		t.Fatal(err)
	}
	l.removeDropped()
}
