package dup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
)

// Shipping timing (operations.md §1): a batch the follower did not take is sent again after
// RetryDelay; one send waits at most SendTimeout.
const (
	RetryDelay  = time.Second
	SendTimeout = 100 * time.Second
)

// ErrCompacted is wrapped by a [Log]'s Read of decrees its log no longer holds.
var ErrCompacted = errors.New("dup: the log no longer holds these decrees")

// Log is what a shipper reads of its master partition: the raft log as the partition's
// replica holds it. Implementations are safe for concurrent use with the partition.
type Log interface {
	// Applied returns the last decree applied on this replica, and a channel closed once a
	// later one is (or the partition stops).
	Applied() (decree uint64, changed <-chan struct{})
	// Read returns the idempotent writes of the entries from decree from through at most
	// decree to, whole entries only, stopping after about maxBytes of write bodies (at least
	// one entry is read), in log order; last is the decree of the last entry read, and
	// skipped counts the writes of other kinds it left out. Reading before the log's first
	// entry fails with an error wrapping [ErrCompacted].
	Read(from, to uint64, maxBytes int) (ws []Write, last uint64, skipped int, err error)
	// Size returns about the bytes the writes of the entries from decree from through decree
	// to hold, counting no further than limit: what a linger checks to end once a full batch
	// has gathered. It is a cheap estimate (the entries' sizes, without decoding them); 0
	// when the log no longer holds from.
	Size(from, to uint64, limit int) int
	// First returns the decree of the log's first entry.
	First() uint64
	// Before returns the decree of the last write proposed before t: the writes after it
	// were all proposed at or after t. complete is false when the log no longer reaches
	// back to t (writes after t may be gone); the decree is then the one before the log's
	// first entry.
	Before(t time.Time) (decree uint64, complete bool)
}

// Record is one live record of a store, as seeding ships it: a put of Value at the encoded
// key Key with the absolute ExpireTS (0: none), at the time TimestampUS of its timetag.
type Record struct {
	Key         []byte
	Value       []byte
	ExpireTS    int32
	TimestampUS int64
}

// Store is what a shipper needs of its master partition's store to seed the follower.
type Store interface {
	// Checkpoint writes a consistent copy of the store to dir, which must not exist, and
	// returns the decree the copy holds.
	Checkpoint(dir string) (uint64, error)
	// Export calls fn with each live record of the checkpoint in dir, in key order, until
	// fn returns an error (returned as is) or the records end.
	Export(ctx context.Context, dir string, fn func(Record) error) error
}

// Plan is what the meta leader says of one duplication, as a partition's assignment
// carries it.
type Plan struct {
	Status   idl.DuplicationStatus
	FailMode idl.DuplicationFailMode
	// Confirmed is the last decree the meta recorded as applied by the follower for this
	// partition; -1 when none. Checkpoint is the decree the follower's seed was prepared at
	// (the log is shipped after it); -1 before the partition prepared one.
	Confirmed, Checkpoint int64
	// Since is when the duplication was added: without a seed, the writes proposed from
	// then on are shipped.
	Since time.Time
}

// ShipperConfig configures a [Shipper].
type ShipperConfig struct {
	// GPID is the master partition; Partitions the master table's partition count.
	GPID       idl.GPID
	Partitions int
	DupID      int32
	Remote     *Remote
	Log        Log
	Store      Store
	// CheckpointDir is where the seed's checkpoint is kept between the prepare and the
	// seeding of the follower.
	CheckpointDir string
	// Options returns the current options of the entries (live settings).
	Options func() Options
	// Notify, if set, is called when the shipper finishes a step the meta should hear of
	// at once: the checkpoint prepared, the follower seeded, the log found lagging.
	Notify func()
	// RetryDelay overrides [RetryDelay] (tests); 0 means RetryDelay.
	RetryDelay time.Duration
	Logger     *slog.Logger
}

// Progress is a shipper's state, for the reports to the meta, the HTTP API and metrics.
type Progress struct {
	// Status is the plan's status the shipper works toward.
	Status idl.DuplicationStatus
	// Prepared is the decree of the checkpoint taken for the seed (-1: none yet); Seeded is
	// set once the follower holds the seed.
	Prepared int64
	Seeded   bool
	// Shipped is the last decree whose writes the follower applied (-1: none yet).
	Shipped int64
	// Lagging is set once the log dropped writes the follower had not applied (the retention
	// bound was passed): those never reach it.
	Lagging bool
	// Shipping is set while the log is being shipped (status DS_LOG).
	Shipping bool
	// Batches, Writes and Bytes count what was shipped (batches the follower took, their
	// writes and body bytes); Failures the batches it did not take; Skipped what was left
	// out (non-idempotent writes, and the writes of batches skipped under FAIL_SKIP).
	Batches, Writes, Bytes, Failures, Skipped int64
	// LingersCut counts the lingers (Options.Linger) ended early because a full batch had
	// gathered.
	LingersCut int64
	// Pending is the master time of the oldest write not shipped yet (zero when none).
	Pending time.Time
	// LastError is why the last batch (or step) failed, "" once one succeeded since.
	LastError string
}

// Shipper ships one duplication of one master partition: on its primary, it prepares the
// seed's checkpoint (DS_PREPARE), seeds the follower partition from it (DS_APP), then ships
// the log from the confirmed decree (DS_LOG), in order, batch after batch. Run drives it;
// SetPlan tells it what the meta decided; Progress reads its state. Safe for concurrent use.
type Shipper struct {
	cfg  ShipperConfig
	lg   *slog.Logger
	plan atomic.Pointer[Plan]
	kick chan struct{}

	prepared, shipped atomic.Int64
	seeded, lagging   atomic.Bool
	shipping          atomic.Bool
	batches, writes   atomic.Int64
	bytes, fails      atomic.Int64
	skipped           atomic.Int64
	lingerCut         atomic.Int64
	pendingUS         atomic.Int64
	lastErr           atomic.Pointer[string]
	// ckpt is the decree of the checkpoint in CheckpointDir this shipper took (-1: none).
	ckpt int64
}

// NewShipper returns a shipper for cfg with the meta's current plan.
func NewShipper(cfg ShipperConfig, plan Plan) *Shipper {
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = RetryDelay
	}
	s := &Shipper{cfg: cfg, kick: make(chan struct{}, 1), ckpt: -1}
	s.lg = cfg.Logger.With("gpid", cfg.GPID.String(), "dupid", cfg.DupID)
	s.prepared.Store(-1)
	s.shipped.Store(-1)
	s.plan.Store(&plan)
	return s
}

// SetPlan gives the shipper the meta's latest plan.
func (s *Shipper) SetPlan(p Plan) {
	if old := s.plan.Load(); *old == p {
		return
	}
	s.plan.Store(&p)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Plan returns the plan the shipper follows.
func (s *Shipper) Plan() Plan { return *s.plan.Load() }

// Progress returns the shipper's state.
func (s *Shipper) Progress() Progress {
	p := Progress{
		Status:   s.plan.Load().Status,
		Prepared: s.prepared.Load(), Seeded: s.seeded.Load(), Shipped: s.shipped.Load(),
		Lagging: s.lagging.Load(), Shipping: s.shipping.Load(),
		Batches: s.batches.Load(), Writes: s.writes.Load(), Bytes: s.bytes.Load(), Failures: s.fails.Load(), Skipped: s.skipped.Load(),
		LingersCut: s.lingerCut.Load(),
	}
	if us := s.pendingUS.Load(); us > 0 {
		p.Pending = time.UnixMicro(us)
	}
	if e := s.lastErr.Load(); e != nil {
		p.LastError = *e
	}
	return p
}

// errPlanChanged ends a phase whose status the meta changed.
var errPlanChanged = errors.New("dup: plan changed")

// Run ships until ctx ends (the partition stopped leading, the duplication was removed, the
// server stops). Failures are retried; it returns nothing.
func (s *Shipper) Run(ctx context.Context) {
	defer s.shipping.Store(false)
	for ctx.Err() == nil {
		p := *s.plan.Load()
		var err error
		switch p.Status {
		case idl.DupStatusPrepare:
			err = s.prepare(p)
		case idl.DupStatusApp:
			err = s.seed(ctx, p)
		case idl.DupStatusLog:
			s.removeCheckpoint()
			s.shipping.Store(true)
			err = s.shipLog(ctx)
			s.shipping.Store(false)
		default: // paused, or a status a replica has nothing to do in
			s.removeCheckpoint()
		}
		switch {
		case err == nil || errors.Is(err, errPlanChanged):
		case ctx.Err() != nil:
			return
		default:
			s.failed(err)
			s.lg.Warn("duplication step failed; retrying", "status", p.Status.String(), "err", err)
			if !s.sleep(ctx, s.cfg.RetryDelay) {
				return
			}
			continue
		}
		if !s.planChanged(p) {
			select { // wait for the meta to move on
			case <-s.kick:
			case <-ctx.Done():
				return
			}
		}
	}
}

func (s *Shipper) notify() {
	if s.cfg.Notify != nil {
		s.cfg.Notify()
	}
}

// failed records err as the shipper's last error.
func (s *Shipper) failed(err error) {
	e := err.Error()
	s.lastErr.Store(&e)
}

// planChanged reports whether the plan differs from p.
func (s *Shipper) planChanged(p Plan) bool { return *s.plan.Load() != p }

// statusChanged reports whether the plan's status differs from p's: the meta moved the
// duplication to another step (its confirmed decree moves on all the time).
func (s *Shipper) statusChanged(p Plan) bool { return s.plan.Load().Status != p.Status }

// sleep waits d or until ctx ends or the plan changes; it reports whether ctx is still live.
func (s *Shipper) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.kick:
		select { // leave the kick for the loop that waits on it
		case s.kick <- struct{}{}:
		default:
		}
	case <-ctx.Done():
		return false
	}
	return true
}

// prepare takes the checkpoint the follower will be seeded from, once.
func (s *Shipper) prepare(p Plan) error {
	if p.Checkpoint >= 0 {
		s.prepared.Store(p.Checkpoint)
		return nil
	}
	if s.prepared.Load() >= 0 {
		return nil // reported; the meta has not recorded it yet
	}
	d, err := s.checkpoint()
	if err != nil {
		return err
	}
	s.prepared.Store(int64(d))
	s.lg.Info("duplication checkpoint prepared", "decree", d)
	s.notify()
	return nil
}

// checkpoint replaces the checkpoint in CheckpointDir by a new one.
func (s *Shipper) checkpoint() (uint64, error) {
	s.removeCheckpoint()
	d, err := s.cfg.Store.Checkpoint(s.cfg.CheckpointDir)
	if err != nil {
		return 0, fmt.Errorf("dup: checkpoint for the follower's seed: %w", err)
	}
	s.ckpt = int64(d)
	return d, nil
}

func (s *Shipper) removeCheckpoint() {
	if s.ckpt < 0 {
		if _, err := os.Stat(s.cfg.CheckpointDir); err != nil {
			return
		}
	}
	if err := os.RemoveAll(s.cfg.CheckpointDir); err != nil {
		s.lg.Warn("remove duplication checkpoint", "dir", s.cfg.CheckpointDir, "err", err)
		return
	}
	s.ckpt = -1
}

// seed ships every record of a checkpoint to the follower partition, as puts. The log is
// then shipped from the prepared decree: a checkpoint taken later than that (this primary did
// not prepare it) holds writes the log replays again, which is harmless.
func (s *Shipper) seed(ctx context.Context, p Plan) error {
	if p.Confirmed >= 0 {
		s.seeded.Store(true)
		s.shipped.Store(max(s.shipped.Load(), p.Confirmed))
		return nil
	}
	if s.seeded.Load() {
		return nil // reported; the meta has not recorded it yet
	}
	base := p.Checkpoint
	if base < 0 || s.ckpt < 0 || s.ckpt != base {
		d, err := s.checkpoint()
		if err != nil {
			return err
		}
		if base < 0 || uint64(base) > d {
			base = int64(d)
		}
	}
	o := s.cfg.Options()
	var (
		batch   []Write
		size    int
		records int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		for _, b := range Batches(batch, 0, o) {
			if err := s.send(ctx, b); err != nil {
				return err
			}
		}
		batch, size = batch[:0], 0
		return nil
	}
	limit := max(o.BatchBytes, DefaultBatchBytes)
	err := s.cfg.Store.Export(ctx, s.cfg.CheckpointDir, func(r Record) error {
		if s.statusChanged(p) {
			return errPlanChanged
		}
		body := idl.Marshal(&idl.UpdateRequest{Key: r.Key, Value: r.Value, ExpireTSSeconds: r.ExpireTS})
		batch = append(batch, Write{RPC: idl.RPCPut, Body: body, TimestampUS: r.TimestampUS})
		size += len(body)
		records++
		if size >= limit {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	s.shipped.Store(base)
	s.seeded.Store(true)
	s.removeCheckpoint()
	s.lg.Info("duplication follower seeded", "records", records, "decree", base)
	s.notify()
	return nil
}

// shipLog ships the log from the shipped (or confirmed) decree until the plan changes.
func (s *Shipper) shipLog(ctx context.Context) error {
	p := *s.plan.Load()
	if p.Status != idl.DupStatusLog {
		return errPlanChanged
	}
	if s.shipped.Load() < p.Confirmed {
		s.shipped.Store(p.Confirmed)
	}
	if s.shipped.Load() < 0 && p.Checkpoint >= 0 {
		s.shipped.Store(p.Checkpoint) // never confirmed seeded (moved to DS_LOG by hand)
	}
	if s.shipped.Load() < 0 {
		// No seed and nothing confirmed: the writes proposed since the duplication was
		// added travel.
		d, complete := s.cfg.Log.Before(p.Since)
		s.shipped.Store(int64(d))
		if !complete {
			s.lagging.Store(true)
			s.lg.Error("duplication lagging: the log no longer reaches back to when the duplication was added; writes made since may never reach the follower",
				"since", p.Since, "log_first", d+1)
			s.notify()
		}
	}
	var small time.Time // when the last batch, all there was, went out below the batch size
	for {
		if s.statusChanged(p) {
			return errPlanChanged
		}
		applied, changed := s.cfg.Log.Applied()
		from := uint64(s.shipped.Load()) + 1
		if from > applied {
			s.pendingUS.Store(0)
			select {
			case <-changed:
			case <-s.kick: // the loop's next round reads the new plan
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		o := s.cfg.Options()
		if wait := o.Linger - time.Since(small); o.Linger > 0 && wait > 0 {
			// Let the writes gather (Options.Linger); a plan change waits as long.
			if err := s.linger(ctx, from, o.batchBytes(), wait); err != nil {
				return err
			}
			small = time.Time{}
			continue
		}
		ws, last, skipped, err := s.cfg.Log.Read(from, applied, MaxBatchBytes)
		if errors.Is(err, ErrCompacted) {
			first := s.cfg.Log.First()
			s.lagging.Store(true)
			s.lg.Error("duplication lagging: the log no longer holds writes the follower has not applied; they will never reach it",
				"from", from, "log_first", first)
			s.shipped.Store(int64(first) - 1)
			s.notify()
			continue
		}
		if err != nil {
			return err
		}
		if skipped > 0 {
			s.skipped.Add(int64(skipped))
			s.lg.Warn("non-idempotent writes not duplicated", "count", skipped, "decrees", fmt.Sprintf("%d-%d", from, last))
		}
		if len(ws) > 0 {
			s.pendingUS.Store(ws[0].TimestampUS)
		}
		bs := Batches(ws, last, o)
		for _, b := range bs {
			if err := s.send(ctx, b); err != nil {
				return err
			}
			s.shipped.Store(int64(b.Upto))
		}
		if len(bs) == 1 && bs[0].Bytes < o.batchBytes() {
			small = time.Now()
		}
		if len(ws) == 0 {
			s.shipped.Store(int64(last))
		}
	}
}

// linger waits up to wait for the writes from decree from on to gather, and ends as soon as
// the log holds a full batch of them (limit bytes): a busy partition does not sit on a full
// batch. It fails only when ctx ends.
func (s *Shipper) linger(ctx context.Context, from uint64, limit int, wait time.Duration) error {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		applied, changed := s.cfg.Log.Applied()
		if applied >= from && s.cfg.Log.Size(from, applied, limit) >= limit {
			s.lingerCut.Add(1)
			return nil
		}
		select {
		case <-t.C:
			return nil
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// send ships one batch, retrying as the fail mode says: FAIL_SLOW until it is taken,
// FAIL_SKIP gives up on it after one failure. It fails only when ctx ends or the plan
// changes. The first failure of a batch is logged as a warning, its retries at debug level.
func (s *Shipper) send(ctx context.Context, b Batch) error {
	p := *s.plan.Load()
	for try := 0; ; try++ {
		sctx, cancel := context.WithTimeout(ctx, SendTimeout)
		err := s.cfg.Remote.Send(sctx, s.cfg.GPID.PartitionIndex, s.cfg.Partitions, b.Hash, b.Req)
		cancel()
		if err == nil {
			if try > 0 {
				s.lg.Info("duplication batch taken after failures", "tries", try+1)
			}
			s.lastErr.Store(nil)
			s.batches.Add(1)
			s.writes.Add(int64(b.Writes))
			s.bytes.Add(int64(b.Bytes))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.fails.Add(1)
		s.failed(err)
		if s.plan.Load().FailMode == idl.DupFailSkip {
			s.skipped.Add(int64(b.Writes))
			s.lg.Warn("duplication batch skipped (FAIL_SKIP)", "writes", b.Writes, "err", err)
			return nil
		}
		if try == 0 {
			s.lg.Warn("duplication batch not taken; retrying", "err", err)
		} else {
			s.lg.Debug("duplication batch not taken; retrying", "try", try+1, "err", err)
		}
		if !s.sleep(ctx, s.cfg.RetryDelay) {
			return ctx.Err()
		}
		if s.statusChanged(p) {
			return errPlanChanged
		}
	}
}
