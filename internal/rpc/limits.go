package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Defaults of the connection bounds of [Limits].
const (
	// DefaultFrameTimeout bounds the reading of one request once its first byte arrived: a
	// client that starts a frame and stalls is closed after it, whatever the frame's size.
	DefaultFrameTimeout = 30 * time.Second
	// DefaultMaxConns bounds the thrift and HTTP connections a server holds at once.
	DefaultMaxConns = 10000
	// DefaultMaxConnsPerHost bounds the connections of one source address (IP).
	DefaultMaxConnsPerHost = 2000
	// DefaultMaxConnBuffered bounds the bytes one connection holds: bodies of the requests
	// in flight plus replies queued for it. Past it the server stops reading that
	// connection until replies are written (a client that never reads is closed after
	// WriteTimeout).
	DefaultMaxConnBuffered = 64 << 20
	// DefaultMaxServerBuffered bounds the bytes of request bodies all connections hold
	// together (what arrived, read in growing chunks, until the handler returned); a
	// request whose body does not fit is shed with ERR_BUSY (see readBody).
	DefaultMaxServerBuffered = 128 << 20
)

// Errors of the connection bounds; the connection concerned is closed.
var (
	// ErrFrameTimeout: a request was not received whole within FrameTimeout.
	ErrFrameTimeout = errors.New("rpc: request not received within the frame timeout")
	// ErrTooManyConns: the server or the source address holds its maximum of connections.
	ErrTooManyConns = errors.New("rpc: too many connections")
)

// Limits are the bounds a [Server] puts on what clients make it hold. Zero values mean the
// defaults; see the README's Limits table.
type Limits struct {
	// MaxRequestSize bounds one request body in bytes (default DefaultMaxRequestSize); a
	// larger header's claim closes the connection before anything is allocated for it.
	MaxRequestSize int
	// FrameTimeout bounds the reading of a frame once started (default DefaultFrameTimeout).
	FrameTimeout time.Duration
	// MaxConns and MaxConnsPerHost bound connections per server and per source IP; a
	// connection past them is closed at once (counted in RejectedConnections).
	MaxConns, MaxConnsPerHost int
	// MaxConnBuffered bounds the bytes of one connection (request bodies in flight and
	// replies queued); MaxServerBuffered the request bodies of the whole server.
	MaxConnBuffered, MaxServerBuffered int64
	// MaxInFlight bounds the requests of one connection being handled at once (default
	// DefaultMaxInFlight); WriteTimeout bounds one write of replies (default
	// DefaultWriteTimeout): a client that does not read for that long is closed.
	MaxInFlight  int
	WriteTimeout time.Duration
}

func (l *Limits) fill() {
	if l.MaxRequestSize <= 0 {
		l.MaxRequestSize = DefaultMaxRequestSize
	}
	if l.FrameTimeout <= 0 {
		l.FrameTimeout = DefaultFrameTimeout
	}
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerHost <= 0 {
		l.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if l.MaxConnBuffered <= 0 {
		l.MaxConnBuffered = DefaultMaxConnBuffered
	}
	if l.MaxServerBuffered <= 0 {
		l.MaxServerBuffered = DefaultMaxServerBuffered
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	// A request of the largest size must always fit once the budgets are empty.
	if l.MaxConnBuffered < int64(l.MaxRequestSize) {
		l.MaxConnBuffered = int64(l.MaxRequestSize)
	}
	if l.MaxServerBuffered < int64(l.MaxRequestSize) {
		l.MaxServerBuffered = int64(l.MaxRequestSize)
	}
}

// LimitSettings are the settings of [Limits] in a server's registry (section "network").
type LimitSettings struct {
	MaxRequestBytes, FrameTimeoutMS, MaxConns, MaxConnsPerHost *config.Value[uint32]
	MaxInFlight, WriteTimeoutMS                                *config.Value[uint32]
	MaxConnBufferedBytes, MaxServerBufferedBytes               *config.Value[uint64]
}

// DefineLimits registers the connection bounds in r, each with its default.
func DefineLimits(r *config.Registry) *LimitSettings {
	u32 := func(name, desc string, def uint32) *config.Value[uint32] {
		return config.Define(r, config.Spec[uint32]{Section: "network", Name: name, Description: desc, Default: def,
			Validate: func(v uint32) error {
				if v == 0 {
					return errors.New("must be positive")
				}
				return nil
			}})
	}
	u64 := func(name, desc string, def uint64) *config.Value[uint64] {
		return config.Define(r, config.Spec[uint64]{Section: "network", Name: name, Description: desc, Default: def,
			Validate: func(v uint64) error {
				if v == 0 {
					return errors.New("must be positive")
				}
				return nil
			}})
	}
	return &LimitSettings{
		MaxRequestBytes: u32("max_request_bytes",
			"The largest request body accepted, in bytes; a larger frame closes the connection before anything is allocated for it.", DefaultMaxRequestSize),
		FrameTimeoutMS: u32("frame_read_timeout_ms",
			"How long, in milliseconds, a request may take to arrive once its first byte did; past it the connection is closed.", uint32(DefaultFrameTimeout/time.Millisecond)),
		MaxConns: u32("max_connections",
			"The most connections (RPC and HTTP) the server holds at once; more are closed as they are accepted.", DefaultMaxConns),
		MaxConnsPerHost: u32("max_connections_per_host",
			"The most connections one source IP holds at once; more are closed as they are accepted.", DefaultMaxConnsPerHost),
		MaxInFlight: u32("max_requests_in_flight_per_connection",
			"The most requests of one connection handled at once; past it the server stops reading the connection until some finish.", DefaultMaxInFlight),
		WriteTimeoutMS: u32("write_timeout_ms",
			"How long, in milliseconds, one write of replies to a client may block; a client that does not read for that long is closed.", uint32(DefaultWriteTimeout/time.Millisecond)),
		MaxConnBufferedBytes: u64("max_connection_buffered_bytes",
			"The bytes one connection holds (bodies of requests in flight and replies queued); past it the server stops reading the connection until its replies are written.", DefaultMaxConnBuffered),
		MaxServerBufferedBytes: u64("max_server_buffered_bytes",
			"The bytes of request bodies all connections hold together, from their first bytes until their handlers return; a request whose body does not fit is read through, dropped and answered ERR_BUSY (the last eighth is kept for requests of at most 4 KiB; raft frames are never refused).", DefaultMaxServerBuffered),
	}
}

// Limits returns the bounds the settings say.
func (ls *LimitSettings) Limits() Limits {
	return Limits{
		MaxRequestSize:    int(ls.MaxRequestBytes.Get()),
		FrameTimeout:      time.Duration(ls.FrameTimeoutMS.Get()) * time.Millisecond,
		MaxConns:          int(ls.MaxConns.Get()),
		MaxConnsPerHost:   int(ls.MaxConnsPerHost.Get()),
		MaxConnBuffered:   int64(ls.MaxConnBufferedBytes.Get()),
		MaxServerBuffered: int64(ls.MaxServerBufferedBytes.Get()),
		MaxInFlight:       int(ls.MaxInFlight.Get()),
		WriteTimeout:      time.Duration(ls.WriteTimeoutMS.Get()) * time.Millisecond,
	}
}

// budget counts bytes held against a limit. acquire waits while the bytes would not fit,
// unless nothing is held (so one request of any admitted size always goes through). The
// uncontended paths are atomic operations only; waiters sleep on a channel that release
// closes when there are any.
type budget struct {
	limit   int64
	used    atomic.Int64
	waiters atomic.Int32
	mu      sync.Mutex
	freed   chan struct{} // made by the first waiter, closed by the next release
}

func newBudget(limit int64) *budget { return &budget{limit: limit} }

// tryTake takes n bytes if they fit (or nothing is held).
func (b *budget) tryTake(n int64) bool {
	for {
		u := b.used.Load()
		if u != 0 && u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// tryTakeWithin takes n bytes if they fit within limit (or nothing is held).
func (b *budget) tryTakeWithin(n, limit int64) bool {
	for {
		u := b.used.Load()
		if u != 0 && u+n > limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// wait runs until ok() holds (checked as a waiter, so no release is missed), ctx ends
// (its error) or stop is closed (nil).
func (b *budget) wait(ctx context.Context, stop <-chan struct{}, ok func() bool) error {
	for {
		b.mu.Lock()
		b.waiters.Add(1)
		if ok() {
			b.waiters.Add(-1)
			b.mu.Unlock()
			return nil
		}
		if b.freed == nil {
			b.freed = make(chan struct{})
		}
		ch := b.freed
		b.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		case <-stop:
			err = errStopped
		}
		b.waiters.Add(-1)
		if errors.Is(err, errStopped) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// errStopped ends a wait on its stop channel.
var errStopped = errors.New("rpc: stopped")

func (b *budget) acquire(ctx context.Context, n int64) error {
	if b.tryTake(n) {
		return nil
	}
	return b.wait(ctx, nil, func() bool { return b.tryTake(n) })
}

// waitRoom waits until less than the limit is held, or ctx or stop ends.
func (b *budget) waitRoom(ctx context.Context, stop <-chan struct{}) {
	if b.used.Load() < b.limit {
		return
	}
	_ = b.wait(ctx, stop, func() bool { return b.used.Load() < b.limit })
}

// force takes n bytes without waiting (replies: a handler never blocks on its connection).
func (b *budget) force(n int64) { b.used.Add(n) }

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.used.Add(-n)
	if b.waiters.Load() > 0 {
		b.mu.Lock()
		if b.freed != nil {
			close(b.freed)
			b.freed = nil
		}
		b.mu.Unlock()
	}
}

func (b *budget) inUse() int64 { return b.used.Load() }

// Shedding. The server's budget of request bodies (Limits.MaxServerBuffered) covers what
// every connection has read and not answered: a body holds its place from its first bytes
// until its handler returned. A request whose body does not fit is not waited for (a
// connection waiting would stall the requests queued behind it on that connection, and the
// wait would make the server hold what it cannot serve in time): its body is read through
// and dropped, and it is answered ERR_BUSY at once, its RPC and sequence id taken from the
// body's first bytes. The last eighth of the budget is kept for requests of at most
// smallRequest bytes, so that reads and small writes are still served while large writes
// fill the rest. Requests of routes handled inline (peer traffic such as raft frames,
// which the writes in flight wait for) are never shed: each takes its place at once, and
// gives it back when it has been handled.

// smallRequest is the largest body the reserve of the server's budget takes.
const smallRequest = 4 << 10

// errShed is readBody's error for a body that does not fit in the server's budget.
var errShed = errors.New("rpc: request shed: the server holds max_server_buffered_bytes")

// unshedable peeks at the start of a body of n bytes and reports whether its RPC is one
// that is never shed (a route handled inline).
func (sc *serverConn) unshedable(n int) (bool, error) {
	prefix, err := sc.br.Peek(min(n, maxNamePrefix))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // a started frame cut short
		}
		return false, err
	}
	name, _, _, err := wire.ParseRequestBody(prefix)
	if err != nil {
		return false, nil // the body is malformed: handle says so once it is read
	}
	rt := sc.s.routes[string(name)]
	return rt != nil && rt.inline, nil
}

// maxNamePrefix is how many bytes of a body hold its message header: the RPC name (at
// most 256 bytes, checked by wire) and the sequence id.
const maxNamePrefix = 4 + 4 + 256 + 4

// take takes c bytes of the server's budget for a body of n bytes, unless it does not fit
// (force: always).
func (s *Server) take(c, n int, force bool) bool {
	if force {
		s.bodies.force(int64(c))
		return true
	}
	limit := s.bodies.limit
	if n > smallRequest {
		limit -= limit / 8
	}
	return s.bodies.tryTakeWithin(int64(c), limit)
}

// readBody reads a body of n bytes, growing the buffer as bytes arrive and taking each
// growth from the server's budget first, so a header that claims a large body makes the
// server hold no more than twice what was really sent. On success the budget holds n bytes
// for the body; on error, nothing. When a growth does not fit it returns errShed and the
// part of the body read so far (at least its first bytes), which shed reads on from.
func (s *Server) readBody(ctx context.Context, r io.Reader, n int, force bool) ([]byte, error) {
	const first = 64 << 10
	c := min(n, first)
	if !s.take(c, n, force) {
		s.metrics.shed.Add(1)
		return nil, errShed
	}
	b := make([]byte, 0, c)
	for len(b) < n {
		if len(b) == cap(b) {
			c := min(2*cap(b), n)
			if !s.take(c-cap(b), n, force) {
				s.bodies.release(int64(cap(b)))
				s.metrics.shed.Add(1)
				return b, errShed
			}
			nb := make([]byte, len(b), c)
			copy(nb, b)
			b = nb
		}
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil && len(b) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			s.bodies.release(int64(cap(b)))
			return nil, err
		}
	}
	return b, nil
}

// shed answers ERR_BUSY to a request whose body did not fit, of n bytes of which read were
// read: it reads the rest through a small buffer and drops it.
func (sc *serverConn) shed(ctx context.Context, read []byte, n int) error {
	prefix := read
	if len(prefix) < min(n, maxNamePrefix) {
		p, err := sc.br.Peek(min(n, maxNamePrefix) - len(prefix))
		if err != nil {
			return err
		}
		prefix = append(prefix, p...)
	}
	nb, seqID, _, perr := wire.ParseRequestBody(prefix)
	name := string(nb) // nb may alias the reader's buffer, which the discarding reuses
	if _, err := io.CopyN(io.Discard, sc.br, int64(n-len(read))); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	rt := sc.s.routes[name]
	switch {
	case rt == nil:
		sc.send(ctx, ackOf(name), seqID, wire.ErrBusy, nil)
	case !rt.rpc.IsOneWay():
		sc.send(ctx, rt.rpc.AckName, seqID, wire.ErrBusy, nil)
	}
	return nil
}

// hostOf is the source address a connection counts against.
func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// admit counts a new connection against MaxConns and MaxConnsPerHost; the returned func
// gives its place back.
func (s *Server) admit(c net.Conn) (func(), error) {
	host := hostOf(c.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.open >= s.cfg.Limits.MaxConns {
		return nil, fmt.Errorf("%w: %d open (max_connections)", ErrTooManyConns, s.mu.open)
	}
	if n := s.mu.perHost[host]; n >= s.cfg.Limits.MaxConnsPerHost {
		return nil, fmt.Errorf("%w: %d open from %s (max_connections_per_host)", ErrTooManyConns, n, host)
	}
	s.mu.open++
	s.mu.perHost[host]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.mu.open--
		if s.mu.perHost[host]--; s.mu.perHost[host] <= 0 {
			delete(s.mu.perHost, host)
		}
	}, nil
}
