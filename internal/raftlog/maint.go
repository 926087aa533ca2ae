package raftlog

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// maintainer is the log's housekeeping goroutine: it removes the files of dropped segments
// (keeping one as the spare), preallocates a spare when none is ready, and compacts. Rounds
// wake it; Close stops it.
type maintainer struct {
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newMaintainer() maintainer {
	return maintainer{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// signal wakes the maintainer; it does not block.
func (m *maintainer) signal() { signal(m.wake) }

func (m *maintainer) stopping() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// close stops the maintainer and waits for it.
func (m *maintainer) close() {
	close(m.stop)
	<-m.done
}

// Compaction writes the live state of the groups that hold the oldest segment back again
// at the end of the log, after which that segment holds nothing live and is dropped with
// the next sync. It runs when the oldest segment holds little live data (at most half)
// and the groups to rewrite hold at most half a segment in all, once the log has at least
// compactMinSealed sealed segments: the cheap case, mostly groups that went idle. It also
// runs, whatever it costs, when the log holds more than twice its live data plus
// compactSlack segments: that bounds the log's size when many idle groups hold more than a
// segment, and what it rewrites is paid for by the garbage it frees (the log is then at
// least half garbage). A group whose live entries exceed maxRecordSize is not rewritten
// (each rewrite is one record, see rewrite); it holds the log back until it truncates.
const (
	compactMinSealed = 2
	compactSlack     = 2
)

func (l *Log) maintain() {
	defer close(l.maint.done)
	for {
		select {
		case <-l.maint.stop:
			return
		case <-l.maint.wake:
		}
		l.removeDropped()
		l.prepareSpare()
		if l.compact() && l.opts.Durability == DurabilityAlways {
			// The compacted segment goes with the next round that syncs: this one (with
			// DurabilityOS, the timer's).
			<-l.syncer.requestFor(nil)
		}
	}
}

// removeDropped removes the files of the segments dropped since the last call, or keeps
// one as the spare.
func (l *Log) removeDropped() {
	l.mu.Lock()
	drops := l.mu.drops
	l.mu.drops = nil
	l.mu.Unlock()
	if len(drops) == 0 {
		return
	}
	l.dropMu.Lock()
	defer l.dropMu.Unlock()
	l.spareMu.Lock()
	defer l.spareMu.Unlock()
	l.mu.Lock()
	spare := l.mu.spare
	l.mu.Unlock()
	for _, s := range drops {
		l.mu.Lock()
		f := s.f
		s.f = nil
		l.mu.Unlock()
		if f == nil {
			continue
		}
		full := false
		if fi, err := f.Stat(); err == nil {
			full = fi.Size() >= l.opts.SegmentSize/2
		}
		_ = f.Close()
		name := filepath.Join(l.dir, segmentName(s.seq))
		if !spare && full {
			if err := os.Rename(name, filepath.Join(l.dir, spareName)); err == nil {
				spare = true
				l.mu.Lock()
				l.mu.spare = true
				l.mu.Unlock()
				continue
			}
		}
		if err := os.Remove(name); err != nil {
			l.lg.Warn("raft log: remove a dropped segment", "segment", segmentName(s.seq), "err", err)
		}
	}
}

// prepareSpare preallocates the spare file once the active segment is half full and no
// spare is ready: a file of a segment's size written with zeros and synced, so that
// appends to it need not allocate blocks nor update the size (fdatasync is cheaper).
func (l *Log) prepareSpare() {
	l.mu.Lock()
	need := !l.mu.spare && l.mu.err == nil && l.activeLocked().size >= l.opts.SegmentSize/2
	l.mu.Unlock()
	if !need {
		return
	}
	tmp := filepath.Join(l.dir, spareTemp)
	err := func() error {
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		zeros := make([]byte, min(1<<20, l.opts.SegmentSize))
		for off := int64(0); off < l.opts.SegmentSize; off += int64(len(zeros)) {
			if l.maint.stopping() {
				return errClosed
			}
			if err := l.writeAt(f, zeros, off); err != nil {
				return err
			}
		}
		if err := l.fsync(f); err != nil {
			return err
		}
		l.spareMu.Lock()
		defer l.spareMu.Unlock()
		l.mu.Lock()
		ready := l.mu.spare
		l.mu.Unlock()
		if ready {
			return os.Remove(tmp) // a dropped segment became the spare meanwhile
		}
		if err := os.Rename(tmp, filepath.Join(l.dir, spareName)); err != nil {
			return err
		}
		l.mu.Lock()
		l.mu.spare = true
		l.mu.Unlock()
		return nil
	}()
	if err != nil {
		_ = os.Remove(tmp)
		if !errors.Is(err, errClosed) {
			l.lg.Warn("raft log: preallocate a segment", "err", err)
		}
	}
}

// cleanSpares, on Open, removes a spare left half prepared and takes a ready one.
func (l *Log) cleanSpares() error {
	if err := os.Remove(filepath.Join(l.dir, spareTemp)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_, err := os.Stat(filepath.Join(l.dir, spareName))
	l.mu.spare = err == nil
	return nil
}

// compact rewrites the groups that hold the oldest segment back, if that is worth it (see
// compactMinSealed), and reports whether the segment can go with the next sync.
func (l *Log) compact() bool {
	pids, empty := l.compactionTargets()
	done := 0
	for _, pid := range pids {
		if l.maint.stopping() {
			return false
		}
		if l.rewrite(pid) {
			done++
		}
	}
	return empty || (len(pids) > 0 && done == len(pids))
}

// compactionTargets returns the groups to rewrite for the oldest segment to hold nothing
// live (see compactMinSealed), or empty set when it already holds nothing live.
func (l *Log) compactionTargets() (pids []idl.GPID, empty bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sealed := len(l.mu.segs) - 1
	if l.mu.err != nil || l.mu.closed || sealed < 1 {
		return nil, false
	}
	s := l.mu.segs[0]
	if s.live == 0 {
		return nil, true
	}
	var total, live int64
	for _, seg := range l.mu.segs {
		total += seg.size
		live += seg.live
	}
	var cost int64
	for pid, g := range l.mu.groups {
		if g.oldest() == s {
			pids = append(pids, pid)
			cost += g.live
		}
	}
	cheap := sealed >= compactMinSealed && 2*s.live <= s.size && 2*cost <= l.opts.SegmentSize
	bloated := total > 2*live+compactSlack*l.opts.SegmentSize
	if !cheap && !bloated {
		return nil, false
	}
	return pids, false
}

// rewrite writes group pid's live state again at the end of the log: its truncation
// point, hard state and entries, each as one record, which leaves every earlier record of
// the group dead. Each record restates what the group holds, so a crash that keeps only
// some of them changes nothing. It gives up (false) if the group changed while its records
// were read.
func (l *Log) rewrite(pid idl.GPID) bool {
	l.dropMu.RLock()
	l.mu.Lock()
	st, ok := l.stateLocked(pid)
	l.mu.Unlock()
	var err error
	var ents []raftpb.Entry
	if ok {
		ents, err = l.readEntries(st.recs)
	}
	l.dropMu.RUnlock()
	if err != nil {
		l.lg.Error("raft log: compaction cannot read a group", "gpid", pid.String(), "err", err)
		return false
	}
	if !ok {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.writableLocked() != nil || l.mu.groups[pid] != st.g || st.g.version != st.version {
		return false
	}
	if st.hasSnap {
		if err := l.stageTruncateLocked(pid, st.snap); err != nil {
			return false
		}
	}
	if st.hasHS {
		l.stageHardStateLocked(pid, st.hs)
	}
	if len(ents) > 0 {
		size := entriesSize(ents)
		if size > maxRecordSize {
			return false
		}
		at := l.recordLocked(kindEntries, pid, size, func(b []byte) []byte { return appendEntries(b, ents) })
		l.mu.group(pid).applyEntries(at, ents[0].Index, uint64(len(ents)))
	}
	return true
}
