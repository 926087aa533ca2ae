package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// The meta level, a manual move and a decommission through the shell.
func TestShellBalanceAndDecommission(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 4})
	id := c.CreateTableReplicas(t, "temp", 4, 3)
	run := clusterShell(t, c)
	refusals(t, run, []refusal{
		{"set_meta_level nonsense", "not a meta level"},
		{"balance -g 1.0 -p move_pri", "usage"},
		{"balance -g 99.0 -p move_pri -f 127.0.0.1:1 -t 127.0.0.1:2", "no available table"},
		{"node_decommission start", "usage"},
		{"node_decommission start 10.9.9.9:1", "ERR_INVALID_PARAMETERS"},
	})
	if out, _, err := run("get_meta_level"); err != nil || !strings.Contains(out, "steady") {
		t.Fatalf("get_meta_level: %v %q", err, out)
	}
	if out, _, err := run("set_meta_level lively"); err != nil || !strings.Contains(out, "lively (was steady)") {
		t.Fatalf("set_meta_level: %v %q", err, out)
	}
	if out, _, err := run("cluster_info"); err != nil || !strings.Contains(out, "lively") {
		t.Fatalf("cluster_info after set_meta_level: %v %q", err, out)
	}

	adm, err := admin.New(admin.Config{MetaServers: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	cfg, err := adm.QueryConfig(t.Context(), "temp")
	if err != nil || cfg.Partitions[0].Primary == "" || len(cfg.Partitions[0].Secondaries) == 0 {
		t.Fatalf("config: %+v %v", cfg, err)
	}
	p := cfg.Partitions[0]
	line := fmt.Sprintf("balance -g %d.0 -p move_pri -f %s -t %s", id, p.Primary, p.Secondaries[0])
	if out, _, err := run(line); err != nil || !strings.Contains(out, "proposed move_pri") {
		t.Fatalf("%s: %v %q", line, err, out)
	}

	victim := c.ReplicaAddrs()[3]
	out, errOut, err := run("node_decommission start " + victim)
	if err != nil || !strings.Contains(out, "decommissioned "+victim) || !strings.Contains(errOut, victim+":") {
		t.Fatalf("node_decommission start: %v %q %q", err, out, errOut)
	}
	if out, _, err := run("node_decommission status"); err != nil || !strings.Contains(out, victim) || !strings.Contains(out, "true") {
		t.Fatalf("node_decommission status: %v %q", err, out)
	}
	if out, _, err := run("node_decommission cancel " + victim); err != nil || out != "OK\n" {
		t.Fatalf("node_decommission cancel: %v %q", err, out)
	}
}
