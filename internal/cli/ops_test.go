package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/testcluster"
)

// The backup, restore and bulk load commands end to end: `pegasus bulkload prepare`, the
// shell's bulk load commands, a backup policy, a one-time backup and a restore.
func TestOpsCommands(t *testing.T) {
	root := t.TempDir()
	c := testcluster.Start(t, testcluster.Options{Replicas: 3,
		BlockServices: map[string]map[string]string{"local": {"type": "local_service", "args": root}}})
	appID := c.CreateTableReplicas(t, "temp", 4, 3)
	metas := strings.Join(c.MetaAddrs(), ",")

	var in bytes.Buffer
	for i := range 500 {
		fmt.Fprintf(&in, `{"hash_key":"h%d","sort_key":"s","value":"v%d"}`+"\n", i, i)
	}
	input := filepath.Join(t.TempDir(), "records.jsonl")
	if err := os.WriteFile(input, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runBulkLoad(t.Context(), []string{"prepare", "--input", input, "--format", "jsonl", "--app", "temp", "--metas", metas,
		"--cluster", "c1", "--root", "bl", "--local", root}, &out, &errOut); err != nil {
		t.Fatalf("prepare: %v\n%s", err, errOut.String())
	}
	wantContains(t, "prepare", out.String(), "prepared 500 records", "4 partitions")

	wantContains(t, "start_bulk_load", oneShot(t, metas, "start_bulk_load -a temp -c c1 -p local -r bl"), "OK")
	wantContains(t, "query_bulk_load_status -w", oneShot(t, metas, "query_bulk_load_status -a temp -w -d"), "BLS_SUCCEED", "[####")
	if m := oneShotJSON(t, metas, "count_data"); fmt.Sprint(m["row_count"]) != "500" {
		t.Fatalf("count after the load: %v", m)
	}
	wantContains(t, "pause", shellErr(t, metas, "pause_bulk_load -a temp"), "ERR_INACTIVE_STATE")
	wantContains(t, "clear_bulk_load", oneShot(t, metas, "clear_bulk_load -a temp"), "OK")

	wantContains(t, "add_backup_policy", oneShot(t, metas, fmt.Sprintf("add_backup_policy -p daily -b local -a %d -i 86400 -s 03:00 -c 3", appID)), "OK")
	wantContains(t, "ls_backup_policy", oneShot(t, metas, "ls_backup_policy"), "daily", "local", "86400", "03:00", "enabled")
	wantContains(t, "disable", oneShot(t, metas, "disable_backup_policy -p daily"), "OK")
	wantContains(t, "query_backup_policy", oneShot(t, metas, "query_backup_policy -p daily"), "disabled")

	o := oneShotJSON(t, metas, fmt.Sprintf("backup %d local -w", appID))
	id := fmt.Sprintf("%.0f", o["backup_id"])
	if o["result"] != "OK" || id == "" {
		t.Fatalf("backup: %v", o)
	}
	wantContains(t, "query_backup_status", oneShot(t, metas, fmt.Sprintf("query_backup_status %d", appID)), id, "succeed")
	o = oneShotJSON(t, metas, fmt.Sprintf("restore_app -c %s -p none -a temp -i %d -t %s -b local -n temp2", "gopegasus", appID, id))
	newID := fmt.Sprintf("%.0f", o["restore_app_id"])
	wantContains(t, "query_restore_status", oneShot(t, metas, "query_restore_status "+newID+" -w -d"), "restored", "[####")
	c.WaitPrimaries(t, "temp2")
	args := []string{"--metas", metas, "--table", "temp2", "--json", "-c", "count_data"}
	got, _, err := shellRun(t, "", args...)
	if err != nil || !strings.Contains(got, `"row_count":500`) {
		t.Fatalf("count of the restored table: %v %s", err, got)
	}
}

// shellErr runs a command that must fail and returns its error text.
func shellErr(t *testing.T, metas, line string) string {
	t.Helper()
	_, errOut, err := shellRun(t, "", "--metas", metas, "--table", "temp", "-c", line)
	if err == nil {
		t.Fatalf("%q succeeded", line)
	}
	return err.Error() + errOut
}
