package testcluster

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/internal/blockservice/s3test"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/wire"
)

// clusterName is the metas' default cluster name: the backups' root directory.
const clusterName = "gopegasus"

func localSection(dir string) map[string]string {
	return map[string]string{"type": "local_service", "args": dir}
}

// loadRecords writes hashKeys × perHash records h<i>/s<j> = v<i>.<j>.
func loadRecords(t testing.TB, tbl pegasus.TableConnector, hashKeys, perHash int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < hashKeys; i += 8 {
				sks, vs := make([][]byte, perHash), make([][]byte, perHash)
				for j := range perHash {
					sks[j] = fmt.Appendf(nil, "s%04d", j)
					vs[j] = fmt.Appendf(nil, "v%d.%d", i, j)
				}
				// A multi_set is idempotent: one that timed out on a busy machine is sent again.
				var err error
				for range 5 {
					if err = tbl.MultiSet(t.Context(), fmt.Appendf(nil, "h%05d", i), sks, vs); err == nil {
						break
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// scanTable returns every record of the table as "hash/sort" -> value.
func scanTable(t testing.TB, tbl pegasus.TableConnector) map[string]string {
	t.Helper()
	scs, err := tbl.GetUnorderedScanners(t.Context(), 16, pegasus.NewScanOptions())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, sc := range scs {
		for {
			done, hk, sk, v, err := sc.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if done {
				break
			}
			out[string(hk)+"/"+string(sk)] = string(v)
		}
		sc.Close()
	}
	return out
}

// seqWriters write, each on its own hash key, sort keys 00000000, 00000001, ... one at a
// time, each after the previous was acknowledged.
type seqWriters struct {
	acked  []atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startWriters(t testing.TB, tbl pegasus.TableConnector, n int) *seqWriters {
	ctx, cancel := context.WithCancel(t.Context())
	w := &seqWriters{acked: make([]atomic.Int64, n), cancel: cancel}
	for i := range n {
		w.wg.Go(func() {
			for j := 0; ctx.Err() == nil; {
				wctx, c := context.WithTimeout(ctx, 5*time.Second)
				err := tbl.Set(wctx, fmt.Appendf(nil, "w%02d", i), fmt.Appendf(nil, "%08d", j), []byte("x"))
				c()
				if err == nil {
					j++
					w.acked[i].Store(int64(j))
				}
			}
		})
	}
	t.Cleanup(w.stop)
	return w
}

func (w *seqWriters) stop() { w.cancel(); w.wg.Wait() }

func (w *seqWriters) snapshot() []int64 {
	out := make([]int64, len(w.acked))
	for i := range w.acked {
		out[i] = w.acked[i].Load()
	}
	return out
}

// checkWriters checks the writers' records in a restored table: for each writer, exactly
// the sort keys 0..k-1 for some k between what it had acknowledged when the backup started
// and (one past) what it had when it finished. A checkpoint at one decree of each
// partition holds a prefix of each writer's sequence, and every write acknowledged before
// it.
func checkWriters(t testing.TB, got map[string]string, before, after []int64) {
	t.Helper()
	for i := range before {
		var keys []int
		for k := range got {
			if h, s, _ := strings.Cut(k, "/"); h == fmt.Sprintf("w%02d", i) {
				n, _ := strconv.Atoi(s)
				keys = append(keys, n)
			}
		}
		sort.Ints(keys)
		for j, k := range keys {
			if k != j {
				t.Fatalf("writer %d: restored sort keys are not a prefix: %d at position %d", i, k, j)
			}
		}
		if k := int64(len(keys)); k < before[i] || k > after[i]+1 {
			t.Fatalf("writer %d: %d records restored; %d were acknowledged before the backup, %d after", i, k, before[i], after[i])
		}
	}
}

// startBackup starts a one-time backup and returns its id.
func startBackup(t testing.TB, c *Cluster, appID int32, provider string) int64 {
	t.Helper()
	var resp idl.StartBackupAppResponse
	if err := c.MetaCall(t.Context(), idl.RPCStartBackupApp, &idl.StartBackupAppRequest{BackupProviderType: provider, AppID: appID}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Err != "ERR_OK" || !resp.BackupID.Set {
		t.Fatalf("start backup: %s %s", resp.Err, resp.HintMessage)
	}
	return resp.BackupID.V
}

// waitBackup waits for a backup to finish and fails the test if it failed.
func waitBackup(t testing.TB, c *Cluster, appID int32, id int64) {
	t.Helper()
	waitUntilLong(t, "backup done", func(ctx context.Context) (bool, error) {
		var resp idl.QueryBackupStatusResponse
		if err := c.MetaCall(ctx, idl.RPCQueryBackupStatus, &idl.QueryBackupStatusRequest{AppID: appID, BackupID: idl.Some(id)}, &resp); err != nil {
			return false, nil
		}
		if resp.Err != "ERR_OK" || len(resp.BackupItems.V) != 1 {
			return false, nil
		}
		it := resp.BackupItems.V[0]
		if it.IsBackupFailed {
			return false, fmt.Errorf("backup %d failed", id)
		}
		return it.EndTimeMS != 0, nil
	})
}

// restore starts a restore and returns the new table's app id.
func restore(t testing.TB, c *Cluster, provider, app string, appID int32, id int64, newName string, skip bool) int32 {
	t.Helper()
	var resp idl.RestoreResponse
	err := c.MetaCall(t.Context(), idl.RPCStartRestore, &idl.RestoreRequest{ClusterName: clusterName, TimeStamp: id,
		AppName: app, AppID: appID, NewAppName: newName, BackupProviderName: provider, SkipBadPartition: skip}, &resp)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Err != "ERR_OK" {
		t.Fatalf("restore: %s", resp.Err)
	}
	return resp.AppID
}

// waitRestore waits until every partition of a restore is done or failed, and returns each
// partition's error name.
func waitRestore(t testing.TB, c *Cluster, appID int32) []idl.ErrorCode {
	t.Helper()
	var codes []idl.ErrorCode
	waitUntilLong(t, "restore done", func(ctx context.Context) (bool, error) {
		var resp idl.QueryRestoreResponse
		if err := c.MetaCall(ctx, idl.RPCQueryRestoreStatus, &idl.QueryRestoreRequest{RestoreAppID: appID}, &resp); err != nil || resp.Err != "ERR_OK" {
			return false, nil
		}
		for i, code := range resp.RestoreStatus {
			if code == "ERR_OK" && resp.RestoreProgress[i] < 1000 {
				return false, nil
			}
		}
		codes = resp.RestoreStatus
		return true, nil
	})
	return codes
}

// restoreOK restores a backup as table newName, fails the test unless every partition
// restored, and opens the new table once it has its primaries.
func restoreOK(t testing.TB, c *Cluster, provider, app string, appID int32, id int64, newName string) pegasus.TableConnector {
	t.Helper()
	for i, code := range waitRestore(t, c, restore(t, c, provider, app, appID, id, newName, false)) {
		if code != "ERR_OK" {
			t.Fatalf("restore of %s: partition %d: %s", newName, i, code)
		}
	}
	c.WaitPrimaries(t, newName)
	return c.OpenTable(t, newName)
}

// waitUntilLong waits for a condition of a transfer: poll's wait with a budget of its own
// (a transfer slowed to its rate bound on a loaded machine takes longer than poll.Bound).
func waitUntilLong(t testing.TB, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := poll.Wait(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// backupRestoreUnderLoad backs up a table of records under a write load, restores it under
// a new name and checks the restored table.
func backupRestoreUnderLoad(t *testing.T, c *Cluster, provider string) {
	const hashKeys, perHash = 1000, 100 // 100,000 records
	appID := c.CreateTableReplicas(t, "src", 4, 3)
	tbl := c.OpenTable(t, "src")
	loadRecords(t, tbl, hashKeys, perHash)
	w := startWriters(t, tbl, 8)
	// The backup starts once every writer is under way.
	poll.Until(t, "every writer's first writes", func() bool { return slices.Min(w.snapshot()) >= 10 })
	before := w.snapshot()
	id := startBackup(t, c, appID, provider)
	waitBackup(t, c, appID, id)
	after := w.snapshot()
	w.stop()

	rt := restoreOK(t, c, provider, "src", appID, id, "restored")
	got := scanTable(t, rt)
	for i := range hashKeys {
		for j := range perHash {
			k := fmt.Sprintf("h%05d/s%04d", i, j)
			if got[k] != fmt.Sprintf("v%d.%d", i, j) {
				t.Fatalf("restored %s = %q", k, got[k])
			}
			delete(got, k)
		}
	}
	checkWriters(t, got, before, after)
	// The restored table is a table like any other.
	if err := rt.Set(t.Context(), []byte("new"), []byte("s"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := rt.Get(t.Context(), []byte("new"), []byte("s")); err != nil || string(v) != "v" {
		t.Fatalf("get after restore: %q %v", v, err)
	}
}

func TestBackupRestoreLocal(t *testing.T) {
	root := t.TempDir()
	c := Start(t, Options{BlockServices: map[string]map[string]string{"local": localSection(root)}})
	backupRestoreUnderLoad(t, c, "local")
	// The layout of operations.md §3: each partition's current_checkpoint names its
	// checkpoint directory (a primary that changed during the backup may have left
	// another, which nothing reads).
	parts, _ := filepath.Glob(filepath.Join(root, clusterName, "*", "src_*", "[0-9]*"))
	info, _ := filepath.Glob(filepath.Join(root, clusterName, "*", "backup_info"))
	meta, _ := filepath.Glob(filepath.Join(root, clusterName, "*", "src_*", "meta", "app_metadata"))
	if len(parts) != 4 || len(info) != 1 || len(meta) != 1 {
		t.Fatalf("layout: %v %v %v", parts, info, meta)
	}
	// The replica servers count the bytes: every checkpoint file uploaded (once at least),
	// and downloaded by each of the restored table's three replicas.
	var size int64
	for _, p := range parts {
		cur, err := os.ReadFile(filepath.Join(p, "current_checkpoint"))
		if err != nil || !strings.HasPrefix(string(cur), "chkpt_") {
			t.Fatalf("%s: current_checkpoint %q %v", p, cur, err)
		}
		if _, err := os.Stat(filepath.Join(p, string(cur), "backup_metadata")); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(p, string(cur), "*.sst"))
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				size += fi.Size()
			}
		}
	}
	if size == 0 {
		t.Fatal("no checkpoint files in the backup")
	}
	if up := metricSum(t, c.ReplicaAddrs(), "server", "block_service_upload_bytes"); up < size {
		t.Fatalf("block_service_upload_bytes %d, the backup's SSTs are %d bytes", up, size)
	}
	if down := metricSum(t, c.ReplicaAddrs(), "server", "block_service_download_bytes"); down < 3*size {
		t.Fatalf("block_service_download_bytes %d, want at least 3 × %d", down, size)
	}
	if n := metricSum(t, c.ReplicaAddrs(), "server", "ops_failures"); n != 0 {
		t.Fatalf("ops_failures %d", n)
	}
}

func TestBackupRestoreS3(t *testing.T) {
	srv := s3test.Start(t)
	section, _ := srv.Section(t)
	c := Start(t, Options{BlockServices: map[string]map[string]string{"s3": section}})
	backupRestoreUnderLoad(t, c, "s3")
}

// A flipped byte in a backed-up file fails that partition's restore with ERR_CORRUPTION;
// skip_bad_partition restores the others and leaves it empty; a missing file fails with
// ERR_OBJECT_NOT_FOUND.
func TestRestoreCorruptBackup(t *testing.T) {
	root := t.TempDir()
	c := Start(t, Options{BlockServices: map[string]map[string]string{"local": localSection(root)}})
	appID := c.CreateTableReplicas(t, "src", 2, 3)
	tbl := c.OpenTable(t, "src")
	loadRecords(t, tbl, 200, 10)
	id := startBackup(t, c, appID, "local")
	waitBackup(t, c, appID, id)

	ssts, _ := filepath.Glob(filepath.Join(root, clusterName, strconv.FormatInt(id, 10), fmt.Sprintf("src_%d", appID), "0", "chkpt_*", "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no sst in the backup of partition 0")
	}
	b, err := os.ReadFile(ssts[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x5a
	if err := os.WriteFile(ssts[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	codes := waitRestore(t, c, restore(t, c, "local", "src", appID, id, "bad", false))
	if codes[0] != "ERR_CORRUPTION" || codes[1] != "ERR_OK" {
		t.Fatalf("restore of a corrupt backup: %v", codes)
	}
	if n := metricSum(t, c.ReplicaAddrs(), "server", "ops_failures"); n == 0 {
		t.Fatal("a failed restore is not counted in ops_failures")
	}
	codes = waitRestore(t, c, restore(t, c, "local", "src", appID, id, "skipped", true))
	if codes[0] != "ERR_OK" || codes[1] != "ERR_OK" {
		t.Fatalf("restore with skip_bad_partition: %v", codes)
	}
	c.WaitPrimaries(t, "skipped")
	got := scanTable(t, c.OpenTable(t, "skipped"))
	if len(got) == 0 || len(got) >= 2000 {
		t.Fatalf("skipped restore holds %d records; want partition 1's only", len(got))
	}
	if err := os.Remove(ssts[0]); err != nil {
		t.Fatal(err)
	}
	codes = waitRestore(t, c, restore(t, c, "local", "src", appID, id, "missing", false))
	if codes[0] != "ERR_OBJECT_NOT_FOUND" {
		t.Fatalf("restore of a backup missing a file: %v", codes)
	}
	// Errors of the start: unknown provider, missing backup, taken name.
	for _, tc := range []struct {
		q    idl.RestoreRequest
		want idl.ErrorCode
	}{
		{idl.RestoreRequest{ClusterName: clusterName, TimeStamp: id, AppName: "src", AppID: appID, NewAppName: "x", BackupProviderName: "nope"}, "ERR_INVALID_PARAMETERS"},
		{idl.RestoreRequest{ClusterName: clusterName, TimeStamp: id + 1, AppName: "src", AppID: appID, NewAppName: "x", BackupProviderName: "local"}, "ERR_OBJECT_NOT_FOUND"},
		{idl.RestoreRequest{ClusterName: clusterName, TimeStamp: id, AppName: "src", AppID: appID, NewAppName: "src", BackupProviderName: "local"}, "ERR_INVALID_PARAMETERS"},
	} {
		var resp idl.RestoreResponse
		if err := c.MetaCall(t.Context(), idl.RPCStartRestore, &tc.q, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Err != tc.want {
			t.Fatalf("restore %+v: %s, want %s", tc.q, resp.Err, tc.want)
		}
	}
}

// The errors of a one-time backup's start.
func TestBackupStartErrors(t *testing.T) {
	rate := 1 // MB/s: the backup of the table's 2 MB lasts seconds
	c := Start(t, Options{Replicas: 1, BackupRateMB: &rate, BlockServices: map[string]map[string]string{"local": localSection(t.TempDir())}})
	appID := c.CreateTable(t, "t", 1)
	tbl := c.OpenTable(t, "t")
	for i := range 256 {
		v := make([]byte, 8<<10)
		_, _ = crand.Read(v)
		if err := tbl.Set(t.Context(), fmt.Appendf(nil, "h%04d", i), []byte("s"), v); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		q    idl.StartBackupAppRequest
		want wire.Code
		hint string
	}{
		{idl.StartBackupAppRequest{BackupProviderType: "local", AppID: 99}, wire.ErrInvalidState, "Backup failed: invalid app id 99."},
		{idl.StartBackupAppRequest{BackupProviderType: "nope", AppID: appID}, wire.ErrInvalidParameters, ""},
	} {
		var resp idl.StartBackupAppResponse
		if err := c.MetaCall(t.Context(), idl.RPCStartBackupApp, &tc.q, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Err != idl.ErrorCode(tc.want.Name()) || tc.hint != "" && resp.HintMessage != tc.hint {
			t.Fatalf("%+v: %s %q", tc.q, resp.Err, resp.HintMessage)
		}
	}
	startBackup(t, c, appID, "local")
	var resp idl.StartBackupAppResponse
	if err := c.MetaCall(t.Context(), idl.RPCStartBackupApp, &idl.StartBackupAppRequest{BackupProviderType: "local", AppID: appID}, &resp); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Backup failed: app %d is actively being backed up.", appID); resp.Err != "ERR_INVALID_STATE" || resp.HintMessage != want {
		t.Fatalf("second backup: %s %q, want ERR_INVALID_STATE %q", resp.Err, resp.HintMessage, want)
	}
	var qs idl.QueryBackupStatusResponse
	if err := c.MetaCall(t.Context(), idl.RPCQueryBackupStatus, &idl.QueryBackupStatusRequest{AppID: 42}, &qs); err != nil {
		t.Fatal(err)
	}
	if qs.Err != "ERR_INVALID_PARAMETERS" || qs.HintMessage != "Backup not found, please check app_id or backup_id." {
		t.Fatalf("query unknown backup: %s %q", qs.Err, qs.HintMessage)
	}
}

// A backup policy runs on its schedule and keeps its history count of backups, on the
// provider too; its checks refuse bad requests.
func TestBackupPolicySchedule(t *testing.T) {
	root := t.TempDir()
	c := Start(t, Options{Replicas: 1, MinBackupInterval: time.Second,
		BlockServices: map[string]map[string]string{"local": localSection(root)}})
	appID := c.CreateTable(t, "t", 2)
	loadRecords(t, c.OpenTable(t, "t"), 20, 5)
	add := func(q *idl.AddBackupPolicyRequest) idl.AddBackupPolicyResponse {
		var resp idl.AddBackupPolicyResponse
		if err := c.MetaCall(t.Context(), idl.RPCAddBackupPolicy, q, &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if s := time.Now().Second(); s >= 50 {
		time.Sleep(time.Duration(61-s) * time.Second) // the policy is added in the minute of its start time
	}
	now := time.Now().UTC().Format("15:04")
	for _, q := range []*idl.AddBackupPolicyRequest{
		{BackupProviderType: "local", PolicyName: "p", AppIDs: []int32{appID}, BackupIntervalSeconds: 0, BackupHistoryCountToKeep: 2, StartTime: now},
		{BackupProviderType: "local", PolicyName: "1p", AppIDs: []int32{appID}, BackupIntervalSeconds: 2, BackupHistoryCountToKeep: 2, StartTime: now},
		{BackupProviderType: "local", PolicyName: "p_backup_info", AppIDs: []int32{appID}, BackupIntervalSeconds: 2, BackupHistoryCountToKeep: 2, StartTime: now},
		{BackupProviderType: "local", PolicyName: "p", AppIDs: []int32{99}, BackupIntervalSeconds: 2, BackupHistoryCountToKeep: 2, StartTime: now},
		{BackupProviderType: "nope", PolicyName: "p", AppIDs: []int32{appID}, BackupIntervalSeconds: 2, BackupHistoryCountToKeep: 2, StartTime: now},
		{BackupProviderType: "local", PolicyName: "p", AppIDs: []int32{appID}, BackupIntervalSeconds: 2, BackupHistoryCountToKeep: 2, StartTime: "25:00"},
	} {
		if r := add(q); r.Err != "ERR_INVALID_PARAMETERS" {
			t.Fatalf("%+v: %s", q, r.Err)
		}
	}
	if r := add(&idl.AddBackupPolicyRequest{BackupProviderType: "local", PolicyName: "p", AppIDs: []int32{appID},
		BackupIntervalSeconds: 2, BackupHistoryCountToKeep: 2, StartTime: now}); r.Err != "ERR_OK" {
		t.Fatalf("add policy: %s %s", r.Err, r.HintMessage)
	}
	resp, err := http.Get("http://" + c.MetaLeader(t) + "/meta/backup_policy?name=p")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`{"p":{"name":"p","backup_provider_type":"local","backup_interval":"2","app_ids":"[%d]","start_time":"%s","status":"enabled","backup_history_count":"2"}}`+"\n", appID, now)
	if resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("/meta/backup_policy: %d %q, want %q", resp.StatusCode, body, want)
	}
	seen := map[int64]bool{}
	waitUntilLong(t, "four backups of the policy, two kept", func(ctx context.Context) (bool, error) {
		var resp idl.QueryBackupPolicyResponse
		if err := c.MetaCall(ctx, idl.RPCQueryBackupPolicy, &idl.QueryBackupPolicyRequest{PolicyNames: []string{"p"}}, &resp); err != nil || resp.Err != "ERR_OK" {
			return false, nil
		}
		finished := map[int64]bool{}
		for _, e := range resp.BackupInfos[0] {
			seen[e.BackupID] = true
			if e.EndTimeMS != 0 {
				finished[e.BackupID] = true
			}
		}
		ents, err := os.ReadDir(filepath.Join(root, clusterName))
		if err != nil {
			return false, nil
		}
		onDisk := map[int64]bool{}
		for _, e := range ents {
			if id, err := strconv.ParseInt(e.Name(), 10, 64); err == nil {
				onDisk[id] = true
			}
		}
		// An old backup leaves the provider first, then the policy's history: only a
		// history within its count must be on the provider whole.
		for id := range finished {
			if len(finished) <= 2 && !onDisk[id] {
				return false, fmt.Errorf("kept backup %d is not on the provider", id)
			}
		}
		kept := 0
		for id := range onDisk {
			if seen[id] && !finished[id] {
				continue // running
			}
			kept++
		}
		return len(seen) >= 4 && len(finished) == 2 && kept == 2, nil
	})
	// Disable: no backup starts any more.
	var mr idl.ModifyBackupPolicyResponse
	if err := c.MetaCall(t.Context(), idl.RPCModifyBackupPolicy, &idl.ModifyBackupPolicyRequest{PolicyName: "p", IsDisable: idl.Some(true)}, &mr); err != nil || mr.Err != "ERR_OK" {
		t.Fatalf("disable: %v %s", err, mr.Err)
	}
	var qp idl.QueryBackupPolicyResponse
	if err := c.MetaCall(t.Context(), idl.RPCQueryBackupPolicy, &idl.QueryBackupPolicyRequest{}, &qp); err != nil || len(qp.Policies) != 1 || !qp.Policies[0].IsDisable {
		t.Fatalf("query policies: %v %+v", err, qp.Policies)
	}
	// Modify the interval, the history count and the start time, and enable it again.
	other := c.CreateTable(t, "t2", 1)
	if err := c.MetaCall(t.Context(), idl.RPCModifyBackupPolicy, &idl.ModifyBackupPolicyRequest{PolicyName: "p",
		AddAppIDs: idl.Some([]int32{other}), NewBackupIntervalSec: idl.Some(int64(3600)), BackupHistoryCountToKeep: idl.Some(int32(5)),
		StartTime: idl.Some("04:30"), IsDisable: idl.Some(false)}, &mr); err != nil || mr.Err != "ERR_OK" {
		t.Fatalf("modify: %v %s %s", err, mr.Err, mr.HintMessage)
	}
	if err := c.MetaCall(t.Context(), idl.RPCQueryBackupPolicy, &idl.QueryBackupPolicyRequest{PolicyNames: []string{"p"}}, &qp); err != nil || len(qp.Policies) != 1 {
		t.Fatalf("query after modify: %v %+v", err, qp.Policies)
	}
	p := qp.Policies[0]
	if p.BackupIntervalSeconds != "3600" || p.BackupHistoryCountToKeep != 5 || p.StartTime != "04:30" || p.IsDisable ||
		len(p.AppIDs) != 2 || !slices.Contains(p.AppIDs, other) {
		t.Fatalf("policy after modify: %+v", p)
	}
}

// A meta failover during a backup: the new leader carries it on to the end.
func TestBackupMetaFailover(t *testing.T) {
	root := t.TempDir()
	rate := 1
	c := Start(t, Options{Metas: 3, BackupRateMB: &rate, BlockServices: map[string]map[string]string{"local": localSection(root)}})
	appID := c.CreateTableReplicas(t, "src", 2, 3)
	tbl := c.OpenTable(t, "src")
	// Values that do not compress, so the checkpoint takes seconds at 1 MB/s.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < 400; i += 4 {
				v := make([]byte, 8<<10)
				_, _ = crand.Read(v)
				if err := tbl.Set(t.Context(), fmt.Appendf(nil, "h%04d", i), []byte("s"), v); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	id := startBackup(t, c, appID, "local")
	time.Sleep(500 * time.Millisecond)
	var st idl.QueryBackupStatusResponse
	if err := c.MetaCall(t.Context(), idl.RPCQueryBackupStatus, &idl.QueryBackupStatusRequest{AppID: appID, BackupID: idl.Some(id)}, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.BackupItems.V) != 1 || st.BackupItems.V[0].EndTimeMS != 0 {
		t.Fatalf("the backup is not running when the leader stops: %+v", st)
	}
	leader := c.MetaLeader(t)
	c.StopMeta(t, leader)
	waitBackup(t, c, appID, id)
	c.StartMeta(t, leader)
	if got := scanTable(t, restoreOK(t, c, "local", "src", appID, id, "restored")); len(got) != 400 {
		t.Fatalf("restored %d records, want 400", len(got))
	}
}
