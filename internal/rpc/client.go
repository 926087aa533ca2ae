package rpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Client defaults.
const (
	DefaultDialTimeout = 3 * time.Second
	// DefaultCallTimeout bounds a call whose context has no deadline.
	DefaultCallTimeout = 10 * time.Second
	// DefaultMaxReplySize bounds a reply frame. Pegasus scan batches and multi_gets can be
	// tens of MiB; a frame claiming more than this is treated as a broken stream.
	DefaultMaxReplySize = 256 << 20
)

// ErrConnBroken is wrapped by the error of every call that was pending on a connection when
// it broke, and of calls that could not be sent because it broke.
var ErrConnBroken = errors.New("rpc: connection broken")

// ErrClosed is returned by calls on a closed [Conn].
var ErrClosed = errors.New("rpc: connection closed by caller")

// ConnConfig configures a [Conn]. Zero values mean the documented defaults.
type ConnConfig struct {
	// DialTimeout bounds connecting (default DefaultDialTimeout).
	DialTimeout time.Duration
	// CallTimeout bounds a call whose context has no deadline (default DefaultCallTimeout).
	CallTimeout time.Duration
	// MaxReplySize bounds one reply frame (default DefaultMaxReplySize).
	MaxReplySize int
	// Peer, if set, authenticates every connection as a peer of the cluster (see
	// [DialPeer]) before the first request: the servers' connections to each other.
	Peer *PeerCredentials
	// TLS, if set (and Peer is not), makes every connection TLS (see [DialTLS]): the
	// server's certificate is verified against TLS.RootCAs for TLS.ServerName, or for the
	// host of the address when that is empty; a client certificate in TLS.Certificates is
	// the client's identity to a server that verifies them.
	TLS *tls.Config
	// Auth, if set, negotiates the client's identity on every new connection, before its
	// first request (RPC_NEGOTIATION, see negotiate.go).
	Auth ClientAuthenticator
	// MaxQueuedBytes, if positive, bounds the requests queued on the connection and not yet
	// handed to the socket: a call or Send that finds this much queued waits (within its
	// context) until the writer takes it. Zero: no bound, calls never wait to be queued.
	MaxQueuedBytes int
}

// Conn is a pipelined client connection to one server. Calls from many goroutines share it:
// each request carries a fresh sequence id and replies are matched back by it, in whatever
// order they arrive. The TCP connection is dialled on first use; when it breaks, every pending
// call fails with an error wrapping [ErrConnBroken], and the next call dials again. A Conn is
// safe for concurrent use.
type Conn struct {
	addr string
	cfg  ConnConfig

	mu      sync.Mutex
	sess    *session // current connection; nil before the first dial and after a break
	dialing chan struct{}
	dialErr error
	closed  bool
}

// NewConn returns a Conn to addr ("host:port"). It does not dial.
func NewConn(addr string, cfg ConnConfig) *Conn {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.MaxReplySize <= 0 {
		cfg.MaxReplySize = DefaultMaxReplySize
	}
	return &Conn{addr: addr, cfg: cfg}
}

// Addr returns the server address.
func (c *Conn) Addr() string { return c.addr }

// Close closes the connection; pending and later calls fail with [ErrClosed]. It waits for
// the connection's goroutines to exit.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	s := c.sess
	c.sess = nil
	dialing := c.dialing
	c.mu.Unlock()
	if dialing != nil {
		<-dialing
		c.mu.Lock()
		s = c.sess
		c.sess = nil
		c.mu.Unlock()
	}
	if s != nil {
		s.fail(ErrClosed)
		s.wg.Wait()
	}
	return nil
}

// Call sends the RPC name with args under header h and decodes the result into reply. The
// header's ClientTimeout is set from ctx's deadline (or the configured call timeout), which
// also bounds the wait. The envelope error of a reply is returned as a [wire.Code] (or
// [wire.UnknownCodeError]), wrapped with the RPC name. reply's byte slices alias the reply
// frame, which is not reused.
func (c *Conn) Call(ctx context.Context, h wire.Header, name string, args, reply idl.Value) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.cfg.CallTimeout)
	}
	if err := setClientTimeout(&h, deadline); err != nil {
		return err
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	cl := getCall()
	defer putCall(cl)
	// A context with a deadline is done by then; without one, the call's own timer bounds
	// the wait. The timer is pooled with the call, so neither case allocates.
	var timeout <-chan time.Time
	if !ok {
		cl.timer.Reset(time.Until(deadline))
		timeout = cl.timer.C
	}
	if err := s.send(ctx, &h, name, args, cl); err != nil {
		return err
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		if s.forget(cl) {
			return fmt.Errorf("rpc: %s to %s: %w", name, c.addr, ctx.Err())
		}
		<-cl.done // the reply or failure is being delivered right now
	case <-timeout:
		if s.forget(cl) {
			return fmt.Errorf("rpc: %s to %s: %w", name, c.addr, context.DeadlineExceeded)
		}
		<-cl.done
	}
	if cl.err != nil {
		return fmt.Errorf("rpc: %s: %w", name, cl.err)
	}
	if r := &cl.reply; r.Err != nil {
		return fmt.Errorf("rpc: %s to %s: %w", name, c.addr, r.Err)
	}
	if err := wire.DecodeResult(cl.reply.Body, reply); err != nil {
		return fmt.Errorf("rpc: %s to %s: %w", name, c.addr, err)
	}
	return nil
}

// Send sends a request that gets no reply (RPC_RRDB_RRDB_CLEAR_SCANNER). It returns once the
// request is queued for writing.
func (c *Conn) Send(ctx context.Context, h wire.Header, name string, args idl.Value) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.cfg.CallTimeout)
	}
	if err := setClientTimeout(&h, deadline); err != nil {
		return err
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	return s.send(ctx, &h, name, args, nil)
}

// setClientTimeout fills the header's client timeout: the milliseconds left until deadline,
// computed without the official go-client's 32-bit wrap.
func setClientTimeout(h *wire.Header, deadline time.Time) error {
	left := time.Until(deadline)
	if left <= 0 {
		return context.DeadlineExceeded
	}
	ms := left.Milliseconds()
	if ms > math.MaxUint32 {
		ms = math.MaxUint32
	}
	h.ClientTimeout = uint32(ms)
	return nil
}

// session returns the live connection, dialling if there is none. Concurrent callers share
// one dial.
func (c *Conn) session(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if s := c.sess; s != nil {
			select {
			case <-s.dead:
				// It broke before it was installed (its reader's breakSession found
				// another current session and left it): no one else will take it down.
				c.sess = nil
				c.mu.Unlock()
				continue
			default:
			}
			c.mu.Unlock()
			return s, nil
		}
		if c.dialing == nil {
			ch := make(chan struct{})
			c.dialing = ch
			c.mu.Unlock()
			s, err := c.dial(ctx)
			c.mu.Lock()
			c.dialing = nil
			c.dialErr = err
			if err == nil {
				if c.closed {
					c.mu.Unlock()
					s.fail(ErrClosed)
					s.wg.Wait()
					close(ch)
					return nil, ErrClosed
				}
				c.sess = s
			}
			c.mu.Unlock()
			close(ch)
			if err != nil {
				return nil, err
			}
			return s, nil
		}
		ch := c.dialing
		c.mu.Unlock()
		select {
		case <-ch:
			c.mu.Lock()
			s, err := c.sess, c.dialErr
			c.mu.Unlock()
			if s != nil {
				return s, nil
			}
			if err != nil {
				return nil, err
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("rpc: connect to %s: %w", c.addr, ctx.Err())
		}
	}
}

func (c *Conn) dial(ctx context.Context) (*session, error) {
	var nc net.Conn
	var err error
	switch {
	case c.cfg.Peer != nil:
		nc, err = DialPeer(ctx, c.addr, c.cfg.Peer, c.cfg.DialTimeout)
	case c.cfg.TLS != nil:
		nc, err = DialTLS(ctx, c.addr, c.cfg.TLS, c.cfg.DialTimeout)
	default:
		d := net.Dialer{Timeout: c.cfg.DialTimeout}
		if nc, err = d.DialContext(ctx, "tcp", c.addr); err != nil {
			err = fmt.Errorf("rpc: connect to %s: %w", c.addr, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if c.cfg.Auth != nil {
		if err := negotiateClient(ctx, nc, c.addr, c.cfg.Auth, c.cfg.DialTimeout+c.cfg.CallTimeout, c.cfg.MaxReplySize); err != nil {
			_ = nc.Close()
			return nil, err
		}
	}
	s := &session{
		conn:    c,
		nc:      nc,
		pending: make(map[int32]*call),
		wake:    make(chan struct{}, 1),
		dead:    make(chan struct{}),
	}
	s.wg.Add(2)
	go s.readLoop()
	go s.writeLoop()
	return s, nil
}

// breakSession marks s broken (if it is still current) so the next call dials again.
func (c *Conn) breakSession(s *session, cause error) {
	c.mu.Lock()
	if c.sess == s {
		c.sess = nil
	}
	c.mu.Unlock()
	s.fail(fmt.Errorf("rpc: connection to %s: %w: %w", c.addr, ErrConnBroken, cause))
}

// call is one outstanding request. Calls are pooled; done is buffered so delivery never
// blocks.
type call struct {
	done  chan struct{}
	timer *time.Timer // stopped unless the call is waiting without a context deadline
	seq   int32
	reply wire.Reply // aliases the reply frame
	err   error
}

var callPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &call{done: make(chan struct{}, 1), timer: t}
}}

func getCall() *call { return callPool.Get().(*call) }

func putCall(cl *call) {
	select { // drain a completion that raced with a context end
	case <-cl.done:
	default:
	}
	cl.timer.Stop() // since Go 1.23 a stopped timer's channel holds no stale value
	cl.reply, cl.err = wire.Reply{}, nil
	callPool.Put(cl)
}

// session is one TCP connection with its reader and writer goroutines.
type session struct {
	conn *Conn
	nc   net.Conn
	wg   sync.WaitGroup

	mu      sync.Mutex
	seq     int32
	pending map[int32]*call
	wbuf    []byte
	err     error // set once the session is dead
	wake    chan struct{}
	dead    chan struct{}
	// taken is made by a sender waiting for room (ConnConfig.MaxQueuedBytes) and closed by
	// the writer when it takes the queue.
	taken chan struct{}
}

// send registers cl (unless nil) and queues the request for the writer, first waiting
// while MaxQueuedBytes are queued (until ctx ends).
func (s *session) send(ctx context.Context, h *wire.Header, name string, args idl.Value, cl *call) error {
	s.mu.Lock()
	for limit := s.conn.cfg.MaxQueuedBytes; limit > 0 && s.err == nil && len(s.wbuf) >= limit; {
		if s.taken == nil {
			s.taken = make(chan struct{})
		}
		ch := s.taken
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.dead:
		case <-ctx.Done():
			return fmt.Errorf("rpc: %s to %s: queue full: %w", name, s.conn.addr, ctx.Err())
		}
		s.mu.Lock()
	}
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	s.seq++
	if s.seq <= 0 {
		s.seq = 1
	}
	id := s.seq
	if cl != nil {
		cl.seq = id
		s.pending[id] = cl
	}
	s.wbuf = wire.AppendRequest(s.wbuf, h, name, id, args)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// forget unregisters cl after its caller gave up. It reports false when the reply (or a
// failure) was already handed to cl.
func (s *session) forget(cl *call) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[cl.seq] == cl {
		delete(s.pending, cl.seq)
		return true
	}
	return false
}

// fail kills the session: it closes the socket and fails every pending call with err.
func (s *session) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	pending := s.pending
	s.pending = nil
	s.wbuf = nil
	close(s.dead)
	s.mu.Unlock()
	_ = s.nc.Close()
	for _, cl := range pending {
		cl.err = err
		cl.done <- struct{}{}
	}
}

func (s *session) writeLoop() {
	defer s.wg.Done()
	var spare []byte
	for {
		select {
		case <-s.wake:
		case <-s.dead:
			return
		}
		// Let callers that are about to queue a request do so first: one larger write costs
		// far less than several small ones, and loopback writes dominate a call's cost.
		runtime.Gosched()
		s.mu.Lock()
		out := s.wbuf
		if len(out) == 0 {
			s.mu.Unlock()
			continue // a stale wake-up: keep the buffers as they are
		}
		s.wbuf = spare[:0]
		if s.taken != nil {
			close(s.taken)
			s.taken = nil
		}
		s.mu.Unlock()
		_ = s.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.nc.Write(out); err != nil {
			s.conn.breakSession(s, err)
			return
		}
		if cap(out) <= 1<<20 {
			spare = out
		} else {
			spare = nil
		}
	}
}

func (s *session) readLoop() {
	defer s.wg.Done()
	br := bufio.NewReaderSize(s.nc, 64<<10)
	var lenBuf [4]byte
	max := s.conn.cfg.MaxReplySize
	for {
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			s.conn.breakSession(s, err)
			return
		}
		n := int(binary.BigEndian.Uint32(lenBuf[:]))
		if n < 4+4 || n > max {
			s.conn.breakSession(s, fmt.Errorf("%w: reply of %d bytes (max %d)", wire.ErrFrameTooLarge, n, max))
			return
		}
		frame := make([]byte, n)
		copy(frame, lenBuf[:])
		if _, err := io.ReadFull(br, frame[4:]); err != nil {
			s.conn.breakSession(s, err)
			return
		}
		r, err := wire.DecodeReply(frame)
		if err != nil {
			s.conn.breakSession(s, err)
			return
		}
		s.mu.Lock()
		cl := s.pending[r.SeqID]
		delete(s.pending, r.SeqID)
		s.mu.Unlock()
		if cl == nil {
			continue // the caller gave up on it; drop it, as the official clients do
		}
		cl.reply = r
		cl.done <- struct{}{}
	}
}
