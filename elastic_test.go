package pegasus_test

import (
	"fmt"
	"testing"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// A table whose partition count is not a power of two (Apache Pegasus's meta accepts it, and
// so does ours) with replica.split.validate_partition_hash set: the replicas' scan check and
// the client's routing agree, so a full scan returns every record once.
func TestIntegrationFullScanSixPartitionsValidatingHash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Replicas: 3})
	c.CreateTable(t, "six", 6)
	adm := newAdmin(t, c)
	must(t, adm.SetAppEnvs(t.Context(), "six", map[string]string{"replica.split.validate_partition_hash": "true"}))
	cl, err := pegasus.New(pegasus.Config{MetaServers: c.MetaAddrs()})
	must(t, err)
	defer cl.Close()
	tb, err := cl.OpenTable(t.Context(), "six")
	must(t, err)
	const n = 600
	for i := range n {
		must(t, tb.Set(t.Context(), b(fmt.Sprintf("k%d", i)), b("s"), b("v")))
	}
	// The replicas take the env at their next report to the meta: a scan before that would
	// pass without the check it is meant to exercise.
	c.WaitEnv(t, "six", "replica.split.validate_partition_hash", "true")
	scs, err := tb.GetUnorderedScanners(t.Context(), 6, nil)
	must(t, err)
	seen := map[string]bool{}
	for _, sc := range scs {
		for _, r := range scanAll(t, sc) {
			if seen[r] {
				t.Fatalf("%s returned twice", r)
			}
			seen[r] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("full scan returned %d records, want %d", len(seen), n)
	}
}
