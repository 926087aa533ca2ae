package bulkload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/rocksdb/ldbtest"
)

// pegasusEpoch is the unix time of expire_ts zero.
const pegasusEpoch = 1451606400

func localService(t testing.TB) blockservice.Service {
	t.Helper()
	svc, err := blockservice.Open("local", map[string]string{"type": "local_service", "args": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// stored is one record of a downloaded SST: its data version 1 value split up.
type stored struct {
	expireTS uint32
	timetag  uint64
	data     string
}

// readSSTs returns the records of Pebble SSTs as "hash/sort" -> value.
func readSSTs(t testing.TB, paths []string) map[string]stored {
	t.Helper()
	out := map[string]stored{}
	for _, p := range paths {
		f, err := vfs.Default.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		readable, err := sstable.NewSimpleReadable(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := sstable.NewReader(t.Context(), readable, sstable.ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		it, err := r.NewIter(sstable.NoTransforms, nil, nil, sstable.AssertNoBlobHandles)
		if err != nil {
			t.Fatal(err)
		}
		for kv := it.First(); kv != nil; kv = it.Next() {
			hk, sk, err := key.Decode(kv.K.UserKey)
			if err != nil {
				t.Fatal(err)
			}
			v, _, err := kv.Value(nil)
			if err != nil || len(v) < 12 {
				t.Fatalf("value of %q/%q: %x %v", hk, sk, v, err)
			}
			out[string(hk)+"/"+string(sk)] = stored{binary.BigEndian.Uint32(v), binary.BigEndian.Uint64(v[4:]), string(v[12:])}
		}
		if err := errors.Join(it.Close(), r.Close()); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Prepare partitions CSV and JSON-lines records as the table is, the last of equal keys
// winning and TTLs turned into expire_ts; each partition's download holds exactly its
// records.
func TestPrepareDownload(t *testing.T) {
	now := time.Unix(1800000000, 0)
	inputs := map[string]string{
		FormatCSV:       "hash_key,sort_key,value,ttl\n",
		FormatJSONLines: "",
	}
	want := map[string]stored{}
	for i := range 300 {
		hk, sk, v := fmt.Sprintf("h%d", i), fmt.Sprintf("s%d", i%3), fmt.Sprintf("v,%d \"q\"", i)
		ttl := 0
		if i%10 == 0 {
			ttl = 3600
		}
		inputs[FormatCSV] += fmt.Sprintf("%s,%s,\"%s\",%d\n", hk, sk, strings.ReplaceAll(v, `"`, `""`), ttl)
		inputs[FormatJSONLines] += fmt.Sprintf(`{"hash_key":%q,"sort_key":%q,"value":%q,"ttl":%d}`+"\n", hk, sk, v, ttl)
		var exp uint32
		if ttl > 0 {
			exp = uint32(now.Unix()-pegasusEpoch) + uint32(ttl)
		}
		want[hk+"/"+sk] = stored{expireTS: exp, data: v}
	}
	// A key given again: the later record wins.
	inputs[FormatCSV] += "h1,s1,again,\n"
	inputs[FormatJSONLines] += `{"hash_key":"h1","sort_key":"s1","value":"again"}` + "\n"
	want["h1/s1"] = stored{data: "again"}

	for format, input := range inputs {
		t.Run(format, func(t *testing.T) {
			svc := localService(t)
			const partitions = 3
			st, err := Prepare(t.Context(), strings.NewReader(input), svc, "root", "c1", "app", 5, partitions,
				&PrepareOptions{Format: format, Now: now, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if st.Records != 300 || st.Replaced != 1 {
				t.Fatalf("stats %+v", st)
			}
			var info Info
			if err := backup.ReadJSON(t.Context(), svc, path.Join(AppDir("root", "c1", "app"), InfoFile), &info); err != nil {
				t.Fatal(err)
			}
			if info.AppID != 5 || info.AppName != "app" || info.PartitionCount != partitions {
				t.Fatalf("bulk_load_info %+v", info)
			}
			got := map[string]stored{}
			for p := range int32(partitions) {
				paths, dst, err := Download(t.Context(), svc, PartitionDir("root", "c1", "app", p), t.TempDir(),
					&DownloadOptions{PartitionIndex: p, PartitionCount: partitions})
				if err != nil {
					t.Fatal(err)
				}
				recs := readSSTs(t, paths)
				if dst.Records != int64(len(recs)) || dst.Converted != 0 {
					t.Fatalf("partition %d: stats %+v for %d records", p, dst, len(recs))
				}
				for k, v := range recs {
					hk, _, _ := strings.Cut(k, "/")
					if q := key.Partition(key.Hash([]byte(hk)), partitions); q != int(p) {
						t.Fatalf("%s in partition %d, belongs to %d", k, p, q)
					}
					got[k] = v
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d records downloaded, want %d", len(got), len(want))
			}
			for k, w := range want {
				if g := got[k]; g.data != w.data || g.expireTS != w.expireTS || g.timetag == 0 {
					t.Fatalf("%s = %+v, want %+v (and a timetag)", k, g, w)
				}
			}
			// A partition's files checked against another partition fail.
			_, _, err = Download(t.Context(), svc, PartitionDir("root", "c1", "app", 0), t.TempDir(),
				&DownloadOptions{PartitionIndex: 1, PartitionCount: partitions})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "belongs to partition 0") {
				t.Fatalf("download into the wrong partition: %v", err)
			}
		})
	}
}

// A malformed input fails with an error naming its line.
func TestPrepareMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, format, input, want string
	}{
		{"csv-fields", FormatCSV, "a,b,c\na,b\n", "csv line 2: 2 fields"},
		{"csv-too-many", FormatCSV, "a,b,c,1,x\n", "csv line 1: 5 fields"},
		{"csv-ttl", FormatCSV, "a,b,c\na,b,c,soon\n", "csv line 2: ttl \"soon\""},
		{"csv-quote", FormatCSV, "a,\"b,c\n", "csv"},
		{"json-syntax", FormatJSONLines, `{"hash_key":"a","sort_key":"b","value":"c"}` + "\n{\n", "json line 2"},
		{"json-missing", FormatJSONLines, `{"hash_key":"a","value":"c"}`, "json line 1: hash_key, sort_key and value are required"},
		{"format", "xml", "", "unknown input format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Prepare(t.Context(), strings.NewReader(tc.input), localService(t), "r", "c", "a", 1, 2,
				&PrepareOptions{Format: tc.format, TempDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// rocksSST has RocksDB's ldb write n records h<i>/s with values of data version 0
// (expire_ts, data) of about valueSize bytes ("<i>-vvv...", or random bytes that do not
// compress), sorted, and returns the file and the bytes of its keys and values.
func rocksSST(t testing.TB, tl ldbtest.Tools, n, valueSize int, random bool) (string, int64) {
	t.Helper()
	kvs := make([]ldbtest.KV, n)
	rnd := rand.New(rand.NewPCG(1, 2))
	var size int64
	for i := range kvs {
		v := binary.BigEndian.AppendUint32(nil, 0)
		if random {
			for range valueSize {
				v = append(v, byte(rnd.Uint32()))
			}
		} else {
			v = append(v, fmt.Sprintf("%d-%s", i, strings.Repeat("v", valueSize))...)
		}
		kvs[i] = ldbtest.KV{K: key.Encode(fmt.Appendf(nil, "h%08d", i), []byte("s")), V: v}
		size += int64(len(kvs[i].K) + len(v))
	}
	slices.SortFunc(kvs, func(a, b ldbtest.KV) int { return bytes.Compare(a.K, b.K) })
	db := tl.NewDB(t, nil)
	return tl.WriteSST(t, db, filepath.Join(t.TempDir(), "ext.sst"), kvs), size
}

// publishFile writes one file as partition 0 of a one-partition load, with its metadata,
// and returns the partition's directory.
func publishFile(t testing.TB, svc blockservice.Service, local string) string {
	t.Helper()
	dir := PartitionDir("root", "c1", "app", 0)
	f, err := os.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ent, err := svc.Write(t.Context(), path.Join(dir, "00001.sst"), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := Metadata{Files: []FileMeta{{Name: "00001.sst", Size: ent.Size, MD5: ent.MD5}}, FileTotalSize: ent.Size}
	if err := backup.WriteJSON(t.Context(), svc, path.Join(dir, MetadataFile), md); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A RocksDB SST of data version 0 values is converted: every record, each value given
// the timetag of the load; a wrong md5 in the metadata fails the download.
func TestDownloadConvertsRocksDB(t *testing.T) {
	tl := ldbtest.Need(t)
	svc := localService(t)
	file, _ := rocksSST(t, tl, 1000, 20, false)
	dir := publishFile(t, svc, file)
	paths, st, err := Download(t.Context(), svc, dir, t.TempDir(),
		&DownloadOptions{PartitionCount: 1, DataVersion: 0, TimestampUS: 1 << 40, ClusterID: 3})
	if err != nil {
		t.Fatal(err)
	}
	if st.Converted != 1 || st.Records != 1000 || st.ConvertIn == 0 {
		t.Fatalf("stats %+v", st)
	}
	got := readSSTs(t, paths)
	if len(got) != 1000 {
		t.Fatalf("%d records converted", len(got))
	}
	for i := range 1000 {
		g := got[fmt.Sprintf("h%08d/s", i)]
		if g.data != fmt.Sprintf("%d-%s", i, strings.Repeat("v", 20)) || g.expireTS != 0 || g.timetag == 0 {
			t.Fatalf("record %d: %+v", i, g)
		}
	}

	var md Metadata
	if err := backup.ReadJSON(t.Context(), svc, path.Join(dir, MetadataFile), &md); err != nil {
		t.Fatal(err)
	}
	md.Files[0].MD5 = strings.Repeat("0", 32)
	if err := backup.WriteJSON(t.Context(), svc, path.Join(dir, MetadataFile), md); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Download(t.Context(), svc, dir, t.TempDir(), &DownloadOptions{PartitionCount: 1}); err == nil || !strings.Contains(err.Error(), "00001.sst") {
		t.Fatalf("download with a wrong md5: %v", err)
	}
}

// BenchmarkConvertRocksDB measures the conversion of a RocksDB-made SST (200,000 records
// of 100 random bytes, written by ldb, snappy as RocksDB's default) into a Pebble SST, in
// MB/s of the RocksDB file, MB/s of the records' keys and values, and records/s:
//
//	go test -run XXX -bench ConvertRocksDB -benchtime 5x ./internal/bulkload/
func BenchmarkConvertRocksDB(b *testing.B) {
	tl := ldbtest.Need(b)
	svc := localService(b)
	const n = 200000
	file, size := rocksSST(b, tl, n, 96, true)
	dir := publishFile(b, svc, file)
	var conv time.Duration
	var in int64
	b.ResetTimer()
	for range b.N {
		_, st, err := Download(b.Context(), svc, dir, b.TempDir(), &DownloadOptions{PartitionCount: 1})
		if err != nil {
			b.Fatal(err)
		}
		conv += st.ConvertDur
		in += st.ConvertIn
	}
	b.ReportMetric(float64(in)/1e6/conv.Seconds(), "file_MB/s")
	b.ReportMetric(float64(size)*float64(b.N)/1e6/conv.Seconds(), "record_MB/s")
	b.ReportMetric(float64(n*b.N)/conv.Seconds(), "records/s")
}
