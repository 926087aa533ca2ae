package raftlog

import (
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// The in-memory index: where each group's live records are. The same rules (apply) build it
// while records are staged and when the segments are replayed on Open, so the index after a
// restart is the one before it, minus what was never made durable.
//
// A record is live while replaying it is needed to rebuild its group's state: the latest
// hard state, the latest truncation point or snapshot, and entries records with at least one
// entry past the truncation point and not overwritten. A segment's live bytes count its live
// records; segments are dropped oldest first once they hold none (see Log.takeDropsLocked).

// loc is where a record is: its segment, offset and size (header included).
type loc struct {
	seg  *segment
	off  int64
	size int64
}

// entRec is an entries record in a group's index: entries base.. were written, of which
// first..last are live.
type entRec struct {
	loc
	base, first, last uint64
}

// group is the index of one group.
type group struct {
	// recs are the live entries records in index order (which is also the order they were
	// written in), with contiguous live ranges once the log is open.
	recs   []entRec
	hs     raftpb.HardState
	hsAt   loc // hsAt.seg == nil: no hard state
	snap   raftpb.SnapshotMetadata
	snapAt loc // snapAt.seg == nil: no truncation point
	// live counts the bytes of the group's live records (a snapshot record that also
	// carries the hard state counts twice, once for each).
	live    int64
	version uint64 // bumped by every record applied
}

func (g *group) hold(at loc) {
	at.seg.live += at.size
	g.live += at.size
}

func (g *group) release(at loc) {
	at.seg.live -= at.size
	g.live -= at.size
}

// lastIndex is the index of the group's last entry, or its truncation point if it has none.
func (g *group) lastIndex() uint64 {
	if n := len(g.recs); n > 0 {
		return g.recs[n-1].last
	}
	return g.snap.Index
}

// found reports whether the group holds any state.
func (g *group) found() bool {
	return g.hsAt.seg != nil || g.snapAt.seg != nil || len(g.recs) > 0
}

// oldest is the oldest segment holding a live record of the group (nil if none).
func (g *group) oldest() *segment {
	var s *segment
	for _, at := range []loc{g.hsAt, g.snapAt} {
		if at.seg != nil && (s == nil || at.seg.seq < s.seq) {
			s = at.seg
		}
	}
	if len(g.recs) > 0 && (s == nil || g.recs[0].seg.seq < s.seq) {
		s = g.recs[0].seg
	}
	return s
}

// index is the index of every group; it belongs to Log.mu.
type index struct {
	groups map[idl.GPID]*group
}

// group returns pid's index, creating it.
func (x *index) group(pid idl.GPID) *group {
	g := x.groups[pid]
	if g == nil {
		g = &group{}
		x.groups[pid] = g
	}
	return g
}

// apply applies the record at at to the index. For entries, base and count are the
// record's range. It fails only on a payload that does not decode (a record whose CRC
// passed: a bug, or a format this version does not know).
func (x *index) apply(rec record, at loc) error {
	switch rec.kind {
	case kindEntries:
		base, count, err := entriesRange(rec.payload)
		if err != nil {
			return err
		}
		x.group(rec.pid).applyEntries(at, base, uint64(count))
	case kindHardState:
		hs, rest, err := decodeHardState(rec.payload)
		if err != nil {
			return err
		}
		if len(rest) != 0 {
			return fmt.Errorf("%w: %d bytes after the hard state", ErrCorrupt, len(rest))
		}
		x.group(rec.pid).applyHardState(at, hs)
	case kindTruncate:
		m, err := decodeSnapMeta(rec.payload)
		if err != nil {
			return err
		}
		x.group(rec.pid).applySnapMeta(at, m, kindTruncate)
	case kindSnapshot:
		m, hs, err := decodeSnapshot(rec.payload)
		if err != nil {
			return err
		}
		g := x.group(rec.pid)
		g.applySnapMeta(at, m, kindSnapshot)
		if !raft.IsEmptyHardState(hs) {
			g.applyHardState(at, hs)
		}
	case kindRemove:
		x.remove(rec.pid)
	case kindSeal:
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrCorrupt, rec.kind)
	}
	return nil
}

// applyEntries records entries base..base+count-1 at at: every entry from base on is
// replaced, as raft requires when a leader overwrites an uncommitted tail.
func (g *group) applyEntries(at loc, base, count uint64) {
	g.version++
	for n := len(g.recs); n > 0; n = len(g.recs) {
		r := &g.recs[n-1]
		if r.first >= base {
			g.release(r.loc)
			g.recs = g.recs[:n-1]
			continue
		}
		if r.last >= base {
			r.last = base - 1
		}
		break
	}
	first, last := max(base, g.snap.Index+1), base+count-1
	if first > last {
		return // all at or before the truncation point
	}
	g.recs = append(g.recs, entRec{loc: at, base: base, first: first, last: last})
	g.hold(at)
}

func (g *group) applyHardState(at loc, hs raftpb.HardState) {
	g.version++
	if g.hsAt.seg != nil {
		g.release(g.hsAt)
	}
	g.hs, g.hsAt = hs, at
	g.hold(at)
}

// applySnapMeta records a truncation point (kindTruncate: entries up to m.Index go) or an
// installed snapshot (kindSnapshot: every entry goes).
func (g *group) applySnapMeta(at loc, m raftpb.SnapshotMetadata, kind byte) {
	g.version++
	if g.snapAt.seg != nil {
		g.release(g.snapAt)
	}
	g.snap, g.snapAt = m, at
	g.hold(at)
	drop := len(g.recs)
	if kind == kindTruncate {
		drop = 0
		for drop < len(g.recs) && g.recs[drop].last <= m.Index {
			drop++
		}
	}
	for _, r := range g.recs[:drop] {
		g.release(r.loc)
	}
	g.recs = append(g.recs[:0], g.recs[drop:]...)
	if len(g.recs) > 0 && g.recs[0].first <= m.Index {
		g.recs[0].first = m.Index + 1
	}
}

func (x *index) remove(pid idl.GPID) {
	g := x.groups[pid]
	if g == nil {
		return
	}
	for _, at := range []loc{g.hsAt, g.snapAt} {
		if at.seg != nil {
			g.release(at)
		}
	}
	for _, r := range g.recs {
		g.release(r.loc)
	}
	delete(x.groups, pid)
}

// check reports a group whose live entries do not follow its truncation point without a
// gap: the state after a replay that lost records it needed.
func (g *group) check() error {
	next := g.snap.Index + 1
	for _, r := range g.recs {
		if r.first != next {
			return fmt.Errorf("%w: entries %d to %d missing", ErrCorrupt, next, r.first-1)
		}
		next = r.last + 1
	}
	return nil
}
