package testcluster

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/bulkload"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/rocksdb/ldbtest"
)

// The tests below load and restore files that RocksDB itself wrote (ldb, from Debian's
// rocksdb-tools), as Apache Pegasus users bring them: SSTs written for bulk load and the
// checkpoints of an upstream cold backup.

// pegasusEpoch is the unix time of Pegasus's expire_ts zero (2016-01-01 UTC).
const pegasusEpoch = 1451606400

// v1Value is a value in data version 1: expire_ts, timetag 0, data.
func v1Value(expireTS uint32, data string) []byte {
	b := binary.BigEndian.AppendUint32(nil, expireTS)
	b = binary.BigEndian.AppendUint64(b, 0)
	return append(b, data...)
}

// pegasusKV is one record in Pegasus's key and value schema, for ldb.
func pegasusKV(hk, sk string, value []byte) ldbtest.KV {
	return ldbtest.KV{K: key.Encode([]byte(hk), []byte(sk)), V: value}
}

func sortKVs(kvs []ldbtest.KV) {
	slices.SortFunc(kvs, func(a, b ldbtest.KV) int { return bytes.Compare(a.K, b.K) })
}

// publishBulkLoad writes the bulk load layout of table app (id appID) under "bulk" on svc:
// files[p] are the local SSTs of partition p.
func publishBulkLoad(t testing.TB, svc blockservice.Service, app string, appID int32, files [][]string) {
	t.Helper()
	for pidx, names := range files {
		dir := bulkload.PartitionDir("bulk", clusterName, app, int32(pidx))
		md := bulkload.Metadata{Files: []bulkload.FileMeta{}}
		for i, local := range names {
			f, err := os.Open(local)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%05d.sst", i+1)
			ent, err := svc.Write(t.Context(), path.Join(dir, name), f, nil)
			_ = f.Close()
			if err != nil {
				t.Fatal(err)
			}
			md.Files = append(md.Files, bulkload.FileMeta{Name: name, Size: ent.Size, MD5: ent.MD5})
			md.FileTotalSize += ent.Size
		}
		if err := backup.WriteJSON(t.Context(), svc, path.Join(dir, bulkload.MetadataFile), md); err != nil {
			t.Fatal(err)
		}
	}
	info := bulkload.Info{AppID: appID, AppName: app, PartitionCount: int32(len(files))}
	if err := backup.WriteJSON(t.Context(), svc, path.Join(bulkload.AppDir("bulk", clusterName, app), bulkload.InfoFile), info); err != nil {
		t.Fatal(err)
	}
}

// SSTs written by RocksDB at format_version 2 to 5, each compressed with none, snappy, lz4
// and zstd, bulk loaded together: the table holds exactly their records and what it held.
func TestBulkLoadRocksDBFiles(t *testing.T) {
	tl := ldbtest.Need(t)
	root := t.TempDir()
	c := Start(t, Options{BlockServices: map[string]map[string]string{"local": localSection(root)}})
	const partitions = 2
	appID := c.CreateTableReplicas(t, "rdb", partitions, 3)
	tbl := c.OpenTable(t, "rdb")
	if err := tbl.Set(t.Context(), []byte("old"), []byte("s"), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"old/s": "kept"}
	files := make([][]string, partitions)
	n := 0
	for _, fv := range []string{"2", "3", "4", "5"} {
		for _, comp := range []string{"kNoCompression", "kSnappyCompression", "kLZ4Compression", "kZSTD"} {
			db := tl.NewDB(t, map[string]string{"format_version": fv, "compression": comp})
			parts := make([][]ldbtest.KV, partitions)
			for j := range 300 {
				hk, sk := fmt.Sprintf("fv%s-%s-%03d", fv, comp, j), fmt.Sprintf("s%d", j%7)
				v := fmt.Sprintf("value %d of %s/%s %s", j, fv, comp, strings.Repeat("x", j%50))
				p := key.Partition(key.Hash([]byte(hk)), partitions)
				parts[p] = append(parts[p], pegasusKV(hk, sk, v1Value(0, v)))
				want[hk+"/"+sk] = v
			}
			for p, kvs := range parts {
				sortKVs(kvs)
				out := filepath.Join(t.TempDir(), "ext.sst")
				files[p] = append(files[p], tl.WriteSST(t, db, out, kvs))
				n++
			}
		}
	}
	svc, err := blockservice.Open("local", localSection(root))
	if err != nil {
		t.Fatal(err)
	}
	publishBulkLoad(t, svc, "rdb", appID, files)
	startLocalBulkLoad(t, c, "rdb")
	waitBulkStatus(t, c, "rdb", idl.BulkLoadSucceed)
	got := scanTable(t, tbl)
	if len(got) != len(want) {
		t.Fatalf("%d records after loading %d RocksDB files, want %d", len(got), n, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// Damaged RocksDB SSTs fail the load with an error naming the file, and the table keeps
// what it held: a truncated file, a flipped byte in a data block (its block checksum
// fails), an md5 in bulk_load_metadata that is not the file's, a key of another partition.
func TestBulkLoadRocksDBDamaged(t *testing.T) {
	tl := ldbtest.Need(t)
	root := t.TempDir()
	c := Start(t, Options{BlockServices: map[string]map[string]string{"local": localSection(root)}})
	svc, err := blockservice.Open("local", localSection(root))
	if err != nil {
		t.Fatal(err)
	}
	db := tl.NewDB(t, map[string]string{"compression": "kNoCompression"})
	sst := func(p, partitions int) (string, []byte) {
		var kvs []ldbtest.KV
		for j := 0; len(kvs) < 500; j++ {
			hk := fmt.Sprintf("h%05d", j)
			if key.Partition(key.Hash([]byte(hk)), partitions) == p {
				kvs = append(kvs, pegasusKV(hk, "s", v1Value(0, strings.Repeat("v", 40))))
			}
		}
		sortKVs(kvs)
		out := tl.WriteSST(t, db, filepath.Join(t.TempDir(), "ext.sst"), kvs)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return out, b
	}
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		wrong  bool // the file holds partition 1's keys, loaded into partition 0
		md5    bool // bulk_load_metadata lists a wrong md5 for the file
		hint   string
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-20] }, false, false, "ERR_CORRUPTION"},
		{"flipped-byte", func(b []byte) []byte { b[100] ^= 0x10; return b }, false, false, "checksum"},
		{"wrong-md5", func(b []byte) []byte { return b }, false, true, "md5"},
		{"other-partition", func(b []byte) []byte { return b }, true, false, "belongs to partition 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := "dmg_" + strings.ReplaceAll(tc.name, "-", "_")
			appID := c.CreateTableReplicas(t, app, 2, 3)
			tbl := c.OpenTable(t, app)
			if err := tbl.Set(t.Context(), []byte("before"), []byte("s"), []byte("v")); err != nil {
				t.Fatal(err)
			}
			good0, _ := sst(0, 2)
			src := 0
			if tc.wrong {
				src = 1
			}
			bad, raw := sst(src, 2)
			if err := os.WriteFile(bad, tc.damage(raw), 0o644); err != nil {
				t.Fatal(err)
			}
			good1, _ := sst(1, 2)
			publishBulkLoad(t, svc, app, appID, [][]string{{good0, bad}, {good1}})
			if tc.md5 {
				p := path.Join(bulkload.PartitionDir("bulk", clusterName, app, 0), bulkload.MetadataFile)
				var md bulkload.Metadata
				if err := backup.ReadJSON(t.Context(), svc, p, &md); err != nil {
					t.Fatal(err)
				}
				md.Files[1].MD5 = strings.Repeat("0", 32)
				if err := backup.WriteJSON(t.Context(), svc, p, md); err != nil {
					t.Fatal(err)
				}
			}
			startLocalBulkLoad(t, c, app)
			r := waitBulkStatus(t, c, app, idl.BulkLoadFailed)
			if !strings.Contains(r.HintMsg.V, tc.hint) || !strings.Contains(r.HintMsg.V, "00002.sst") {
				t.Fatalf("failure hint %q: want %q and the file's name", r.HintMsg.V, tc.hint)
			}
			if got := scanTable(t, tbl); len(got) != 1 || got["before/s"] != "v" {
				t.Fatalf("table after a failed load holds %d records", len(got))
			}
		})
	}
}

// A RocksDB database with overwrites, deletions, range deletions and several levels,
// checkpointed as an upstream Pegasus cold backup does and laid out as its backup: the
// restored table holds exactly the checkpoint's records, TTLs kept.
func TestRestoreUpstreamBackup(t *testing.T) {
	tl := ldbtest.Need(t)
	root := t.TempDir()
	c := Start(t, Options{BlockServices: map[string]map[string]string{"local": localSection(root)}})
	db := tl.NewDB(t, map[string]string{
		"write_buffer_size": "65536", "arena_block_size": "8192", "target_file_size_base": "65536", "max_bytes_for_level_base": "262144",
		"level0_file_num_compaction_trigger": "2",
	})
	opts := "--try_load_options"
	load := func(from, to int, gen string) {
		var kvs []ldbtest.KV
		for i := from; i < to; i++ {
			kvs = append(kvs, pegasusKV(fmt.Sprintf("h%05d", i), "s", v1Value(0, fmt.Sprintf("%s-%d-%s", gen, i, strings.Repeat("y", 60)))))
		}
		tl.LDBRun(t, db, ldbtest.HexLines(kvs), opts, "load")
	}
	hexKey := func(i int) string { return fmt.Sprintf("0x%X", key.Encode(fmt.Appendf(nil, "h%05d", i), []byte("s"))) }
	load(0, 3000, "a")
	tl.LDBRun(t, db, nil, opts, "compact")
	load(1000, 2000, "b") // overwrites over the compacted data
	for i := 0; i < 3000; i += 97 {
		tl.LDBRun(t, db, nil, opts, "delete", hexKey(i))
	}
	tl.LDBRun(t, db, nil, opts, "deleterange", hexKey(2500), hexKey(2600))
	// A record with a TTL: an hour from now.
	expire := uint32(time.Now().Unix()-pegasusEpoch) + 3600
	ttlKV := pegasusKV("ttl", "s", v1Value(expire, "expires"))
	tl.LDBRun(t, db, nil, opts, "put", fmt.Sprintf("0x%X", ttlKV.K), fmt.Sprintf("0x%X", ttlKV.V))
	load(2000, 2200, "c")

	cp := filepath.Join(t.TempDir(), "checkpoint")
	tl.Run(t, nil, tl.LDB, "--db="+db, opts, "checkpoint", "--checkpoint_dir="+cp)
	want := map[string]string{}
	for _, e := range tl.Scan(t, cp) {
		hk, sk, err := key.Decode(e.K)
		if err != nil {
			t.Fatal(err)
		}
		want[string(hk)+"/"+string(sk)] = string(e.V[12:])
	}
	if len(want) < 2000 {
		t.Fatalf("the checkpoint holds %d records", len(want))
	}
	ssts, _ := filepath.Glob(filepath.Join(cp, "*.sst"))
	if len(ssts) < 2 {
		t.Fatalf("the checkpoint has %d tables; want several", len(ssts))
	}
	t.Logf("checkpoint: %d tables, %d records", len(ssts), len(want))

	// The upstream layout: app_metadata, backup_info, the partition's checkpoint.
	svc, err := blockservice.Open("local", localSection(root))
	if err != nil {
		t.Fatal(err)
	}
	const id, appID = int64(1700000000000), int32(7)
	if _, err := backup.Upload(t.Context(), svc, cp, backup.PartitionDir(clusterName, id, "up", appID, 0), backup.CheckpointName("10.0.0.1:34801"), nil); err != nil {
		t.Fatal(err)
	}
	md := backup.AppMetadata{AppType: "pegasus", AppName: "up", AppID: appID, PartitionCount: 1, IsStateful: true,
		MaxReplicaCount: 3, Envs: map[string]string{}, Status: "app_status::AS_AVAILABLE"}
	if err := backup.WriteJSON(t.Context(), svc, backup.AppMetadataPath(clusterName, id, "up", appID), md); err != nil {
		t.Fatal(err)
	}
	info := backup.Info{BackupID: id, StartTimeMS: id, EndTimeMS: id + 1000, AppID: appID, AppName: "up"}
	if err := backup.WriteJSON(t.Context(), svc, backup.Dir(clusterName, id)+"/"+backup.InfoFile, info); err != nil {
		t.Fatal(err)
	}

	tbl := restoreOK(t, c, "local", "up", appID, id, "migrated")
	got := scanTable(t, tbl)
	if len(got) != len(want) {
		t.Fatalf("restored %d records, the checkpoint holds %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q, want %q", k, got[k], v)
		}
	}
	ttl, err := tbl.TTL(t.Context(), []byte("ttl"), []byte("s"))
	if err != nil || ttl <= 3000 || ttl > 3600 {
		t.Fatalf("TTL of the restored record: %v %v, want about an hour", ttl, err)
	}
	if err := tbl.Set(t.Context(), []byte("new"), []byte("s"), []byte("v")); err != nil {
		t.Fatal(err)
	}
}

// Many records in RocksDB-made SSTs (PEGASUS_BULKLOAD_RECORDS, default 50,000; the
// acceptance run loads 1000000), one file per partition: every record is readable.
func TestBulkLoadRocksDBMany(t *testing.T) {
	tl := ldbtest.Need(t)
	root := t.TempDir()
	c := Start(t, Options{BlockServices: map[string]map[string]string{"local": localSection(root)}})
	const partitions = 4
	appID := c.CreateTableReplicas(t, "many", partitions, 3)
	n := bulkRecords(t)
	parts := make([][]ldbtest.KV, partitions)
	for i := range n {
		hk, sk := fmt.Sprintf("bh%06d", i/100), fmt.Sprintf("s%02d", i%100)
		p := key.Partition(key.Hash([]byte(hk)), partitions)
		parts[p] = append(parts[p], pegasusKV(hk, sk, v1Value(0, fmt.Sprintf("value-%d", i))))
	}
	db := tl.NewDB(t, nil)
	files := make([][]string, partitions)
	for p, kvs := range parts {
		sortKVs(kvs)
		files[p] = []string{tl.WriteSST(t, db, filepath.Join(t.TempDir(), "ext.sst"), kvs)}
	}
	parts = nil
	svc, err := blockservice.Open("local", localSection(root))
	if err != nil {
		t.Fatal(err)
	}
	publishBulkLoad(t, svc, "many", appID, files)
	start := time.Now()
	startLocalBulkLoad(t, c, "many")
	waitBulkStatus(t, c, "many", idl.BulkLoadSucceed)
	t.Logf("%d records loaded in %v", n, time.Since(start))
	got := scanTable(t, c.OpenTable(t, "many"))
	if len(got) != n {
		t.Fatalf("%d records after the load, want %d", len(got), n)
	}
	for i := range n {
		if k := fmt.Sprintf("bh%06d/s%02d", i/100, i%100); got[k] != fmt.Sprintf("value-%d", i) {
			t.Fatalf("%s = %q", k, got[k])
		}
	}
}
