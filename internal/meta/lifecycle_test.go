package meta

import (
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/leakcheck"
)

func TestCloseBeforeRun(t *testing.T) {
	snap := leakcheck.Take()
	dir := t.TempDir()
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.DiscardHandler)}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context()); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown after Close: %v", err)
	}
	// The raft log was closed: another server opens the same data.
	s2, err := New(cfg)
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	snap.Check(t)
}

// A group of three metas is started, elects a leader and serves, then is stopped with Close
// or with Shutdown (twice, concurrently), many times: each Run returns ErrServerClosed and no
// goroutine is left.
func TestGroupStartStopLeavesNoGoroutine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 60 metas")
	}
	snap := leakcheck.Take()
	for i := range 20 {
		g := startGroup(t, 3, Config{})
		lead := g.leader()
		var resp idl.ListAppsResponse
		lead.call(idl.RPCListApps, &idl.ListAppsRequest{}, &resp)
		var wg sync.WaitGroup
		for _, tm := range g.metas {
			for range 2 {
				wg.Go(func() {
					var err error
					if i%2 == 0 {
						err = tm.srv.Close()
					} else {
						err = tm.srv.Shutdown(t.Context())
					}
					if err != nil {
						t.Errorf("stop %d: %v", i, err)
					}
				})
			}
		}
		wg.Wait()
		for addr := range g.metas {
			g.stop(addr) // Run returned ErrServerClosed
		}
	}
	snap.Check(t)
}
