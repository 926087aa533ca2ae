package raftlog

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gopegasus/pegasus/internal/idl"
)

// Options tunes a Log's group commit.
type Options struct {
	// Window is the longest a round of a contended log (the last round served several
	// groups) waits for the other recently active groups to join it. 0: no wait.
	Window time.Duration
	// Delay and Siblings: while at least Siblings client writes are waiting on the log's
	// groups (Group.Writing), sync rounds start at most once per Delay, so that one fsync
	// covers more of them; the idea of PostgreSQL's commit_delay and commit_siblings.
	// Below Siblings, or with Delay 0, rounds start as soon as the last one is done.
	Delay    time.Duration
	Siblings int
}

// DefaultOptions are the group commit settings of servers. The delay is taken only under
// heavy write concurrency (12 or more writes waiting). BenchmarkReplicatedWrites, 64 writers,
// side by side: with 3 replicas it raises throughput (fewer rounds, fewer fsyncs and
// acknowledgements for the CPU to run) and triples the writes per fsync; with 1 replica,
// where every write waits for exactly one round, it costs about 14% of the throughput.
var DefaultOptions = Options{Window: time.Millisecond, Delay: 3 * time.Millisecond, Siblings: 12}

// activeRounds is how many recent sync rounds a group counts as active after it took part
// in one: a round's window ends early once every active group has joined it.
const activeRounds = 4

var errClosed = errors.New("raftlog: closed")

// syncMarker is the WAL record whose synchronous commit makes durable every record written
// before it: Pebble syncs its WAL up to the record, and a WAL file it rotates away from is
// synced when closed.
var syncMarker = []byte{'s'}

// syncer is the group commit of a Log. Groups stage their Ready batches in Pebble without a
// sync, then ask for a sync round; one goroutine runs the rounds, one fsync each.
//
// While the log is contended (the last round served more than one group), a round first
// waits, so that the Ready batches of other groups, and the client writes queued behind
// them, share its fsync: until every group active in the last few rounds has joined, or
// the commit window has passed, whichever comes first. An uncontended log syncs at once:
// a lone writer pays no window. Under heavy write concurrency rounds are spaced instead
// (Options.Delay).
type syncer struct {
	db   *pebble.DB
	opts Options

	writers atomic.Int64 // client writes waiting on the log's groups
	peak    atomic.Int64 // the most writers waited at once since the last round started

	mu      sync.Mutex
	pending []chan error
	joined  map[idl.GPID]bool // the groups in pending
	target  int               // len(joined) that ends the current window; 0: none open
	closed  bool

	wake chan struct{} // a request is pending
	full chan struct{} // every active group has joined the open window
	done chan struct{}
}

func newSyncer(db *pebble.DB, opts Options) *syncer {
	s := &syncer{
		db:     db,
		opts:   opts,
		joined: map[idl.GPID]bool{},
		wake:   make(chan struct{}, 1),
		full:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go s.loop()
	return s
}

// request asks for a sync round on behalf of group pid: the channel answers once everything
// staged before the call is durable (nil) or cannot be made so.
func (s *syncer) request(pid idl.GPID) <-chan error {
	ch := make(chan error, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ch <- errClosed
		return ch
	}
	s.pending = append(s.pending, ch)
	s.joined[pid] = true
	if s.target > 0 && len(s.joined) >= s.target {
		s.target = 0
		signal(s.full)
	}
	s.mu.Unlock()
	signal(s.wake)
	return ch
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *syncer) loop() {
	defer close(s.done)
	active := map[idl.GPID]int{} // group → rounds it still counts as active
	var timer *time.Timer
	contended := false
	var lastStart time.Time
	for range s.wake {
		if s.busy() {
			if d := s.opts.Delay - time.Since(lastStart); d > 0 {
				time.Sleep(d)
			}
		} else if contended && s.opts.Window > 0 {
			s.gather(len(active), &timer)
		}
		lastStart = time.Now()
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		contended = len(s.joined) > 1
		for pid := range s.joined {
			active[pid] = activeRounds + 1
		}
		clear(s.joined)
		s.target = 0
		closed := s.closed
		s.mu.Unlock()
		for pid, n := range active {
			if n <= 1 {
				delete(active, pid)
			} else {
				active[pid] = n - 1
			}
		}
		if len(batch) == 0 {
			if closed {
				return
			}
			continue
		}
		err := s.db.LogData(syncMarker, pebble.Sync)
		for _, ch := range batch {
			ch <- err
		}
		if closed {
			return
		}
	}
}

// writing counts client writes waiting on the log's groups, and their peak.
func (s *syncer) writing(delta int) {
	n := s.writers.Add(int64(delta))
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// busy reports whether enough client writes waited at once, since the last round started,
// for rounds to be spaced. The peak, not the count at this moment: a round is usually
// requested just after the last one answered its writes, when fewest are waiting.
func (s *syncer) busy() bool {
	peak := s.peak.Swap(s.writers.Load())
	return s.opts.Delay > 0 && s.opts.Siblings > 0 && peak >= int64(s.opts.Siblings)
}

// gather waits until want groups have joined the round, or the window has passed.
func (s *syncer) gather(want int, timer **time.Timer) {
	s.mu.Lock()
	select {
	case <-s.full:
	default:
	}
	if len(s.joined) >= want || s.closed {
		s.mu.Unlock()
		return
	}
	s.target = want
	s.mu.Unlock()
	if *timer == nil {
		*timer = time.NewTimer(s.opts.Window)
	} else {
		(*timer).Reset(s.opts.Window)
	}
	select {
	case <-s.full:
		(*timer).Stop()
	case <-(*timer).C:
	}
}

// close answers every waiter and stops the loop; the database must still be open.
func (s *syncer) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	signal(s.wake)
	signal(s.full)
	<-s.done
}
