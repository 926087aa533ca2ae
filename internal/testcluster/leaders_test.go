package testcluster

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/replica"
)

// createRuns is how many times TestWritesRightAfterCreate runs its scenario: 2 (1 with
// -short), or PEGASUS_CREATE_RUNS, e.g. 20 for the long run:
//
//	PEGASUS_CREATE_RUNS=20 go test -run TestWritesRightAfterCreate -timeout 30m ./internal/testcluster/
func createRuns(t *testing.T) int {
	if v := os.Getenv("PEGASUS_CREATE_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PEGASUS_CREATE_RUNS=%q: want a positive count", v)
		}
		return n
	}
	if testing.Short() {
		return 1
	}
	return 2
}

// A new user's first minutes, on a cluster of 3 metas and 3 replica servers with a
// deployment's timing (1 s reports, 100 ms raft ticks): five tables of 16 partitions of 3
// replicas are created with the admin client, and as soon as each create returns, 4
// goroutines write 500 records each to it, with a client that reacts to errors as the official
// go-client does (an ERR_INVALID_STATE reaches the application). No write fails: each table
// serves from its intended primaries when the create returns, and no leadership change
// follows. Each run starts a cluster of its own.
func TestWritesRightAfterCreate(t *testing.T) {
	for run := range createRuns(t) {
		t.Run(fmt.Sprintf("run%d", run+1), func(t *testing.T) {
			c := Start(t, Options{Metas: 3, Replicas: 3,
				SyncInterval: replica.DefaultSyncInterval, TickInterval: replica.DefaultTickInterval})
			ad := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs()})
			defer ad.Close()
			gc := NewGoClient(c.MetaAddrs())
			defer gc.Close()
			var failed, written atomic.Int64
			var firstErr atomic.Value
			var wg sync.WaitGroup
			for i := range 5 {
				name := fmt.Sprintf("t%d", i)
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				_, err := ad.CreateTable(ctx, name, 16, 3, nil, 60)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				tb, err := gc.OpenTable(t.Context(), name)
				if err != nil {
					t.Fatal(err)
				}
				defer tb.Close()
				for g := range 4 {
					wg.Go(func() {
						for j := range 500 {
							ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
							err := tb.Set(ctx, fmt.Appendf(nil, "%s-%d-%d", name, g, j), []byte("s"), []byte("v"))
							cancel()
							if err != nil {
								failed.Add(1)
								firstErr.CompareAndSwap(nil, err)
								continue
							}
							written.Add(1)
						}
					})
				}
			}
			wg.Wait()
			t.Logf("%d records written, %d writes failed", written.Load(), failed.Load())
			if n := failed.Load(); n > 0 {
				t.Fatalf("%d writes failed; the first: %v", n, firstErr.Load())
			}
		})
	}
}
