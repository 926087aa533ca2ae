package raftlog

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
)

// Options tunes a Log: its durability, its group commit and its segments. The zero value
// of a field means its default.
type Options struct {
	// Durability says when a write counts as durable: DurabilityAlways (the default) or the
	// unsafe DurabilityOS.
	Durability Durability
	// SyncInterval is how often a log with DurabilityOS is synced (default 100 ms).
	SyncInterval time.Duration

	// Window is the longest a round of a contended log (the last round served several
	// groups) waits for the other recently active groups to join it. 0: no wait.
	Window time.Duration
	// Delay and Siblings: while at least Siblings client writes are waiting on the log's
	// groups (Group.Writing), sync rounds start at most once per Delay, so that one fsync
	// covers more of them; the idea of PostgreSQL's commit_delay and commit_siblings.
	// Below Siblings, or with Delay 0, rounds start as soon as the last one is done.
	// Window and Delay apply only to DurabilityAlways: with DurabilityOS a round makes no
	// fsync that waiting would share.
	Delay    time.Duration
	Siblings int

	// SegmentSize is the size past which the log starts a new segment file (default
	// 64 MiB). A record larger than a segment gets a segment of its own.
	SegmentSize int64

	// Faults, if set, stands between the log and its disk (tests: package diskfault);
	// nil is the real disk.
	Faults Faults
	// NoSpaceRetry is how often a log whose last write found the disk full tries again
	// (default 100 ms).
	NoSpaceRetry time.Duration
}

// Faults is a disk that can fail: the log calls Write before it creates or writes a file
// at path (an error fails that write as the disk would), and has its fsyncs done by Sync,
// which calls sync (the fsync of f, or of the log's directory when f is nil) or fails.
type Faults interface {
	Write(path string) error
	Sync(f *os.File, sync func() error) error
}

// Durability says when the log acknowledges a write (answers Sync, returns from Save).
type Durability uint8

const (
	// DurabilityAlways acknowledges a write once it is fsynced: it survives a crash of
	// the process and of the machine.
	DurabilityAlways Durability = iota
	// DurabilityOS acknowledges a write once it is written to the operating system, and
	// fsyncs the log every Options.SyncInterval, in the manner of etcd's
	// --unsafe-no-fsync and Pegasus's plog_force_flush=false. An acknowledged write
	// survives a crash of the process (the kernel holds it), but not a power loss or
	// kernel crash of the machine within the interval: a power loss of a quorum of a
	// group's servers within it can lose acknowledged writes, or leave the replicas
	// disagreeing about what was committed.
	DurabilityOS
)

// String returns the durability's setting value: "always" or "os".
func (d Durability) String() string {
	switch d {
	case DurabilityAlways:
		return "always"
	case DurabilityOS:
		return "os"
	}
	return fmt.Sprintf("Durability(%d)", uint8(d))
}

// ParseDurability parses a durability setting value: "always" or "os".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "always":
		return DurabilityAlways, nil
	case "os":
		return DurabilityOS, nil
	}
	return 0, fmt.Errorf("raftlog: durability %q: want always or os", s)
}

// Defaults of Options.
const (
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultSegmentSize  = 64 << 20
	DefaultNoSpaceRetry = 100 * time.Millisecond
)

// DefaultOptions are the group commit settings of servers. The delay is taken only under
// heavy write concurrency (12 or more writes waiting). BenchmarkReplicatedWrites, 64 writers,
// side by side: with 3 replicas it raises throughput (fewer rounds, fewer fsyncs and
// acknowledgements for the CPU to run) and triples the writes per fsync; with 1 replica,
// where every write waits for exactly one round, it costs about 14% of the throughput.
var DefaultOptions = Options{Window: time.Millisecond, Delay: 3 * time.Millisecond, Siblings: 12}

// withDefaults fills the fields whose zero value means a default.
func (o Options) withDefaults() Options {
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.NoSpaceRetry <= 0 {
		o.NoSpaceRetry = DefaultNoSpaceRetry
	}
	return o
}

// activeRounds is how many recent sync rounds a group counts as active after it took part
// in one: a round's window ends early once every active group has joined it.
const activeRounds = 4

// syncer is the group commit of a Log. Groups stage their Ready batches in the log's
// memory, then ask for a round; one goroutine runs the rounds: each writes everything
// staged to the active segment and, with DurabilityAlways, fdatasyncs it, one fsync for
// every request of the round.
//
// While the log is contended (the last round served more than one group), a round first
// waits, so that the Ready batches of other groups, and the client writes queued behind
// them, share its fsync: until every group active in the last few rounds has joined, or
// the commit window has passed, whichever comes first. An uncontended log syncs at once:
// a lone writer pays no window. Under heavy write concurrency rounds are spaced instead
// (Options.Delay). With DurabilityOS rounds only write, at once, and a timer's rounds
// fsync.
type syncer struct {
	// round writes everything staged, and makes it durable if asked to.
	round func(durable bool) error
	opts  Options

	writers atomic.Int64 // client writes waiting on the log's groups
	peak    atomic.Int64 // the most writers waited at once since the last round started

	mu      sync.Mutex
	pending []chan error
	joined  map[idl.GPID]bool // the groups in pending
	target  int               // len(joined) that ends the current window; 0: none open
	closed  bool

	flush atomic.Bool // staged data waits to be written, with no request for it

	wake     chan struct{} // a request is pending, or flush is set
	full     chan struct{} // every active group has joined the open window
	stopping chan struct{} // closed by close
	done     chan struct{}
}

func newSyncer(round func(durable bool) error, opts Options) *syncer {
	s := &syncer{
		round:    round,
		opts:     opts,
		joined:   map[idl.GPID]bool{},
		wake:     make(chan struct{}, 1),
		full:     make(chan struct{}, 1),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}
	go s.loop()
	return s
}

// request asks for a sync round on behalf of group pid: the channel answers once everything
// staged before the call is durable (nil) or cannot be made so.
func (s *syncer) request(pid idl.GPID) <-chan error { return s.requestFor(&pid) }

// requestFor asks for a round on behalf of group *pid, or of no group (the log's own
// maintenance) when pid is nil: that one does not count in the commit window.
func (s *syncer) requestFor(pid *idl.GPID) <-chan error {
	ch := make(chan error, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ch <- errClosed
		return ch
	}
	s.pending = append(s.pending, ch)
	if pid != nil {
		s.joined[*pid] = true
	}
	if s.target > 0 && len(s.joined) >= s.target {
		s.target = 0
		signal(s.full)
	}
	s.mu.Unlock()
	signal(s.wake)
	return ch
}

// requestFlush asks for a round that writes what is staged, without waiting for it.
func (s *syncer) requestFlush() {
	s.flush.Store(true)
	signal(s.wake)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *syncer) loop() {
	defer close(s.done)
	always := s.opts.Durability == DurabilityAlways
	var tick <-chan time.Time
	if !always {
		t := time.NewTicker(s.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	active := map[idl.GPID]int{} // group → rounds it still counts as active
	var timer *time.Timer
	contended := false
	var lastStart time.Time
	for {
		timed := false
		select {
		case <-s.wake:
		case <-tick:
			timed = true
		}
		if always {
			if s.busy() {
				if d := s.opts.Delay - time.Since(lastStart); d > 0 {
					time.Sleep(d)
				}
			} else if contended && s.opts.Window > 0 {
				s.gather(len(active), &timer)
			}
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
		flush := s.flush.Swap(false)
		if len(batch) == 0 && !timed && !flush {
			if closed {
				return
			}
			continue
		}
		err := s.round(timed || (always && len(batch) > 0))
		if errors.Is(err, ErrNoSpace) && !closed {
			// Nothing of the round reached the disk for certain, and it is all still
			// staged: its requests wait for a later round that finds space, rather than
			// fail (raft would have to stop the group); the server refuses new client
			// writes meanwhile.
			s.mu.Lock()
			s.pending = append(batch, s.pending...)
			s.mu.Unlock()
			s.flush.Store(true)
			s.pause(s.opts.NoSpaceRetry)
			continue
		}
		for _, ch := range batch {
			ch <- err
		}
		if closed {
			return
		}
	}
}

// pause waits for d, or until the syncer is closed.
func (s *syncer) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stopping:
	}
	signal(s.wake)
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

// close answers every waiter, after a last round, and stops the loop.
func (s *syncer) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stopping)
	signal(s.wake)
	signal(s.full)
	<-s.done
}
