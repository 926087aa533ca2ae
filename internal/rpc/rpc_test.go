package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// startServer runs a server with the given handlers until the test ends.
func startServer(t testing.TB, cfg ServerConfig, handlers map[string]HandlerFunc) *Server {
	t.Helper()
	if cfg.Listen == "" && cfg.Listener == nil {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for n, h := range handlers {
		s.Handle(n, h)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("server close: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("server run: %v", err)
		}
	})
	return s
}

// echoGet answers a GET with the key it was asked for as the value, and the header's gpid.
func echoGet(_ context.Context, req *Request) (idl.Value, wire.Code) {
	k := *req.Args.(*idl.Blob)
	return &idl.ReadResponse{Value: k, AppID: req.Header.AppID, PartitionIndex: req.Header.PartitionIndex, Server: "test"}, wire.OK
}

func get(ctx context.Context, c *Conn, version int, k string) ([]byte, error) {
	args := idl.Blob(k)
	h := wire.Header{Version: version, AppID: 1, PartitionIndex: 2, ThreadHash: wire.ThreadHash(1, 2), PartitionHash: key.Hash([]byte(k))}
	var rr idl.ReadResponse
	if err := c.Call(ctx, h, idl.RPCGet, &args, &rr); err != nil {
		return nil, err
	}
	if rr.AppID != 1 || rr.PartitionIndex != 2 {
		return nil, fmt.Errorf("gpid (%d,%d)", rr.AppID, rr.PartitionIndex)
	}
	return rr.Value, nil
}

func TestCallBothHeaderVersions(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[string]HandlerFunc{idl.RPCGet: echoGet})
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()
	for _, v := range []int{0, 1, 0} {
		got, err := get(t.Context(), c, v, "key-"+fmt.Sprint(v))
		if err != nil || string(got) != "key-"+fmt.Sprint(v) {
			t.Fatalf("version %d: %q %v", v, got, err)
		}
	}
}

func TestOutOfOrderPipelining(t *testing.T) {
	// Each request waits for a later one to arrive, so replies can only complete out of order.
	var mu sync.Mutex
	arrived := map[string]chan struct{}{}
	gate := func(k string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if arrived[k] == nil {
			arrived[k] = make(chan struct{})
		}
		return arrived[k]
	}
	const n = 50
	s := startServer(t, ServerConfig{}, map[string]HandlerFunc{idl.RPCGet: func(ctx context.Context, req *Request) (idl.Value, wire.Code) {
		k := string(*req.Args.(*idl.Blob))
		var i int
		fmt.Sscanf(k, "k%d", &i)
		close(gate(k))
		if i+1 < n {
			select {
			case <-gate(fmt.Sprintf("k%d", i+1)):
			case <-ctx.Done():
			}
		}
		return echoGet(ctx, req)
	}})
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			k := fmt.Sprintf("k%d", i)
			got, err := get(ctx, c, i%2, k)
			if err == nil && string(got) != k {
				err = fmt.Errorf("asked %s got %s", k, got)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// rawConn is a test client that writes frames by hand and reads replies.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *rawConn) write(b []byte) {
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) readReply() wire.Reply {
	r.t.Helper()
	var lb [4]byte
	if _, err := io.ReadFull(r.br, lb[:]); err != nil {
		r.t.Fatalf("read reply: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(lb[:]))
	copy(frame, lb[:])
	if _, err := io.ReadFull(r.br, frame[4:]); err != nil {
		r.t.Fatal(err)
	}
	rep, err := wire.DecodeReply(frame)
	if err != nil {
		r.t.Fatal(err)
	}
	return rep
}

// expectClosed checks that the server closes the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	_, err := io.ReadAll(r.br)
	if err != nil {
		r.t.Fatalf("expected a clean close, got %v", err)
	}
}

func frame(name string, seq int32, args idl.Value) []byte {
	return wire.AppendRequest(nil, &wire.Header{}, name, seq, args)
}

func TestClearScannerGetsNoReply(t *testing.T) {
	cleared := make(chan int64, 1)
	s := startServer(t, ServerConfig{}, map[string]HandlerFunc{
		idl.RPCGet: echoGet,
		idl.RPCClearScanner: func(_ context.Context, req *Request) (idl.Value, wire.Code) {
			cleared <- int64(*req.Args.(*idl.ContextID))
			return nil, wire.OK
		},
	})
	r := dialRaw(t, s.Addr().String())
	id := idl.ContextID(42)
	r.write(frame(idl.RPCClearScanner, 1, &id))
	if got := <-cleared; got != 42 {
		t.Fatalf("cleared %d", got)
	}
	k := idl.Blob("k")
	r.write(frame(idl.RPCGet, 2, &k))
	if rep := r.readReply(); rep.SeqID != 2 || rep.Err != nil {
		t.Fatalf("first reply after CLEAR_SCANNER is %+v, want the GET's", rep)
	}
	// Through the client too.
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()
	if err := c.Send(t.Context(), wire.Header{}, idl.RPCClearScanner, &id); err != nil {
		t.Fatal(err)
	}
	<-cleared
	if _, err := get(t.Context(), c, 0, "x"); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownRPCName(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[string]HandlerFunc{idl.RPCGet: echoGet})
	r := dialRaw(t, s.Addr().String())
	k := idl.Blob("k")
	r.write(frame("RPC_NO_SUCH_THING", 5, &k))
	rep := r.readReply()
	if !errors.Is(rep.Err, wire.ErrHandlerNotFound) || string(rep.Name) != "RPC_NO_SUCH_THING_ACK" || rep.SeqID != 5 {
		t.Fatalf("got %+v", rep)
	}
	// A known RPC without a handler here is answered the same way.
	r.write(frame(idl.RPCMultiGet, 6, &idl.MultiGetRequest{}))
	if rep := r.readReply(); !errors.Is(rep.Err, wire.ErrHandlerNotFound) || rep.SeqID != 6 {
		t.Fatalf("got %+v", rep)
	}
	// The connection goes on serving.
	r.write(frame(idl.RPCGet, 7, &k))
	if rep := r.readReply(); rep.Err != nil || rep.SeqID != 7 {
		t.Fatalf("got %+v", rep)
	}
	if m := s.Metrics(); m.UnknownRPCs != 2 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestHTTPOnRPCPort(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "v1") })
	s := startServer(t, ServerConfig{HTTP: mux}, map[string]HandlerFunc{idl.RPCGet: echoGet})
	resp, err := http.Get("http://" + s.Addr().String() + "/version")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "v1" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	// And thrift on the same port.
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()
	if _, err := get(t.Context(), c, 0, "x"); err != nil {
		t.Fatal(err)
	}
}

// A well-behaved client keeps getting correct answers while other connections send garbage,
// truncated frames, a header claiming a 4 GiB body, unknown RPC names and HTTP.
func TestHostileClientsDoNotDisturbOthers(t *testing.T) {
	s := startServer(t, ServerConfig{Logger: slog.New(slog.DiscardHandler)}, map[string]HandlerFunc{idl.RPCGet: echoGet})
	addr := s.Addr().String()
	c := NewConn(addr, ConnConfig{})
	defer c.Close()

	stop := make(chan struct{})
	var good atomic.Int64
	goodErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				goodErr <- nil
				return
			default:
			}
			k := fmt.Sprintf("good-%d", i)
			got, err := get(t.Context(), c, i%2, k)
			if err != nil || string(got) != k {
				goodErr <- fmt.Errorf("good client call %d: %q %v", i, got, err)
				return
			}
			good.Add(1)
		}
	})

	k := idl.Blob("k")
	valid := frame(idl.RPCGet, 1, &k)
	huge := bytes.Clone(valid[:48])
	binary.BigEndian.PutUint32(huge[16:], 0xFFFFFFFF) // body_length: 4 GiB
	badBody := bytes.Clone(valid)
	badBody[48] = 0x12 // message header version garbage
	hostile := []struct {
		name string
		send []byte
	}{
		{"garbage", []byte("\x00\x01\x02\x03 this is not pegasus at all")},
		{"bad magic", append([]byte("THFX"), valid[4:]...)},
		{"truncated header", valid[:30]},
		{"truncated body", valid[:len(valid)-3]},
		{"4 GiB body", huge},
		{"bad message header", badBody},
		{"bad version", append(append([]byte("THFT"), 0, 0, 0, 9), valid[8:]...)},
		{"args of the wrong shape", frame(idl.RPCGet, 1, &idl.MultiGetRequest{HashKey: []byte("x")})},
	}
	for round := 0; round < 5; round++ {
		for _, h := range hostile {
			r := dialRaw(t, addr)
			r.write(h.send)
			if h.name == "truncated header" || h.name == "truncated body" {
				r.nc.(*net.TCPConn).CloseWrite()
			}
			r.expectClosed()
		}
		// Unknown RPC name: answered, connection kept.
		r := dialRaw(t, addr)
		r.write(frame("RPC_BOGUS", 9, &k))
		if rep := r.readReply(); !errors.Is(rep.Err, wire.ErrHandlerNotFound) {
			t.Fatalf("unknown rpc: %+v", rep)
		}
		// HTTP to the RPC port: answered by the HTTP handler (404 here).
		resp, err := http.Get("http://" + addr + "/nothing")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("http status %d", resp.StatusCode)
		}
	}
	close(stop)
	wg.Wait()
	if err := <-goodErr; err != nil {
		t.Fatal(err)
	}
	if good.Load() == 0 {
		t.Fatal("the good client made no calls")
	}
	if m := s.Metrics(); m.BadFrames < int64(5*(len(hostile)-1)) {
		t.Fatalf("bad frames counted: %+v", m)
	}
}

func TestDeadlineBecomesClientTimeoutAndBoundsWait(t *testing.T) {
	release := make(chan struct{})
	seen := make(chan uint32, 10)
	s := startServer(t, ServerConfig{}, map[string]HandlerFunc{idl.RPCGet: func(ctx context.Context, req *Request) (idl.Value, wire.Code) {
		seen <- req.Header.ClientTimeout
		if string(*req.Args.(*idl.Blob)) == "slow" {
			<-release
		}
		return echoGet(ctx, req)
	}})
	defer close(release)
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 7*time.Second)
	defer cancel()
	if _, err := get(ctx, c, 0, "fast"); err != nil {
		t.Fatal(err)
	}
	// 7 s: above the go-client's 4.29 s wrap, sent correctly.
	if ms := <-seen; ms < 6000 || ms > 7000 {
		t.Fatalf("client_timeout %d ms for a 7 s deadline", ms)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := get(ctx, c, 0, "slow")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow call: %v", err)
	}
	if ms := <-seen; ms == 0 || ms > 100 {
		t.Fatalf("client_timeout %d ms for a 100 ms deadline", ms)
	}
	// The connection is still good.
	if _, err := get(t.Context(), c, 0, "after"); err != nil {
		t.Fatal(err)
	}
}

func TestBrokenConnectionFailsPendingAndReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	started := make(chan struct{}, 10)
	handlers := map[string]HandlerFunc{idl.RPCGet: func(ctx context.Context, req *Request) (idl.Value, wire.Code) {
		if string(*req.Args.(*idl.Blob)) == "block" {
			started <- struct{}{}
			<-ctx.Done()
		}
		return echoGet(ctx, req)
	}}
	s1, err := NewServer(ServerConfig{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	for n, h := range handlers {
		s1.Handle(n, h)
	}
	ctx1, stop1 := context.WithCancel(t.Context())
	done1 := make(chan error, 1)
	go func() { done1 <- s1.Run(ctx1) }()

	c := NewConn(addr, ConnConfig{})
	defer c.Close()
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := get(t.Context(), c, 0, "block")
			errs <- err
		}()
	}
	for range 3 {
		<-started
	}
	stop1() // the server goes away with three calls pending
	for range 3 {
		if err := <-errs; !errors.Is(err, ErrConnBroken) {
			t.Fatalf("pending call: %v, want ErrConnBroken", err)
		}
	}
	<-done1
	if _, err := get(t.Context(), c, 0, "x"); err == nil {
		t.Fatal("call with no server succeeded")
	}
	// A new server on the same address: the next call reconnects.
	startServer(t, ServerConfig{Listen: addr}, handlers)
	if got, err := get(t.Context(), c, 0, "again"); err != nil || string(got) != "again" {
		t.Fatalf("after restart: %q %v", got, err)
	}
}

func TestRequestSizeLimit(t *testing.T) {
	s := startServer(t, ServerConfig{MaxRequestSize: 1024}, map[string]HandlerFunc{idl.RPCGet: echoGet})
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()
	_, err := get(t.Context(), c, 0, strings.Repeat("x", 2000))
	if !errors.Is(err, ErrConnBroken) {
		t.Fatalf("oversized request: %v", err)
	}
	if _, err := get(t.Context(), c, 0, "small"); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
}

func TestErrorReplyAndPanicIsolation(t *testing.T) {
	s := startServer(t, ServerConfig{Logger: slog.New(slog.DiscardHandler)}, map[string]HandlerFunc{idl.RPCGet: func(ctx context.Context, req *Request) (idl.Value, wire.Code) {
		switch string(*req.Args.(*idl.Blob)) {
		case "state":
			return nil, wire.ErrInvalidState
		case "panic":
			panic("handler bug")
		case "internal":
			return nil, wire.ErrDiskIOError // never sent as such: clients cannot parse it
		}
		return echoGet(ctx, req)
	}})
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()
	for k, want := range map[string]error{"state": wire.ErrInvalidState, "panic": wire.ErrUnknown, "internal": wire.ErrUnknown} {
		if _, err := get(t.Context(), c, 0, k); !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", k, err, want)
		}
	}
	if _, err := get(t.Context(), c, 0, "ok"); err != nil {
		t.Fatal(err)
	}
}

func TestCloseLeavesNothingRunning(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[string]HandlerFunc{idl.RPCGet: echoGet})
	c := NewConn(s.Addr().String(), ConnConfig{})
	if _, err := get(t.Context(), c, 0, "x"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := get(t.Context(), c, 0, "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}

func TestPoolSharesAndCloses(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[string]HandlerFunc{idl.RPCGet: echoGet})
	p := NewPool(ConnConfig{})
	a, err := p.Get(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Get(s.Addr().String())
	if a != b {
		t.Fatal("two connections to one address")
	}
	if _, err := get(t.Context(), a, 0, "x"); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := p.Get(s.Addr().String()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := get(t.Context(), a, 0, "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("call on a closed pool's connection: %v", err)
	}
}

// expectClosedOrReset checks that the server ends the connection (a reset is fine: the
// client's bytes may not all have been read).
func (r *rawConn) expectClosedOrReset() {
	r.t.Helper()
	_, err := io.ReadAll(r.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("connection not closed: %v", err)
	}
}

// TestSessionBrokenBeforeInstalled: a connection reset right after the dial (the server
// killed in that instant) breaks the session before Conn.session installs it, so its
// reader's breakSession finds another current session (none) and leaves it; the installed
// session is dead and nothing would ever replace it: every later call failed at once with
// its "connection broken" (the chaos test's final read, retried for 20 s over one port).
// The next call must dial again.
func TestSessionBrokenBeforeInstalled(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[string]HandlerFunc{idl.RPCGet: echoGet})
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()
	sess, err := c.dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sess.fail(fmt.Errorf("%w: reset by peer", ErrConnBroken))
	sess.wg.Wait() // its reader and writer are gone: no breakSession is left to come
	c.mu.Lock()
	c.sess = sess // as Conn.session installs a dial's session
	c.mu.Unlock()
	if got, err := get(t.Context(), c, 0, "k"); err != nil || string(got) != "k" {
		t.Fatalf("call after a session broke before it was installed: %q %v", got, err)
	}
}

// The writer yields for other replies to coalesce only while requests of the connection
// are being handled: a lone request's reply is queued with none counted (so it is written
// without a yield), while a handler still running is counted until its reply is queued.
func TestWriterCoalescesOnlyBehindHandlers(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	var s *Server
	conn := func() *serverConn {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, sc := range s.mu.conns {
			return sc // the test's only connection
		}
		return nil
	}
	var seen atomic.Int64
	s = startServer(t, ServerConfig{}, map[string]HandlerFunc{idl.RPCGet: func(ctx context.Context, req *Request) (idl.Value, wire.Code) {
		if string(*req.Args.(*idl.Blob)) == "slow" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		} else {
			seen.Store(conn().handling.Load())
		}
		return echoGet(ctx, req)
	}})
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()

	if _, err := get(t.Context(), c, 0, "fast"); err != nil {
		t.Fatal(err)
	}
	if n := seen.Load(); n != 1 {
		t.Fatalf("a lone request's handler saw %d handled, want itself only", n)
	}
	if n := conn().handling.Load(); n != 0 {
		t.Fatalf("%d requests counted as handled after the only reply arrived", n)
	}

	slow := make(chan error, 1)
	go func() {
		_, err := get(t.Context(), c, 0, "slow")
		slow <- err
	}()
	<-entered
	if _, err := get(t.Context(), c, 0, "fast"); err != nil {
		t.Fatal(err)
	}
	if n := seen.Load(); n != 2 {
		t.Fatalf("a request beside a running one saw %d handled, want 2", n)
	}
	if n := conn().handling.Load(); n != 1 {
		t.Fatalf("%d requests counted as handled while the slow one runs, want 1", n)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if n := conn().handling.Load(); n != 0 {
		t.Fatalf("%d requests counted as handled after every reply arrived", n)
	}
}
