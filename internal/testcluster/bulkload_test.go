package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/bulkload"
	"github.com/gopegasus/pegasus/internal/idl"
)

// envBulkLoadRecords sets how many records TestBulkLoadPrepared loads (default 50,000; the
// acceptance run uses 1000000).
const envBulkLoadRecords = "PEGASUS_BULKLOAD_RECORDS"

func bulkRecords(t testing.TB) int {
	if v := os.Getenv(envBulkLoadRecords); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q", envBulkLoadRecords, v)
		}
		return n
	}
	return 50000
}

// csvRecords returns n records as CSV, hash keys of 100 records each.
func csvRecords(n int) []byte {
	var b bytes.Buffer
	b.WriteString("hash_key,sort_key,value\n")
	for i := range n {
		fmt.Fprintf(&b, "bh%06d,s%02d,value-%d\n", i/100, i%100, i)
	}
	return b.Bytes()
}

func prepare(t testing.TB, svc blockservice.Service, input []byte, app string, appID, partitions int32) {
	t.Helper()
	st, err := bulkload.Prepare(t.Context(), bytes.NewReader(input), svc, "bulk", clusterName, app, appID, partitions,
		&bulkload.PrepareOptions{Format: bulkload.FormatCSV, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prepared %d records, %d bytes of SSTs", st.Records, st.Bytes)
}

func startBulkLoad(t testing.TB, c *Cluster, q *idl.StartBulkLoadRequest) idl.StartBulkLoadResponse {
	t.Helper()
	var resp idl.StartBulkLoadResponse
	if err := c.MetaCall(t.Context(), idl.RPCStartBulkLoad, q, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// startLocalBulkLoad starts the bulk load of table app from the "bulk" root of the
// "local" provider and fails the test unless it started.
func startLocalBulkLoad(t testing.TB, c *Cluster, app string) {
	t.Helper()
	if r := startBulkLoad(t, c, &idl.StartBulkLoadRequest{AppName: app, ClusterName: clusterName, FileProviderType: "local", RemoteRootPath: "bulk"}); r.Err != "ERR_OK" {
		t.Fatalf("start of the bulk load of %s: %s %s", app, r.Err, r.HintMsg)
	}
}

func queryBulkLoad(ctx context.Context, c *Cluster, app string) (idl.QueryBulkLoadResponse, error) {
	var resp idl.QueryBulkLoadResponse
	err := c.MetaCall(ctx, idl.RPCQueryBulkLoadStatus, &idl.QueryBulkLoadRequest{AppName: app}, &resp)
	return resp, err
}

func waitBulkStatus(t testing.TB, c *Cluster, app string, want idl.BulkLoadStatus) idl.QueryBulkLoadResponse {
	t.Helper()
	var last idl.QueryBulkLoadResponse
	waitUntilLong(t, "bulk load "+want.String(), func(ctx context.Context) (bool, error) {
		resp, err := queryBulkLoad(ctx, c, app)
		if err != nil {
			return false, nil
		}
		last = resp
		if want != idl.BulkLoadFailed && resp.AppStatus == idl.BulkLoadFailed {
			return false, fmt.Errorf("bulk load failed: %s", resp.HintMsg.V)
		}
		return resp.AppStatus == want, nil
	})
	return last
}

func controlBulkLoad(t testing.TB, c *Cluster, app string, typ idl.BulkLoadControlType) string {
	t.Helper()
	var resp idl.ControlBulkLoadResponse
	if err := c.MetaCall(t.Context(), idl.RPCControlBulkLoad, &idl.ControlBulkLoadRequest{AppName: app, Type: typ}, &resp); err != nil {
		t.Fatal(err)
	}
	return string(resp.Err)
}

// Records prepared by `pegasus bulkload prepare`'s code are bulk loaded; every one is
// readable, and the records the table held keep or lose their value as the load says.
func TestBulkLoadPrepared(t *testing.T) {
	root := t.TempDir()
	c := Start(t, Options{BlockServices: map[string]map[string]string{"local": localSection(root)}})
	appID := c.CreateTableReplicas(t, "bulk", 4, 3)
	tbl := c.OpenTable(t, "bulk")
	// Earlier records: one the load overwrites, one it leaves.
	if err := tbl.Set(t.Context(), []byte("bh000000"), []byte("s00"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Set(t.Context(), []byte("kept"), []byte("s"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	n := bulkRecords(t)
	svc, err := blockservice.Open("local", localSection(root))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	prepare(t, svc, csvRecords(n), "bulk", appID, 4)
	prepared := time.Now()
	// Started through the HTTP endpoint.
	body := fmt.Sprintf(`{"app_name":"bulk","cluster_name":%q,"file_provider_type":"local","remote_root_path":"bulk"}`, clusterName)
	if a := httpPost(t, "http://"+c.MetaLeader(t)+"/meta/app/start_bulk_load", body); a.status != 200 || a.body != `{"error":"ERR_OK","hint_msg":""}`+"\n" {
		t.Fatalf("POST /meta/app/start_bulk_load: %d %q", a.status, a.body)
	}
	// The table is loading: a second start is refused.
	if r := startBulkLoad(t, c, &idl.StartBulkLoadRequest{AppName: "bulk", ClusterName: clusterName, FileProviderType: "local", RemoteRootPath: "bulk"}); r.Err != "ERR_BUSY" {
		t.Fatalf("second start: %s", r.Err)
	}
	resp := waitBulkStatus(t, c, "bulk", idl.BulkLoadSucceed)
	loaded := time.Now()
	if a := httpGet(t, "http://"+c.MetaLeader(t)+"/meta/app/query_bulk_load?name=bulk"); a.status != 200 ||
		a.body != `{"error":"ERR_OK","app_status":"replication::bulk_load_status::BLS_SUCCEED"}`+"\n" {
		t.Fatalf("/meta/app/query_bulk_load after the load: %d %q", a.status, a.body)
	}
	t.Logf("%d records: prepared in %v, loaded in %v (%.0f records/s)", n, prepared.Sub(start), loaded.Sub(prepared),
		float64(n)/loaded.Sub(prepared).Seconds())
	if len(resp.PartitionsStatus) != 4 || resp.IsBulkLoading.V {
		t.Fatalf("query after success: %+v", resp)
	}
	got := scanTable(t, tbl)
	if len(got) != n+1 {
		t.Fatalf("%d records after the load, want %d", len(got), n+1)
	}
	for i := range n {
		k := fmt.Sprintf("bh%06d/s%02d", i/100, i%100)
		if got[k] != fmt.Sprintf("value-%d", i) {
			t.Fatalf("%s = %q", k, got[k])
		}
	}
	if got["kept/s"] != "old" {
		t.Fatalf("kept/s = %q", got["kept/s"])
	}
	// Writes work again; the result stays until cleared.
	if err := tbl.Set(t.Context(), []byte("after"), []byte("s"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	var cr idl.ClearBulkLoadResponse
	if err := c.MetaCall(t.Context(), idl.RPCClearBulkLoad, &idl.ClearBulkLoadRequest{AppName: "bulk"}, &cr); err != nil || cr.Err != "ERR_OK" {
		t.Fatalf("clear: %v %s", err, cr.Err)
	}
	if r, _ := queryBulkLoad(t.Context(), c, "bulk"); r.AppStatus != idl.BulkLoadInvalid {
		t.Fatalf("after clear: %s", r.AppStatus)
	}
}

// Pause, restart, cancel and force cancel, with the states each is allowed from.
func TestBulkLoadControl(t *testing.T) {
	root := t.TempDir()
	rate := 1 // MB/s: the download lasts
	c := Start(t, Options{BackupRateMB: &rate, BlockServices: map[string]map[string]string{"local": localSection(root)}})
	appID := c.CreateTableReplicas(t, "bulk", 2, 3)
	svc, _ := blockservice.Open("local", localSection(root))
	var b bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&b, "h%d,s,%x\n", i, bytes.Repeat([]byte{byte(i), byte(i >> 8), byte(i * 7)}, 100))
	}
	prepare(t, svc, b.Bytes(), "bulk", appID, 2)
	q := &idl.StartBulkLoadRequest{AppName: "bulk", ClusterName: clusterName, FileProviderType: "local", RemoteRootPath: "bulk"}
	if code := controlBulkLoad(t, c, "bulk", idl.BulkLoadPause); code != "ERR_INACTIVE_STATE" {
		t.Fatalf("pause before a load: %s", code)
	}
	if r := startBulkLoad(t, c, q); r.Err != "ERR_OK" {
		t.Fatalf("start: %s %s", r.Err, r.HintMsg)
	}
	if code := controlBulkLoad(t, c, "bulk", idl.BulkLoadRestart); code != "ERR_INVALID_STATE" {
		t.Fatalf("restart while downloading: %s", code)
	}
	if code := controlBulkLoad(t, c, "bulk", idl.BulkLoadPause); code != "ERR_OK" {
		t.Fatalf("pause: %s", code)
	}
	waitBulkStatus(t, c, "bulk", idl.BulkLoadPaused)
	if code := controlBulkLoad(t, c, "bulk", idl.BulkLoadPause); code != "ERR_INVALID_STATE" {
		t.Fatalf("pause while paused: %s", code)
	}
	var cr idl.ClearBulkLoadResponse
	if err := c.MetaCall(t.Context(), idl.RPCClearBulkLoad, &idl.ClearBulkLoadRequest{AppName: "bulk"}, &cr); err != nil || cr.Err != "ERR_INVALID_STATE" {
		t.Fatalf("clear while paused: %v %s", err, cr.Err)
	}
	if code := controlBulkLoad(t, c, "bulk", idl.BulkLoadRestart); code != "ERR_OK" {
		t.Fatalf("restart: %s", code)
	}
	waitBulkStatus(t, c, "bulk", idl.BulkLoadDownloading)
	if code := controlBulkLoad(t, c, "bulk", idl.BulkLoadCancel); code != "ERR_OK" {
		t.Fatalf("cancel: %s", code)
	}
	waitBulkStatus(t, c, "bulk", idl.BulkLoadCanceled)
	if code := controlBulkLoad(t, c, "bulk", idl.BulkLoadCancel); code != "ERR_INACTIVE_STATE" {
		t.Fatalf("cancel after cancel: %s", code)
	}
	// A new load after the cancel, force-cancelled.
	if r := startBulkLoad(t, c, q); r.Err != "ERR_OK" {
		t.Fatalf("start again: %s %s", r.Err, r.HintMsg)
	}
	if code := controlBulkLoad(t, c, "bulk", idl.BulkLoadForceCancel); code != "ERR_OK" {
		t.Fatalf("force cancel: %s", code)
	}
	r := waitBulkStatus(t, c, "bulk", idl.BulkLoadCanceled)
	if r.HintMsg.V == "" {
		t.Fatalf("query of a finished load has no hint: %+v", r)
	}
	// Nothing was ingested.
	if got := scanTable(t, c.OpenTable(t, "bulk")); len(got) != 0 {
		t.Fatalf("%d records after cancelled loads", len(got))
	}
}

// Every check of a start, in the order of operations.md §2.
func TestBulkLoadStartChecks(t *testing.T) {
	root := t.TempDir()
	c := Start(t, Options{Replicas: 1, BlockServices: map[string]map[string]string{
		"local": localSection(root),
		"hdfs":  {"type": "hdfs_service", "args": "nn:9000 /"},
		// A provider that fails: an S3 endpoint nothing listens on.
		"down": {"type": "s3", "args": "http://127.0.0.1:1 b", "access_key": "a", "secret_key": "b", "region": "us-east-1", "bucket_lookup": "path"},
	}})
	appID := c.CreateTable(t, "t", 2)
	c.CreateTable(t, "other", 1)
	c.CreateTable(t, "gone", 1)
	var dr idl.DropAppResponse
	if err := c.MetaCall(t.Context(), idl.RPCDropApp, &idl.DropAppRequest{AppName: "gone"}, &dr); err != nil || dr.Err != "ERR_OK" {
		t.Fatalf("drop: %v %s", err, dr.Err)
	}
	svc, _ := blockservice.Open("local", localSection(root))
	prepare(t, svc, []byte("a,b,c\n"), "t", appID, 2)
	prepare(t, svc, []byte("a,b,c\n"), "wrongid", appID+100, 2)
	prepare(t, svc, []byte("a,b,c\n"), "wrongcount", appID, 3)
	write := func(p, data string) {
		if _, err := svc.Write(t.Context(), p, bytes.NewReader([]byte(data)), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"wrongid", "wrongcount"} {
		c.CreateTable(t, name, 2)
	}
	c.CreateTable(t, "badjson", 2)
	write("bulk/"+clusterName+"/badjson/bulk_load_info", "{not json")
	c.CreateTable(t, "noinfo", 2)
	req := func(app, provider string) *idl.StartBulkLoadRequest {
		return &idl.StartBulkLoadRequest{AppName: app, ClusterName: clusterName, FileProviderType: provider, RemoteRootPath: "bulk"}
	}
	for _, tc := range []struct {
		q    *idl.StartBulkLoadRequest
		want string
	}{
		{req("nope", "local"), "ERR_APP_NOT_EXIST"},
		{req("gone", "local"), "ERR_APP_DROPPED"},
		{&idl.StartBulkLoadRequest{AppName: "t", ClusterName: clusterName, FileProviderType: "local", RemoteRootPath: "bulk", IngestBehind: true}, "ERR_INCONSISTENT_STATE"},
		{req("t", "nope"), "ERR_INVALID_PARAMETERS"},
		{req("t", "hdfs"), "ERR_INVALID_PARAMETERS"},
		{req("t", "down"), "ERR_FILE_OPERATION_FAILED"},
		{req("noinfo", "local"), "ERR_OBJECT_NOT_FOUND"},
		{req("badjson", "local"), "ERR_CORRUPTION"},
		{req("wrongid", "local"), "ERR_INCONSISTENT_STATE"},
		{req("wrongcount", "local"), "ERR_INCONSISTENT_STATE"},
	} {
		if r := startBulkLoad(t, c, tc.q); string(r.Err) != tc.want {
			t.Fatalf("%+v: %s (%s), want %s", tc.q, r.Err, r.HintMsg, tc.want)
		}
	}
	if r := startBulkLoad(t, c, req("t", "local")); r.Err != "ERR_OK" {
		t.Fatalf("start: %s %s", r.Err, r.HintMsg)
	}
	// Another table while one loads, concurrent loads being off.
	if r := startBulkLoad(t, c, req("other", "local")); r.Err != "ERR_BUSY" || r.HintMsg != "meta server is busy now, please wait" {
		t.Fatalf("second table: %s %q", r.Err, r.HintMsg)
	}
	waitBulkStatus(t, c, "t", idl.BulkLoadSucceed)
}

// A damaged file fails the load with a clear error, and the table keeps its data.
func TestBulkLoadCorruptFile(t *testing.T) {
	root := t.TempDir()
	c := Start(t, Options{BlockServices: map[string]map[string]string{"local": localSection(root)}})
	appID := c.CreateTableReplicas(t, "bulk", 2, 3)
	tbl := c.OpenTable(t, "bulk")
	if err := tbl.Set(t.Context(), []byte("before"), []byte("s"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	svc, _ := blockservice.Open("local", localSection(root))
	prepare(t, svc, csvRecords(2000), "bulk", appID, 2)
	ssts, _ := filepath.Glob(filepath.Join(root, "bulk", clusterName, "bulk", "1", "*.sst"))
	if len(ssts) != 1 {
		t.Fatalf("ssts: %v", ssts)
	}
	raw, _ := os.ReadFile(ssts[0])
	raw[len(raw)/3] ^= 0x01
	if err := os.WriteFile(ssts[0], raw, 0o644); err != nil {
		t.Fatal(err)
	}
	startLocalBulkLoad(t, c, "bulk")
	r := waitBulkStatus(t, c, "bulk", idl.BulkLoadFailed)
	if !bytes.Contains([]byte(r.HintMsg.V), []byte("ERR_CORRUPTION")) || !bytes.Contains([]byte(r.HintMsg.V), []byte(".sst")) {
		t.Fatalf("failure hint: %q", r.HintMsg.V)
	}
	if got := scanTable(t, tbl); len(got) != 1 || got["before/s"] != "v" {
		t.Fatalf("table after a failed load: %v", got)
	}
}

// While the replicas ingest, writes to the table are refused with ERR_OPERATION_DISABLED,
// and once the load is done they succeed again.
func TestBulkLoadRefusesWritesWhileIngesting(t *testing.T) {
	root := t.TempDir()
	c := Start(t, Options{BlockServices: map[string]map[string]string{"local": localSection(root)}})
	appID := c.CreateTableReplicas(t, "bulk", 2, 3)
	tbl := c.OpenTable(t, "bulk")
	svc, err := blockservice.Open("local", localSection(root))
	if err != nil {
		t.Fatal(err)
	}
	prepare(t, svc, csvRecords(20000), "bulk", appID, 2)
	ctx, cancel := context.WithCancel(t.Context())
	var refused, other atomic.Int64
	var lastErr atomic.Value
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				err := tbl.Set(ctx, fmt.Appendf(nil, "w%d", w), fmt.Appendf(nil, "%d", i), []byte("v"))
				switch {
				case err == nil, ctx.Err() != nil:
				case errors.Is(err, pegasus.ErrOperationDisabled):
					refused.Add(1)
				default:
					other.Add(1)
					lastErr.Store(err.Error())
				}
			}
		})
	}
	startLocalBulkLoad(t, c, "bulk")
	waitBulkStatus(t, c, "bulk", idl.BulkLoadSucceed)
	cancel()
	wg.Wait()
	if refused.Load() == 0 {
		t.Fatal("no write was refused during the ingestion")
	}
	if n := other.Load(); n != 0 {
		t.Fatalf("%d writes failed otherwise, the last: %v", n, lastErr.Load())
	}
	if err := tbl.Set(t.Context(), []byte("after"), []byte("s"), []byte("v")); err != nil {
		t.Fatalf("write after the load: %v", err)
	}
	t.Logf("%d writes refused while ingesting", refused.Load())
}
