package gocli2018

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// failure is one write the 2018 client failed, at when after the crash (negative: before it).
type failure struct {
	when time.Duration
	kind string
}

// errorKind names the kind of a 2018 client's error as README.md's "Leader changes and what
// clients see" does; "" for one that section does not list.
func errorKind(err error) string {
	s := err.Error()
	for _, k := range []string{"ERR_TIMEOUT", "ERR_SESSION_RESET", "ERR_INVALID_STATE"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	if strings.Contains(s, "context deadline exceeded") {
		return "deadline"
	}
	// This client hands errors of its connection to the caller as they are.
	for _, e := range []string{"EOF", "connection refused", "connection reset", "broken pipe"} {
		if strings.Contains(s, e) {
			return "transport"
		}
	}
	return ""
}

// TestCrashFailoverSeenByClient measures what the 2018 client's writes see when the replica
// server that leads the most partitions of their table crashes, on a cluster with a
// deployment's timing (1 s reports to the meta, raft ticks of 100 ms: elections after 1 to
// 2 s). Four writers with a timeout of 1 s each write without pause. Only the kinds of error
// that README.md lists reach them, none later than 10 s after the crash, and every write
// acknowledged is read back afterwards. The log line gives the figures README.md quotes.
func TestCrashFailoverSeenByClient(t *testing.T) {
	logTo(t)
	c := testcluster.Start(t, testcluster.Options{Metas: 3, Replicas: 3,
		SyncInterval: replica.DefaultSyncInterval, TickInterval: replica.DefaultTickInterval})
	ad := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs()})
	defer ad.Close()
	if _, err := ad.CreateTable(t.Context(), "failover", 8, 3, nil, 120); err != nil {
		t.Fatal(err)
	}
	tb := openTable(t, c, "failover")

	const settle, after = 3 * time.Second, 12 * time.Second
	var (
		mu      sync.Mutex
		crashed time.Time // zero until the crash
		fails   []failure
		acked   = map[string]bool{}
		others  []string
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("w%d-%d", g, i)
				wctx, wcancel := context.WithTimeout(ctx, time.Second)
				err := tb.Set(wctx, []byte(key), []byte("s"), []byte(key))
				wcancel()
				now := time.Now()
				mu.Lock()
				switch {
				case err == nil:
					acked[key] = true
				case ctx.Err() != nil: // the test's end, not the cluster's
				default:
					var when time.Duration
					if !crashed.IsZero() {
						when = now.Sub(crashed)
					} else {
						when = -time.Nanosecond
					}
					kind := errorKind(err)
					fails = append(fails, failure{when, kind})
					if kind == "" && len(others) < 5 {
						others = append(others, err.Error())
					}
				}
				mu.Unlock()
			}
		})
	}

	time.Sleep(settle)
	cfg, err := ad.QueryConfig(t.Context(), "failover")
	if err != nil {
		t.Fatal(err)
	}
	leads := map[string]int{}
	for _, p := range cfg.Partitions {
		leads[p.Primary]++
	}
	victim := slices.MaxFunc(slices.Collect(maps.Keys(leads)), func(a, b string) int { return leads[a] - leads[b] })
	mu.Lock()
	crashed = time.Now()
	mu.Unlock()
	c.StopReplica(t, victim)
	time.Sleep(after)
	cancel()
	wg.Wait()

	kinds := map[string]int{}
	var last time.Duration
	for _, f := range fails {
		if f.when < 0 {
			t.Errorf("a write failed before the crash (%s)", f.kind)
			continue
		}
		kinds[f.kind]++
		last = max(last, f.when)
	}
	t.Logf("crash of %s (primary of %d of %d partitions): %d writes acknowledged, %d failed: %v; the last failure %v after the crash",
		victim, leads[victim], len(cfg.Partitions), len(acked), len(fails), kinds, last.Round(time.Millisecond))
	if len(others) > 0 {
		t.Errorf("errors of a kind README.md does not list: %q", others)
	}
	if last > 10*time.Second {
		t.Errorf("writes still failed %v after the crash, want service back within 10 s", last)
	}

	// Every acknowledged write is there.
	for key := range acked {
		rctx, rcancel := context.WithTimeout(t.Context(), 10*time.Second)
		v, err := tb.Get(rctx, []byte(key), []byte("s"))
		rcancel()
		if err != nil || string(v) != key {
			t.Fatalf("acknowledged write %s: read %q, %v", key, v, err)
		}
	}
}
