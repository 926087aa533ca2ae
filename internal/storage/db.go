package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gopegasus/pegasus/internal/lifecycle"
	"github.com/gopegasus/pegasus/internal/stopctx"
)

// Metadata keys. Every encoded user key is at least 2 bytes long and every user range starts
// at or above 00 00, so keys shorter than 2 bytes can never collide with user data. Only two
// such keys also sort below 00 00 and therefore stay outside every iteration over the user key
// space (a 1-byte key such as 01 would fall inside a full-partition scan): the empty key and
// the single byte 00.
var (
	metaVersionKey = []byte{}     // u32 BE data version, written once at creation
	metaAppliedKey = []byte{0x00} // u64 BE last applied index || u32 BE apply clock || split state (split.go), by every Apply
	userKeyMin     = []byte{0x00, 0x00}
)

// Defaults of [Options].
const (
	DefaultScannerIdleTimeout = 5 * time.Minute
	DefaultSweepInterval      = 10 * time.Minute
	DefaultSweepRate          = 50000
	DefaultIterationTimeLimit = 30 * time.Second
)

// ErrClosed is returned by operations on a closed [DB].
var ErrClosed = errors.New("storage: database closed")

// ErrStaleIndex is returned by [DB.Apply] when a batch's index is not above the last applied
// index.
var ErrStaleIndex = errors.New("storage: batch index not above last applied index")

// Options configures [Open]. The zero value of every field except Dir means its default.
type Options struct {
	// Dir is the directory of the partition's Pebble database. Required.
	Dir string
	// Now is the clock of the read path (expiry of reads, scanner idle timeouts, iteration
	// time budgets) and of the sweeper. Default time.Now. Apply never reads it.
	Now func() time.Time
	// ClusterID is the duplication cluster id stored in every value's timetag (0..127).
	ClusterID uint8
	// PartitionIndex and PartitionCount identify the partition, for scans that validate the
	// partition hash (PartitionCount 0 disables that validation unless a split recorded a
	// count, see split.go; [DB.SetPartitionCount] changes it). PartitionIndex is also the
	// partition whose keys the store keeps once a split recorded its count.
	PartitionIndex, PartitionCount int32
	// ScannerIdleTimeout drops a scanner context not used for this long. Default 5 minutes.
	ScannerIdleTimeout time.Duration
	// Limits bound what one read makes the store hold (zero fields: the defaults).
	Limits Limits
	// SweepInterval is the pause between two passes of the expired-record sweeper, measured
	// from the end of one pass to the start of the next. Default 10 minutes; negative
	// disables the sweeper ([DB.Sweep] still works).
	SweepInterval time.Duration
	// SweepRate bounds the records per second the sweeper examines. Default 50000.
	SweepRate int
	// SyncWrites makes Apply fsync the WAL. Default false: the raft log is the durability
	// source and a replica replays it from LastAppliedIndex after a crash.
	SyncWrites bool
	// NoWAL runs the store without a write-ahead log: whatever was applied since the last
	// memtable flush is lost in a crash (atomically: data and applied index together), so
	// the store reopens at an older LastAppliedIndex. Right when a replicated log above it
	// is the durability source and replays what is missing; it saves writing every record
	// twice. SyncApplied and Checkpoint flush the memtable instead of syncing a WAL.
	// Incompatible with SyncWrites.
	NoWAL bool
	// Logger receives lifecycle messages. Default: discard.
	Logger *slog.Logger
	// Pebble, if set, is used as the base Pebble options (the cache, memtable size, ...).
	// It is copied; Logger and event hooks may be overwritten.
	Pebble *pebble.Options
	// Compactions, if set, grants the store's automatic compactions, shared with the other
	// stores given the same (see [Compactions]). Default: Pebble's own scheduler, with a
	// goroutine of its own per store.
	Compactions *Compactions
	// Parking, if set, parks the store once it is idle (see [Parking]): its Pebble database
	// is closed until the next operation reopens it. Default: the store stays open.
	Parking *Parking
}

// Env holds the table environment settings a replica may change at run time.
type Env struct {
	// ValidatePartitionHash is the table env replica.split.validate_partition_hash: scans that
	// ask for it skip records whose hash does not map to this partition.
	ValidatePartitionHash bool
	// IterationTimeLimit is the time budget of multi_get, sortkey_count and scans
	// (replica.rocksdb_iteration_threshold_time_ms). 0 means 30 s; negative means no limit.
	IterationTimeLimit time.Duration
}

// DB is one partition replica's store. All methods are safe for concurrent use; writes are
// serialized by [DB.Apply].
type DB struct {
	opts Options
	lg   *slog.Logger
	// pdb is the Pebble database, nil while the store is parked: use it only between enter
	// and exit, or use (or pin) and unuse (unpin), see park.go.
	pdb *pebble.DB
	// po are the Pebble options the database is opened with (and reopened, park.go).
	po      *pebble.Options
	park    parkState
	version uint32 // data version of the value schema
	writeOp *pebble.WriteOptions

	applied atomic.Uint64
	// applyClock is the largest proposer time (epoch seconds) of any batch applied so far.
	// Apply decides expiry by it and the sweeper deletes only what it says is expired, so a
	// sweeper delete never changes an Apply decision. Guarded by applyMu.
	applyClock uint32
	env        atomic.Pointer[Env]
	// gate admits every operation that uses pdb, so Close can wait for them: Pebble panics
	// on a closed database. The sweeper and compaction goroutines are joined through wg.
	// Operations enter both the gate and the parking's count of users (enter, park.go).
	gate lifecycle.Gate

	// applyMu serializes Apply, the sweeper's deletes and checkpoints, so each sees one
	// consistent applied index.
	applyMu sync.Mutex

	scanners scannerTable

	// The split state (split.go): owned is the partition count the store owns keys by (0:
	// none recorded), purged the count whose other partitions' records are all deleted,
	// purging whether that deletion runs; assigned is the count the replica says. owned is
	// written under applyMu, purged and purging are guarded by it.
	owned    atomic.Int32
	purged   int32
	purging  bool
	assigned atomic.Int32

	compaction struct {
		sync.Mutex
		status CompactionStatus
	}

	reclaimed   atomic.Int64
	sweepPasses atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open opens the partition database in opts.Dir, creating it (with data version 1) if it
// does not exist. A directory produced by [DB.Checkpoint] opens like any other.
func Open(opts Options) (*DB, error) {
	if opts.Dir == "" {
		return nil, errors.New("storage: Options.Dir is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Limits.fill()
	if opts.ScannerIdleTimeout <= 0 {
		opts.ScannerIdleTimeout = DefaultScannerIdleTimeout
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	if opts.SweepRate <= 0 {
		opts.SweepRate = DefaultSweepRate
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	var po *pebble.Options
	if opts.Pebble != nil {
		po = opts.Pebble.Clone()
	} else {
		po = &pebble.Options{}
	}
	if po.Logger == nil {
		po.Logger = PebbleLogger(lg)
	}
	if opts.NoWAL {
		if opts.SyncWrites {
			return nil, errors.New("storage: SyncWrites needs the WAL (NoWAL is set)")
		}
		po.DisableWAL = true
	}
	db := &DB{opts: opts, lg: lg, po: po, stop: make(chan struct{})}
	pk := opts.Parking
	if pk != nil {
		pk.admit() // this store counts as open from here on
	}
	pdb, err := openPebble(opts.Dir, db.pebbleOptions())
	if err != nil {
		if pk != nil {
			pk.open.Add(-1)
		}
		return nil, fmt.Errorf("storage: open %s: %w", opts.Dir, err)
	}
	db.pdb = pdb
	db.writeOp = pebble.NoSync
	if opts.SyncWrites {
		db.writeOp = pebble.Sync
	}
	db.env.Store(&Env{})
	db.assigned.Store(opts.PartitionCount)
	if err := db.loadMeta(); err != nil {
		_ = pdb.Close()
		if pk != nil {
			pk.open.Add(-1)
		}
		return nil, err
	}
	db.scanners.init(opts.ScannerIdleTimeout, opts.Limits.MaxScanners)
	db.applyMu.Lock()
	db.startPurgeLocked() // one that a close interrupted
	db.applyMu.Unlock()
	if opts.SweepInterval > 0 {
		db.wg.Add(1)
		go db.sweepLoop()
	}
	if pk != nil {
		db.park.pk = pk
		db.park.lastUse.Store(pk.now())
		pk.add(db)
	}
	lg.Info("storage opened", "dir", opts.Dir, "applied", db.applied.Load(), "data_version", db.version)
	return db, nil
}

func (db *DB) loadMeta() error {
	v, closer, err := db.pdb.Get(metaVersionKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		db.version = dataVersion1
		b := db.pdb.NewBatch()
		var buf [4]byte
		binary.BigEndian.PutUint32(buf[:], db.version)
		_ = b.Set(metaVersionKey, buf[:], nil)
		err = db.commitDurably(b)
		_ = b.Close()
		if err != nil {
			return fmt.Errorf("storage: record data version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("storage: read data version: %w", err)
	default:
		if len(v) != 4 {
			_ = closer.Close()
			return fmt.Errorf("storage: malformed data version record (%d bytes)", len(v))
		}
		db.version = binary.BigEndian.Uint32(v)
		_ = closer.Close()
		if db.version > dataVersion1 {
			return fmt.Errorf("storage: unsupported data version %d", db.version)
		}
	}
	v, closer, err = db.pdb.Get(metaAppliedKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("storage: read applied index: %w", err)
	default:
		if len(v) != 12 && len(v) != appliedRecordLen {
			_ = closer.Close()
			return fmt.Errorf("storage: malformed applied index record (%d bytes)", len(v))
		}
		db.applied.Store(binary.BigEndian.Uint64(v))
		db.applyClock = binary.BigEndian.Uint32(v[8:])
		if len(v) == appliedRecordLen {
			db.owned.Store(int32(binary.BigEndian.Uint32(v[12:])))
			db.purged = int32(binary.BigEndian.Uint32(v[16:]))
		}
		_ = closer.Close()
	}
	return nil
}

// Close closes the database. It waits for the operations in progress (a read, a scan batch,
// a checkpoint, an Apply) to finish, while those that begin meanwhile or later return
// [ErrClosed] (StartCompaction reports false, Metrics leaves out Pebble's figures); then it
// stops the sweeper and any manual compaction, drops every scanner context and closes the
// Pebble database (unless it is parked). It is safe to call concurrently with every other
// method; a second Close returns ErrClosed at once.
func (db *DB) Close() error {
	if !db.gate.Close() {
		return ErrClosed
	}
	// No operation is inside: StartCompaction's wg.Add happens inside the gate, so every
	// compaction goroutine is counted before this Wait.
	close(db.stop)
	db.wg.Wait()
	// Nothing uses pdb any more: the operations have left the gate, the background passes
	// have been joined.
	db.scanners.clear()
	return db.closePebble()
}

// LastAppliedIndex returns the log index of the last batch applied, 0 for a new database.
func (db *DB) LastAppliedIndex() uint64 { return db.applied.Load() }

// DataVersion returns the value schema version of this database (0 or 1).
func (db *DB) DataVersion() uint32 { return db.version }

// SetEnv replaces the table environment settings.
func (db *DB) SetEnv(e Env) { db.env.Store(&e) }

func (db *DB) iterationLimit() time.Duration {
	d := db.env.Load().IterationTimeLimit
	if d == 0 {
		return DefaultIterationTimeLimit
	}
	return d
}

func (db *DB) epochNow() uint32 { return EpochNow(db.opts.Now()) }

// Checkpoint writes a consistent copy of the partition to dir (which must not exist), using
// hard links where possible, and returns the applied index the copy contains. [Open] on dir
// yields a database at exactly that index.
func (db *DB) Checkpoint(dir string) (uint64, error) {
	if err := db.enter(); err != nil {
		return 0, err
	}
	defer db.exit()
	if db.opts.NoWAL {
		// Most of the memtable is flushed before the apply lock is taken, so the flush
		// under it (which writes stall behind) is short.
		if err := db.pdb.Flush(); err != nil {
			return 0, fmt.Errorf("storage: flush before checkpoint: %w", err)
		}
	}
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	idx := db.applied.Load()
	if db.opts.NoWAL {
		// Without a WAL, what is only in the memtable would be missing from the copy.
		if err := db.pdb.Flush(); err != nil {
			return 0, fmt.Errorf("storage: flush before checkpoint: %w", err)
		}
	}
	if err := db.pdb.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return 0, fmt.Errorf("storage: checkpoint to %s: %w", dir, err)
	}
	return idx, nil
}

// CompactionState is the phase of a manual compaction.
type CompactionState int

// Compaction states.
const (
	CompactionIdle CompactionState = iota
	CompactionRunning
	CompactionFinished
)

// CompactionStatus describes the last manual compaction.
type CompactionStatus struct {
	State  CompactionState
	Start  time.Time // zero when never started
	Finish time.Time // zero unless finished
	Err    error     // set if the finished compaction failed
}

// StartCompaction starts a manual compaction of the whole partition in the background and
// reports whether it started (false if one is already running or the database is closed).
func (db *DB) StartCompaction() bool {
	if db.enter() != nil {
		return false
	}
	defer db.exit()
	db.compaction.Lock()
	defer db.compaction.Unlock()
	if db.compaction.status.State == CompactionRunning {
		return false
	}
	db.compaction.status = CompactionStatus{State: CompactionRunning, Start: db.opts.Now()}
	db.wg.Add(1)
	db.pin() // cannot fail: this user keeps the database open; the compaction keeps it so
	go func() {
		defer db.wg.Done()
		defer db.unpin()
		err := db.compactAll()
		db.compaction.Lock()
		db.compaction.status.State = CompactionFinished
		db.compaction.status.Finish = db.opts.Now()
		db.compaction.status.Err = err
		db.compaction.Unlock()
		if err != nil {
			db.lg.Warn("manual compaction failed", "err", err)
		}
	}()
	return true
}

// CompactionStatus returns the state of the last manual compaction.
func (db *DB) CompactionStatus() CompactionStatus {
	db.compaction.Lock()
	defer db.compaction.Unlock()
	return db.compaction.status
}

func (db *DB) compactAll() error {
	// Deleted and expired records are invisible to iterators but still take space: the range
	// to compact is everything the sstables hold, once the memtables are flushed into them.
	if err := db.pdb.Flush(); err != nil {
		return err
	}
	levels, err := db.pdb.SSTables()
	if err != nil {
		return err
	}
	var end []byte
	for _, tables := range levels {
		for _, t := range tables {
			if k := t.Largest.UserKey; end == nil || bytes.Compare(k, end) >= 0 {
				end = k
			}
		}
	}
	if end == nil {
		return nil
	}
	end = append(append([]byte(nil), end...), 0) // immediate successor of the largest key
	return db.pdb.Compact(stopctx.New(db.stop), nil, end, true)
}

// Metrics is a point-in-time snapshot of a partition's storage statistics.
type Metrics struct {
	AppliedIndex      uint64
	DiskBytes         uint64 // bytes of all live files (tables, WAL, manifest)
	TableFiles        int64  // number of sstables
	TableBytes        int64  // bytes of sstables
	MemTableBytes     uint64
	Compactions       int64
	Flushes           int64
	CompactionDebt    uint64 // estimated bytes compactions still need to rewrite
	ExpiredReclaimed  int64  // expired records deleted by the sweeper
	SweepPasses       int64  // completed sweeper passes
	ScannerContexts   int    // live scanner contexts
	ReadAmplification int
}

// Metrics returns a snapshot of the partition's statistics.
func (db *DB) Metrics() Metrics {
	m := Metrics{
		AppliedIndex:     db.applied.Load(),
		ExpiredReclaimed: db.reclaimed.Load(),
		SweepPasses:      db.sweepPasses.Load(),
		ScannerContexts:  db.scanners.len(),
	}
	if !db.gate.Enter() {
		return m
	}
	defer db.gate.Exit()
	var pm Metrics
	if db.pin() {
		pm = db.pebbleMetrics()
		db.unpin()
	} else {
		// Parked: the figures it had then, without reopening it.
		db.park.mu.Lock()
		pm = db.park.metrics
		db.park.mu.Unlock()
	}
	m.DiskBytes, m.TableFiles, m.TableBytes = pm.DiskBytes, pm.TableFiles, pm.TableBytes
	m.MemTableBytes, m.Compactions, m.Flushes = pm.MemTableBytes, pm.Compactions, pm.Flushes
	m.CompactionDebt, m.ReadAmplification = pm.CompactionDebt, pm.ReadAmplification
	return m
}

// pebbleMetrics returns the Pebble part of [Metrics]. Call it as a user of pdb.
func (db *DB) pebbleMetrics() Metrics {
	pm := db.pdb.Metrics()
	tot := pm.Total()
	return Metrics{
		DiskBytes:         pm.DiskSpaceUsage(),
		TableFiles:        tot.TablesCount,
		TableBytes:        tot.TablesSize,
		MemTableBytes:     pm.MemTable.Size,
		Compactions:       pm.Compact.Count,
		Flushes:           pm.Flush.Count,
		CompactionDebt:    pm.Compact.EstimatedDebt,
		ReadAmplification: pm.ReadAmp(),
	}
}
