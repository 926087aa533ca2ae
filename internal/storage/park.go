package storage

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Parking. An idle store costs its Pebble database's open files (the lock file, directories,
// the MANIFEST, its tables in the file cache) and memory (memtables, the version's
// metadata), about eight files and half a MiB each: a server with a thousand idle partition
// replicas holds thousands of files for nothing. A store given a [Parking] is parked once
// nothing used it for the parking's idle time: its memtable is flushed and its Pebble
// database closed, while the DB itself stays valid; the next operation that needs the data
// reopens it (a Pebble open of a store with no WAL to replay: a few milliseconds, two
// fsyncs for its new OPTIONS file) and goes on as if it had never been closed. Metrics
// of a parked store are those it had when it was parked, without reopening it.
//
// What keeps a store open: an operation in progress (every method that reads or writes the
// data), a scanner context (it holds a Pebble iterator), a running manual compaction or
// purge, a sweeper pass. The sweeper skips its passes while the store is parked (expired
// records are invisible to reads anyway); the next pass after the store reopens deletes
// them.
//
// The discipline: state counts the users of pdb (operations inside, background passes),
// plus parkedBit while pdb is closed or being closed. A user adds one; if parkedBit was
// set, it takes the one back and reopens (under mu) before trying again. Parking takes mu
// and swaps a state of exactly zero users for parkedBit, so it never closes pdb under a
// user, and a user that comes meanwhile waits on mu for the reopen. pdb is written only
// under mu with parkedBit set, and read only by users, whose atomic add observed the clear
// bit that the writer's own atomic add published after the write.

// parkedBit is set in parkState.state while the Pebble database is closed (parked, or being
// parked, or closed for good by Close).
const parkedBit = 1 << 62

// ParkingOptions configure a [Parking]. The zero value parks nothing.
type ParkingOptions struct {
	// Idle: a store unused this long is parked (at least 4 ms); 0 parks none for being idle.
	Idle time.Duration
	// MaxOpen bounds the stores of the parking whose Pebble database is open: a store about
	// to open (a new store, or a parked one its next operation reopens) first parks the least
	// recently used stores that nothing uses, as many as it takes to stay within MaxOpen.
	// The stores in use (an operation inside, a scanner context, a background pass) are not
	// parked, so the bound is exceeded while more than MaxOpen are in use at once (counted in
	// [ParkingStats].OverBound). 0: no bound.
	MaxOpen int
}

// Parking parks the idle stores given it through [Options.Parking], with one goroutine for
// all of them, and bounds how many of them are open. Make it with [NewParking] and Close it
// after the last of its stores closed.
type Parking struct {
	idle    time.Duration // 0: no parking by time
	every   time.Duration
	maxOpen int64 // 0: no bound
	// base anchors the stores' lastUse, in nanoseconds of the monotonic clock since base.
	base time.Time

	mu     sync.Mutex
	stores map[*DB]struct{}

	// open counts the stores whose Pebble database is open or being opened: a store counts
	// itself before its Pebble open (admit) and uncounts itself once its database is closed
	// or its open failed.
	open atomic.Int64

	parks, reopens, reopenNanos, reopenMaxNanos, failures atomic.Int64
	evictions, overBound                                  atomic.Int64
	parked                                                atomic.Int64

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// parkRounds is how many rounds of the parking goroutine an idle time lasts: a store is
// parked between one and 1.25 idle times after its last use.
const parkRounds = 4

// NewParking returns a parking with opts, and starts its goroutine (if it parks by time).
func NewParking(opts ParkingOptions) *Parking {
	pk := &Parking{
		maxOpen: int64(max(opts.MaxOpen, 0)),
		base:    time.Now(),
		stores:  make(map[*DB]struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if opts.Idle > 0 {
		pk.idle = max(opts.Idle, 4*time.Millisecond)
		pk.every = pk.idle / parkRounds
		go pk.run()
	} else {
		close(pk.done)
	}
	return pk
}

// Idle returns the idle time after which a store is parked (0: never for being idle).
func (pk *Parking) Idle() time.Duration { return pk.idle }

// MaxOpen returns the bound on the open stores (0: none).
func (pk *Parking) MaxOpen() int { return int(pk.maxOpen) }

// Close stops the parking's goroutine and waits for it. Its stores should be closed first
// (those still open stay as they are: open or parked). Calling Close again does nothing.
func (pk *Parking) Close() {
	pk.once.Do(func() { close(pk.stop) })
	<-pk.done
}

// ParkingStats are the figures of a [Parking].
type ParkingStats struct {
	Stores int // stores given the parking and not closed
	Parked int // of which parked now
	// Open counts the stores whose Pebble database is open or being opened now.
	Open int
	// Parks and Reopens count the parkings and the reopens so far; ReopenTime is their
	// total time and ReopenMax the longest. Failures counts the parkings that failed (a
	// flush or a Pebble close that returned an error, logged by the store).
	Parks, Reopens, Failures int64
	ReopenTime, ReopenMax    time.Duration
	// Evictions counts the parkings made to keep within MaxOpen (also counted in Parks);
	// OverBound the opens that found the bound reached and no store to park (all in use).
	Evictions, OverBound int64
}

// Stats returns the parking's figures.
func (pk *Parking) Stats() ParkingStats {
	pk.mu.Lock()
	n := len(pk.stores)
	pk.mu.Unlock()
	return ParkingStats{
		Stores:     n,
		Parked:     int(pk.parked.Load()),
		Open:       int(pk.open.Load()),
		Parks:      pk.parks.Load(),
		Reopens:    pk.reopens.Load(),
		Failures:   pk.failures.Load(),
		ReopenTime: time.Duration(pk.reopenNanos.Load()),
		ReopenMax:  time.Duration(pk.reopenMaxNanos.Load()),
		Evictions:  pk.evictions.Load(),
		OverBound:  pk.overBound.Load(),
	}
}

// now returns the parking's clock: nanoseconds since base, monotonic.
func (pk *Parking) now() int64 { return int64(time.Since(pk.base)) }

func (pk *Parking) add(db *DB) {
	pk.mu.Lock()
	pk.stores[db] = struct{}{}
	pk.mu.Unlock()
}

func (pk *Parking) remove(db *DB) {
	pk.mu.Lock()
	delete(pk.stores, db)
	pk.mu.Unlock()
}

// admit counts a store about to open its Pebble database, first parking the least recently
// used idle stores when the bound would be exceeded. The caller uncounts it (opened(false))
// if the open fails. admit never waits for a store in use, and never fails: with every open
// store in use, the open goes ahead beyond the bound.
func (pk *Parking) admit() {
	n := pk.open.Add(1)
	if pk.maxOpen == 0 || n <= pk.maxOpen {
		return
	}
	// Twice at most: a candidate may have been taken meanwhile (used, parked or closed).
	for range 2 {
		over := pk.open.Load() - pk.maxOpen
		if over <= 0 {
			return
		}
		for _, db := range pk.leastRecentlyUsed(int(over)) {
			if ok, _ := db.tryPark(); ok {
				pk.evictions.Add(1)
			}
		}
	}
	if pk.open.Load() > pk.maxOpen {
		pk.overBound.Add(1)
	}
}

// leastRecentlyUsed returns up to n open stores that nothing uses now, those unused longest
// first.
func (pk *Parking) leastRecentlyUsed(n int) []*DB {
	type cand struct {
		db      *DB
		lastUse int64
	}
	var cands []cand
	pk.mu.Lock()
	for db := range pk.stores {
		// A scanner context's iterator holds the database (parkLocked would refuse it).
		if st := &db.park; st.state.Load() == 0 && db.scanners.len() == 0 {
			cands = append(cands, cand{db, st.lastUse.Load()})
		}
	}
	pk.mu.Unlock()
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.lastUse, b.lastUse) })
	dbs := make([]*DB, 0, min(n, len(cands)))
	for _, c := range cands[:min(n, len(cands))] {
		dbs = append(dbs, c.db)
	}
	return dbs
}

func (pk *Parking) run() {
	defer close(pk.done)
	t := time.NewTicker(pk.every)
	defer t.Stop()
	var dbs []*DB
	for {
		select {
		case <-pk.stop:
			return
		case <-t.C:
		}
		now := pk.now()
		dbs = dbs[:0]
		pk.mu.Lock()
		for db := range pk.stores {
			if st := &db.park; st.state.Load() == 0 && now-st.lastUse.Load() > int64(pk.idle) {
				dbs = append(dbs, db)
			}
		}
		pk.mu.Unlock()
		for _, db := range dbs {
			select {
			case <-pk.stop:
				return
			default:
			}
			_, _ = db.park1(true)
		}
		clear(dbs)
	}
}

// parkState is a store's part of the parking (see the comment at the top of the file).
type parkState struct {
	pk *Parking // nil: the store is never parked by time (DB.Park still parks it)
	// mu serializes parking, reopening and Close's closing of the Pebble database.
	mu sync.Mutex
	// state counts the users of the Pebble database, plus parkedBit while it is closed.
	state atomic.Int64
	// lastUse is pk's clock at the last use's end (or at the open).
	lastUse atomic.Int64
	// writes counts the commits to the memtable; flushed is its value as of the last
	// parking, whose flush wrote them all out (both written by users or under mu with
	// parkedBit set).
	writes  atomic.Uint64
	flushed uint64
	// metrics are the Pebble figures as of parking (guarded by mu).
	metrics Metrics
	// closed is set by Close (guarded by mu).
	closed bool
}

// use admits a user of the Pebble database, reopening it if it is parked. Call it inside
// the gate, and unuse when done.
func (db *DB) use() error {
	st := &db.park
	for {
		if st.state.Add(1)&parkedBit == 0 {
			return nil
		}
		st.state.Add(-1)
		if err := db.reopen(); err != nil {
			return err
		}
	}
}

// unuse ends a use begun by use, which counts as activity.
func (db *DB) unuse() {
	st := &db.park
	if st.pk != nil {
		st.lastUse.Store(st.pk.now())
	}
	st.state.Add(-1)
}

// pin admits a background pass (sweeper, compaction, purge) if the database is open, without
// reopening it; unpin ends it. A pass is not activity: it does not delay the parking.
func (db *DB) pin() bool {
	st := &db.park
	if st.state.Add(1)&parkedBit == 0 {
		return true
	}
	st.state.Add(-1)
	return false
}

func (db *DB) unpin() { db.park.state.Add(-1) }

// enter admits an operation on the data: inside the gate, with the Pebble database open.
// It returns ErrClosed once Close has begun, or the error of a failed reopen. Call exit
// when done.
func (db *DB) enter() error {
	if !db.gate.Enter() {
		return ErrClosed
	}
	if err := db.use(); err != nil {
		db.gate.Exit()
		return err
	}
	return nil
}

func (db *DB) exit() {
	db.unuse()
	db.gate.Exit()
}

// committed records a commit to the memtable, which a parking must flush. Call it as a
// user, after the commit.
func (db *DB) committed() { db.park.writes.Add(1) }

// pebbleOptions returns the options of a Pebble open of the store.
func (db *DB) pebbleOptions() *pebble.Options {
	po := db.po.Clone()
	if db.opts.Compactions != nil {
		// A scheduler serves one Pebble database (its Register is called once).
		po.Experimental.CompactionScheduler = db.opts.Compactions.scheduler()
	}
	return po
}

// reopen opens the parked Pebble database again (nothing if it is open).
func (db *DB) reopen() error {
	st := &db.park
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.state.Load()&parkedBit == 0 {
		return nil
	}
	if st.closed {
		return ErrClosed
	}
	if st.pk != nil {
		st.pk.admit()
	}
	start := time.Now()
	pdb, err := openPebble(db.opts.Dir, db.pebbleOptions())
	if err != nil {
		if st.pk != nil {
			st.pk.open.Add(-1)
		}
		db.lg.Error("reopen parked store", "dir", db.opts.Dir, "err", err)
		return fmt.Errorf("storage: reopen %s: %w", db.opts.Dir, err)
	}
	took := time.Since(start)
	db.pdb = pdb
	if pk := st.pk; pk != nil {
		st.lastUse.Store(pk.now())
		pk.parked.Add(-1)
		pk.reopens.Add(1)
		pk.reopenNanos.Add(int64(took))
		for {
			m := pk.reopenMaxNanos.Load()
			if int64(took) <= m || pk.reopenMaxNanos.CompareAndSwap(m, int64(took)) {
				break
			}
		}
	}
	st.state.Add(-parkedBit) // publishes pdb to the users that come next
	db.lg.Debug("parked store reopened", "dir", db.opts.Dir, "took", took)
	return nil
}

// Park parks the store now if nothing uses it (see [Parking]): it flushes the memtable and
// closes the Pebble database, which the next operation reopens. It reports whether the
// store is parked; false with a nil error when it is in use, holds a scanner context or was
// closed. Parking a parked store reports true.
func (db *DB) Park() (bool, error) { return db.park1(false) }

// Parked reports whether the store is parked now.
func (db *DB) Parked() bool {
	st := &db.park
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.closed && st.state.Load()&parkedBit != 0
}

// park1 parks the store if nothing uses it and, when idleOnly, nothing used it for the
// parking's idle time.
func (db *DB) park1(idleOnly bool) (bool, error) {
	st := &db.park
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return false, nil
	}
	if st.state.Load()&parkedBit != 0 {
		return true, nil
	}
	if idleOnly && (st.pk == nil || st.pk.idle == 0 || st.pk.now()-st.lastUse.Load() <= int64(st.pk.idle)) {
		return false, nil
	}
	return db.parkLocked()
}

// tryPark parks the store, to keep its parking within its bound, if nothing uses it and no
// one holds its park.mu (the one that does may be reopening it, or parking it already: it
// is not waited for, which keeps a reopening store that parks others from waiting on one
// that does the same). It reports whether it parked the store.
func (db *DB) tryPark() (bool, error) {
	st := &db.park
	if !st.mu.TryLock() {
		return false, nil
	}
	defer st.mu.Unlock()
	if st.closed || st.state.Load()&parkedBit != 0 {
		return false, nil
	}
	return db.parkLocked()
}

// parkLocked parks the open store if nothing uses it. Call it with park.mu held.
func (db *DB) parkLocked() (bool, error) {
	st := &db.park
	if db.scanners.len() > 0 {
		return false, nil // its iterators hold the database
	}
	if !st.state.CompareAndSwap(0, parkedBit) {
		return false, nil // in use
	}
	// No user is inside, and those that come wait on mu. A scanner context is made only by a
	// user: none can have appeared since the check above.
	if w := st.writes.Load(); db.opts.NoWAL && w != st.flushed {
		// Without a WAL, the memtable would be lost with the close.
		if err := db.pdb.Flush(); err != nil {
			st.state.Add(-parkedBit)
			db.parkFailed()
			db.lg.Warn("park store: flush", "dir", db.opts.Dir, "err", err)
			return false, fmt.Errorf("storage: park: flush: %w", err)
		}
		st.flushed = w
	}
	st.metrics = db.pebbleMetrics()
	err := db.pdb.Close()
	db.pdb = nil
	if pk := st.pk; pk != nil {
		pk.open.Add(-1)
		pk.parked.Add(1)
		pk.parks.Add(1)
	}
	if err != nil {
		// Pebble is closed whatever its Close returned: the next use opens it again.
		db.parkFailed()
		db.lg.Warn("park store: close", "dir", db.opts.Dir, "err", err)
		return true, fmt.Errorf("storage: park: close: %w", err)
	}
	db.lg.Debug("store parked", "dir", db.opts.Dir)
	return true, nil
}

func (db *DB) parkFailed() {
	if pk := db.park.pk; pk != nil {
		pk.failures.Add(1)
	}
}

// closePebble closes the Pebble database for good (Close, once no user or background pass
// is left), unless it is parked.
func (db *DB) closePebble() error {
	st := &db.park
	if st.pk != nil {
		st.pk.remove(db)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closed = true
	if st.state.Load()&parkedBit != 0 {
		if st.pk != nil {
			st.pk.parked.Add(-1)
		}
		return nil
	}
	st.state.Add(parkedBit)
	err := db.pdb.Close()
	db.pdb = nil
	if st.pk != nil {
		st.pk.open.Add(-1)
	}
	return err
}
