package storage

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Compactions grants the automatic compactions of many stores (the partitions of one
// server) with one goroutine for all of them.
//
// Each store runs as many compactions at once as Pebble allows it
// (DBForCompaction.GetAllowedWithoutPermission), exactly as Pebble's default scheduler
// lets it. What differs is the sampling: Pebble's default keeps a goroutine and a 100 ms
// ticker per store, to notice when a store whose compaction had to wait may run more (a
// flush raised its allowance). Here a store is sampled only while a compaction of its
// waits, by one goroutine shared by all the stores, which sleeps when none waits: an idle
// partition costs no wakeup.
//
// Give the same Compactions to every store of a server through [Options.Compactions], and
// Close it after the last of them closed.
type Compactions struct {
	mu      sync.Mutex
	waiting map[*storeCompactions]struct{}
	// started is set once the goroutine runs: it starts with the first wait, so that a
	// Compactions no store ever needed costs nothing.
	started, closed bool
	poke            chan struct{}
	stop            chan struct{}
	done            chan struct{}
}

// compactionSampling is how often the stores whose compactions wait are sampled.
const compactionSampling = 100 * time.Millisecond

// NewCompactions returns the granter to share between stores. Its goroutine starts when a
// compaction first waits.
func NewCompactions() *Compactions {
	return &Compactions{
		waiting: make(map[*storeCompactions]struct{}),
		poke:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Close stops the granter and waits for its goroutine. The stores given it must be closed
// first. Calling Close again does nothing.
func (c *Compactions) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	started := c.started
	c.mu.Unlock()
	close(c.stop)
	if started {
		<-c.done
	}
}

// Waiting returns how many stores have a compaction waiting for a grant.
func (c *Compactions) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiting)
}

// scheduler returns the pebble.CompactionScheduler of one new store.
func (c *Compactions) scheduler() pebble.CompactionScheduler {
	s := &storeCompactions{shared: c}
	s.granting.cond = sync.NewCond(&s.mu)
	return s
}

// wait puts s among the stores sampled until their compactions stop waiting.
func (c *Compactions) wait(s *storeCompactions) {
	c.mu.Lock()
	_, already := c.waiting[s]
	c.waiting[s] = struct{}{}
	if !c.started && !c.closed {
		c.started = true
		go c.run()
	}
	c.mu.Unlock()
	if !already {
		select {
		case c.poke <- struct{}{}:
		default:
		}
	}
}

func (c *Compactions) forget(s *storeCompactions) {
	c.mu.Lock()
	delete(c.waiting, s)
	c.mu.Unlock()
}

// run samples the waiting stores every compactionSampling while there are any, and sleeps
// otherwise.
func (c *Compactions) run() {
	defer close(c.done)
	var tick <-chan time.Time
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	var batch []*storeCompactions
	for {
		select {
		case <-c.stop:
			return
		case <-c.poke:
		case <-tick:
		}
		c.mu.Lock()
		batch = batch[:0]
		for s := range c.waiting {
			batch = append(batch, s)
		}
		c.mu.Unlock()
		for _, s := range batch {
			if !s.grant() {
				c.forget(s)
			}
		}
		c.mu.Lock()
		any := len(c.waiting) > 0
		c.mu.Unlock()
		switch {
		case any && ticker == nil:
			ticker = time.NewTicker(compactionSampling)
			tick = ticker.C
		case !any && ticker != nil:
			ticker.Stop()
			ticker, tick = nil, nil
		}
	}
}

// storeCompactions is one store's pebble.CompactionScheduler (Pebble registers a scheduler
// with exactly one store) and its grant handle.
type storeCompactions struct {
	shared *Compactions
	// db is set by Register, before any other call.
	db pebble.DBForCompaction
	mu sync.Mutex
	// running is the compactions granted and not done; lastAllowed the store's allowance
	// when last asked.
	running, lastAllowed int
	unregistered         bool
	// granting serializes grants (from Done and from the shared goroutine) and lets
	// Unregister wait for the one under way.
	granting struct {
		on   bool
		cond *sync.Cond
	}
}

var _ pebble.CompactionScheduler = (*storeCompactions)(nil)
var _ pebble.CompactionGrantHandle = (*storeCompactions)(nil)

func (s *storeCompactions) Register(_ int, db pebble.DBForCompaction) { s.db = db }

// Unregister stops granting to the store, waiting for a grant under way.
func (s *storeCompactions) Unregister() {
	s.shared.forget(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unregistered = true
	for s.granting.on {
		s.granting.cond.Wait()
	}
}

// TrySchedule grants a compaction if the store is below its allowance; otherwise the store
// is sampled until its compaction no longer waits. Pebble calls it holding the store's
// mutex.
func (s *storeCompactions) TrySchedule() (bool, pebble.CompactionGrantHandle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unregistered {
		return false, nil
	}
	s.lastAllowed = s.db.GetAllowedWithoutPermission()
	if s.lastAllowed > s.running {
		s.running++
		return true, s
	}
	s.shared.wait(s)
	return false, nil
}

// UpdateGetAllowedWithoutPermission is Pebble's hint that the allowance may have grown (a
// flush finished): the store is sampled at once if it did.
func (s *storeCompactions) UpdateGetAllowedWithoutPermission() {
	s.mu.Lock()
	allowed := s.db.GetAllowedWithoutPermission()
	grew := allowed > s.lastAllowed
	s.lastAllowed = allowed
	unregistered := s.unregistered
	s.mu.Unlock()
	if grew && !unregistered {
		s.shared.wait(s)
	}
}

func (s *storeCompactions) Started()                                          {}
func (s *storeCompactions) MeasureCPU(pebble.CompactionGoroutineKind)         {}
func (s *storeCompactions) CumulativeStats(pebble.CompactionGrantHandleStats) {}

// Done is called by Pebble when a granted compaction ends: the next waiting one may run.
func (s *storeCompactions) Done() {
	s.mu.Lock()
	s.running--
	s.mu.Unlock()
	if s.grant() {
		s.shared.wait(s)
	}
}

// grant starts the store's waiting compactions up to its allowance, and reports whether one
// may still be waiting (the allowance is used up), so that the store stays sampled. It is
// called without the store's mutex held, since the store's methods it calls take the
// store's own.
func (s *storeCompactions) grant() (waiting bool) {
	s.mu.Lock()
	for s.granting.on {
		s.granting.cond.Wait()
	}
	if s.unregistered {
		s.mu.Unlock()
		return false
	}
	s.lastAllowed = s.db.GetAllowedWithoutPermission()
	free := s.lastAllowed - s.running
	if free <= 0 {
		s.mu.Unlock()
		return true
	}
	s.granting.on = true
	s.mu.Unlock()
	waiting = true
	for ; free > 0; free-- {
		if w, _ := s.db.GetWaitingCompaction(); !w {
			waiting = false
			break
		}
		if !s.db.Schedule(s) {
			waiting = false
			break
		}
		s.mu.Lock()
		s.running++
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.granting.on = false
	s.granting.cond.Broadcast()
	s.mu.Unlock()
	return waiting
}
