package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/testcluster"
)

// The duplication commands against two clusters: add (seeded), query, list, pause, start,
// fail mode, remove, and their errors.
func TestShellDuplicationCommands(t *testing.T) {
	cs := testcluster.StartClusters(t, testcluster.Options{ClusterName: "c1", Replicas: 3},
		testcluster.Options{ClusterName: "c2", Replicas: 3})
	c1 := cs[0]
	c1.CreateTableReplicas(t, "temp", 4, 3)
	metas := strings.Join(c1.MetaAddrs(), ",")

	m := oneShotJSON(t, metas, "add_dup temp c2 -s -r 1")
	id := int(m["dupid"].(float64))
	if id == 0 || m["remote_app_name"] != "temp" || m["remote_replica_count"] != 1.0 || m["remote_cluster_name"] != "c2" {
		t.Fatalf("add_dup: %v", m)
	}
	// Again: a warning and the existing duplication, not a failure.
	out, errOut, err := shellRun(t, "", "--metas", metas, "-c", "add_dup temp c2 -s")
	if err != nil || !strings.Contains(errOut, "WARNING: table temp already duplicates to c2") || !strings.Contains(out, fmt.Sprint(id)) {
		t.Fatalf("add_dup again: %v %q %q", err, out, errOut)
	}
	wantContains(t, "query_dup", oneShot(t, metas, "query_dup temp"), "dupid", "status", fmt.Sprint(id), "c2", "FAIL_SLOW")
	detail := oneShotJSON(t, metas, "query_dup temp -d")
	if parts, _ := detail["partitions"].([]any); len(parts) != 4 || detail["appid"] == nil {
		t.Fatalf("query_dup -d: %v", detail)
	}
	list := oneShotJSON(t, metas, "dups -a te -m prefix")
	if rows, _ := list["duplications"].([]any); len(rows) != 1 || list["duplicated_tables"] != 1.0 {
		t.Fatalf("dups: %v", list)
	}
	if rows := oneShotJSON(t, metas, "dups -a nope -m exact")["duplications"].([]any); len(rows) != 0 {
		t.Fatalf("dups of nothing: %v", rows)
	}
	wantContains(t, "dups -j", oneShot(t, metas, "dups -j"), `"app_name":"temp"`)

	deadline := time.Now().Add(2 * time.Minute)
	for status := ""; status != "DS_LOG"; { // seeding: DS_PREPARE, DS_APP, then DS_LOG
		if time.Now().After(deadline) {
			t.Fatalf("the duplication stayed in %s", status)
		}
		rows := oneShotJSON(t, metas, "query_dup temp")["duplications"].([]any)
		status = rows[0].(map[string]any)["status"].(string)
		time.Sleep(50 * time.Millisecond)
	}
	for _, line := range []string{fmt.Sprintf("pause_dup temp %d", id), fmt.Sprintf("start_dup temp %d", id),
		fmt.Sprintf("set_dup_fail_mode temp %d skip", id)} {
		if out := oneShot(t, metas, line); out != "OK\n" {
			t.Fatalf("%s: %q", line, out)
		}
	}
	wantContains(t, "query_dup", oneShot(t, metas, "query_dup temp"), "FAIL_SKIP", "DS_LOG")
	for line, want := range map[string]string{
		fmt.Sprintf("set_dup_fail_mode temp %d fast", id): "usage: set_dup_fail_mode",
		"start_dup temp x":      "usage: start_dup",
		"add_dup temp":          "usage: add_dup",
		"add_dup temp c2 -r -1": "usage: add_dup",
		"add_dup temp temp":     "ERR_INVALID_PARAMETERS",
		"query_dup nope":        "ERR_APP_NOT_EXIST",
		"pause_dup temp 1":      "ERR_OBJECT_NOT_FOUND",
	} {
		_, errOut, err := shellRun(t, "", "--metas", metas, "-c", line)
		if err == nil || !strings.Contains(errOut, want) {
			t.Errorf("%s: %v, stderr %q, want %q", line, err, errOut, want)
		}
	}
	if out := oneShot(t, metas, fmt.Sprintf("remove_dup temp %d", id)); out != "OK\n" {
		t.Fatalf("remove_dup: %q", out)
	}
	if rows := oneShotJSON(t, metas, "query_dup temp")["duplications"].([]any); len(rows) != 0 {
		t.Fatalf("after remove_dup: %v", rows)
	}
}

func TestRemoteFlag(t *testing.T) {
	var f remoteFlag
	for _, v := range []string{"c2=127.0.0.1:35601,127.0.0.1:35602", "a=10.0.0.1:1"} {
		if err := f.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	p, err := f.peers("c1")
	if err != nil {
		t.Fatal(err)
	}
	// Ids in name order of this cluster and the remotes: a=1, c1=2, c2=3.
	for name, want := range map[string]uint8{"a": 1, "c1": 2, "c2": 3} {
		if id, ok := p.ID(name); !ok || id != want {
			t.Errorf("id of %s: %d %v, want %d", name, id, ok, want)
		}
	}
	if m, _ := p.Metas("c2"); len(m) != 2 {
		t.Fatalf("metas of c2: %v", m)
	}
	for _, bad := range []string{"c2", "=1.2.3.4:5", "c2="} {
		if err := new(remoteFlag).Set(bad); err == nil {
			t.Errorf("--remote %q accepted", bad)
		}
	}
	if _, err := f.peers("c2"); err == nil {
		t.Fatal("a remote of this cluster's name was accepted")
	}
	if err := f.Set("b=host:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.peers("c1"); err == nil {
		t.Fatal("a meta that is not ip:port was accepted")
	}
}
