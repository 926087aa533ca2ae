package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// Network partitions between replica servers, while clients and the meta still reach every
// server: every 2 s one replica server is cut off from its peers (replica.Server.CutOffPeers)
// for 1.5 to 4 s. A leader cut off so keeps its clients, which still route to it, and
// believes it leads until raft's CheckQuorum has it step down, up to two election timeouts
// later; meanwhile the others elect a new leader and write on. 8 clients that react to
// errors as the official go-client does (no refresh without an error) work on 16 keys, and
// their history must be linearizable, with writes succeeding again within 10 s of each
// partition's end. In-process, with a deployment's timing (1 s reports, 100 ms raft ticks).
func TestChaosPartitionReplicaLinearizable(t *testing.T) { runPartitionChaos(t, false) }

// TestChaosPartitionReplicaLinearizableTLS is the same with TLS on between clients and
// servers, mandatory (plaintext clients refused), and peer authentication between the
// servers as always: the clients are our client over TLS (the official go-client cannot
// do TLS).
func TestChaosPartitionReplicaLinearizableTLS(t *testing.T) { runPartitionChaos(t, true) }

func runPartitionChaos(t *testing.T, withTLS bool) {
	opts := testcluster.Options{Metas: 1, Replicas: 3,
		SyncInterval: replica.DefaultSyncInterval, TickInterval: replica.DefaultTickInterval}
	if withTLS {
		opts.TLS = testcluster.NewTLS(t)
		opts.TLS.Mandatory = true
	}
	c := testcluster.Start(t, opts)
	c.CreateTableReplicas(t, "cuts", 4, 3)
	var tb kvTable
	if withTLS {
		cl, err := pegasus.New(c.ClientConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		otb, err := cl.OpenTable(t.Context(), "cuts")
		if err != nil {
			t.Fatal(err)
		}
		tb = ourTable{otb}
	} else {
		gc := testcluster.NewGoClient(c.MetaAddrs())
		defer gc.Close()
		gtb, err := gc.OpenTable(t.Context(), "cuts")
		if err != nil {
			t.Fatal(err)
		}
		defer gtb.Close()
		tb = gtb
	}

	var keys []string
	for i := range 16 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	rec := &recorder{start: time.Now()}
	ctx, cancel := context.WithTimeout(t.Context(), chaosDuration())
	defer cancel()
	var lastWriteOK atomic.Int64
	var wg sync.WaitGroup
	for cl := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), 13))
			for ctx.Err() == nil {
				in := randomOp(rng, keys)
				if rec.run(context.WithoutCancel(ctx), tb, cl, in) == nil && in.op != "get" {
					lastWriteOK.Store(rec.now())
				}
			}
		})
	}

	rng := rand.New(rand.NewPCG(5, 5))
	addrs := c.ReplicaAddrs()
	cuts, worstRecovery := strike(ctx, t, rec, &lastWriteOK, "partition", func() string {
		victim := c.Replica(t, addrs[rng.IntN(len(addrs))])
		victim.CutOffPeers(true)
		time.Sleep(time.Duration(1500+rng.IntN(2500)) * time.Millisecond)
		victim.CutOffPeers(false)
		return victim.Addr()
	})
	wg.Wait()
	finalReads(t, rec, tb, keys, nil)
	res := rec.check(t, keys)
	t.Logf("partitions (tls %v): %v, %d cuts, %d operations acknowledged, %d failed or timed out, worst write recovery after a cut healed %v, result %s",
		withTLS, chaosDuration(), cuts, rec.acked.Load(), rec.fails.Load(), worstRecovery, res)
	if res != "Ok" {
		t.Fatalf("linearizability check: %s", res)
	}
	if cuts == 0 || rec.acked.Load() == 0 {
		t.Fatalf("nothing exercised: %d cuts, %d acknowledged", cuts, rec.acked.Load())
	}
}
