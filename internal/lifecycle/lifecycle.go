// Package lifecycle holds the two small pieces of bookkeeping the servers share to start and
// stop, in the manner of net/http's Server: [Runner] decides which of Run and Close releases a
// server's resources (exactly once, whichever comes last), and [Gate] lets a Close wait for
// the operations in progress while refusing new ones.
//
// Both are safe for concurrent use and ready as zero values.
package lifecycle

import (
	"errors"
	"sync"
	"sync/atomic"
)

// ErrServerClosed is returned by the servers' Run (rpc, meta and replica export this same
// value) once the server was stopped by Close, by Shutdown or by the end of Run's context,
// as net/http's Serve returns http.ErrServerClosed.
var ErrServerClosed = errors.New("server closed")

// ErrRunning is returned by [Runner.Start] when Run was already called.
var ErrRunning = errors.New("server already running")

// Runner records whether a server's Run has started. A server whose Run never started is
// released by its Close; one whose Run started is released by Run, and Close waits for that.
//
// Run calls Start first and, once it started, calls Finish when everything it owns has
// stopped. Close and Shutdown call Stop, which releases the server itself when Run never
// started. Everyone then waits on Done.
type Runner struct {
	mu      sync.Mutex
	started bool
	stopped bool
	done    chan struct{}
}

func (r *Runner) doneLocked() chan struct{} {
	if r.done == nil {
		r.done = make(chan struct{})
	}
	return r.done
}

// Start marks Run as started. It returns [ErrServerClosed] when the server was stopped
// before, and [ErrRunning] when Run was already called.
func (r *Runner) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.stopped:
		return ErrServerClosed
	case r.started:
		return ErrRunning
	}
	r.started = true
	r.doneLocked()
	return nil
}

// Stop marks the server as stopped. When Run never started, it frees what the server holds
// by calling release (nil: nothing to free) and then Finish, on the first call only;
// otherwise Run does both. Stop does not wait: Done tells when the server is released.
func (r *Runner) Stop(release func()) {
	r.mu.Lock()
	first := !r.started && !r.stopped
	r.stopped = true
	r.doneLocked()
	r.mu.Unlock()
	if first {
		if release != nil {
			release()
		}
		r.Finish()
	}
}

// Finish records that the server's resources are released: Done's channel closes. Run calls
// it once, when Start succeeded.
func (r *Runner) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	close(r.doneLocked())
}

// Done returns a channel that is closed once Finish was called.
func (r *Runner) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.doneLocked()
}

// RunResult is what a server's Run returns once it stopped, given the errors its parts
// returned: their failures joined, ignoring [ErrServerClosed] (a part stopped as asked), or
// ErrServerClosed when there is none.
func RunResult(errs ...error) error {
	var failed []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, ErrServerClosed) {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		return ErrServerClosed
	}
	return errors.Join(failed...)
}

// Gate counts the operations in progress on a resource, so that its Close can wait for them
// before releasing it. An operation calls Enter and, if that reported true, Exit when done;
// once Close has begun, Enter reports false. Enter never blocks, so operations may nest.
// The cost of an operation is two atomic additions.
type Gate struct {
	// state is the number of operations inside, plus closingBit once Close has begun.
	state atomic.Int64
	once  sync.Once
	mu    sync.Mutex // guards the creation of drained
	// drained is closed once Close has begun and no operation is inside.
	drained chan struct{}
}

const closingBit = 1 << 62

// Enter begins an operation. It reports false, and the operation must not go on, once Close
// has begun.
func (g *Gate) Enter() bool {
	if g.state.Add(1)&closingBit != 0 {
		g.Exit()
		return false
	}
	return true
}

// Exit ends an operation Enter admitted.
func (g *Gate) Exit() {
	if g.state.Add(-1) == closingBit {
		g.signal()
	}
}

// Closed reports whether Close has begun.
func (g *Gate) Closed() bool { return g.state.Load()&closingBit != 0 }

// Close refuses new operations and waits until those inside have exited. It reports false,
// without waiting, when Close had already begun.
func (g *Gate) Close() bool {
	d := g.drainedChan()
	old := g.state.Or(closingBit)
	if old&closingBit != 0 {
		return false
	}
	if old == 0 {
		g.signal()
	}
	<-d
	return true
}

func (g *Gate) drainedChan() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.drained == nil {
		g.drained = make(chan struct{})
	}
	return g.drained
}

// signal closes drained. Operations refused after the drain pass through zero again, hence
// the Once.
func (g *Gate) signal() {
	g.once.Do(func() { close(g.drainedChan()) })
}
