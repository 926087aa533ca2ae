package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/testcluster"
)

// partition_split and recall against a cluster: the refusals, a split that waits and
// reports its end, ls -a listing a dropped table with its times, and its recall.
func TestShellSplitAndRecall(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 3})
	id := c.CreateTableReplicas(t, "temp", 4, 3)
	metas := strings.Join(c.MetaAddrs(), ",")
	run := clusterShell(t, c)
	refusals(t, run, []refusal{
		{"partition_split start temp 6", "ERR_INVALID_PARAMETERS"},
		{"partition_split start nope 8", "ERR_APP_NOT_EXIST"},
		{"partition_split query temp", "ERR_INVALID_STATE"},
		{"partition_split pause temp", "ERR_INVALID_STATE"},
		{"partition_split cancel temp", "usage"},
		{"recall 99", "ERR_APP_NOT_EXIST"},
	})
	out, errOut, err := run("partition_split start temp 8")
	if err != nil || !strings.Contains(out, "split done: table temp has 8 partitions") || !strings.Contains(errOut, "4 of 4 parent partitions split") {
		t.Fatalf("split: %v %q %q", err, out, errOut)
	}
	tables := oneShotJSON(t, metas, "ls")["tables"].([]any)
	if pc := tables[0].(map[string]any)["partition_count"]; pc != 8.0 {
		t.Fatalf("ls after the split: partition_count %v", pc)
	}

	if out, _, err := run("drop temp -r 3600"); err != nil || out != "OK\n" {
		t.Fatalf("drop: %v %q", err, out)
	}
	out, _, err = run("ls -a")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, "ls -a", out, "drop_time", "drop_expire", "AS_DROPPED", "temp")
	if out, _, _ := run("ls"); strings.Contains(out, "temp") {
		t.Fatalf("ls lists the dropped table:\n%s", out)
	}
	out, errOut, err = run(fmt.Sprintf("recall %d temp2", id))
	if err != nil || !strings.Contains(out, fmt.Sprintf("recalled table temp2 (app id %d, 8 partitions)", id)) {
		t.Fatalf("recall: %v %q %q", err, out, errOut)
	}
}

// clusterShell returns what runs one shell line against cluster c: its stdout, its stderr
// and its error.
func clusterShell(t *testing.T, c *testcluster.Cluster) func(line string) (string, string, error) {
	metas := strings.Join(c.MetaAddrs(), ",")
	return func(line string) (string, string, error) {
		t.Helper()
		return shellRun(t, "", "--metas", metas, "-c", line)
	}
}

// refusal is a shell line that must fail, with want in its error or its stderr.
type refusal struct{ line, want string }

// refusals runs each of rs with run, a subtest each.
func refusals(t *testing.T, run func(string) (string, string, error), rs []refusal) {
	t.Helper()
	for _, f := range rs {
		t.Run(f.line, func(t *testing.T) {
			out, errOut, err := run(f.line)
			if err == nil || !strings.Contains(err.Error()+errOut, f.want) {
				t.Fatalf("%q: %v %q %q, want %s", f.line, err, out, errOut, f.want)
			}
		})
	}
}
