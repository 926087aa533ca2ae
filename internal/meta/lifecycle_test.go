package meta

import (
	"log/slog"
	"sync"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/leakcheck"
	"github.com/gopegasus/pegasus/internal/servertest"
)

func TestCloseBeforeRun(t *testing.T) {
	dir := t.TempDir()
	servertest.CloseBeforeRun(t, func() (servertest.Server, error) {
		return New(Config{Listen: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	})
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
