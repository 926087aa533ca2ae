package metaclient

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// handler answers the nth (from 1) request of one RPC to a test meta.
type handler func(ctx context.Context, n int) (idl.Value, wire.Code)

// testMeta is an rpc.Server on 127.0.0.1:0 answering meta RPCs through handlers, counting the
// requests of each RPC.
type testMeta struct {
	addr string
	mu   sync.Mutex
	n    map[string]int
}

func startMeta(t *testing.T, handlers map[string]handler) *testMeta {
	t.Helper()
	srv, err := rpc.NewServer(rpc.ServerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	m := &testMeta{addr: srv.Addr().String(), n: map[string]int{}}
	for name, h := range handlers {
		srv.Handle(name, func(ctx context.Context, _ *rpc.Request) (idl.Value, wire.Code) {
			m.mu.Lock()
			m.n[name]++
			n := m.n[name]
			m.mu.Unlock()
			return h(ctx, n)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return m
}

func (m *testMeta) count(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[name]
}

// deadAddr returns an address where nothing listens: connections are refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c := New(cfg)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// config answers a configuration query for a table of one partition.
func config(ctx context.Context, n int) (idl.Value, wire.Code) {
	return &idl.QueryCfgResponse{Err: "ERR_OK", AppID: 7, PartitionCount: 1,
		Partitions: []idl.PartitionConfiguration{{PID: idl.GPID{AppID: 7}, Ballot: 1}}}, wire.OK
}

// forwardTo answers a configuration query as a meta that is not the leader, naming leader
// ("" names none).
func forwardTo(t *testing.T, leader string) handler {
	return func(context.Context, int) (idl.Value, wire.Code) {
		resp := &idl.QueryCfgResponse{Err: "ERR_FORWARD_TO_OTHERS"}
		if leader != "" {
			ra, err := idl.ParseRPCAddress(leader)
			if err != nil {
				t.Errorf("leader %q: %v", leader, err)
			}
			resp.Partitions = []idl.PartitionConfiguration{{Primary: ra}}
		}
		return resp, wire.OK
	}
}

func listApps(code wire.Code) handler {
	return func(context.Context, int) (idl.Value, wire.Code) {
		return &idl.ListAppsResponse{Err: idl.ErrorCode(code.Name()), Infos: []idl.AppInfo{}}, wire.OK
	}
}

func callListApps(ctx context.Context, c *Client) (*idl.ListAppsResponse, error) {
	return Call(ctx, c, idl.RPCListApps, &idl.ListAppsRequest{}, func(r *idl.ListAppsResponse) Status { return CodeStatus(r.Err) })
}

func TestCall(t *testing.T) {
	t.Run("leader followed through a hint", func(t *testing.T) {
		leader := startMeta(t, map[string]handler{idl.RPCQueryConfig: config})
		follower := startMeta(t, map[string]handler{idl.RPCQueryConfig: forwardTo(t, leader.addr)})
		c := newClient(t, Config{Addrs: []string{follower.addr}})
		for range 2 {
			resp, err := c.QueryConfig(t.Context(), "temp")
			if err != nil || resp.AppID != 7 {
				t.Fatalf("QueryConfig = %+v, %v", resp, err)
			}
		}
		if c.Leader() != leader.addr || !slices.Equal(c.Addrs(), []string{follower.addr, leader.addr}) {
			t.Errorf("leader %s of %v, want %s", c.Leader(), c.Addrs(), leader.addr)
		}
		if f, l := follower.count(idl.RPCQueryConfig), leader.count(idl.RPCQueryConfig); f != 1 || l != 2 {
			t.Errorf("queries: follower %d, leader %d; want 1 and 2", f, l)
		}
	})

	t.Run("leader learnt from a configuration query when the reply names none", func(t *testing.T) {
		leader := startMeta(t, map[string]handler{idl.RPCListApps: listApps(wire.OK)})
		follower := startMeta(t, map[string]handler{
			idl.RPCListApps:    listApps(wire.ErrForwardToOthers),
			idl.RPCQueryConfig: forwardTo(t, leader.addr),
		})
		c := newClient(t, Config{Addrs: []string{follower.addr}})
		if _, err := callListApps(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		if c.Leader() != leader.addr || follower.count(idl.RPCQueryConfig) != 1 || leader.count(idl.RPCListApps) != 1 {
			t.Errorf("leader %s; probes %d, list_apps at the leader %d", c.Leader(), follower.count(idl.RPCQueryConfig), leader.count(idl.RPCListApps))
		}
	})

	t.Run("another meta when one is down", func(t *testing.T) {
		live := startMeta(t, map[string]handler{idl.RPCQueryConfig: config})
		c := newClient(t, Config{Addrs: []string{deadAddr(t), live.addr}})
		if _, err := c.QueryConfig(t.Context(), "temp"); err != nil {
			t.Fatal(err)
		}
		if c.Leader() != live.addr {
			t.Errorf("leader %s, want %s", c.Leader(), live.addr)
		}
		// The next call goes to the live meta first.
		if _, err := c.QueryConfig(t.Context(), "temp"); err != nil || live.count(idl.RPCQueryConfig) != 2 {
			t.Fatalf("second QueryConfig: %v, %d queries", err, live.count(idl.RPCQueryConfig))
		}
	})

	t.Run("another meta when the leader does not answer in time", func(t *testing.T) {
		hung := startMeta(t, map[string]handler{idl.RPCQueryConfig: func(ctx context.Context, _ int) (idl.Value, wire.Code) {
			<-ctx.Done() // until the test's servers stop
			return nil, wire.ErrTimeout
		}})
		live := startMeta(t, map[string]handler{idl.RPCQueryConfig: config})
		c := newClient(t, Config{Addrs: []string{hung.addr, live.addr}, AttemptTimeout: 50 * time.Millisecond})
		if _, err := c.QueryConfig(t.Context(), "temp"); err != nil {
			t.Fatal(err)
		}
		if c.Leader() != live.addr || hung.count(idl.RPCQueryConfig) != 1 {
			t.Errorf("leader %s after %d queries of the hung meta", c.Leader(), hung.count(idl.RPCQueryConfig))
		}
	})

	t.Run("retry until a meta serves", func(t *testing.T) {
		const refusals = 3
		m := startMeta(t, map[string]handler{idl.RPCListApps: func(ctx context.Context, n int) (idl.Value, wire.Code) {
			switch n {
			case 1:
				return nil, wire.ErrServiceNotActive // in the envelope
			case 2:
				return listApps(wire.ErrUnderRecovery)(ctx, n)
			case refusals:
				return listApps(wire.ErrServiceNotActive)(ctx, n)
			}
			return listApps(wire.OK)(ctx, n)
		}})
		c := newClient(t, Config{Addrs: []string{m.addr}})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if _, err := callListApps(ctx, c); err != nil {
			t.Fatal(err)
		}
		if n := m.count(idl.RPCListApps); n != refusals+1 {
			t.Errorf("%d requests, want %d", n, refusals+1)
		}
	})

	t.Run("retry until the deadline", func(t *testing.T) {
		m := startMeta(t, map[string]handler{idl.RPCListApps: listApps(wire.ErrServiceNotActive)})
		c := newClient(t, Config{Addrs: []string{m.addr}})
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err := callListApps(ctx, c)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, wire.ErrServiceNotActive) {
			t.Fatalf("err = %v, want the deadline after the last refusal", err)
		}
		if n := m.count(idl.RPCListApps); n < 2 {
			t.Errorf("%d requests before the deadline, want retries", n)
		}
	})

	t.Run("no retry after the deadline", func(t *testing.T) {
		m := startMeta(t, map[string]handler{idl.RPCListApps: listApps(wire.ErrServiceNotActive)})
		c := newClient(t, Config{Addrs: []string{m.addr}})
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		if _, err := callListApps(ctx, c); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		// Call has returned and joined its goroutines: nothing of it is left to send.
		sent := m.count(idl.RPCListApps)
		time.Sleep(100 * time.Millisecond)
		if n := m.count(idl.RPCListApps); n != sent {
			t.Errorf("%d requests after the call returned at the deadline", n-sent)
		}
		// A context already over sends nothing.
		if _, err := callListApps(ctx, c); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if n := m.count(idl.RPCListApps); n != sent {
			t.Errorf("a call with an expired context sent %d requests", n-sent)
		}
	})

	t.Run("final reply error returned at once", func(t *testing.T) {
		first := startMeta(t, map[string]handler{idl.RPCQueryConfig: func(context.Context, int) (idl.Value, wire.Code) {
			return &idl.QueryCfgResponse{Err: "ERR_OBJECT_NOT_FOUND"}, wire.OK
		}})
		second := startMeta(t, map[string]handler{idl.RPCQueryConfig: config})
		c := newClient(t, Config{Addrs: []string{first.addr, second.addr}})
		resp, err := c.QueryConfig(t.Context(), "missing")
		if !errors.Is(err, wire.ErrObjectNotFound) || resp == nil || resp.Err != "ERR_OBJECT_NOT_FOUND" {
			t.Fatalf("QueryConfig = %+v, %v; want the reply with ERR_OBJECT_NOT_FOUND", resp, err)
		}
		if first.count(idl.RPCQueryConfig) != 1 || second.count(idl.RPCQueryConfig) != 0 {
			t.Errorf("queries %d and %d, want 1 and 0", first.count(idl.RPCQueryConfig), second.count(idl.RPCQueryConfig))
		}
	})

	t.Run("final envelope error returned at once", func(t *testing.T) {
		m := startMeta(t, map[string]handler{idl.RPCQueryConfig: config}) // no list_apps handler
		c := newClient(t, Config{Addrs: []string{m.addr}})
		resp, err := callListApps(t.Context(), c)
		if !errors.Is(err, wire.ErrHandlerNotFound) || resp != nil {
			t.Fatalf("list_apps = %+v, %v; want ERR_HANDLER_NOT_FOUND", resp, err)
		}
	})

	t.Run("every meta asked when the leader refuses", func(t *testing.T) {
		leader := startMeta(t, map[string]handler{idl.RPCListApps: listApps(wire.OK)})
		refusing := startMeta(t, map[string]handler{
			idl.RPCListApps:    listApps(wire.ErrForwardToOthers),
			idl.RPCQueryConfig: forwardTo(t, ""),
		})
		c := newClient(t, Config{Addrs: []string{refusing.addr, deadAddr(t), leader.addr}})
		if _, err := callListApps(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		if c.Leader() != leader.addr {
			t.Errorf("leader %s, want %s", c.Leader(), leader.addr)
		}
	})

	t.Run("max rounds", func(t *testing.T) {
		c := newClient(t, Config{Addrs: []string{deadAddr(t)}, MaxRounds: 2})
		_, err := callListApps(t.Context(), c)
		if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want the connection's error", err)
		}
	})

	t.Run("closed", func(t *testing.T) {
		asked := make(chan struct{})
		var once sync.Once
		m := startMeta(t, map[string]handler{idl.RPCListApps: func(ctx context.Context, n int) (idl.Value, wire.Code) {
			once.Do(func() { close(asked) })
			return listApps(wire.ErrServiceNotActive)(ctx, n)
		}})
		c := newClient(t, Config{Addrs: []string{m.addr}})
		errc := make(chan error, 1)
		go func() {
			_, err := callListApps(t.Context(), c)
			errc <- err
		}()
		<-asked
		_ = c.Close()
		if err := <-errc; !errors.Is(err, rpc.ErrClosed) {
			t.Fatalf("call interrupted by Close = %v", err)
		}
		if _, err := callListApps(t.Context(), c); !errors.Is(err, rpc.ErrClosed) {
			t.Fatalf("call after Close = %v", err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewWithoutMetasPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New without meta servers did not panic")
		}
	}()
	New(Config{})
}
