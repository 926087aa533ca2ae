package dup_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/testcluster"
	"github.com/gopegasus/pegasus/internal/wire"
)

// The end-to-end tests run two in-process clusters, master c1 (3 metas) and follower c2,
// and compare full scans of the master and follower tables. The scenarios share one pair of
// clusters, each on its own table, so the suite stays short; the follower outage lasts
// PEGASUS_DUP_OUTAGE (a Go duration, default 3s; the long run uses 30s).
func TestDuplication(t *testing.T) {
	c1, c2 := pair(t, func(name string, o *testcluster.Options) {
		if name == "c1" {
			o.Metas = 3
		}
	})
	adm := newAdmin(t, c1)

	// A table with data is duplicated: the follower table is created on c2 and seeded from
	// the master's checkpoints, then gets the writes made meanwhile and afterwards; under a
	// write load (puts, removes, multi-puts), the follower ends with exactly the master's
	// records.
	t.Run("SeedThenShipUnderLoad", func(t *testing.T) {
		newTable(t, c1, c2, "t1", 4)
		master := openTable(t, c1, "t1")
		fill(t, master, "before", 0, 100)
		l := startLoad(t, master, "load", 4)
		id := addDup(t, adm, "t1", nil)
		waitStatus(t, adm, "t1", id, "DS_LOG")
		at := l.acknowledged.Load()
		waitFor(t, "writes under load after DS_LOG", func() bool { return l.acknowledged.Load() > at+200 })
		l.stop()
		recs := converge(t, master, openTable(t, c2, "t1"))
		if len(recs) < 100 {
			t.Fatalf("only %d records", len(recs))
		}
		// The follower table carries the master's duplication envs.
		envs := getEnvs(t, newAdmin(t, c2), "t1")
		if envs["duplication.master_cluster"] != "c1" || envs["duplication.master_app_name"] != "t1" ||
			envs["duplication.follower_app_status"] != "created" || envs["duplication.master_metas"] == "" {
			t.Fatalf("follower envs %v", envs)
		}

		// The HTTP API shows the duplication of t1: the meta its state, the master primaries
		// their shipping; a follower refuses the writes of unknown or its own cluster id.
		t.Run("HTTPAndFollowerChecks", func(t *testing.T) {
			_, ds, err := adm.QueryDuplications(t.Context(), "t1")
			must(t, err)
			if len(ds) != 1 {
				t.Fatalf("duplications of t1: %+v", ds)
			}
			d := ds[0]
			cfg, err := adm.QueryConfig(t.Context(), "t1")
			must(t, err)
			code, body := httpGet(t, "http://"+c1.MetaAddrs()[0]+"/meta/app/duplication?name=t1") // a 307 to the leader, followed
			var doc map[string]json.RawMessage
			if code != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil || len(doc) != 2 || string(doc["appid"]) != itoa(cfg.AppID) {
				t.Fatalf("meta: %d %s", code, body)
			}
			var e map[string]any
			must(t, json.Unmarshal(doc["1"], &e))
			states, _ := e["partition_states"].(map[string]any)
			ts, _ := e["create_ts"].(string)
			if len(e) != 8 || e["dupid"] != float64(d.DupID) || e["status"] != "DS_LOG" || e["fail_mode"] != "FAIL_SLOW" ||
				e["remote"] != "c2" || e["remote_app_name"] != "t1" || e["remote_replica_count"] != float64(3) ||
				len(states) != 4 || !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`).MatchString(ts) {
				t.Fatalf("meta entry %s", doc["1"])
			}
			for p, st := range states {
				m, _ := st.(map[string]any)
				if c, _ := m["confirmed_decree"].(float64); len(m) != 2 || c < 0 || m["last_committed_decree"].(float64) < c {
					t.Fatalf("partition %s: %v", p, st)
				}
			}
			seen := map[string]bool{}
			all, _ := replicaDups(t, c1, cfg.AppID)
			for _, rd := range all {
				for gpid, st := range rd[itoa(d.DupID)] {
					seen[gpid] = true
					if !st.Duplicating || st.FailMode != "FAIL_SLOW" || st.RemoteApp != "t1" || st.NotConfirmed < 0 || st.NotShipped < 0 || st.Lagging {
						t.Fatalf("replica %s: %+v", gpid, st)
					}
				}
			}
			if len(seen) != 4 || !seen[itoa(cfg.AppID)+".3"] {
				t.Fatalf("the primaries report %v", seen)
			}

			fcfg, err := newAdmin(t, c2).QueryConfig(t.Context(), "t1")
			must(t, err)
			conn := rpc.NewConn(fcfg.Partitions[0].Primary, rpc.ConnConfig{})
			defer conn.Close()
			body0 := idl.Marshal(&idl.UpdateRequest{Key: []byte("\x00\x01hs"), Value: []byte("v")})
			for id, hint := range map[int8]string{9: "request cluster id is unconfigured", 2: "self-duplicating"} {
				var resp idl.DuplicateResponse
				req := &idl.DuplicateRequest{Entries: []idl.DuplicateEntry{{Timestamp: idl.Some(int64(1)), TaskCode: idl.Some(idl.RPCPut),
					RawMessage: idl.Some(body0), ClusterID: idl.Some(id)}}}
				h := wire.Header{AppID: fcfg.AppID, PartitionIndex: 0, ThreadHash: wire.ThreadHash(fcfg.AppID, 0)}
				must(t, conn.Call(t.Context(), h, idl.RPCDuplicate, req, &resp))
				if resp.Error.V != int32(wire.StatusInvalidArgument) || resp.ErrorHint.V != hint {
					t.Fatalf("cluster id %d: %+v", id, resp)
				}
			}
		})
	})

	// Pause stops shipping (the master's primaries say so, and a write made then does not
	// reach the follower), start resumes it, remove stops it and forgets it.
	t.Run("PauseStartRemove", func(t *testing.T) {
		appID := newTable(t, c1, c2, "t2", 4)
		master := openTable(t, c1, "t2")
		fill(t, master, "a", 0, 50)
		id := addDup(t, adm, "t2", nil)
		waitStatus(t, adm, "t2", id, "DS_LOG")
		follower := openTable(t, c2, "t2")
		converge(t, master, follower)

		must(t, adm.PauseDuplication(t.Context(), "t2", id))
		waitStatus(t, adm, "t2", id, "DS_PAUSE")
		waitShipping(t, c1, "t2", appID, id, false)
		fill(t, master, "paused", 0, 20)
		if got := mustScan(t, follower); hasPrefix(got, "paused") {
			t.Fatal("a write made while paused reached the follower")
		}

		must(t, adm.StartDuplication(t.Context(), "t2", id))
		waitStatus(t, adm, "t2", id, "DS_LOG")
		converge(t, master, follower)

		must(t, adm.RemoveDuplication(t.Context(), "t2", id))
		if _, ds, err := adm.QueryDuplications(t.Context(), "t2"); err != nil || len(ds) != 0 {
			t.Fatalf("after remove: %v, %v", ds, err)
		}
		waitNoShippers(t, c1, appID)
		fill(t, master, "removed", 0, 20)
		if got := mustScan(t, follower); hasPrefix(got, "removed") {
			t.Fatal("a write made after the removal reached the follower")
		}
		if err := adm.StartDuplication(t.Context(), "t2", id); !errors.Is(err, pegasus.ErrObjectNotFound) {
			t.Fatalf("start of a removed duplication: %v", err)
		}
		// The table takes incr again.
		if _, err := master.Incr(t.Context(), []byte("n"), []byte("s"), 1); err != nil {
			t.Fatalf("incr after the removal: %v", err)
		}
	})

	// Without the checkpoint only new writes travel, to a follower table that exists.
	t.Run("NoCheckpoint", func(t *testing.T) {
		newTable(t, c1, c2, "t3", 4)
		c2.CreateTableReplicas(t, "t3", 4, 3)
		master := openTable(t, c1, "t3")
		fill(t, master, "old", 0, 30)
		id := addDup(t, adm, "t3", &admin.AddDuplicationOptions{NoCheckpoint: true})
		waitStatus(t, adm, "t3", id, "DS_LOG")
		waitAllShipping(t, c1, "t3", id)
		fill(t, master, "new", 0, 30)
		follower := openTable(t, c2, "t3")
		var got map[string]string
		waitFor(t, "the new writes on the follower", func() bool {
			got = mustScan(t, follower)
			return countPrefix(got, "new") == 30
		})
		if n := countPrefix(got, "old"); n != 0 {
			t.Fatalf("%d writes made before the duplication reached the follower", n)
		}
	})

	// On a duplicated table the writes decided at apply time are refused.
	t.Run("NonIdempotentRefused", func(t *testing.T) {
		newTable(t, c1, c2, "t4", 2)
		master := openTable(t, c1, "t4")
		addDup(t, adm, "t4", nil)
		waitFor(t, "incr refused", func() bool {
			_, err := master.Incr(t.Context(), []byte("n"), []byte("s"), 1)
			return errors.Is(err, pegasus.ErrOperationDisabled)
		})
		if _, err := master.CheckAndSet(t.Context(), []byte("n"), []byte("s"), pegasus.CheckTypeNoCheck, nil,
			[]byte("s"), []byte("v"), nil); !errors.Is(err, pegasus.ErrOperationDisabled) {
			t.Fatalf("check_and_set: %v", err)
		}
		set(t, master, "n", "put", "still taken")
	})

	// A meta failover on the master keeps every duplication, with its status and progress;
	// the new leader drives the steps of one added just before.
	t.Run("MetaFailover", func(t *testing.T) {
		newTable(t, c1, c2, "t5", 4)
		newTable(t, c1, c2, "t6", 2)
		m5, m6 := openTable(t, c1, "t5"), openTable(t, c1, "t6")
		fill(t, m5, "x", 0, 20)
		fill(t, m6, "y", 0, 20)
		id5 := addDup(t, adm, "t5", nil)
		waitStatus(t, adm, "t5", id5, "DS_LOG")
		converge(t, m5, openTable(t, c2, "t5"))
		_, before, err := adm.QueryDuplications(t.Context(), "t5")
		must(t, err)
		id6 := addDup(t, adm, "t6", nil)

		leader := c1.MetaLeader(t)
		c1.StopMeta(t, leader)
		t.Cleanup(func() { c1.StartMeta(t, leader) })
		waitStatus(t, adm, "t6", id6, "DS_LOG")
		_, after, err := adm.QueryDuplications(t.Context(), "t5")
		must(t, err)
		if len(after) != 1 || after[0].DupID != id5 || after[0].Status != "DS_LOG" || after[0].Remote != "c2" {
			t.Fatalf("after the failover: %+v", after)
		}
		for i, p := range after[0].Partitions {
			if p.Confirmed < before[0].Partitions[i].Confirmed {
				t.Fatalf("partition %d confirmed %d after the failover, %d before", i, p.Confirmed, before[0].Partitions[i].Confirmed)
			}
		}
		fill(t, m5, "x", 20, 20)
		fill(t, m6, "y", 20, 20)
		converge(t, m5, openTable(t, c2, "t5"))
		converge(t, m6, openTable(t, c2, "t6"))
		c1.StartMeta(t, leader)
	})

	// A master primary is killed while it ships: the new primary resumes from the confirmed
	// decree and the follower misses nothing.
	t.Run("PrimaryKilled", func(t *testing.T) {
		newTable(t, c1, c2, "t7", 4)
		master := openTable(t, c1, "t7")
		id := addDup(t, adm, "t7", nil)
		waitStatus(t, adm, "t7", id, "DS_LOG")
		l := startLoad(t, master, "k", 4)
		waitFor(t, "writes", func() bool { return l.acknowledged.Load() > 100 })
		victim := primaryOf(t, adm, "t7", 0)
		c1.StopReplica(t, victim)
		at := l.acknowledged.Load()
		waitFor(t, "writes after the kill", func() bool { return l.acknowledged.Load() > at+200 })
		l.stop()
		c1.StartReplica(t, victim)
		c1.WaitAlive(t, 3)
		converge(t, master, openTable(t, c2, "t7"))
	})

	// The follower cluster is down for a while under writes; once it is back the follower
	// catches up.
	t.Run("FollowerOutage", func(t *testing.T) {
		outage := 3 * time.Second
		if v := os.Getenv("PEGASUS_DUP_OUTAGE"); v != "" {
			d, err := time.ParseDuration(v)
			must(t, err)
			outage = d
		}
		newTable(t, c1, c2, "t8", 4)
		master := openTable(t, c1, "t8")
		id := addDup(t, adm, "t8", nil)
		waitStatus(t, adm, "t8", id, "DS_LOG")
		follower := openTable(t, c2, "t8")
		l := startLoad(t, master, "o", 4)
		for _, r := range c2.ReplicaAddrs() {
			c2.StopReplica(t, r)
		}
		t.Logf("follower down for %v", outage)
		time.Sleep(outage)
		for _, r := range c2.ReplicaAddrs() {
			c2.StartReplica(t, r)
		}
		c2.WaitAlive(t, 3)
		l.stop()
		recs := converge(t, master, follower)
		t.Logf("%d records after %d writes", len(recs), l.acknowledged.Load())
	})
}

// Two tables duplicate to each other. With both duplications paused, every key is written
// on both clusters, in turn, so that each cluster holds its own value and ships it to the
// other; once resumed, both end with the same value of each key, the later write's (last
// writer wins by timetag: without verify_timetag each would take the other's).
func TestDuplicationMasterMaster(t *testing.T) {
	c1, c2 := pair(t, func(_ string, o *testcluster.Options) {
		o.Replica = func(cfg *replicaConfig) { cfg.Settings = verifyTimetag() }
	})
	app1 := c1.CreateTableReplicas(t, "mm", 4, 3)
	app2 := c2.CreateTableReplicas(t, "mm", 4, 3)
	a1, a2 := newAdmin(t, c1), newAdmin(t, c2)
	d1, err := a1.AddDuplication(t.Context(), "mm", "c2", &admin.AddDuplicationOptions{NoCheckpoint: true})
	must(t, err)
	d2, err := a2.AddDuplication(t.Context(), "mm", "c1", &admin.AddDuplicationOptions{NoCheckpoint: true})
	must(t, err)
	waitAllShipping(t, c1, "mm", d1.DupID)
	waitAllShipping(t, c2, "mm", d2.DupID)
	must(t, a1.PauseDuplication(t.Context(), "mm", d1.DupID))
	must(t, a2.PauseDuplication(t.Context(), "mm", d2.DupID))
	waitShipping(t, c1, "mm", app1, d1.DupID, false)
	waitShipping(t, c2, "mm", app2, d2.DupID, false)

	t1, t2 := openTable(t, c1, "mm"), openTable(t, c2, "mm")
	want := map[string]string{}
	for i := range 40 {
		h := fmt.Sprintf("k%d", i)
		first, second, last := t1, t2, "c2"
		if i%2 == 1 {
			first, second, last = t2, t1, "c1"
		}
		set(t, first, h, "s", "first")
		set(t, second, h, "s", last) // later: its timetag is the larger
		want[h+"/s"] = last
	}
	must(t, a1.StartDuplication(t.Context(), "mm", d1.DupID))
	must(t, a2.StartDuplication(t.Context(), "mm", d2.DupID))
	got := converge(t, t1, t2)
	if !maps.Equal(got, want) {
		t.Fatalf("converged on the wrong values: %s", diff(want, got))
	}
}

// hasPrefix reports whether a record's hash key starts with p.
func hasPrefix(recs map[string]string, p string) bool { return countPrefix(recs, p) > 0 }

func countPrefix(recs map[string]string, p string) int {
	n := 0
	for k := range recs {
		if len(k) >= len(p) && k[:len(p)] == p {
			n++
		}
	}
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func getEnvs(t *testing.T, adm admin.Client, table string) map[string]string {
	t.Helper()
	envs, err := adm.GetAppEnvs(t.Context(), table)
	must(t, err)
	return envs
}

// primaryOf returns the primary of a partition of the table.
func primaryOf(t *testing.T, adm admin.Client, table string, pidx int) string {
	t.Helper()
	var p string
	waitFor(t, "a primary", func() bool {
		cfg, err := adm.QueryConfig(t.Context(), table)
		if err != nil {
			return false
		}
		p = cfg.Partitions[pidx].Primary
		return p != ""
	})
	return p
}

// replicaDup is /replica/duplication's answer of one replica server: dupid -> gpid -> state.
type replicaDup map[string]map[string]struct {
	Duplicating  bool   `json:"duplicating"`
	FailMode     string `json:"fail_mode"`
	NotConfirmed int64  `json:"not_confirmed_mutations_num"`
	NotShipped   int64  `json:"not_duplicated_mutations_num"`
	RemoteApp    string `json:"remote_app_name"`
	Lagging      bool   `json:"lagging"`
	LastError    string `json:"last_error"`
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// replicaDups asks every replica server of c for the table's duplications.
func replicaDups(t *testing.T, c *testcluster.Cluster, appID int32) (all []replicaDup, codes []int) {
	t.Helper()
	for _, r := range c.ReplicaAddrs() {
		code, body := httpGet(t, "http://"+r+"/replica/duplication?appid="+strconv.Itoa(int(appID)))
		codes = append(codes, code)
		if code == http.StatusOK {
			var d replicaDup
			must(t, json.Unmarshal([]byte(body), &d))
			all = append(all, d)
		}
	}
	return all, codes
}

// waitShipping waits until every master primary of the table reports the duplication
// shipping (or not).
func waitShipping(t *testing.T, c *testcluster.Cluster, table string, appID, id int32, shipping bool) {
	t.Helper()
	waitFor(t, fmt.Sprintf("duplication %d of %s shipping=%v on every primary", id, table, shipping), func() bool {
		all, _ := replicaDups(t, c, appID)
		n := 0
		for _, d := range all {
			for _, st := range d[strconv.Itoa(int(id))] {
				if st.Duplicating != shipping {
					return false
				}
				n++
			}
		}
		return n == partitionCount(t, c, table)
	})
}

// waitAllShipping waits until every partition of the table ships duplication id.
func waitAllShipping(t *testing.T, c *testcluster.Cluster, table string, id int32) {
	t.Helper()
	adm := newAdmin(t, c)
	cfg, err := adm.QueryConfig(t.Context(), table)
	must(t, err)
	waitShipping(t, c, table, cfg.AppID, id, true)
}

func partitionCount(t *testing.T, c *testcluster.Cluster, table string) int {
	t.Helper()
	cfg, err := newAdmin(t, c).QueryConfig(t.Context(), table)
	must(t, err)
	return int(cfg.PartitionCount)
}

// waitNoShippers waits until no replica server of c ships a duplication of the table.
func waitNoShippers(t *testing.T, c *testcluster.Cluster, appID int32) {
	t.Helper()
	waitFor(t, "no shipper left", func() bool {
		all, codes := replicaDups(t, c, appID)
		return len(all) == 0 && !slices.Contains(codes, 0)
	})
}

// ctxWait returns a context for one call.
func ctxWait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type replicaConfig = replica.Config

// verifyTimetag returns replica settings whose shippers ask for last-writer-wins.
func verifyTimetag() *replica.Settings {
	st := replica.NewSettings()
	if err := st.Registry().Set("dup_verify_timetag", "true"); err != nil {
		panic(err)
	}
	return st
}
