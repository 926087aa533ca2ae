package testcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/replica"
)

// hotWorkload runs writers goroutines sending reads or writes until stop is called: each
// request is for the hot hash key with probability share, otherwise for one of keys other
// hash keys chosen uniformly.
func hotWorkload(t *testing.T, tbl pegasus.TableConnector, write bool, hot []byte, keys int, share float64) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for ctx.Err() == nil {
				h := hot
				if rng.Float64() >= share {
					h = fmt.Appendf(nil, "user%06d", rng.IntN(keys))
				}
				var err error
				if write {
					err = tbl.Set(ctx, h, []byte("s"), []byte("value"))
				} else {
					_, err = tbl.Get(ctx, h, []byte("s"))
				}
				if err != nil && ctx.Err() == nil {
					t.Errorf("workload: %v", err)
					return
				}
			}
		})
	}
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop) // when the test fails before it stops the workload
	return stop
}

// TestHotKeyDetectionAndTopK is the acceptance test of hot-key detection: with one hot hash
// key among 100,000 (5% of the requests), for writes and then for reads, detect_hotkey
// started on the key's partition's primary (and, for writes, on a secondary) finds that key,
// and the top-k of the table ranks it first in its partition, as /metrics shows too.
func TestHotKeyDetectionAndTopK(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workload for several seconds")
	}
	c := Start(t, Options{Replicas: 3, Replica: func(cfg *replica.Config) { cfg.HotkeyInterval = 300 * time.Millisecond }})
	appID := c.CreateTableReplicas(t, "hot", 8, 3)
	c.WaitSpreadPrimaries(t, "hot") // no leader transfer moves the reads away meanwhile
	tbl := c.OpenTable(t, "hot")
	adm := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs()})
	defer adm.Close()
	hot := []byte("the-hot-one")
	pidx := int32(key.Partition(key.Hash(hot), 8))

	for _, typ := range []admin.HotkeyType{admin.HotkeyWrite, admin.HotkeyRead} {
		t.Run(typ.String(), func(t *testing.T) {
			cfg, err := adm.QueryConfig(t.Context(), "hot")
			if err != nil {
				t.Fatal(err)
			}
			primary := cfg.Partitions[pidx].Primary
			// Writes are counted where they are applied: a secondary finds the write hot key
			// too.
			servers := []string{primary}
			if typ == admin.HotkeyWrite {
				servers = append(servers, cfg.Partitions[pidx].Secondaries[0])
			}
			for _, s := range servers {
				if _, err := adm.DetectHotkey(t.Context(), s, appID, pidx, typ, admin.DetectStart); err != nil {
					t.Fatalf("start on %s: %v", s, err)
				}
			}
			stop := hotWorkload(t, tbl, typ == admin.HotkeyWrite, hot, 100_000, 0.05)
			for _, s := range servers {
				var found string
				poll.UntilOK(t, "the hot key on "+s, func(ctx context.Context) (bool, error) {
					res, err := adm.DetectHotkey(ctx, s, appID, pidx, typ, admin.DetectQuery)
					if errors.Is(err, pegasus.ErrBusy) {
						return false, nil
					}
					found = res
					return err == nil, err
				})
				if found != string(hot) {
					t.Fatalf("detect_hotkey on %s found %q, want %q", s, found, hot)
				}
			}
			parts, err := adm.TableHotKeys(t.Context(), "hot", 3)
			stop()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range parts {
				l := p.Read
				if typ == admin.HotkeyWrite {
					l = p.Write
				}
				if p.Err != nil || len(l.Keys) == 0 {
					t.Fatalf("partition %d: %v %+v", p.Index, p.Err, l)
				}
				if first := string(l.Keys[0].HashKey); (p.Index == pidx) != (first == string(hot)) {
					t.Fatalf("partition %d (hot key in %d): top %s key %q, %+v", p.Index, pidx, typ, first, l.Keys)
				}
			}
			for _, s := range servers {
				if _, err := adm.DetectHotkey(t.Context(), s, appID, pidx, typ, admin.DetectStop); err != nil {
					t.Fatalf("stop on %s: %v", s, err)
				}
			}
			// /metrics of the primary has the key as its partition's first.
			ans := httpGet(t, "http://"+primary+"/metrics?types=hotkey")
			var doc metricsDoc
			if err := json.Unmarshal([]byte(ans.body), &doc); err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("hotkey@%d.%d.%s.1", appID, pidx, typ)
			var seen bool
			for _, e := range doc.Entities {
				seen = seen || (e.ID == id && e.Attributes["hash_key"] == string(hot))
			}
			if !seen {
				t.Fatalf("/metrics of %s has no %s for the hot key", primary, id)
			}
			if prom := httpGet(t, "http://"+primary+"/metrics/prometheus").body; !strings.Contains(prom, `hash_key="`+string(hot)+`"`) {
				t.Fatal("/metrics/prometheus does not label the hot key")
			}
		})
	}
}
