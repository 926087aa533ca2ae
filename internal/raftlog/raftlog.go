package raftlog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/durable"
	"github.com/gopegasus/pegasus/internal/idl"
)

// Log holds the raft state of many groups in one directory of segment files (see doc.go).
// A Log is safe for concurrent use; each group must be used by one goroutine at a time.
type Log struct {
	dir   string
	lg    *slog.Logger
	opts  Options
	syncs atomic.Int64

	// failed is closed when a write or sync fails for good (mu.err is set); noSpace is
	// set while the last round found the disk full. writeErrors and syncErrors count the
	// failed writes (full disk included) and fsyncs.
	failed                  chan struct{}
	noSpace                 atomic.Bool
	writeErrors, syncErrors atomic.Int64

	syncer *syncer
	maint  maintainer

	// spareMu serializes what renames the spare file (to or from spareName) with the
	// change of mu.spare that goes with it.
	spareMu sync.Mutex

	// dropMu is held shared by readers of segment files, from looking records up in the
	// index until they are read, and exclusively while segment files are closed and
	// removed: a record a reader found stays readable.
	dropMu sync.RWMutex

	// w is held by the round in progress (round): the writes and syncs of segment files,
	// and segment file creation, happen under it, one round at a time.
	w struct {
		sync.Mutex
		unsynced []*segment // segments written since their last sync
	}

	mu struct {
		sync.Mutex
		index
		// segs are the log's segments, oldest first; the last one is the active segment,
		// the only one records are added to.
		segs []*segment
		// pending are the staged records not yet handed to a round, in order (more than
		// one chunk only when a segment was started meanwhile); inflight are those the
		// round in progress is writing. Readers find records there that are not yet in
		// their segment's file.
		pending, inflight []chunk
		pendingBytes      int
		free              [][]byte // chunk buffers to reuse
		spare             bool     // the spare file is ready to become the next segment
		drops             []*segment
		err               error // a failed write or sync: the log takes no more writes
		closed            bool
	}
}

// chunk is staged bytes of one segment, from offset off.
type chunk struct {
	seg *segment
	off int64
	buf []byte
}

// flushBytes is how many staged bytes make the log write them out without waiting for a
// Sync (a commit index alone needs none): staged data stays bounded.
const flushBytes = 1 << 20

var errClosed = errors.New("raftlog: closed")

// ErrNoSpace is what a write to a log whose disk is full waits behind, and what Close
// returns if the disk is still full then: the write did not reach the disk, and the log
// tries again every Options.NoSpaceRetry, so the requests of a round that found no space
// wait for one that does. The error wraps syscall.ENOSPC too.
var ErrNoSpace = errors.New("raftlog: no space left on the disk")

// noSpaceError is a write that failed for want of space: ErrNoSpace, wrapping the cause.
type noSpaceError struct{ err error }

func (e noSpaceError) Error() string   { return "raftlog: no space left on the disk: " + e.err.Error() }
func (e noSpaceError) Unwrap() []error { return []error{ErrNoSpace, e.err} }

// Health is what a log's disk did: whether it is full now, the error that stopped the
// log's writes (nil while it takes them), and how many writes and fsyncs failed.
type Health struct {
	NoSpace                 bool
	Failed                  error
	WriteErrors, SyncErrors int64
}

// NoSpace reports whether the log's last write found the disk full (its writes wait for
// space). Safe for concurrent use, and cheap.
func (l *Log) NoSpace() bool { return l.noSpace.Load() }

// Health returns the log's disk health. Safe for concurrent use.
func (l *Log) Health() Health {
	l.mu.Lock()
	err := l.mu.err
	l.mu.Unlock()
	return Health{NoSpace: l.noSpace.Load(), Failed: err, WriteErrors: l.writeErrors.Load(), SyncErrors: l.syncErrors.Load()}
}

// Failed is closed once the log takes no more writes because a write or fsync failed (a
// full disk is not that: see ErrNoSpace). After a failed fsync nothing written since the
// last good one can be trusted to be on the disk, nor can a later fsync be trusted to
// cover it (the kernel may have dropped the pages it could not write): the log answers
// the round's requests with the error, refuses every later write, and must be reopened
// (replaying what the disk holds) once the disk is repaired.
func (l *Log) Failed() <-chan struct{} { return l.failed }

// Open opens (or creates) the log in dir, with the DefaultOptions.
func Open(dir string, lg *slog.Logger) (*Log, error) {
	return OpenOptions(dir, lg, DefaultOptions)
}

// OpenOptions opens (or creates) the log in dir, tuned by opts. It replays the segments to
// build the index. The last segment may end in a torn or never synced write: its records
// are read up to the first one that is cut off or fails its check, and the rest of the file
// is dropped (logged). A bad record in any earlier segment, or one missing its seal, is an
// error wrapping ErrCorrupt: the log never drops records from the middle. A raft log
// database of an earlier version (Pebble) in dir is imported, then removed.
func OpenOptions(dir string, lg *slog.Logger, opts Options) (*Log, error) {
	l := &Log{dir: dir, lg: lg, opts: opts.withDefaults(), failed: make(chan struct{})}
	l.mu.groups = map[idl.GPID]*group{}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftlog: %w", err)
	}
	if err := l.importPebble(); err != nil {
		return nil, err
	}
	if err := l.replay(); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.syncer = newSyncer(l.round, l.opts)
	l.maint = newMaintainer()
	go l.maintain()
	return l, nil
}

// Syncs returns how many file syncs (fdatasyncs of segments, syncs of the directory) the
// log has made since it was opened. With group commit it grows much slower than the number
// of Save calls under concurrent load.
func (l *Log) Syncs() int64 { return l.syncs.Load() }

// Close makes everything staged durable, seals the active segment and closes the files.
// Writes still waiting for a round are answered first; later ones get an error. It returns
// the error that stopped the log's writes, if one did.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return errClosed
	}
	l.mu.closed = true
	l.mu.Unlock()
	l.maint.close()
	l.syncer.close()
	l.mu.Lock()
	if act := l.activeLocked(); act.size > segHeaderSize {
		l.recordLocked(kindSeal, idl.GPID{}, 0, nil)
	} else if len(l.mu.pending) > 0 && act.f == nil {
		// Nothing was staged into it: the file need not exist.
		l.mu.pending = l.mu.pending[:len(l.mu.pending)-1]
	}
	l.mu.Unlock()
	err := l.round(true)
	l.removeDropped()
	l.closeFiles()
	return err
}

func (l *Log) closeFiles() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.mu.segs {
		if s.f != nil {
			_ = s.f.Close()
			s.f = nil
		}
	}
}

func (l *Log) activeLocked() *segment { return l.mu.segs[len(l.mu.segs)-1] }

// writableLocked returns why the log takes no writes, if it does not.
func (l *Log) writableLocked() error {
	if l.mu.err != nil {
		return l.mu.err
	}
	if l.mu.closed {
		return errClosed
	}
	return nil
}

// newSegmentLocked starts segment seq as the active one; its file is created by the round
// that first writes it.
func (l *Log) newSegmentLocked(seq uint64) {
	s := &segment{seq: seq, size: segHeaderSize}
	l.mu.segs = append(l.mu.segs, s)
	l.mu.pending = append(l.mu.pending, chunk{seg: s, off: 0, buf: appendSegmentHeader(l.bufLocked(), seq)})
}

func (l *Log) bufLocked() []byte {
	if n := len(l.mu.free); n > 0 {
		b := l.mu.free[n-1]
		l.mu.free = l.mu.free[:n-1]
		return b[:0]
	}
	return nil
}

// recordLocked stages a record of kind for pid whose payload (size bytes) build appends,
// and returns where it is. It starts a new segment first when the record does not fit in
// the active one.
func (l *Log) recordLocked(kind byte, pid idl.GPID, size int, build func([]byte) []byte) loc {
	act := l.activeLocked()
	if kind != kindSeal && act.size > segHeaderSize && act.size+int64(2*recordHeaderSize+size) > l.opts.SegmentSize {
		l.recordLocked(kindSeal, idl.GPID{}, 0, nil)
		l.newSegmentLocked(act.seq + 1)
		act = l.activeLocked()
		l.maint.signal()
	}
	if n := len(l.mu.pending); n == 0 || l.mu.pending[n-1].seg != act {
		l.mu.pending = append(l.mu.pending, chunk{seg: act, off: act.size, buf: l.bufLocked()})
	}
	c := &l.mu.pending[len(l.mu.pending)-1]
	before := len(c.buf)
	var start int
	c.buf, start = beginRecord(c.buf, kind, pid)
	if build != nil {
		c.buf = build(c.buf)
	}
	finishRecord(c.buf, start, act.seq)
	n := int64(len(c.buf) - before)
	at := loc{seg: act, off: act.size, size: n}
	act.size += n
	l.mu.pendingBytes += int(n)
	return at
}

// round writes every staged record to its segment and, if durable is set, makes every
// segment written since its last sync durable. Segments emptied of live records before
// this round started are dropped once it made them durable. Errors stick: the log takes no
// writes after one (a failed fsync leaves unknown what is on disk).
func (l *Log) round(durable bool) error {
	l.w.Lock()
	defer l.w.Unlock()
	l.mu.Lock()
	if err := l.mu.err; err != nil {
		l.mu.Unlock()
		return err
	}
	chunks := l.mu.pending
	l.mu.pending, l.mu.inflight = l.mu.inflight[:0], chunks
	l.mu.pendingBytes = 0
	var drops []*segment
	if durable {
		drops = l.takeDropsLocked()
	}
	askSpare := false
	if act := l.activeLocked(); !act.spareAsked && act.size >= l.opts.SegmentSize/2 {
		act.spareAsked, askSpare = true, true
	}
	l.mu.Unlock()

	err := l.write(chunks, durable)

	l.mu.Lock()
	l.mu.inflight = nil
	var full noSpaceError
	switch {
	case errors.As(err, &full):
		// Nothing is lost: a write that found no space is written again, whole, at the
		// same offsets, by the next round. The chunks go back in front of what was
		// staged since, and the segments to drop back to the head of the log.
		for _, c := range chunks {
			l.mu.pendingBytes += len(c.buf)
		}
		l.mu.pending = append(chunks, l.mu.pending...)
		l.mu.segs = append(drops, l.mu.segs...)
		if !l.noSpace.Swap(true) {
			l.lg.Error("raft log: the disk is full, writes wait for space", "err", err)
		}
		l.mu.Unlock()
		return err
	case err != nil:
		err = fmt.Errorf("raftlog: %w", err)
		l.mu.err = err
		close(l.failed)
		l.lg.Error("raft log write failed, the log takes no more writes", "err", err)
	case len(drops) > 0:
		l.mu.drops = append(l.mu.drops, drops...)
	}
	for _, c := range chunks {
		if cap(c.buf) <= 4*flushBytes && len(l.mu.free) < 4 {
			l.mu.free = append(l.mu.free, c.buf[:0])
		}
	}
	l.mu.Unlock()
	if err == nil && l.noSpace.Swap(false) {
		l.lg.Info("raft log: the disk has space again, writes resume")
	}
	if err == nil && (len(drops) > 0 || askSpare) {
		l.maint.signal()
	}
	return err
}

// takeDropsLocked takes from the log the oldest segments, as long as they hold no live
// record. Only the oldest: a dead record after a live one may be what keeps an older dead
// record from coming back in a replay, so segments go in order (see doc.go).
func (l *Log) takeDropsLocked() []*segment {
	var drops []*segment
	for len(l.mu.segs) > 1 && l.mu.segs[0].live == 0 {
		drops = append(drops, l.mu.segs[0])
		l.mu.segs = l.mu.segs[1:]
	}
	return drops
}

// write writes chunks to their segment files, creating the files of new segments, and
// syncs what it wrote if durable is set. A segment's file is created only once every
// segment before it is durable (and sealed, as they are by then), so a replay finds every
// segment but the last complete.
func (l *Log) write(chunks []chunk, durable bool) error {
	for _, c := range chunks {
		s := c.seg
		if s.f == nil {
			if err := l.syncUnsynced(); err != nil {
				return err
			}
			if err := l.createSegment(s); err != nil {
				return err
			}
		}
		if err := l.writeAt(s.f, c.buf, c.off); err != nil {
			return fmt.Errorf("write %s: %w", segmentName(s.seq), err)
		}
		s.written = c.off + int64(len(c.buf))
		if !slices.Contains(l.w.unsynced, s) {
			l.w.unsynced = append(l.w.unsynced, s)
		}
	}
	if durable {
		return l.syncUnsynced()
	}
	return nil
}

func (l *Log) syncUnsynced() error {
	for _, s := range l.w.unsynced {
		if s.synced == s.written {
			continue
		}
		if err := l.fsync(s.f); err != nil {
			return fmt.Errorf("sync %s: %w", segmentName(s.seq), err)
		}
		s.synced = s.written
	}
	l.w.unsynced = l.w.unsynced[:0]
	return nil
}

// writeAt writes b to f at off, through Options.Faults when set. A write that fails for
// want of space is a noSpaceError: the caller may write it again.
func (l *Log) writeAt(f *os.File, b []byte, off int64) error {
	err := l.faultWrite(f.Name())
	if err == nil {
		_, err = f.WriteAt(b, off)
	}
	if err != nil {
		l.writeErrors.Add(1)
		if errors.Is(err, syscall.ENOSPC) {
			return noSpaceError{err}
		}
	}
	return err
}

// faultWrite asks Options.Faults whether a write or creation of path may go on.
func (l *Log) faultWrite(path string) error {
	if l.opts.Faults == nil {
		return nil
	}
	return l.opts.Faults.Write(path)
}

// fsync makes f's data durable (fdatasync), through Options.Faults when set.
func (l *Log) fsync(f *os.File) error {
	l.syncs.Add(1)
	var err error
	if l.opts.Faults == nil {
		err = fdatasync(f)
	} else {
		err = l.opts.Faults.Sync(f, func() error { return fdatasync(f) })
	}
	if err != nil {
		l.syncErrors.Add(1)
	}
	return err
}

// syncDir makes the log directory's entries durable, through Options.Faults when set.
func (l *Log) syncDir() error {
	l.syncs.Add(1)
	var err error
	if l.opts.Faults == nil {
		err = durable.SyncDir(l.dir)
	} else {
		err = l.opts.Faults.Sync(nil, func() error { return durable.SyncDir(l.dir) })
	}
	if err != nil {
		l.syncErrors.Add(1)
	}
	return err
}

// createSegment creates the file of segment s, from the spare file if one is ready.
func (l *Log) createSegment(s *segment) error {
	if err := l.faultWrite(filepath.Join(l.dir, segmentName(s.seq))); err != nil {
		l.writeErrors.Add(1)
		if errors.Is(err, syscall.ENOSPC) {
			err = noSpaceError{err}
		}
		return fmt.Errorf("create %s: %w", segmentName(s.seq), err)
	}
	l.spareMu.Lock()
	l.mu.Lock()
	spare := l.mu.spare
	l.mu.spare = false
	l.mu.Unlock()
	f, err := openSegmentFile(l.dir, s.seq, spare)
	l.spareMu.Unlock()
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) && !spare {
			l.writeErrors.Add(1)
			err = noSpaceError{err}
		}
		return fmt.Errorf("create %s: %w", segmentName(s.seq), err)
	}
	if err := l.syncDir(); err != nil {
		_ = f.Close()
		return fmt.Errorf("create %s: %w", segmentName(s.seq), err)
	}
	l.mu.Lock()
	s.f = f
	l.mu.Unlock()
	return nil
}

// readRecord reads back the record at at, from the staged data or its segment's file, and
// checks it. The caller holds dropMu shared.
func (l *Log) readRecord(at loc) (record, error) {
	l.mu.Lock()
	for _, list := range [][]chunk{l.mu.pending, l.mu.inflight} {
		for _, c := range list {
			if c.seg == at.seg && at.off >= c.off && at.off+at.size <= c.off+int64(len(c.buf)) {
				b := slices.Clone(c.buf[at.off-c.off : at.off-c.off+at.size])
				l.mu.Unlock()
				return checkRead(b, at)
			}
		}
	}
	f := at.seg.f
	l.mu.Unlock()
	if f == nil {
		return record{}, fmt.Errorf("raftlog: segment %s has no file", segmentName(at.seg.seq))
	}
	b := make([]byte, at.size)
	if _, err := f.ReadAt(b, at.off); err != nil {
		return record{}, fmt.Errorf("raftlog: read %s at %d: %w", segmentName(at.seg.seq), at.off, err)
	}
	return checkRead(b, at)
}

func checkRead(b []byte, at loc) (record, error) {
	rec, n, err := decodeRecord(b, at.seg.seq)
	if err == nil && n != len(b) {
		err = fmt.Errorf("%w: record of %d bytes, want %d", ErrCorrupt, n, len(b))
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return record{}, fmt.Errorf("raftlog: segment %s at %d: %w", segmentName(at.seg.seq), at.off, err)
	}
	return rec, nil
}

// readEntries reads the live entries of recs.
func (l *Log) readEntries(recs []entRec) ([]raftpb.Entry, error) {
	var ents []raftpb.Entry
	for _, r := range recs {
		rec, err := l.readRecord(r.loc)
		if err != nil {
			return nil, err
		}
		n := len(ents)
		if ents, err = decodeEntries(ents, rec.payload, r.first, r.last); err != nil {
			return nil, fmt.Errorf("raftlog: segment %s at %d: %w", segmentName(r.seg.seq), r.off, err)
		}
		if uint64(len(ents)-n) != r.last-r.first+1 {
			return nil, fmt.Errorf("raftlog: segment %s at %d: %w: entries %d to %d not in the record",
				segmentName(r.seg.seq), r.off, ErrCorrupt, r.first, r.last)
		}
	}
	return ents, nil
}

// groupState is a copy of a group's index, taken to read its records.
type groupState struct {
	g       *group
	version uint64
	hs      raftpb.HardState
	hasHS   bool
	snap    raftpb.SnapshotMetadata
	hasSnap bool
	recs    []entRec
}

func (l *Log) stateLocked(pid idl.GPID) (groupState, bool) {
	g := l.mu.groups[pid]
	if g == nil || !g.found() {
		return groupState{}, false
	}
	return groupState{g: g, version: g.version, hs: g.hs, hasHS: g.hsAt.seg != nil, snap: g.snap,
		hasSnap: g.snapAt.seg != nil, recs: slices.Clone(g.recs)}, true
}

// Group returns the view of one group's state.
func (l *Log) Group(id idl.GPID) Group { return Group{l: l, pid: id} }

// Group is one raft group's view of the log.
type Group struct {
	l   *Log
	pid idl.GPID
}

// Load restores a group's state into a fresh MemoryStorage: its truncation point (or
// snapshot), hard state and entries. found is false when the group holds no state (a
// brand-new replica, or one removed).
func (g Group) Load() (ms *raft.MemoryStorage, found bool, err error) {
	l := g.l
	l.dropMu.RLock()
	defer l.dropMu.RUnlock()
	l.mu.Lock()
	st, found := l.stateLocked(g.pid)
	l.mu.Unlock()
	ms = raft.NewMemoryStorage()
	if !found {
		return ms, false, nil
	}
	if st.hasSnap {
		if err := ms.ApplySnapshot(raftpb.Snapshot{Metadata: st.snap}); err != nil {
			return nil, false, fmt.Errorf("raftlog: %v: %w", g.pid, err)
		}
	}
	if st.hasHS {
		if err := ms.SetHardState(st.hs); err != nil {
			return nil, false, fmt.Errorf("raftlog: %v: %w", g.pid, err)
		}
	}
	ents, err := l.readEntries(st.recs)
	if err != nil {
		return nil, false, fmt.Errorf("raftlog: entries of %v: %w", g.pid, err)
	}
	if err := ms.Append(ents); err != nil {
		return nil, false, fmt.Errorf("raftlog: %v: %w", g.pid, err)
	}
	return ms, true, nil
}

// Save durably writes a Ready's hard state and entries: Write with sync set.
func (g Group) Save(hs raftpb.HardState, ents []raftpb.Entry) error { return g.Write(hs, ents, true) }

// Write writes a Ready's hard state and entries, durably when sync is set (pass raft's
// Ready.MustSync: new entries, term or vote must be synced; a commit index alone need not).
func (g Group) Write(hs raftpb.HardState, ents []raftpb.Entry, sync bool) error {
	if err := g.Stage(hs, ents, 0); err != nil || !sync {
		return err
	}
	return <-g.l.syncer.request(g.pid)
}

// Stage stages a Ready's hard state and entries, without making them durable: they are
// durable once a later Sync answers. Entries replace every entry of the group from the
// first of them on, as raft requires when a leader overwrites a follower's uncommitted tail.
// lastIndex, the log's last index before the call as the caller knows it, is not needed:
// the log knows its own. The entries must have consecutive indexes and must not leave a gap
// after the group's last entry (or its truncation point); the hard state is staged after
// them, so a replay never finds a commit index beyond the entries.
func (g Group) Stage(hs raftpb.HardState, ents []raftpb.Entry, lastIndex uint64) error {
	if raft.IsEmptyHardState(hs) && len(ents) == 0 {
		return nil
	}
	l := g.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if len(ents) > 0 {
		var last uint64
		if gi := l.mu.groups[g.pid]; gi != nil {
			last = gi.lastIndex()
		}
		if ents[0].Index == 0 || ents[0].Index > last+1 {
			return fmt.Errorf("raftlog: %v: entries from %d after last index %d", g.pid, ents[0].Index, last)
		}
		for i := range ents {
			if i > 0 && ents[i].Index != ents[i-1].Index+1 {
				return fmt.Errorf("raftlog: %v: entry %d follows %d", g.pid, ents[i].Index, ents[i-1].Index)
			}
			if entriesHeaderSize+entrySize(&ents[i]) > maxRecordSize {
				return fmt.Errorf("raftlog: %v: entry %d of %d bytes is too large", g.pid, ents[i].Index, len(ents[i].Data))
			}
		}
		l.stageEntriesLocked(g.pid, ents)
	}
	if !raft.IsEmptyHardState(hs) {
		l.stageHardStateLocked(g.pid, hs)
	}
	if l.mu.pendingBytes >= flushBytes {
		l.syncer.requestFlush()
	}
	return nil
}

// stageEntriesLocked stages ents, checked, as records of about splitRecordSize.
func (l *Log) stageEntriesLocked(pid idl.GPID, ents []raftpb.Entry) {
	for len(ents) > 0 {
		n, size := 1, entriesHeaderSize+entrySize(&ents[0])
		for n < len(ents) {
			es := entrySize(&ents[n])
			if size+es > splitRecordSize {
				break
			}
			size += es
			n++
		}
		batch := ents[:n]
		at := l.recordLocked(kindEntries, pid, size, func(b []byte) []byte { return appendEntries(b, batch) })
		l.mu.group(pid).applyEntries(at, batch[0].Index, uint64(n))
		ents = ents[n:]
	}
}

func (l *Log) stageHardStateLocked(pid idl.GPID, hs raftpb.HardState) {
	at := l.recordLocked(kindHardState, pid, 3*10, func(b []byte) []byte { return appendHardState(b, hs) })
	l.mu.group(pid).applyHardState(at, hs)
}

func (l *Log) stageTruncateLocked(pid idl.GPID, m raftpb.SnapshotMetadata) error {
	payload, err := appendSnapMeta(nil, m)
	if err != nil {
		return err
	}
	at := l.recordLocked(kindTruncate, pid, len(payload), func(b []byte) []byte { return append(b, payload...) })
	l.mu.group(pid).applySnapMeta(at, m, kindTruncate)
	return nil
}

func (l *Log) stageRemoveLocked(pid idl.GPID) {
	l.recordLocked(kindRemove, pid, 0, nil)
	l.mu.remove(pid)
}

// Sync starts making everything staged so far durable, in the log's next group-commit
// round; the channel answers when it is (nil) or cannot be (an error). The caller can do
// other work meanwhile. With DurabilityOS it answers once everything is written to the
// operating system.
func (g Group) Sync() <-chan error { return g.l.syncer.request(g.pid) }

// Writing counts the client writes waiting on the group: +1 when one is proposed, -1 when
// it is answered. The count spaces the log's sync rounds under load (Options.Delay).
func (g Group) Writing(delta int) { g.l.syncer.writing(delta) }

// Truncate records a new truncation point and drops the entries up to it. The caller must
// have made the state machine durable through index first. It does not wait: the
// truncation is durable with the next round that syncs (a crash before then keeps the
// entries), and the segments it empties are dropped only after that.
func (g Group) Truncate(index, term uint64, cs raftpb.ConfState) error {
	l := g.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	return l.stageTruncateLocked(g.pid, raftpb.SnapshotMetadata{Index: index, Term: term, ConfState: cs})
}

// InstallSnapshot records a snapshot received from the leader as the group's new starting
// point, with hs (unless empty), durably: after a snapshot the log restarts right after it,
// every entry is dropped.
func (g Group) InstallSnapshot(meta raftpb.SnapshotMetadata, hs raftpb.HardState) error {
	l := g.l
	payload, err := appendSnapshot(nil, meta, hs)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if err = l.writableLocked(); err == nil {
		at := l.recordLocked(kindSnapshot, g.pid, len(payload), func(b []byte) []byte { return append(b, payload...) })
		gi := l.mu.group(g.pid)
		gi.applySnapMeta(at, meta, kindSnapshot)
		if !raft.IsEmptyHardState(hs) {
			gi.applyHardState(at, hs)
		}
	}
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return <-l.syncer.request(g.pid)
}

// Remove deletes everything of the group, durably.
func (g Group) Remove() error {
	l := g.l
	l.mu.Lock()
	err := l.writableLocked()
	if err == nil {
		l.stageRemoveLocked(g.pid)
	}
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return <-l.syncer.request(g.pid)
}

// replay reads the segments in dir into the index and starts a new active segment after
// them (see OpenOptions for what it accepts).
func (l *Log) replay() error {
	seqs, err := listSegments(l.dir)
	if err != nil {
		return fmt.Errorf("raftlog: %w", err)
	}
	if err := l.cleanSpares(); err != nil {
		return err
	}
	// Segments are dropped oldest first, but their removals may reach the disk in any
	// order: the segments before a gap in the numbering are what is left of a drop.
	start := 0
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			start = i
		}
	}
	for _, seq := range seqs[:start] {
		l.lg.Info("raft log: removing a segment left by an interrupted drop", "segment", segmentName(seq))
		if err := os.Remove(filepath.Join(l.dir, segmentName(seq))); err != nil {
			return fmt.Errorf("raftlog: %w", err)
		}
	}
	seqs = seqs[start:]
	next := uint64(1)
	for i, seq := range seqs {
		next = seq + 1
		s, err := l.replaySegment(seq, i == len(seqs)-1)
		if err != nil {
			return err
		}
		if s != nil {
			l.mu.segs = append(l.mu.segs, s)
		}
	}
	for pid, g := range l.mu.groups {
		if err := g.check(); err != nil {
			return fmt.Errorf("raftlog: group %v: %w", pid, err)
		}
		if !g.found() {
			delete(l.mu.groups, pid)
		}
	}
	l.newSegmentLocked(next)
	return nil
}

// replaySegment reads segment seq into the index. The last segment is cut at its first bad
// record and sealed; nil is returned for a last segment whose header was never written.
func (l *Log) replaySegment(seq uint64, last bool) (*segment, error) {
	name := segmentName(seq)
	path := filepath.Join(l.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("raftlog: %w", err)
	}
	s := &segment{seq: seq}
	res, err := scanSegment(f, seq, func(rec record, off, size int64) error {
		return l.mu.apply(rec, loc{seg: s, off: off, size: size})
	})
	if err != nil && last && errors.Is(err, ErrCorrupt) && res.end == 0 && !l.recordsAfterHeader(f, seq) {
		// A segment whose creation a crash interrupted: nothing was acknowledged from it.
		_ = f.Close()
		l.lg.Warn("raft log: removing a last segment without a valid header", "segment", name, "err", err)
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("raftlog: %w", err)
		}
		return nil, nil
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("raftlog: segment %s: %w", name, err)
	}
	if !res.sealed {
		if !last {
			_ = f.Close()
			bad := res.bad
			if !errors.Is(bad, ErrCorrupt) {
				bad = fmt.Errorf("%w: %v before the segment's seal", ErrCorrupt, bad)
			}
			return nil, fmt.Errorf("raftlog: segment %s at offset %d: %w", name, res.end, bad)
		}
		if err := l.cutTail(f, name, res); err != nil {
			_ = f.Close()
			return nil, err
		}
		res.end += recordHeaderSize
	}
	s.size, s.written, s.synced, s.f = res.end, res.end, res.end, f
	return s, nil
}

// recordsAfterHeader reports whether a valid record follows a segment's header: then the
// header was written, and a bad one is corruption, not an interrupted creation.
func (l *Log) recordsAfterHeader(f *os.File, seq uint64) bool {
	hdr := make([]byte, recordHeaderSize)
	if _, err := f.ReadAt(hdr, segHeaderSize); err != nil {
		return false
	}
	n, err := recordLength(hdr)
	if err != nil || allZero(hdr) {
		return false
	}
	b := make([]byte, recordHeaderSize+n)
	if _, err := f.ReadAt(b, segHeaderSize); err != nil {
		return false
	}
	_, _, err = decodeRecord(b, seq)
	return err == nil
}

// cutTail ends the last segment after its last valid record: the rest (a torn write, a
// write never synced, or preallocated space) is cut off, a seal is written and synced.
func (l *Log) cutTail(f *os.File, name string, res scanResult) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("raftlog: %w", err)
	}
	dropped := fi.Size() - res.end
	attrs := []any{"segment", name, "offset", res.end, "dropped_bytes", dropped}
	switch {
	case dropped == 0 || errors.Is(res.bad, errZero):
		l.lg.Info("raft log: recovered after an unclean shutdown", attrs...)
	default:
		l.lg.Warn("raft log: dropped a torn or unsynced tail after an unclean shutdown", append(attrs, "reason", res.bad)...)
	}
	if err := f.Truncate(res.end); err != nil {
		return fmt.Errorf("raftlog: cut %s: %w", name, err)
	}
	seq, _ := parseSegmentName(name)
	if err := l.writeAt(f, appendRecord(nil, seq, kindSeal, idl.GPID{}, nil), res.end); err != nil {
		return fmt.Errorf("raftlog: seal %s: %w", name, err)
	}
	if err := l.fsync(f); err != nil {
		return fmt.Errorf("raftlog: seal %s: %w", name, err)
	}
	return nil
}

// Options returns the options the log runs with, defaults filled in.
func (l *Log) Options() Options { return l.opts }
