package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metaclient"
	"github.com/gopegasus/pegasus/internal/metric"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/storage"
	"github.com/gopegasus/pegasus/internal/wire"
)

// The replica side of duplication (package dup has the shipper): every primary of a
// duplicated table runs one dup.Shipper per duplication, started and stopped by the server's
// dupManager as assignments and leadership change; the shippers read the partition's raft log
// through dupLog and seed followers from checkpoints through dupStore. Every replica keeps
// the log its table's duplications have not confirmed (dupRetention, at the truncation
// decision). A follower's primary takes RPC_RRDB_RRDB_DUPLICATE as one raft write.

// entrySource is what duplication reads of a partition's raft log: raft's storage API, which
// the log's MemoryStorage implements. It is all the shipper needs, so the log engine can
// change under it. Implementations are safe for concurrent use.
type entrySource interface {
	FirstIndex() (uint64, error)
	LastIndex() (uint64, error)
	Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error)
}

var _ entrySource = (*raft.MemoryStorage)(nil)

// partitionDup is a partition replica's duplication state.
type partitionDup struct {
	// watch is closed (and cleared) when the partition applies entries, if armed.
	watch struct {
		sync.Mutex
		ch chan struct{}
	}
	armed atomic.Bool
	// shippers are the shippers running on this replica (its primary's), for retention.
	shippers atomic.Pointer[[]*dup.Shipper]
	// dropped counts the log entries truncated although a duplication had not confirmed them.
	dropped atomic.Int64
	// Follower side: writes applied from other clusters, and their lag (master time to
	// applied here).
	applied atomic.Int64
	lag     metric.Timer
}

// appliedChanged returns a channel closed once the partition applies more entries.
func (d *partitionDup) appliedChanged() <-chan struct{} {
	d.watch.Lock()
	defer d.watch.Unlock()
	if d.watch.ch == nil {
		d.watch.ch = make(chan struct{})
	}
	d.armed.Store(true)
	return d.watch.ch
}

// signalApplied wakes the waiters of appliedChanged (the loop, after each apply); an atomic
// load when nobody waits.
func (d *partitionDup) signalApplied() {
	if !d.armed.Load() {
		return
	}
	d.watch.Lock()
	defer d.watch.Unlock()
	if d.watch.ch != nil {
		close(d.watch.ch)
		d.watch.ch = nil
	}
	d.armed.Store(false)
}

// duplicating reports whether the partition's table has duplications.
func (ti *tableInfo) duplicating() bool { return len(ti.dups) > 0 }

// dupHold is the last decree a duplication of the partition's table still needs kept
// before its next one: the lowest confirmed decree (or seed checkpoint) of its duplications,
// and of where this replica's shippers are (the meta may not have saved it yet).
func (p *partition) dupHold() (int64, bool) {
	hold, held := int64(-1), false
	note := func(d int64) {
		if d >= 0 && (!held || d < hold) {
			hold, held = d, true
		}
	}
	for _, d := range p.table().dups {
		if d.Confirmed >= 0 {
			note(d.Confirmed)
		} else {
			note(d.Checkpoint)
		}
	}
	if sh := p.dup.shippers.Load(); sh != nil {
		for _, s := range *sh {
			pr := s.Progress()
			if pr.Prepared >= 0 && !pr.Seeded {
				note(pr.Prepared)
			}
			note(pr.Shipped) // before the meta saves it
		}
	}
	return hold, held
}

// dupRetention moves a truncation of the log at index at back so that it keeps what the
// table's duplications have not confirmed, up to dup_max_retained_log_entries entries before
// applied: past that bound the log is truncated anyway, the followers miss those writes, and
// the duplications are lagging (their shippers find the gap and say so). It reports false
// when no truncation is due now (a held truncation waits for LogCompactEvery entries to drop).
func (p *partition) dupRetention(applied, at, truncAt uint64) (uint64, bool) {
	h, ok := p.dupHold()
	if !ok || uint64(h) >= at {
		return at, true
	}
	hold := uint64(h)
	bound := uint64(p.s.settings.DupMaxRetained.Get())
	held := at
	if applied-hold <= bound {
		held = hold
	} else {
		held = min(at, applied-bound)
	}
	if held <= truncAt || held < truncAt+uint64(p.s.cfg.LogCompactEvery) {
		return 0, false
	}
	if held > hold {
		p.dup.dropped.Add(int64(held - max(hold, truncAt)))
		p.lg.Error("duplication lagging: the log kept for it reached dup_max_retained_log_entries; truncating writes its follower has not applied",
			"confirmed", hold, "truncate_at", held, "retained", applied-hold)
	}
	return held, true
}

// dupLog is a partition's raft log as a shipper reads it.
type dupLog struct{ p *partition }

var _ dup.Log = dupLog{}

// Applied implements dup.Log.
func (l dupLog) Applied() (uint64, <-chan struct{}) {
	ch := l.p.dup.appliedChanged()
	return l.p.applied.Load(), ch
}

// First implements dup.Log.
func (l dupLog) First() uint64 {
	first, _ := l.p.entries.FirstIndex()
	return first
}

// Size implements dup.Log: the entries' payloads, headers included, as raft's storage hands
// them out (without copying or decoding them).
func (l dupLog) Size(from, to uint64, limit int) int {
	src := l.p.entries
	if first, err := src.FirstIndex(); err != nil || from < first {
		return 0
	}
	if last, err := src.LastIndex(); err != nil {
		return 0
	} else if to > last {
		to = last
	}
	if from > to {
		return 0
	}
	ents, err := src.Entries(from, to+1, uint64(limit))
	if err != nil {
		return 0
	}
	if uint64(len(ents)) < to+1-from {
		return limit // the rest did not fit in limit
	}
	n := 0
	for i := range ents {
		n += len(ents[i].Data)
	}
	return min(n, limit)
}

// Before implements dup.Log, reading the log backward from the last applied entry.
func (l dupLog) Before(t time.Time) (uint64, bool) {
	src := l.p.entries
	first, err := src.FirstIndex()
	if err != nil {
		return 0, false
	}
	last, err := src.LastIndex()
	if err != nil {
		return first - 1, false
	}
	hi := min(l.p.applied.Load(), last)
	for hi >= first {
		lo := first
		if hi-first > 255 {
			lo = hi - 255
		}
		ents, err := src.Entries(lo, hi+1, math.MaxUint64)
		if err != nil {
			break // truncated meanwhile
		}
		for i := len(ents) - 1; i >= 0; i-- {
			e := &ents[i]
			if e.Type != raftpb.EntryNormal {
				continue
			}
			if at, ok := entryTime(e.Data); ok && at.Before(t) {
				return e.Index, true
			}
		}
		if lo == first {
			break
		}
		hi = lo - 1
	}
	// Nothing before t: complete only if the log still starts at the partition's beginning.
	return first - 1, first <= 1
}

// Read implements dup.Log: it decodes the entries' writes (proposal.go's layout).
func (l dupLog) Read(from, to uint64, maxBytes int) ([]dup.Write, uint64, int, error) {
	src := l.p.entries
	first, err := src.FirstIndex()
	if err != nil {
		return nil, 0, 0, err
	}
	if from < first {
		return nil, 0, 0, fmt.Errorf("%w: %d < first %d", dup.ErrCompacted, from, first)
	}
	if last, err := src.LastIndex(); err != nil {
		return nil, 0, 0, err
	} else if to > last {
		to = last // the store can be ahead of the log after a checkpoint was installed
	}
	if from > to {
		return nil, from - 1, 0, nil
	}
	ents, err := src.Entries(from, to+1, uint64(maxBytes))
	if errors.Is(err, raft.ErrCompacted) {
		return nil, 0, 0, fmt.Errorf("%w: %w", dup.ErrCompacted, err)
	}
	if err != nil || len(ents) == 0 {
		return nil, 0, 0, err
	}
	var (
		ws      []dup.Write
		skipped int
	)
	for i := range ents {
		e := &ents[i]
		if e.Type != raftpb.EntryNormal || len(e.Data) == 0 || e.Data[0] == controlVersion {
			continue // a split's cut-over is no write to ship
		}
		var idx []int // the entry's writes, before its time is known
		h, err := splitEntry(e.Data, func(kind writeKind, body []byte) error {
			switch rpc := rpcOfKind(kind); {
			case rpc != "":
				idx = append(idx, len(ws))
				ws = append(ws, dup.Write{Decree: e.Index, RPC: rpc, Body: body})
			case kind != kindDuplicate: // other clusters' writes are never shipped on
				skipped++
			}
			return nil
		})
		if err != nil {
			l.p.lg.Error("duplication: skipping an undecodable raft entry", "index", e.Index, "err", err)
			continue
		}
		for _, j := range idx {
			ws[j].TimestampUS = h.time.UnixMicro()
		}
	}
	return ws, ents[len(ents)-1].Index, skipped, nil
}

// dupStore is a partition's store as a shipper seeds a follower from it.
type dupStore struct{ p *partition }

var _ dup.Store = dupStore{}

// Checkpoint implements dup.Store.
func (st dupStore) Checkpoint(dir string) (uint64, error) {
	db, release := st.p.readDB()
	defer release()
	return db.Checkpoint(dir)
}

// Export implements dup.Store: the checkpoint is opened as a store of its own.
func (st dupStore) Export(ctx context.Context, dir string, fn func(dup.Record) error) error {
	db, err := storage.Open(storage.Options{Dir: dir, SweepInterval: -1, NoWAL: true, Logger: st.p.lg})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Export(func(r storage.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(dup.Record{Key: r.Key, Value: r.Value, ExpireTS: int32(r.ExpireTS), TimestampUS: storage.TimetagTimestamp(r.Timetag)})
	})
}

// shipKey names one shipper: a partition and a duplication.
type shipKey struct {
	pid idl.GPID
	dup int32
}

// shipRun is one running shipper.
type shipRun struct {
	sh        *dup.Shipper
	p         *partition
	remote    string
	remoteApp string
	ckptDir   string
	cancel    context.CancelFunc
	done      chan struct{}
}

// dupManager runs the shippers of the server's primaries and reports their progress to the
// meta leader. Its run goroutine owns the shippers' lifecycle and the follower connections;
// the shipper set is read under mu by the HTTP API and metrics.
type dupManager struct {
	s      *Server
	lg     *slog.Logger
	kick   chan struct{} // reconcile with the partitions now
	report chan struct{} // report now (a shipper finished a step)

	mu       sync.Mutex
	shippers map[shipKey]*shipRun
}

func newDupManager(s *Server) *dupManager {
	return &dupManager{s: s, lg: s.lg, kick: make(chan struct{}, 1), report: make(chan struct{}, 1),
		shippers: map[shipKey]*shipRun{}}
}

// changed asks the manager to look at the partitions again (after a sync with the meta, or
// a leadership change).
func (m *dupManager) changed() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *dupManager) reportSoon() {
	select {
	case m.report <- struct{}{}:
	default:
	}
}

// run manages the shippers until ctx ends, then stops them and returns once they exited.
func (m *dupManager) run(ctx context.Context) {
	remotes := map[[2]string]*dup.Remote{}
	defer func() {
		m.mu.Lock()
		runs := m.shippers
		m.shippers = map[shipKey]*shipRun{}
		m.mu.Unlock()
		for _, r := range runs {
			r.stop()
		}
		for _, r := range remotes {
			_ = r.Close()
		}
	}()
	t := time.NewTicker(m.s.cfg.DupSyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
			m.reconcile(ctx, remotes)
		case <-m.report:
			m.sync(ctx)
		case <-t.C:
			m.reconcile(ctx, remotes)
			m.sync(ctx)
		}
	}
}

// stop stops the shipper and removes the seed's checkpoint it may have left (a shipper that
// starts on this server again takes a new one).
func (r *shipRun) stop() {
	r.cancel()
	<-r.done
	if err := os.RemoveAll(r.ckptDir); err != nil {
		r.p.lg.Warn("remove duplication checkpoint", "dir", r.ckptDir, "err", err)
	}
}

// reconcile starts a shipper for each duplication of each partition this server leads, and
// stops those whose partition it no longer leads or whose duplication is gone.
func (m *dupManager) reconcile(ctx context.Context, remotes map[[2]string]*dup.Remote) {
	s := m.s
	enabled := s.settings.DupEnabled.Get()
	want := map[shipKey]bool{}
	s.mu.RLock()
	parts := slices.Collect(maps.Values(s.parts))
	s.mu.RUnlock()
	for _, p := range parts {
		ti := p.table()
		if !enabled || !p.isLeader.Load() {
			p.dup.shippers.Store(nil)
			continue
		}
		var started []*dup.Shipper
		for _, d := range ti.dups {
			k := shipKey{p.pid, d.ID}
			want[k] = true
			plan := dup.Plan{Status: d.Status, FailMode: d.FailMode, Confirmed: d.Confirmed, Checkpoint: d.Checkpoint,
				Since: time.UnixMilli(d.CreateMS)}
			m.mu.Lock()
			r := m.shippers[k]
			m.mu.Unlock()
			if r != nil {
				r.sh.SetPlan(plan)
				started = append(started, r.sh)
				continue
			}
			rk := [2]string{d.Remote, d.RemoteApp}
			remote := remotes[rk]
			if remote == nil {
				metas, ok := s.cfg.Peers.Metas(d.Remote)
				if !ok {
					m.lg.Error("duplication to a cluster not in [pegasus.clusters]", "gpid", p.pid.String(), "dupid", d.ID, "remote", d.Remote)
					continue
				}
				remote = dup.NewRemote(metas, d.RemoteApp, s.cfg.DupTLS)
				remotes[rk] = remote
			}
			dir := filepath.Join(s.partitionDir(p.pid), "dup-"+strconv.Itoa(int(d.ID)))
			sh := dup.NewShipper(dup.ShipperConfig{
				GPID: p.pid, Partitions: int(ti.partitionCount), DupID: d.ID, Remote: remote,
				Log: dupLog{p}, Store: dupStore{p}, CheckpointDir: dir,
				Options: m.options, Notify: m.reportSoon, Logger: m.lg,
			}, plan)
			sctx, cancel := context.WithCancel(ctx)
			r = &shipRun{sh: sh, p: p, remote: d.Remote, remoteApp: d.RemoteApp, ckptDir: dir, cancel: cancel, done: make(chan struct{})}
			go func() {
				defer close(r.done)
				sh.Run(sctx)
			}()
			m.mu.Lock()
			m.shippers[k] = r
			m.mu.Unlock()
			started = append(started, sh)
			m.lg.Info("duplication shipper started", "gpid", p.pid.String(), "dupid", d.ID, "remote", d.Remote, "status", d.Status.String())
		}
		p.dup.shippers.Store(&started)
	}
	m.mu.Lock()
	gone := map[shipKey]*shipRun{}
	for k, r := range m.shippers {
		if !want[k] {
			gone[k] = r
		}
	}
	m.mu.Unlock()
	for k, r := range gone {
		r.stop() // before it leaves the set: what the set lists may still ship
		m.mu.Lock()
		delete(m.shippers, k)
		m.mu.Unlock()
		m.lg.Info("duplication shipper stopped", "gpid", r.p.pid.String(), "dupid", k.dup, "remote", r.remote)
	}
}

// options are the entries' options from the live settings.
func (m *dupManager) options() dup.Options {
	st := m.s.settings
	return dup.Options{ClusterID: *m.s.cfg.ClusterID, VerifyTimetag: st.DupVerifyTimetag.Get(), BatchBytes: int(st.DupBatchBytes.Get()),
		Linger: time.Duration(st.DupBatchLingerMS.Get()) * time.Millisecond}
}

// runs returns the running shippers, for reports, the HTTP API and metrics.
func (m *dupManager) runs() map[shipKey]*shipRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[shipKey]*shipRun, len(m.shippers))
	for k, r := range m.shippers {
		out[k] = r
	}
	return out
}

// sync reports the shippers' progress to the meta leader (RPC_CM_DUPLICATION_SYNC).
func (m *dupManager) sync(ctx context.Context) {
	s := m.s
	runs := m.runs()
	if s.meta == nil || len(runs) == 0 {
		return
	}
	ra, err := idl.ParseRPCAddress(s.addr)
	if err != nil {
		return
	}
	ap := ra.AddrPort()
	req := &idl.DuplicationSyncRequest{Node: ra, HPNode: idl.NewHostPort(ap.Addr().String(), ap.Port()),
		ConfirmList: map[idl.GPID][]idl.DuplicationConfirmEntry{}}
	for k, r := range runs {
		if !r.p.isLeader.Load() {
			continue
		}
		req.ConfirmList[k.pid] = append(req.ConfirmList[k.pid], confirmEntry(k.dup, r))
	}
	ctx, cancel := context.WithTimeout(ctx, metaSyncBudget)
	defer cancel()
	_, err = metaclient.Call(ctx, s.meta, idl.RPCDuplicationSync, req,
		func(r *idl.DuplicationSyncResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil && ctx.Err() == nil {
		m.lg.Debug("duplication sync failed", "err", err)
	}
}

// confirmEntry is one shipper's report: the step it is at and how far it got.
func confirmEntry(id int32, r *shipRun) idl.DuplicationConfirmEntry {
	pr := r.sh.Progress()
	applied := int64(r.p.applied.Load())
	e := idl.DuplicationConfirmEntry{DupID: id, ConfirmedDecree: pr.Shipped, LastCommittedDecree: idl.Some(applied), Lagging: pr.Lagging}
	switch pr.Status {
	case idl.DupStatusPrepare:
		e.ConfirmedDecree = -1
		if pr.Prepared >= 0 {
			e.CheckpointPrepared, e.LastCommittedDecree = true, idl.Some(pr.Prepared)
		}
	case idl.DupStatusApp:
		if !pr.Seeded {
			e.ConfirmedDecree = -1
		}
	}
	return e
}

// follower is what the server checks a RPC_RRDB_RRDB_DUPLICATE against.
func (s *Server) follower() dup.Follower {
	return dup.Follower{Peers: *s.cfg.Peers, Self: *s.cfg.ClusterID, IgnoreOthers: s.settings.DupIgnoreOtherClusterIDs.Get()}
}

// handleDuplicate serves RPC_RRDB_RRDB_DUPLICATE on a follower's primary: the entries are
// checked, then proposed as one raft write and applied with their timetags.
func (s *Server) handleDuplicate(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	a := req.Args.(*idl.DuplicateRequest)
	p, code := s.route(req, nil, noKey)
	if code != wire.OK {
		return nil, code
	}
	if req.BodySize > 2*MaxWriteSize {
		return nil, wire.ErrInvalidData
	}
	if st, hint := s.follower().Check(a); st != wire.StatusOK {
		return &idl.DuplicateResponse{Error: idl.Some(int32(st)), ErrorHint: idl.Some(hint)}, wire.OK
	}
	// Encoded again as it came (the raft entry carries the request): in a buffer of the
	// request's size, not one grown write by write.
	e := idl.Encoder{Buf: make([]byte, 0, req.BodySize)}
	a.Encode(&e)
	w := &write{kind: kindDuplicate, data: e.Buf, done: make(chan writeResult, 1)}
	r := p.propose(ctx, w)
	if r.err != nil {
		return nil, codeOf(r.err)
	}
	now := time.Now()
	for _, e := range a.Entries {
		p.dup.lag.Observe(now.Sub(time.UnixMicro(e.Timestamp.V)))
	}
	p.dup.applied.Add(int64(len(a.Entries)))
	resp := &idl.DuplicateResponse{Error: idl.Some(int32(r.res.Error))}
	if r.res.Error != wire.StatusOK {
		resp.ErrorHint = idl.Some("a duplicated write failed: " + r.res.Error.String())
	}
	return resp, wire.OK
}

// byPartition returns the running shippers by partition.
func (m *dupManager) byPartition() map[idl.GPID][]*shipRun {
	out := map[idl.GPID][]*shipRun{}
	for k, r := range m.runs() {
		out[k.pid] = append(out[k.pid], r)
	}
	return out
}

// status describes the shippers of table app's primaries here, as /replica/duplication
// shows them: by dupid, then "app.pidx".
func (m *dupManager) status(app int32) map[string]map[string]any {
	out := map[string]map[string]any{}
	for k, r := range m.runs() {
		if k.pid.AppID != app || !r.p.isLeader.Load() {
			continue
		}
		pr := r.sh.Progress()
		applied := int64(r.p.applied.Load())
		confirmed := int64(-1)
		for _, d := range r.p.table().dups {
			if d.ID == k.dup {
				confirmed = d.Confirmed
			}
		}
		st := map[string]any{
			"duplicating":                  pr.Shipping,
			"fail_mode":                    r.sh.Plan().FailMode.String(),
			"not_confirmed_mutations_num":  max(0, applied-confirmed),
			"not_duplicated_mutations_num": max(0, applied-max(pr.Shipped, 0)),
			"remote_app_name":              r.remoteApp,
		}
		if pr.Lagging {
			st["lagging"] = true
		}
		if pr.LastError != "" {
			st["last_error"] = pr.LastError
		}
		id := strconv.Itoa(int(k.dup))
		if out[id] == nil {
			out[id] = map[string]any{}
		}
		out[id][k.pid.String()] = st
	}
	return out
}

// appendDupMetrics appends a partition replica's duplication metrics to dst: its
// shippers' (on a master primary) and the duplicated writes it applied (on a follower
// primary).
func appendDupMetrics(dst []metric.Metric, p *partition, runs []*shipRun, now time.Time) []metric.Metric {
	var pending, lagMS, batches, writes, bytes, fails, skipped, lagging int64
	applied := int64(p.applied.Load())
	for _, r := range runs {
		pr := r.sh.Progress()
		if pr.Shipping {
			pending += max(0, applied-pr.Shipped)
		}
		if !pr.Pending.IsZero() {
			lagMS = max(lagMS, now.Sub(pr.Pending).Milliseconds())
		}
		batches += pr.Batches
		writes += pr.Writes
		bytes += pr.Bytes
		fails += pr.Failures
		skipped += pr.Skipped
		if pr.Lagging {
			lagging = 1
		}
	}
	q, _ := p.dup.lag.Window(now)
	return append(dst,
		metric.GaugeOf("dup_pending_mutations", "Mutations", "The decrees this primary has applied and not yet shipped to its followers", pending),
		metric.GaugeOf("dup_lag_ms", "MilliSeconds", "How long ago the oldest write not yet shipped was made", lagMS),
		metric.CounterOf("dup_shipped_batches", "Requests", "The batches (RPC_RRDB_RRDB_DUPLICATE) followers took", batches),
		metric.CounterOf("dup_shipped_writes", "Requests", "The writes shipped to followers", writes),
		metric.CounterOf("dup_shipped_bytes", "Bytes", "The bytes of writes shipped to followers", bytes),
		metric.CounterOf("dup_failed_batches", "Requests", "The batches a follower did not take", fails),
		metric.CounterOf("dup_skipped_writes", "Requests", "The writes not shipped: non-idempotent ones, and those of batches skipped under FAIL_SKIP", skipped),
		metric.GaugeOf("dup_lagging", "Replicas", "1 once the log dropped writes a follower never got", lagging),
		metric.CounterOf("dup_log_dropped_entries", "Mutations", "The log entries truncated although a duplication had not confirmed them", p.dup.dropped.Load()),
		metric.CounterOf("dup_applied_writes", "Requests", "The writes duplicated from other clusters applied here", p.dup.applied.Load()),
		metric.Metric{Kind: metric.Percentile, Name: "dup_apply_lag_ns", Unit: "NanoSeconds",
			Desc: "The time from a duplicated write's making on its master to its apply here, over the last window", P: q},
	)
}
