package raftlog

import (
	"errors"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gopegasus/pegasus/internal/idl"
)

// DefaultCommitWindow is the longest a contended log lets durable writes gather before it
// syncs them with one fsync.
const DefaultCommitWindow = time.Millisecond

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
// a lone writer pays no window.
type syncer struct {
	db     *pebble.DB
	window time.Duration

	mu      sync.Mutex
	pending []chan error
	joined  map[idl.GPID]bool // the groups in pending
	target  int               // len(joined) that ends the current window; 0: none open
	closed  bool

	wake chan struct{} // a request is pending
	full chan struct{} // every active group has joined the open window
	done chan struct{}
}

func newSyncer(db *pebble.DB, window time.Duration) *syncer {
	s := &syncer{
		db:     db,
		window: window,
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
	for range s.wake {
		if contended && s.window > 0 {
			s.gather(len(active), &timer)
		}
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
		*timer = time.NewTimer(s.window)
	} else {
		(*timer).Reset(s.window)
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
