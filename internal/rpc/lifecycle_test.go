package rpc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/leakcheck"
	"github.com/gopegasus/pegasus/internal/wire"
)

// blocking is a GET handler that, for the key "block", reports the call on started and
// waits for release or the end of its context (reported on ended); other keys echo.
type blocking struct {
	started chan struct{}
	release chan struct{}
	ended   chan error
}

func newBlocking() *blocking {
	return &blocking{started: make(chan struct{}, 16), release: make(chan struct{}), ended: make(chan error, 16)}
}

func (b *blocking) get(ctx context.Context, req *Request) (idl.Value, wire.Code) {
	if string(*req.Args.(*idl.Blob)) == "block" {
		b.started <- struct{}{}
		select {
		case <-b.release:
			b.ended <- nil
		case <-ctx.Done():
			b.ended <- ctx.Err()
			return nil, wire.ErrTimeout
		}
	}
	return echoGet(ctx, req)
}

// newServer makes a server (not running) with the blocking GET handler and an HTTP handler
// that blocks the same way on /block.
func newServer(t *testing.T, b *blocking) *Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /block", func(w http.ResponseWriter, r *http.Request) {
		b.started <- struct{}{}
		select {
		case <-b.release:
			b.ended <- nil
			_, _ = io.WriteString(w, "released")
		case <-r.Context().Done():
			b.ended <- r.Context().Err()
		}
	})
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", HTTP: mux,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	s.Handle(idl.RPCGet, b.get)
	return s
}

// waitRefused returns once the listener at addr is closed.
func waitRefused(addr string) {
	for {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		nc.Close()
	}
}

func runServer(s *Server) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	return done
}

func TestCloseBeforeRun(t *testing.T) {
	snap := leakcheck.Take()
	s := newServer(t, newBlocking())
	addr := s.Addr().String()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context()); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the listener is still open after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown after Close: %v", err)
	}
	snap.Check(t)
}

func TestRunContextEndCloses(t *testing.T) {
	s := newServer(t, newBlocking())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()
	if _, err := get(t.Context(), c, 0, "x"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run: %v", err)
	}
	if err := s.Run(t.Context()); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run again: %v", err)
	}
}

// Shutdown lets the thrift and HTTP requests in flight finish and answer, while the server
// takes no new connection.
func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	b := newBlocking()
	s := newServer(t, b)
	done := runServer(s)
	addr := s.Addr().String()
	c := NewConn(addr, ConnConfig{})
	defer c.Close()
	type result struct {
		v   string
		err error
	}
	rpcRes := make(chan result, 1)
	go func() {
		v, err := get(t.Context(), c, 0, "block")
		rpcRes <- result{string(v), err}
	}()
	httpRes := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/block")
		if err != nil {
			httpRes <- result{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		httpRes <- result{string(body), err}
	}()
	<-b.started
	<-b.started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(t.Context()) }()
	waitRefused(addr) // no new connection is taken
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned with requests in flight: %v", err)
	default:
	}
	close(b.release)
	if r := <-rpcRes; r.err != nil || r.v != "block" {
		t.Fatalf("rpc in flight: %q %v", r.v, r.err)
	}
	if r := <-httpRes; r.err != nil || r.v != "released" {
		t.Fatalf("http in flight: %q %v", r.v, r.err)
	}
	for range 2 {
		if err := <-b.ended; err != nil {
			t.Fatalf("a handler's context ended during Shutdown: %v", err)
		}
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run: %v", err)
	}
}

// A Shutdown whose context ends abandons the requests still in flight, as Close does, and
// returns the context's error; so does Close at once.
func TestCloseAndShutdownDeadlineAbandonRequests(t *testing.T) {
	for _, how := range []string{"close", "shutdown deadline"} {
		t.Run(how, func(t *testing.T) {
			b := newBlocking()
			s := newServer(t, b)
			done := runServer(s)
			c := NewConn(s.Addr().String(), ConnConfig{})
			defer c.Close()
			rpcErr := make(chan error, 1)
			go func() {
				_, err := get(t.Context(), c, 0, "block")
				rpcErr <- err
			}()
			<-b.started
			if how == "close" {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				ctx, cancel := context.WithCancel(t.Context())
				shut := make(chan error, 1)
				go func() { shut <- s.Shutdown(ctx) }()
				cancel()
				if err := <-shut; !errors.Is(err, context.Canceled) {
					t.Fatalf("Shutdown: %v", err)
				}
			}
			// Close and Shutdown return once the handler has returned.
			select {
			case err := <-b.ended:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("handler: %v", err)
				}
			default:
				t.Fatal("the handler still runs after the server stopped")
			}
			if err := <-rpcErr; !errors.Is(err, ErrConnBroken) {
				t.Fatalf("call in flight: %v", err)
			}
			if err := <-done; !errors.Is(err, ErrServerClosed) {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

// The server is started and stopped many times, with Close and with Shutdown, called twice
// and concurrently, with a thrift client, an HTTP keep-alive connection and a connection
// that never says anything open: no goroutine is left.
func TestStartStopLeavesNoGoroutine(t *testing.T) {
	snap := leakcheck.Take()
	for i := range 20 {
		b := newBlocking()
		s := newServer(t, b)
		done := runServer(s)
		addr := s.Addr().String()
		c := NewConn(addr, ConnConfig{})
		if v, err := get(t.Context(), c, 0, "x"); err != nil || string(v) != "x" {
			t.Fatalf("get: %q %v", v, err)
		}
		silent, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{}}
		if resp, err := hc.Get("http://" + addr + "/missing"); err != nil {
			t.Fatal(err)
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					err = s.Close()
				} else {
					err = s.Shutdown(t.Context())
				}
				if err != nil {
					t.Errorf("stop %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Run: %v", err)
		}
		c.Close()
		silent.Close()
		hc.CloseIdleConnections()
	}
	snap.Check(t)
}

// During a Shutdown, one-way requests of inline routes (peer traffic, such as the raft
// messages a request in flight waits for) are still served, while a request of another
// route arriving on an open connection is not executed: that connection breaks.
func TestShutdownServesInlineRoutesUntilRequestsFinish(t *testing.T) {
	b := newBlocking()
	s := newServer(t, b)
	executed := make(chan string, 16)
	s.HandleInline(idl.RPCRaft, func(_ context.Context, req *Request) (idl.Value, wire.Code) {
		if string(*req.Args.(*idl.Blob)) == "release" {
			close(b.release)
		}
		return nil, wire.OK
	})
	s.Handle(idl.RPCTTL, func(_ context.Context, req *Request) (idl.Value, wire.Code) {
		executed <- string(*req.Args.(*idl.Blob))
		return &idl.TTLResponse{}, wire.OK
	})
	done := runServer(s)
	addr := s.Addr().String()
	client, peer, late := NewConn(addr, ConnConfig{}), NewConn(addr, ConnConfig{}), NewConn(addr, ConnConfig{})
	defer client.Close()
	defer peer.Close()
	defer late.Close()
	// Every connection is open before the Shutdown.
	for _, c := range []*Conn{peer, late} {
		var resp idl.TTLResponse
		if err := c.Call(t.Context(), wire.Header{}, idl.RPCTTL, ptr(idl.Blob("hello")), &resp); err != nil {
			t.Fatal(err)
		}
		<-executed
	}
	res := make(chan error, 1)
	go func() {
		_, err := get(t.Context(), client, 0, "block")
		res <- err
	}()
	<-b.started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(t.Context()) }()
	waitRefused(addr) // the Shutdown has begun
	var resp idl.TTLResponse
	if err := late.Call(t.Context(), wire.Header{}, idl.RPCTTL, ptr(idl.Blob("late")), &resp); !errors.Is(err, ErrConnBroken) {
		t.Fatalf("request during Shutdown: %v", err)
	}
	if err := peer.Send(t.Context(), wire.Header{}, idl.RPCRaft, ptr(idl.Blob("release"))); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("request in flight: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run: %v", err)
	}
	close(executed)
	for v := range executed {
		t.Errorf("request %q executed during the Shutdown", v)
	}
}

func ptr[T any](v T) *T { return &v }
