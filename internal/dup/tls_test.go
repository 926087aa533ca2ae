package dup_test

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// A follower cluster with mandatory TLS refuses a master that dials it in plaintext: the
// meta leader cannot create the follower table (the duplication stays in DS_PREPARE, its
// step_error saying why), and once the meta dials with TLS, the primaries cannot seed it
// (their last_error says why). Once they dial with TLS too, the follower ends with the
// master's records, those written before the duplication and after.
func TestDuplicationTLS(t *testing.T) {
	followerTLS := testcluster.NewTLS(t)
	followerTLS.Mandatory = true
	// The master's servers trust the follower's CA and present a client certificate of it.
	var metaTLS, replicaTLS atomic.Bool
	dialTLS := func(on *atomic.Bool) *tls.Config {
		if on.Load() {
			return followerTLS.Client
		}
		return nil
	}
	c1, c2 := pair(t, func(name string, o *testcluster.Options) {
		if name == "c2" {
			o.TLS = followerTLS
			return
		}
		o.Meta = func(c *meta.Config) { c.DupTLS = dialTLS(&metaTLS) }
		o.Replica = func(c *replica.Config) { c.DupTLS = dialTLS(&replicaTLS) }
	})
	adm := newAdmin(t, c1)
	appID := newTable(t, c1, c2, "tls", 2)
	master := openTable(t, c1, "tls")
	fill(t, master, "before", 0, 50)
	id := addDup(t, adm, "tls", nil)

	// Plaintext to the follower's metas: the follower table is never created.
	waitFor(t, "the meta's step error", func() bool {
		d := metaDup(t, c1, "tls")
		return d.Status == "DS_PREPARE" && strings.Contains(d.StepError, "ERR_UNAUTHENTICATED") && strings.Contains(d.StepError, "dup_tls")
	})
	if _, err := newAdmin(t, c2).QueryConfig(t.Context(), "tls"); err == nil {
		t.Fatal("the follower table exists although its cluster refuses plaintext")
	}

	// The metas dial with TLS: the follower table is created; the primaries still dial in
	// plaintext and cannot seed it.
	metaTLS.Store(true)
	for _, m := range c1.MetaAddrs() {
		c1.StopMeta(t, m)
		c1.StartMeta(t, m)
	}
	waitStatus(t, adm, "tls", id, "DS_APP")
	waitFor(t, "the primaries' last error", func() bool {
		all, _ := replicaDups(t, c1, appID)
		n := 0
		for _, d := range all {
			for _, st := range d[itoa(id)] {
				if strings.Contains(st.LastError, "ERR_UNAUTHENTICATED") && strings.Contains(st.LastError, "dup_tls") {
					n++
				}
			}
		}
		return n == 2
	})
	if d := metaDup(t, c1, "tls"); d.StepError != "" {
		t.Fatalf("step error %q after the follower table was created", d.StepError)
	}

	// The replica servers dial with TLS too: the follower is seeded, then gets the log.
	replicaTLS.Store(true)
	for _, r := range c1.ReplicaAddrs() {
		c1.StopReplica(t, r)
		c1.StartReplica(t, r)
	}
	waitStatus(t, adm, "tls", id, "DS_LOG")
	fill(t, master, "after", 0, 50)
	follower := openTable(t, c2, "tls")
	recs := converge(t, master, follower)
	if countPrefix(recs, "before") != 50 || countPrefix(recs, "after") != 50 {
		t.Fatalf("records %s", diff(map[string]string{}, recs))
	}
	all, _ := replicaDups(t, c1, appID)
	for _, d := range all {
		for gpid, st := range d[itoa(id)] {
			if st.LastError != "" {
				t.Fatalf("%s: last error %q while shipping", gpid, st.LastError)
			}
		}
	}
}

// metaDupEntry is the part of a duplication in /meta/app/duplication this test reads.
type metaDupEntry struct {
	Status    string `json:"status"`
	StepError string `json:"step_error"`
}

// metaDup returns the table's first duplication as the meta leader shows it.
func metaDup(t *testing.T, c *testcluster.Cluster, table string) metaDupEntry {
	t.Helper()
	code, body := httpGet(t, "http://"+c.MetaAddrs()[0]+"/meta/app/duplication?name="+table)
	var doc map[string]json.RawMessage
	var d metaDupEntry
	if code != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil || json.Unmarshal(doc["1"], &d) != nil {
		return metaDupEntry{}
	}
	return d
}
