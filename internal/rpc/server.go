package rpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/lifecycle"
	"github.com/gopegasus/pegasus/internal/wire"
)

// ErrServerClosed is returned by [Server.Run] after [Server.Close] or [Server.Shutdown], or
// once Run's context ended. It is [lifecycle.ErrServerClosed], the value the meta and replica
// servers' Run return too.
var ErrServerClosed = lifecycle.ErrServerClosed

// Server limits and defaults.
const (
	// DefaultMaxRequestSize bounds a request body. Pegasus rejects writes above 1 MiB with
	// ERR_INVALID_DATA; the frame limit sits well above that so the replica can give that
	// answer, and well below what would let a client make the server allocate gigabytes.
	DefaultMaxRequestSize = 16 << 20
	// DefaultMaxInFlight bounds the requests of one connection being handled at once; the
	// server stops reading that connection until some finish.
	DefaultMaxInFlight = 4096
	// DefaultWriteTimeout bounds one write of replies to a client that does not read.
	DefaultWriteTimeout = 30 * time.Second
)

// Request is one decoded RPC handed to a [HandlerFunc]. Args aliases the request frame; it
// stays valid until the handler returns (copy what must outlive it).
type Request struct {
	Header wire.Header
	// Name is the RPC name, e.g. "RPC_RRDB_RRDB_GET".
	Name  string
	SeqID int32
	// Args is the decoded args field 1, of the type idl's registry gives for Name.
	Args idl.Value
	// Remote is the client's address.
	Remote net.Addr
	// BodySize is the request body's length in bytes (servers bound write sizes by it).
	BodySize int
	// Peer is the address of the authenticated peer the request came from (a member of
	// the cluster, see [DialPeer]), or "" when its connection did not authenticate.
	Peer string
	// User is the client identity the request's connection authenticated as (a Kerberos
	// user through RPC_NEGOTIATION, see negotiate.go), or "" for an anonymous connection.
	// Access control decides with it.
	User string
	// held is what the request holds of its connection's budget until its reply is queued;
	// freed once given back.
	held  int64
	freed bool
}

// HandlerFunc serves one RPC. It returns the reply value and the envelope code; the reply is
// sent only when code is OK (an error code goes out with an empty body). Handlers run
// concurrently, each in its own goroutine; ctx ends when the server is closed (Close, Run's
// context, or the end of a Shutdown's context) or the client's connection closes, but not
// while a Shutdown lets the requests in flight finish.
type HandlerFunc func(ctx context.Context, req *Request) (idl.Value, wire.Code)

// ServerConfig configures a [Server]. Zero values mean the documented defaults.
type ServerConfig struct {
	// Listen is the TCP address to listen on, e.g. "127.0.0.1:0".
	Listen string
	// Listener, if set, is used instead of listening on Listen.
	Listener net.Listener
	// HTTP serves connections that start with an HTTP method; nil answers them 404.
	HTTP http.Handler
	// MaxRequestSize bounds a request body in bytes (default DefaultMaxRequestSize).
	MaxRequestSize int
	// MaxInFlight bounds concurrent requests per connection (default DefaultMaxInFlight).
	MaxInFlight int
	// WriteTimeout bounds one write to a client (default DefaultWriteTimeout): a client
	// that does not read its replies for that long is closed.
	WriteTimeout time.Duration
	// Limits bound connections and the bytes they make the server hold; MaxRequestSize,
	// MaxInFlight and WriteTimeout set above override Limits' fields.
	Limits Limits
	// Logger receives connection-level problems (default: discard).
	Logger *slog.Logger
	// Secret is the cluster's secret: connections that prove they hold it are from peers
	// (Request.Peer, [PeerOf]), and the routes registered with HandlePeer refuse requests
	// from any other. Nil: no peer authenticates, and those routes are open to anyone
	// (an insecure cluster).
	Secret *Secret
	// TLS, if set, serves TLS on the same port: a connection that opens with a TLS
	// ClientHello is handshaken with this configuration (certificates, ClientAuth and
	// ClientCAs as the caller set them; NextProtos is ignored), then served as thrift or
	// HTTP as a plaintext one. A client certificate that was verified names the
	// connection's user: its subject's common name ([Request].User, [UserOf]). Peer
	// exchanges are not taken inside TLS. Nil: plaintext only.
	TLS *tls.Config
	// MandatoryTLS refuses plaintext thrift and HTTP on connections that did not
	// authenticate as a peer: a thrift request is answered ERR_UNAUTHENTICATED and the
	// connection closed, an HTTP request gets 403 and a closed connection. Peer traffic
	// keeps its own authentication (Secret). It needs TLS.
	MandatoryTLS bool
	// Auth, if set, authenticates clients through RPC_NEGOTIATION (negotiate.go); nil
	// answers every negotiation SASL_AUTH_DISABLE and leaves clients anonymous.
	Auth Authenticator
}

// Server accepts connections on one port, serving Pegasus thrift RPCs and, on connections
// that start with an HTTP method, the HTTP API. Register handlers with Handle before Run.
//
// Its lifecycle is net/http's: [Server.Run] serves until [Server.Close] (immediate: the
// listener and every connection close, requests in flight are abandoned and their handlers'
// contexts end) or [Server.Shutdown] (graceful: no new connection or request is taken,
// requests in flight finish and their replies are written, then connections close; requests
// of routes handled inline, the servers' peer traffic, flow until then). Both may be called
// from any goroutine, before, during or after Run, any number of times; each returns once
// every goroutine of the server has exited. Run then returns [ErrServerClosed].
type Server struct {
	cfg    ServerConfig
	ln     net.Listener
	lg     *slog.Logger
	routes map[string]*route
	httpLn *chanListener

	run lifecycle.Runner
	// killed is closed, once, when the requests in flight must be abandoned: Close, the end
	// of Run's context or of a Shutdown's.
	killed   chan struct{}
	killOnce sync.Once
	// reqs admits the thrift requests of routes not handled inline, so a Shutdown can wait
	// for those in flight while refusing new ones; httpGate admits the HTTP handlers, so Run
	// can wait for those net/http still runs after its Close (which does not wait for them).
	reqs     lifecycle.Gate
	httpGate lifecycle.Gate
	// refusing is set when the drain begins, before reqs closes (which waits for the
	// requests in flight): from then on a request not handled inline is refused at once,
	// whichever connection it arrives on.
	refusing atomic.Bool
	mu       struct {
		sync.Mutex
		// draining is set once Close or Shutdown began: no new connection.
		draining bool
		// conns are the accepted connections not handed to net/http; their serverConn
		// once their first bytes said thrift.
		conns map[net.Conn]*serverConn
		// open and perHost count the connections held, HTTP ones included (admit).
		open    int
		perHost map[string]int
	}
	// bodies is the per-server budget of request bodies held (Limits.MaxServerBuffered).
	bodies *budget

	// Handler goroutines outlive their request: an idle one waits on tasks for the next,
	// so the stacks they have grown are reused rather than grown again for every request.
	tasks   chan task
	quit    chan struct{}
	workers sync.WaitGroup

	metrics serverMetrics
	auth    authCounters
}

// task is a request for a handler goroutine.
type task struct {
	ctx      context.Context
	sc       *serverConn
	rt       *route
	req      *Request
	handlers *sync.WaitGroup
}

// workerIdle is how long a handler goroutine waits for another request before it exits.
const workerIdle = 10 * time.Second

// start runs t on an idle handler goroutine, or on a new one when none is idle.
func (s *Server) start(t task) {
	select {
	case s.tasks <- t:
	default:
		s.workers.Add(1)
		go s.worker(t)
	}
}

func (s *Server) worker(t task) {
	defer s.workers.Done()
	t.sc.dispatch(t.ctx, t.rt, t.req, t.handlers)
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case t = <-s.tasks:
			t.sc.dispatch(t.ctx, t.rt, t.req, t.handlers)
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		case <-s.quit:
			return
		}
	}
}

type route struct {
	peer    bool // only for authenticated peers, when the server has a secret
	rpc     *idl.RPC
	handler HandlerFunc
	inline  bool
}

type serverMetrics struct {
	conns        atomic.Int64
	connsTotal   atomic.Int64
	requests     atomic.Int64
	badFrames    atomic.Int64
	unknownNames atomic.Int64
	peersOK      atomic.Int64
	peersRefused atomic.Int64
	peerRefused  atomic.Int64
	tlsOK        atomic.Int64
	tlsFailed    atomic.Int64
	plainRefused atomic.Int64
	rejected     atomic.Int64
	frameTimeout atomic.Int64
	waits        atomic.Int64
	shed         atomic.Int64
}

// ServerMetrics is a snapshot of a server's counters.
type ServerMetrics struct {
	OpenConnections  int64
	TotalConnections int64
	Requests         int64
	BadFrames        int64
	UnknownRPCs      int64
	// RejectedConnections were closed at accept for MaxConns or MaxConnsPerHost.
	RejectedConnections int64
	// FrameTimeouts are connections closed for a frame not received within FrameTimeout.
	FrameTimeouts int64
	// BufferWaits counts the times a connection's reading paused for a full buffer budget.
	BufferWaits int64
	// BufferedBytes is the request bodies held by the server now.
	BufferedBytes int64
	// ShedRequests counts the requests answered ERR_BUSY unread because their bodies did
	// not fit in MaxServerBuffered.
	ShedRequests int64
	// PeerConnections counts the connections that authenticated as a peer;
	// PeerConnectionsRefused those whose peer exchange failed (a wrong secret, or none).
	PeerConnections, PeerConnectionsRefused int64
	// PeerRequestsRefused counts the requests for peer routes (HandlePeer), and the HTTP
	// requests a server refused through [Server.RefusePeerless], that came from a
	// connection not authenticated as a peer.
	PeerRequestsRefused int64
	// TLSConnections counts the connections whose TLS handshake succeeded;
	// TLSHandshakeFailures those whose handshake failed (a bad or missing client
	// certificate among them); PlaintextRefused the plaintext thrift connections and HTTP
	// requests refused under MandatoryTLS.
	TLSConnections, TLSHandshakeFailures, PlaintextRefused int64
}

// NewServer opens the listener (so Addr works at once) and returns a server ready for
// Handle and Run.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.MaxRequestSize > 0 {
		cfg.Limits.MaxRequestSize = cfg.MaxRequestSize
	}
	if cfg.MaxInFlight > 0 {
		cfg.Limits.MaxInFlight = cfg.MaxInFlight
	}
	if cfg.WriteTimeout > 0 {
		cfg.Limits.WriteTimeout = cfg.WriteTimeout
	}
	cfg.Limits.fill()
	cfg.MaxRequestSize, cfg.MaxInFlight, cfg.WriteTimeout = cfg.Limits.MaxRequestSize, cfg.Limits.MaxInFlight, cfg.Limits.WriteTimeout
	if cfg.MandatoryTLS && cfg.TLS == nil {
		return nil, errors.New("rpc: mandatory TLS without a TLS configuration")
	}
	if cfg.TLS != nil {
		cfg.TLS = cfg.TLS.Clone()
		// Whatever ALPN would choose, the connection is sniffed inside TLS: HTTP/1.1 or thrift.
		cfg.TLS.NextProtos = nil
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("rpc: listen: %w", err)
		}
	}
	s := &Server{
		cfg:    cfg,
		ln:     ln,
		lg:     lg.With("addr", ln.Addr().String()),
		routes: make(map[string]*route),
		httpLn: newChanListener(ln.Addr()),
		tasks:  make(chan task),
		quit:   make(chan struct{}),
		killed: make(chan struct{}),
	}
	s.mu.conns = make(map[net.Conn]*serverConn)
	s.mu.perHost = make(map[string]int)
	s.bodies = newBudget(cfg.Limits.MaxServerBuffered)
	// Without an Authenticator every negotiation is answered SASL_AUTH_DISABLE, as a Pegasus
	// server with [security] enable_auth = false answers, and the official clients then go
	// on unauthenticated; with one, handle answers negotiations (negotiate.go).
	s.Handle(idl.RPCNegotiation, func(context.Context, *Request) (idl.Value, wire.Code) {
		return &idl.NegotiationResponse{Status: idl.NegotiationSASLAuthDisable}, wire.OK
	})
	return s, nil
}

// Addr returns the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handle registers h for the RPC called name, which must be in idl's registry. It is not
// safe to call concurrently with Run.
func (s *Server) Handle(name string, h HandlerFunc) {
	r, ok := idl.LookupRPC(name)
	if !ok {
		panic(fmt.Sprintf("rpc: Handle(%q): not an RPC of the idl registry", name))
	}
	s.routes[name] = &route{rpc: r, handler: h}
}

// HandleInline registers h for the one-way RPC called name, to run on the connection's
// reader goroutine: requests of one connection are then handled in the order they arrived
// (raft messages need that). h must not block. It panics for an RPC that gets replies.
func (s *Server) HandleInline(name string, h HandlerFunc) {
	s.Handle(name, h)
	r := s.routes[name]
	if !r.rpc.IsOneWay() {
		panic(fmt.Sprintf("rpc: HandleInline(%q): only one-way RPCs can be handled inline", name))
	}
	r.inline = true
}

// HandlePeer is Handle for an RPC that only the cluster's servers send each other: when the
// server has a secret, a request from a connection that did not authenticate as a peer is
// refused (ERR_UNAUTHENTICATED, or dropped for a one-way RPC) and counted.
func (s *Server) HandlePeer(name string, h HandlerFunc) {
	s.Handle(name, h)
	s.routes[name].peer = true
}

// RequirePeer makes the routes already registered under names peer routes, as HandlePeer
// registers them. It panics for a name not registered.
func (s *Server) RequirePeer(names ...string) {
	for _, n := range names {
		r := s.routes[n]
		if r == nil {
			panic(fmt.Sprintf("rpc: RequirePeer(%q): not registered", n))
		}
		r.peer = true
	}
}

// Metrics returns a snapshot of the server's counters. Safe for concurrent use.
func (s *Server) Metrics() ServerMetrics {
	return ServerMetrics{
		OpenConnections:  s.metrics.conns.Load(),
		TotalConnections: s.metrics.connsTotal.Load(),
		Requests:         s.metrics.requests.Load(),
		BadFrames:        s.metrics.badFrames.Load(),
		UnknownRPCs:      s.metrics.unknownNames.Load(),

		RejectedConnections: s.metrics.rejected.Load(),
		FrameTimeouts:       s.metrics.frameTimeout.Load(),
		BufferWaits:         s.metrics.waits.Load(),
		BufferedBytes:       s.bodies.inUse(),
		ShedRequests:        s.metrics.shed.Load(),

		PeerConnections:        s.metrics.peersOK.Load(),
		PeerConnectionsRefused: s.metrics.peersRefused.Load(),
		PeerRequestsRefused:    s.metrics.peerRefused.Load(),

		TLSConnections:       s.metrics.tlsOK.Load(),
		TLSHandshakeFailures: s.metrics.tlsFailed.Load(),
		PlaintextRefused:     s.metrics.plainRefused.Load(),
	}
}

// Run accepts and serves connections until the server is closed or shut down, and returns
// [ErrServerClosed] once all of its goroutines have exited. The end of ctx closes the server
// as Close does. Any other error means the listener failed; the server is closed then too.
// Run may be called once; after Close or Shutdown it returns ErrServerClosed at once.
func (s *Server) Run(ctx context.Context) error {
	if err := s.run.Start(); err != nil {
		return err
	}
	defer s.run.Finish()
	// ctx, ended by kill, is the parent of every handler's context.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bg, conns sync.WaitGroup
	bg.Go(func() {
		select {
		case <-ctx.Done():
			s.drain()
			s.kill()
		case <-s.killed:
		}
		cancel()
	})

	handler := s.cfg.HTTP
	if handler == nil {
		handler = http.NotFoundHandler()
	}
	hs := &http.Server{
		Handler:           s.gated(handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.lg.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			bc, ok := c.(*bufferedConn)
			if !ok {
				return ctx
			}
			if bc.peer != "" {
				ctx = context.WithValue(ctx, peerKey{}, bc.peer)
			}
			if bc.tls != nil {
				ctx = context.WithValue(ctx, tlsKey{}, bc.tls)
			}
			if bc.user != "" {
				ctx = context.WithValue(ctx, userKey{}, bc.user)
			}
			return ctx
		},
	}
	bg.Go(func() { _ = hs.Serve(s.httpLn) })

	err := s.accept(ctx, &conns)
	if err != nil {
		s.drain()
		s.kill()
	}
	// Graceful: the requests in flight finish (HTTP and thrift), or kill abandons them.
	_ = hs.Shutdown(ctx)
	_ = hs.Close()
	s.reqs.Close()
	s.stopReading()
	conns.Wait()
	s.httpGate.Close()
	cancel()
	bg.Wait()
	close(s.quit)
	s.workers.Wait()
	return lifecycle.RunResult(err)
}

// accept serves connections until the listener is closed by drain (nil) or fails.
func (s *Server) accept(ctx context.Context, conns *sync.WaitGroup) error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.draining() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("rpc: accept: %w", err)
		}
		leave, err := s.admit(c)
		if err != nil {
			s.metrics.rejected.Add(1)
			s.lg.Debug("closing connection", "remote", c.RemoteAddr().String(), "err", err)
			_ = c.Close()
			continue
		}
		if !s.track(c, nil) {
			leave()
			_ = c.Close()
			return nil
		}
		conns.Go(func() { s.serveConn(ctx, c, leave) })
	}
}

// Close closes the listener and every connection at once: requests in flight are abandoned
// (their handlers' contexts end, their replies are not sent). It returns once every
// goroutine of the server has exited, handlers included. Safe to call more than once and
// concurrently with Run and Shutdown; it returns nil.
func (s *Server) Close() error {
	s.drain()
	s.kill()
	s.run.Stop(nil) // a server that never ran holds only its listener, closed by drain
	<-s.run.Done()
	return nil
}

// Shutdown stops the server gracefully: it closes the listener, waits for the requests in
// flight to finish and their replies to be written (HTTP requests too), then closes the
// connections. A request that arrives meanwhile is not executed: its connection stops being
// read and closes once the requests in flight on it are answered, so its caller sees the
// connection break, as when a server stops. Requests of routes handled inline (one-way peer
// traffic such as raft messages, which the requests in flight may wait for) are still served
// until the connections close. If ctx ends first, the requests still in flight are abandoned
// as by Close, and Shutdown returns ctx's error once the server has stopped. Safe to call
// more than once and concurrently with Run and Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.drain()
	s.run.Stop(nil)
	select {
	case <-s.run.Done():
		return nil
	case <-ctx.Done():
	}
	s.kill()
	<-s.run.Done()
	return ctx.Err()
}

// drain stops taking connections: the listener closes, and so do the connections that have
// not said what they speak yet. Thrift connections go on until stopReading.
func (s *Server) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.draining {
		return
	}
	s.mu.draining = true
	s.refusing.Store(true)
	_ = s.ln.Close()
	for c, sc := range s.mu.conns {
		if sc == nil {
			_ = c.Close()
		}
	}
}

// stopReading ends the thrift connections once no request is in flight: their readers see
// a deadline, the replies queued are written, then the connections close.
func (s *Server) stopReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range s.mu.conns {
		if sc != nil {
			sc.stopRead()
		}
	}
}

// kill abandons the requests in flight: Run's context ends, which closes every connection.
func (s *Server) kill() { s.killOnce.Do(func() { close(s.killed) }) }

// draining reports whether the drain has begun (without the lock: refusing is set with
// mu.draining, which the lock keeps for track).
func (s *Server) draining() bool { return s.refusing.Load() }

// track records an accepted connection, and then that it speaks thrift (from then on it is
// stopped by stopReading rather than closed by drain); false once the server drains.
func (s *Server) track(c net.Conn, sc *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.draining {
		return false
	}
	s.mu.conns[c] = sc
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.conns, c)
}

// gated runs h inside httpGate; requests arriving once it is closed get 503. A request
// that came over TLS gets its r.TLS (net/http sets it only on a *tls.Conn, and the
// connection it serves is the sniffed one); under MandatoryTLS a plaintext request from
// a connection that is not a peer's gets 403 and its connection closes.
func (s *Server) gated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.httpGate.Enter() {
			http.Error(w, "server closed", http.StatusServiceUnavailable)
			return
		}
		defer s.httpGate.Exit()
		if st, ok := r.Context().Value(tlsKey{}).(*tls.ConnectionState); ok {
			r.TLS = st
		} else if s.cfg.MandatoryTLS && PeerOf(r.Context()) == "" {
			s.metrics.plainRefused.Add(1)
			s.lg.Info("plaintext http refused: tls is mandatory", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("Connection", "close")
			http.Error(w, "forbidden: this server takes HTTPS only (mandatory_tls): use https://", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveConn sniffs the first bytes of a connection and serves it as thrift or HTTP.
func (s *Server) serveConn(ctx context.Context, c net.Conn, leave func()) {
	defer s.untrack(c)
	httpConn := false
	defer func() {
		if !httpConn {
			leave()
		}
	}()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	// A connection that sends nothing is closed after a while, not kept forever.
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	first, err := br.Peek(4)
	if err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	peer := ""
	nc := c // what the connection is served over: c, or TLS over it
	var tlsState *tls.ConnectionState
	user := ""
	switch {
	case string(first) == peerMagic:
		if peer, err = authenticatePeer(c, br, s.cfg.Secret); err != nil {
			s.metrics.peersRefused.Add(1)
			s.lg.Warn("peer connection refused", "remote", c.RemoteAddr().String(), "err", err)
			_ = c.Close()
			return
		}
		s.metrics.peersOK.Add(1)
		if first, err = s.peekProtocol(c, br); err != nil {
			_ = c.Close()
			return
		}
	case first[0] == tlsHandshakeRecord && s.cfg.TLS != nil:
		tc, err := s.handshake(ctx, c, br)
		if err != nil {
			s.metrics.tlsFailed.Add(1)
			s.lg.Info("tls handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			_ = c.Close()
			return
		}
		s.metrics.tlsOK.Add(1)
		st := tc.ConnectionState()
		tlsState, user, nc = &st, userOf(&st), tc
		// The handshake consumed what br had buffered; the connection's bytes now come
		// decrypted from tc.
		br = bufio.NewReaderSize(tc, 64<<10)
		if first, err = s.peekProtocol(c, br); err != nil {
			_ = nc.Close()
			return
		}
	}
	refuse := s.cfg.MandatoryTLS && tlsState == nil && peer == ""
	switch string(first) {
	case "THFT":
		sc := newServerConn(s, nc, br)
		sc.peer, sc.user, sc.refuse = peer, user, refuse
		if !s.track(c, sc) {
			_ = nc.Close()
			return
		}
		s.metrics.conns.Add(1)
		s.metrics.connsTotal.Add(1)
		defer s.metrics.conns.Add(-1)
		sc.serve(ctx)
	case "GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC":
		s.untrack(c) // net/http's Shutdown and Close take care of it
		httpConn = true
		s.httpLn.deliver(ctx, &bufferedConn{Conn: nc, r: br, leave: leave, peer: peer, user: user, tls: tlsState})
	default:
		s.metrics.badFrames.Add(1)
		s.lg.Warn("closing connection: unknown protocol", "remote", c.RemoteAddr().String(), "first", fmt.Sprintf("%q", first), "tls", tlsState != nil)
		_ = nc.Close()
	}
}

// tlsHandshakeRecord is the first byte of a TLS connection: the record type of its
// ClientHello. No thrift frame ("THFT"), HTTP method or peer exchange ("GPAU") starts so.
const tlsHandshakeRecord = 0x16

// tlsHandshakeTimeout bounds the server's side of a TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// peekProtocol waits (a minute at most) for the first four bytes the connection carries
// after its authentication, peer exchange or TLS handshake.
func (s *Server) peekProtocol(c net.Conn, br *bufio.Reader) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	first, err := br.Peek(4)
	_ = c.SetReadDeadline(time.Time{})
	return first, err
}

// handshake runs the server's side of a TLS handshake on c, whose first bytes are in br.
func (s *Server) handshake(ctx context.Context, c net.Conn, br *bufio.Reader) (*tls.Conn, error) {
	tc := tls.Server(&prefixedConn{Conn: c, r: br}, s.cfg.TLS)
	ctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// userOf returns the identity a TLS connection's verified client certificate names: its
// subject's common name ("" without a verified certificate).
func userOf(st *tls.ConnectionState) string {
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return ""
	}
	return st.VerifiedChains[0][0].Subject.CommonName
}

// prefixedConn is a connection whose first bytes were already read into r: TLS reads
// them from r, then the connection's. Only the connection's reader calls Read.
type prefixedConn struct {
	net.Conn
	r *bufio.Reader // nil once drained, so its buffer is not kept for the connection's life
}

func (c *prefixedConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}

// RefusePeerless wraps h, an HTTP endpoint only the cluster's servers call: when the server
// has a secret, a request whose connection did not authenticate as a peer gets 403 and is
// counted (ServerMetrics.PeerRequestsRefused).
func (s *Server) RefusePeerless(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Secret != nil && PeerOf(r.Context()) == "" {
			s.metrics.peerRefused.Add(1)
			s.lg.Info("peer request refused: not an authenticated peer", "remote", r.RemoteAddr, "path", r.URL.Path)
			http.Error(w, "forbidden: only the cluster's servers may call this endpoint", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// errPlaintextRefused ends the reading of a plaintext connection under MandatoryTLS.
var errPlaintextRefused = errors.New("rpc: plaintext refused: tls is mandatory")

// errDraining ends the reading of a connection on which a request arrived during a Shutdown.
var errDraining = errors.New("rpc: server shutting down")

// serverConn is one thrift connection: a reader loop that hands each request to a handler
// goroutine of its own, and a writer loop that sends replies in batches as they complete.
type serverConn struct {
	s      *Server
	c      net.Conn
	br     *bufio.Reader
	lg     *slog.Logger
	sem    chan struct{}
	smu    sync.Mutex // serializes senders (send)
	wmu    sync.Mutex
	wbuf   []byte // replies waiting to be written, guarded by wmu
	wake   chan struct{}
	closed chan struct{}
	peer   string // the authenticated peer's address, or ""
	user   string // the authenticated client identity (Request.User), or ""
	// nego is the connection's negotiation; user and nego are used by the reader only.
	nego Negotiation
	// refuse is set on a plaintext connection under MandatoryTLS: its first request is
	// answered ERR_UNAUTHENTICATED and the connection closes.
	refuse bool
	// held counts the connection's request bodies in flight and replies queued
	// (Limits.MaxConnBuffered).
	held *budget
	// replyEst is the size of the recent large replies of the connection (see send): each
	// request in flight holds that much of the budget until its reply is queued, so a client
	// pipelining requests for big replies is stopped being read after a few, not after
	// MaxInFlight.
	replyEst atomic.Int64
	// handling counts the requests handed to a handler whose reply is not queued yet: the
	// writer waits for them to queue theirs (coalescing) only when there are some.
	handling atomic.Int64
	// dmu orders the reader's deadlines with stopRead's.
	dmu     sync.Mutex
	stopped bool
}

// stopRead makes the reader stop at once (a past deadline) and refuse later deadlines.
func (sc *serverConn) stopRead() {
	sc.dmu.Lock()
	defer sc.dmu.Unlock()
	sc.stopped = true
	_ = sc.c.SetReadDeadline(time.Now())
}

// setReadDeadline sets the reader's deadline unless stopRead came first.
func (sc *serverConn) setReadDeadline(t time.Time) error {
	sc.dmu.Lock()
	defer sc.dmu.Unlock()
	if sc.stopped {
		return errDraining
	}
	return sc.c.SetReadDeadline(t)
}

func newServerConn(s *Server, c net.Conn, br *bufio.Reader) *serverConn {
	return &serverConn{
		s:      s,
		c:      c,
		br:     br,
		lg:     s.lg.With("remote", c.RemoteAddr().String()),
		sem:    make(chan struct{}, s.cfg.MaxInFlight),
		wake:   make(chan struct{}, 1),
		closed: make(chan struct{}),
		held:   newBudget(s.cfg.Limits.MaxConnBuffered),
	}
}

func (sc *serverConn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	var handlers sync.WaitGroup
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		sc.writeLoop(ctx)
	}()
	stop := context.AfterFunc(ctx, func() { _ = sc.c.Close() })
	err := sc.readLoop(ctx, &handlers)
	if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, errPlaintextRefused) && !errors.Is(err, errNegotiationFailed) && !sc.s.draining() {
		sc.s.metrics.badFrames.Add(1)
		sc.lg.Warn("closing connection", "err", err)
	}
	// Let requests in flight finish so their replies can still go out, then stop writing.
	handlers.Wait()
	close(sc.closed)
	<-writerDone
	stop()
	cancel()
	_ = sc.c.Close()
}

func (sc *serverConn) readLoop(ctx context.Context, handlers *sync.WaitGroup) error {
	lim := &sc.s.cfg.Limits
	maxBody := lim.MaxRequestSize
	// timedOut turns the deadline of a started frame into ErrFrameTimeout.
	timedOut := func(err error, what string) error {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !sc.s.draining() {
			sc.s.metrics.frameTimeout.Add(1)
			return fmt.Errorf("%w (%v, %s)", ErrFrameTimeout, lim.FrameTimeout, what)
		}
		return fmt.Errorf("truncated request %s: %w", what, err)
	}
	for {
		// Idle between requests as long as the client likes; once a frame starts it must
		// arrive within FrameTimeout.
		if err := sc.setReadDeadline(time.Time{}); err != nil {
			return err
		}
		if _, err := sc.br.Peek(1); err != nil {
			return err
		}
		if err := sc.setReadDeadline(time.Now().Add(lim.FrameTimeout)); err != nil {
			return err
		}
		prefix, err := sc.br.Peek(wire.PrefixLen)
		if err != nil {
			return timedOut(err, "header")
		}
		hlen, err := wire.HeaderLen(prefix)
		if err != nil {
			return err
		}
		hb, err := sc.br.Peek(hlen)
		if err != nil {
			return timedOut(err, "header")
		}
		hdr, blen, err := wire.DecodeHeader(hb)
		if err != nil {
			return err
		}
		if blen < 0 || blen > maxBody {
			return fmt.Errorf("%w: body of %d bytes (max %d)", wire.ErrFrameTooLarge, blen, maxBody)
		}
		if _, err := sc.br.Discard(hlen); err != nil {
			return err
		}
		// Room in the connection's budget first (for the body and the reply expected):
		// waiting for it is backpressure, not a stalled frame.
		hold := int64(blen) + sc.replyEst.Load()
		if err := sc.reserve(ctx, hold); err != nil {
			return err
		}
		if err := sc.setReadDeadline(time.Now().Add(lim.FrameTimeout)); err != nil {
			sc.held.release(hold)
			return err
		}
		force, err := sc.unshedable(blen)
		force = force || sc.refuse // answered ERR_UNAUTHENTICATED whatever the load
		if err != nil {
			sc.held.release(hold)
			return timedOut(err, "body")
		}
		body, err := sc.s.readBody(ctx, sc.br, blen, force)
		if errors.Is(err, errShed) {
			sc.held.release(hold)
			if err := sc.shed(ctx, body, blen); err != nil {
				return timedOut(err, "body")
			}
			continue
		}
		if err != nil {
			sc.held.release(hold)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return timedOut(err, "body")
		}
		if err := sc.handle(ctx, handlers, hdr, body, hold); err != nil {
			return err
		}
	}
}

// reserve takes n bytes of the connection's budget, waiting for room (its replies being
// written, its requests finishing).
func (sc *serverConn) reserve(ctx context.Context, n int64) error {
	if sc.held.inUse()+n > sc.s.cfg.Limits.MaxConnBuffered {
		sc.s.metrics.waits.Add(1)
	}
	return sc.held.acquire(ctx, n)
}

// freeReq gives back, once, what a request handed to a handler holds.
func (sc *serverConn) freeReq(req *Request) {
	if !req.freed {
		req.freed = true
		sc.free(int64(req.BodySize), req.held)
	}
}

// free gives back what reserve (hold) and readBody (body) took.
func (sc *serverConn) free(body, hold int64) {
	sc.s.bodies.release(body)
	sc.held.release(hold)
}

// handle decodes one request and starts its handler; the body's bytes stay reserved until
// the handler is done.
func (sc *serverConn) handle(ctx context.Context, handlers *sync.WaitGroup, hdr wire.Header, body []byte, hold int64) error {
	blen := len(body)
	name, seqID, args, err := wire.ParseRequestBody(body)
	if err != nil {
		sc.free(int64(blen), hold)
		return err
	}
	sc.s.metrics.requests.Add(1)
	rt := sc.s.routes[string(name)]
	if sc.refuse {
		sc.free(int64(blen), hold)
		sc.s.metrics.plainRefused.Add(1)
		sc.lg.Info("plaintext rpc refused: tls is mandatory", "rpc", string(name))
		switch {
		case rt == nil:
			sc.send(ctx, ackOf(string(name)), seqID, wire.ErrUnauthenticated, nil)
		case !rt.rpc.IsOneWay():
			sc.send(ctx, rt.rpc.AckName, seqID, wire.ErrUnauthenticated, nil)
		}
		return errPlaintextRefused
	}
	if rt != nil && rt.rpc.Name == idl.RPCNegotiation && sc.s.cfg.Auth != nil {
		return sc.negotiate(ctx, rt, seqID, args, int64(blen), hold)
	}
	if rt == nil {
		n := string(name)
		sc.free(int64(blen), hold)
		sc.replyUnknown(ctx, n, seqID)
		return nil
	}
	if rt.peer && sc.peer == "" && sc.s.cfg.Secret != nil {
		sc.free(int64(blen), hold)
		sc.s.metrics.peerRefused.Add(1)
		sc.lg.Info("peer rpc refused: not an authenticated peer", "rpc", rt.rpc.Name)
		if !rt.rpc.IsOneWay() {
			sc.send(ctx, rt.rpc.AckName, seqID, wire.ErrUnauthenticated, nil)
		}
		return nil
	}
	if sc.refuseUnauthenticated(ctx, rt, seqID) {
		sc.free(int64(blen), hold)
		return nil
	}
	v := rt.rpc.NewRequest()
	if err := wire.DecodeArgs(args, v); err != nil {
		sc.free(int64(blen), hold)
		return fmt.Errorf("decode %s args: %w", rt.rpc.Name, err)
	}
	if rt.inline {
		sc.dispatchInline(ctx, rt, &Request{Header: hdr, Name: rt.rpc.Name, SeqID: seqID, Args: v, Remote: sc.c.RemoteAddr(), BodySize: blen, Peer: sc.peer, User: sc.user})
		sc.free(int64(blen), hold)
		return nil
	}
	select {
	case sc.sem <- struct{}{}:
	case <-ctx.Done():
		sc.free(int64(blen), hold)
		return ctx.Err()
	}
	if sc.s.refusing.Load() || !sc.s.reqs.Enter() {
		<-sc.sem
		sc.free(int64(blen), hold)
		return errDraining // not executed: the connection closes once the others are answered
	}
	req := &Request{Header: hdr, Name: rt.rpc.Name, SeqID: seqID, Args: v, Remote: sc.c.RemoteAddr(), BodySize: blen, held: hold, Peer: sc.peer, User: sc.user}
	handlers.Add(1)
	sc.handling.Add(1)
	sc.s.start(task{ctx: ctx, sc: sc, rt: rt, req: req, handlers: handlers})
	return nil
}

func (sc *serverConn) dispatch(ctx context.Context, rt *route, req *Request, handlers *sync.WaitGroup) {
	defer handlers.Done()
	handling := true
	done := func() {
		if handling {
			handling = false
			sc.handling.Add(-1)
		}
	}
	defer done()
	defer func() { <-sc.sem }()
	defer sc.freeReq(req)
	defer sc.s.reqs.Exit() // once the reply is queued
	defer func() {
		if p := recover(); p != nil {
			sc.lg.Error("handler panicked", "rpc", req.Name, "panic", p, "stack", string(debug.Stack()))
			if rt.rpc.NewReply != nil {
				sc.freeReq(req)
				done()
				sc.send(ctx, rt.rpc.AckName, req.SeqID, wire.ErrUnknown, nil)
			}
		}
	}()
	reply, code := rt.handler(ctx, req)
	if rt.rpc.NewReply == nil {
		return // CLEAR_SCANNER and other one-way RPCs are never answered
	}
	if ctx.Err() != nil {
		return // the server is stopping or the connection is gone: nobody to answer
	}
	if !code.ForClients() {
		code = wire.ErrUnknown
	}
	sc.freeReq(req) // the reply takes its own place in the budget
	done()          // before the reply is queued: the writer need not wait for it
	sc.send(ctx, rt.rpc.AckName, req.SeqID, code, reply)
}

// dispatchInline runs a one-way handler on the reader goroutine.
func (sc *serverConn) dispatchInline(ctx context.Context, rt *route, req *Request) {
	defer func() {
		if p := recover(); p != nil {
			sc.lg.Error("handler panicked", "rpc", req.Name, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	rt.handler(ctx, req)
}

// replyUnknown answers an RPC name nobody handles with ERR_HANDLER_NOT_FOUND, as Pegasus does.
func (sc *serverConn) replyUnknown(ctx context.Context, n string, seqID int32) {
	sc.s.metrics.unknownNames.Add(1)
	sc.lg.Info("unknown rpc", "rpc", n)
	sc.send(ctx, ackOf(n), seqID, wire.ErrHandlerNotFound, nil)
}

// ackOf is the reply name of an RPC nobody handles.
func ackOf(n string) string {
	if len(n) > 47 {
		n = n[:47] // Pegasus truncates task names to 47 bytes
	}
	return n + "_ACK"
}

// send queues a reply for the writer loop, once the connection's replies queued are under
// MaxConnBuffered (a client that does not read stops its handlers here, until its
// connection is closed after WriteTimeout).
func (sc *serverConn) send(ctx context.Context, ackName string, seqID int32, code wire.Code, reply idl.Value) {
	// One sender at a time checks for room and takes it, so the check holds.
	sc.smu.Lock()
	defer sc.smu.Unlock()
	sc.held.waitRoom(ctx, sc.closed)
	sc.wmu.Lock()
	n := len(sc.wbuf)
	sc.wbuf = wire.AppendReply(sc.wbuf, ackName, seqID, code, reply)
	size := int64(len(sc.wbuf) - n)
	sc.held.force(size)
	sc.wmu.Unlock()
	// The estimate jumps to a larger reply and decays by an eighth with each smaller one,
	// so one big reply does not slow the connection's pipelining for good.
	for {
		est := sc.replyEst.Load()
		if sc.replyEst.CompareAndSwap(est, max(size, est-est/8)) {
			break
		}
	}
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes queued replies, coalescing everything queued since the last write into
// one write call. It returns after closed is closed and the queue is drained, or on a write
// error (the connection is then closed, which ends the read loop).
func (sc *serverConn) writeLoop(ctx context.Context) {
	var spare []byte
	for {
		select {
		case <-sc.wake:
		case <-sc.closed:
		}
		if sc.handling.Load() > 0 {
			// Let handlers finishing now queue their replies: fewer, larger writes. Not
			// when none is running: under load a yield waits behind every runnable
			// goroutine, and a lone small reply (a client reading one record at a time
			// beside others' big writes) would wait that long for nothing.
			runtime.Gosched()
		}
		sc.wmu.Lock()
		out := sc.wbuf
		if len(out) > 0 {
			// Hand the appenders the spare buffer, never the one about to be written.
			sc.wbuf = spare[:0]
		}
		sc.wmu.Unlock()
		if len(out) > 0 {
			_ = sc.c.SetWriteDeadline(time.Now().Add(sc.s.cfg.WriteTimeout))
			if _, err := sc.c.Write(out); err != nil {
				if ctx.Err() == nil {
					sc.lg.Debug("write failed", "err", err)
				}
				_ = sc.c.Close()
				sc.held.release(int64(len(out)))
				sc.discardUntilClosed()
				return
			}
			sc.held.release(int64(len(out)))
			spare = nil
			if cap(out) <= 1<<20 { // do not keep a huge buffer after a burst
				spare = out
			}
			continue // check for more before deciding to stop
		}
		select {
		case <-sc.closed:
			return
		default:
		}
	}
}

// discardUntilClosed drops replies after a write failure until the connection is done.
func (sc *serverConn) discardUntilClosed() {
	for {
		select {
		case <-sc.wake:
			sc.wmu.Lock()
			sc.held.release(int64(len(sc.wbuf)))
			sc.wbuf = sc.wbuf[:0]
			sc.wmu.Unlock()
		case <-sc.closed:
			return
		}
	}
}

// bufferedConn is a connection whose first bytes were already read into r.
type bufferedConn struct {
	peer string // the authenticated peer, or ""
	user string // the authenticated client identity, or ""
	// tls is the state of the connection's TLS, nil for a plaintext one.
	tls *tls.ConnectionState
	net.Conn
	r *bufio.Reader
	// leave gives the connection's place (Limits.MaxConns) back, once.
	leave func()
	once  sync.Once
}

func (c *bufferedConn) Close() error {
	c.once.Do(c.leave)
	return c.Conn.Close()
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener hands sniffed HTTP connections to net/http's server.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(ctx context.Context, c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		_ = c.Close()
	case <-ctx.Done():
		_ = c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
