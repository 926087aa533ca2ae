package meta

import (
	"fmt"
	"testing"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
)

// A config sync carries each table's envs once, not once per partition: its size grows with
// partitions plus envs, not with their product.
func TestSyncSendsEnvsOncePerTable(t *testing.T) {
	tm := startMeta(t, Config{})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)
	id := tm.create("t", 32, 3)
	size := func() int {
		t.Helper()
		resp := tm.syncNode(nodes[0])
		if len(resp.Assignments) != 32 {
			t.Fatalf("%d assignments, want 32", len(resp.Assignments))
		}
		for _, a := range resp.Assignments {
			if a.Envs != nil {
				t.Fatalf("partition %d carries the table's envs: %v", a.PartitionIndex, a.Envs)
			}
		}
		return len(*cluster.Encode(&resp))
	}
	before := size()
	var keys, values []string
	envBytes := 0
	for i := range 40 {
		k, v := fmt.Sprintf("user.key%02d", i), fmt.Sprintf("value-%02d-%s", i, "0123456789abcdef")
		keys, values = append(keys, k), append(values, v)
		envBytes += len(k) + len(v)
	}
	if r := tm.updateEnv(&idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpSet, Keys: idl.Some(keys), Values: idl.Some(values)}); r.Err != "ERR_OK" {
		t.Fatalf("set envs: %v %s", r.Err, r.HintMessage)
	}
	resp := tm.syncNode(nodes[0])
	if got := resp.Envs[id]; len(got) != 40 || got["user.key07"] != values[7] {
		t.Fatalf("table envs in the sync: %d of them, user.key07=%q", len(got), got["user.key07"])
	}
	resp.FillEnvs()
	if got := resp.Assignments[31].Envs["user.key39"]; got != values[39] {
		t.Fatalf("FillEnvs: partition 31 has user.key39=%q", got)
	}
	// The envs add their size about once (JSON quoting and punctuation on top), not 32 times.
	if grew := size() - before; grew > 2*envBytes {
		t.Fatalf("40 envs of %d bytes made the sync of 32 partitions %d bytes larger", envBytes, grew)
	}
}
