package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/gopegasus/pegasus/internal/linearize"
)

// TestChaosQuiescedLinearizable runs the kills and pauses on groups that quiesce between
// their requests: 8 keys of an 8-partition table, each client waiting 0.5 to 6 s between
// its operations, so that most partitions are idle for longer than the 3 election
// timeouts after which they quiesce ([replication] quiesce on, unless
// PEGASUS_CHAOS_QUIESCE says otherwise),
// and are woken by a request, a restarted member or the loss of their leader's server. One
// more client writes one key without pause, for the harness's recovery check. The history
// is checked with porcupine; the log gives the wakes and quiesced groups the servers
// counted.
func TestChaosQuiescedLinearizable(t *testing.T) {
	if os.Getenv("PEGASUS_CHAOS_QUIESCE") == "" {
		t.Setenv("PEGASUS_CHAOS_QUIESCE", "true")
	}
	c := startCluster(t)
	c.createTable("quiet", 8)
	tb := c.openTable("quiet")
	rec := linearize.NewRecorder()
	var keys []string
	for i := range 8 {
		keys = append(keys, fmt.Sprintf("q-k%d", i))
	}
	busy := []string{"q-busy"}
	ctx, cancel := context.WithTimeout(t.Context(), chaosDuration())
	defer cancel()

	var lastWriteOK atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(99, 7))
		for ctx.Err() == nil {
			in := linearize.RandomOp(rng, busy)
			if rec.Run(context.WithoutCancel(ctx), linearize.Ours(tb), 0, in) == nil && in.Op != "get" {
				lastWriteOK.Store(rec.Now())
			}
		}
	})
	for cl := 1; cl <= 4; cl++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), 7))
			for ctx.Err() == nil {
				_ = rec.Run(context.WithoutCancel(ctx), linearize.Ours(tb), cl, linearize.RandomOp(rng, keys))
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(500+rng.IntN(5500)) * time.Millisecond):
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(42, 42))
	faults, worst := strike(ctx, t, rec, &lastWriteOK, "faults", func() string {
		victim := c.replicas[rng.IntN(len(c.replicas))]
		if rng.IntN(2) == 0 {
			killFault.inject(victim, rng)
		} else {
			pauseFault.inject(victim, rng)
		}
		return victim.name
	})
	wg.Wait()
	all := append(keys, busy...)
	finalReads(t, rec, linearize.Ours(tb), all, func(k string) string {
		c.keepDiagnostics()
		return c.describeTable("quiet") + c.freshRead("quiet", k)
	})
	wakes, quiesced := c.quiescence(t)
	res := checkHistory(t, rec, all)
	t.Logf("quiesced chaos: %v, %d faults (kills and pauses), %d operations acknowledged, %d failed or timed out, worst write recovery after a fault %v, %d wakes from quiescence counted by the servers now up (%d groups quiesced at the end), result %s",
		chaosDuration(), faults, rec.Acked(), rec.Failed(), worst, wakes, quiesced, res)
	if res != porcupine.Ok {
		t.Fatalf("history not linearizable: %s", res)
	}
	if faults == 0 {
		t.Fatal("no fault struck")
	}
}

// quiescence sums the servers' raft_quiesce_wakes and raft_quiesced_groups metrics (counts
// since each server's last start).
func (c *cluster) quiescence(t *testing.T) (wakes, quiesced int64) {
	for _, r := range c.replicas {
		addr := strings.TrimPrefix(r.name, "replica ")
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Logf("metrics of %s: %v", addr, err)
			continue
		}
		var body struct {
			Entities []struct {
				Type    string `json:"type"`
				Metrics []struct {
					Name  string  `json:"name"`
					Value float64 `json:"value"`
				} `json:"metrics"`
			} `json:"entities"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Logf("metrics of %s: %v", addr, err)
			continue
		}
		for _, e := range body.Entities {
			for _, m := range e.Metrics {
				if e.Type == "server" && m.Name == "raft_quiesce_wakes" {
					wakes += int64(m.Value)
				}
				if e.Type == "server" && m.Name == "raft_quiesced_groups" {
					quiesced += int64(m.Value)
				}
			}
		}
	}
	return wakes, quiesced
}
