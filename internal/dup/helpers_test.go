package dup_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// settle bounds every wait of these tests: long enough never to be what a slow machine
// runs into, so a test that reaches it is stuck, not slow.
const settle = 2 * time.Minute

// pair starts a master cluster "c1" and a follower "c2"; mod adjusts both options.
func pair(t *testing.T, mod func(name string, o *testcluster.Options)) (c1, c2 *testcluster.Cluster) {
	t.Helper()
	o1 := testcluster.Options{ClusterName: "c1", Replicas: 3}
	o2 := testcluster.Options{ClusterName: "c2", Replicas: 3}
	if mod != nil {
		mod("c1", &o1)
		mod("c2", &o2)
	}
	cs := testcluster.StartClusters(t, o1, o2)
	return cs[0], cs[1]
}

// newTable creates a table of 3 replicas on the master and drops it, and the follower's, when
// the test ends: the clusters then run the raft groups of the tables in use only.
func newTable(t *testing.T, master, follower *testcluster.Cluster, name string, partitions int) int32 {
	t.Helper()
	id := master.CreateTableReplicas(t, name, partitions, 3)
	t.Cleanup(func() {
		for _, c := range []*testcluster.Cluster{master, follower} {
			a, err := admin.New(admin.Config{MetaServers: c.MetaAddrs(), TLS: c.ClientTLS()})
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := a.DropTable(ctx, name, 0); err != nil {
				t.Logf("drop %s on %s: %v", name, c.Name(), err)
			}
			cancel()
			_ = a.Close()
		}
	})
	return id
}

func newAdmin(t *testing.T, c *testcluster.Cluster) admin.Client {
	t.Helper()
	a, err := admin.New(admin.Config{MetaServers: c.MetaAddrs(), TLS: c.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func openTable(t *testing.T, c *testcluster.Cluster, name string) pegasus.TableConnector {
	t.Helper()
	cl, err := pegasus.New(c.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	var tb pegasus.TableConnector
	waitFor(t, "open table "+name, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		tb, err = cl.OpenTable(ctx, name)
		return err == nil
	})
	return tb
}

// waitFor polls cond until it holds; it fails the test after settle.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// scan returns every record of the table: "hashkey/sortkey" -> value.
func scan(ctx context.Context, tb pegasus.TableConnector) (map[string]string, error) {
	scanners, err := tb.GetUnorderedScanners(ctx, 16, pegasus.NewScanOptions())
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range scanners {
		for {
			done, h, k, v, err := s.Next(ctx)
			if err != nil {
				_ = s.Close()
				return nil, err
			}
			if done {
				break
			}
			out[string(h)+"/"+string(k)] = string(v)
		}
		_ = s.Close()
	}
	return out, nil
}

// mustScan is scan that retries transient errors (a primary moving) until settle.
func mustScan(t *testing.T, tb pegasus.TableConnector) map[string]string {
	t.Helper()
	var (
		recs    map[string]string
		lastErr error
	)
	deadline := time.Now().Add(settle)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		recs, lastErr = scan(ctx, tb)
		cancel()
		if lastErr == nil {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no full scan succeeded: %v", lastErr)
		}
		t.Logf("scan failed: %v", lastErr)
		time.Sleep(100 * time.Millisecond)
	}
}

// converge waits until the follower's records are exactly the master's (full scans of both).
func converge(t *testing.T, master, follower pegasus.TableConnector) map[string]string {
	t.Helper()
	var want, got map[string]string
	deadline := time.Now().Add(settle)
	for {
		want, got = mustScan(t, master), mustScan(t, follower)
		if maps.Equal(want, got) {
			return want
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower's records never became the master's: %s", diff(want, got))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// diff describes how got differs from want, briefly.
func diff(want, got map[string]string) string {
	var missing, extra, wrong []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			missing = append(missing, k)
		} else if g != v {
			wrong = append(wrong, fmt.Sprintf("%s=%q want %q", k, g, v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	short := func(s []string) string {
		slices.Sort(s)
		if len(s) > 5 {
			return strings.Join(s[:5], ",") + fmt.Sprintf(",... (%d)", len(s))
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprintf("%d vs %d records; missing %s; extra %s; different %s", len(want), len(got), short(missing), short(extra), short(wrong))
}

// fill writes n records k<from..from+n> with value v<i>.
func fill(t *testing.T, tb pegasus.TableConnector, prefix string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		set(t, tb, fmt.Sprintf("%s%d", prefix, i), "s", fmt.Sprintf("v%d", i))
	}
}

// set writes one record, again when the outcome is unknown (a primary changing): the
// value is the same, so a write applied twice is harmless.
func set(t *testing.T, tb pegasus.TableConnector, h, s, v string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err := tb.Set(ctx, []byte(h), []byte(s), []byte(v))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || t.Context().Err() != nil {
			t.Fatalf("set %s/%s: %v", h, s, err)
		}
	}
}

// load writes (and deletes some of) records from several goroutines until stop is called,
// retrying what fails; acknowledged counts the writes acknowledged.
type load struct {
	stop         func()
	acknowledged atomic.Int64
}

func startLoad(t *testing.T, tb pegasus.TableConnector, prefix string, writers int) *load {
	ctx, cancel := context.WithCancel(t.Context())
	l := &load{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				h := []byte(fmt.Sprintf("%s%d-%d", prefix, w, i%97))
				var err error
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				switch i % 5 {
				case 3:
					err = tb.Del(cctx, h, []byte("s"))
				case 4:
					err = tb.MultiSet(cctx, h, [][]byte{[]byte("a"), []byte("b")}, [][]byte{[]byte(fmt.Sprint(i)), []byte("x")})
				default:
					err = tb.Set(cctx, h, []byte("s"), []byte(fmt.Sprintf("%d-%d", w, i)))
				}
				ccancel()
				if err == nil {
					l.acknowledged.Add(1)
				}
			}
		})
	}
	var once sync.Once
	l.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(l.stop)
	return l
}

// waitStatus waits until the table's duplication dupID has status.
func waitStatus(t *testing.T, adm admin.Client, table string, dupID int32, status string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("duplication %d of %s in %s", dupID, table, status), func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, ds, err := adm.QueryDuplications(ctx, table)
		if err != nil {
			return false
		}
		for _, d := range ds {
			if d.DupID == dupID {
				return d.Status == status
			}
		}
		return false
	})
}

// addDup adds a duplication of table to c2 and returns its id.
func addDup(t *testing.T, adm admin.Client, table string, opts *admin.AddDuplicationOptions) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	added, err := adm.AddDuplication(ctx, table, "c2", opts)
	if err != nil {
		t.Fatalf("add duplication of %s: %v", table, err)
	}
	return added.DupID
}
