package storage

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

func fullScan() *GetScannerRequest {
	return &GetScannerRequest{StartKey: []byte{0, 0}, StopKey: []byte{0xFF, 0xFF}, StartInclusive: true, ValidatePartitionHash: true}
}

// scanAll runs a scan to completion and returns the keys "h/s" of every batch.
func scanAll(t *testing.T, d *testDB, req *GetScannerRequest) (keys []string, batches int) {
	t.Helper()
	res, err := d.GetScanner(req)
	for {
		if err != nil || res.Error != 0 {
			t.Fatalf("scan: %+v %v", res, err)
		}
		batches++
		for _, kv := range res.KVs {
			h, s, _ := key.Decode(kv.Key)
			keys = append(keys, string(h)+"/"+string(s))
		}
		if res.ContextID == ContextComplete {
			return keys, batches
		}
		if res.ContextID <= 0 {
			t.Fatalf("context id %d", res.ContextID)
		}
		res, err = d.Scan(res.ContextID)
	}
}

func TestScannerContextLifecycle(t *testing.T) {
	d := openTest(t, nil)
	for i := range 10 {
		d.put("h", fmt.Sprint(i), "v", 0)
	}
	req := fullScan()
	req.BatchSize = 3
	res, err := d.GetScanner(req)
	if err != nil || len(res.KVs) != 3 || res.ContextID <= 0 {
		t.Fatalf("%+v %v", res, err)
	}
	first := res.ContextID
	// Contexts are single use.
	res, _ = d.Scan(first)
	if len(res.KVs) != 3 || res.ContextID <= 0 || res.ContextID == first {
		t.Fatalf("%+v", res)
	}
	if r, _ := d.Scan(first); r.Error != wire.StatusNotFound || len(r.KVs) != 0 {
		t.Fatalf("reused id: %+v", r)
	}
	// Idle for just under the timeout: still alive.
	second := res.ContextID
	d.clock.Advance(DefaultScannerIdleTimeout - time.Second)
	res, _ = d.Scan(second)
	if res.Error != 0 || len(res.KVs) != 3 {
		t.Fatalf("%+v", res)
	}
	// Idle for the timeout: gone.
	d.clock.Advance(DefaultScannerIdleTimeout)
	if r, _ := d.Scan(res.ContextID); r.Error != wire.StatusNotFound {
		t.Fatalf("expired id: %+v", r)
	}
	// Background expiry discards idle contexts without a Scan call.
	res, _ = d.GetScanner(req)
	if d.Metrics().ScannerContexts != 1 {
		t.Fatal("context not stored")
	}
	d.clock.Advance(DefaultScannerIdleTimeout)
	d.scanners.expireIdle(d.clock.Now())
	if n := d.Metrics().ScannerContexts; n != 0 {
		t.Fatalf("%d contexts after expiry", n)
	}
	// ClearScanner discards; unknown ids (0, negative) answer NotFound.
	res, _ = d.GetScanner(req)
	d.ClearScanner(res.ContextID)
	for _, id := range []int64{res.ContextID, 0, -1, -2} {
		if r, _ := d.Scan(id); r.Error != wire.StatusNotFound {
			t.Fatalf("id %d: %+v", id, r)
		}
	}
}

func TestScannerIdsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ids := map[int64]bool{}
	for range 2 {
		d := openTest(t, func(o *Options) { o.Dir = dir })
		d.index = d.LastAppliedIndex()
		d.put("h", "a", "v", 0)
		d.put("h", "b", "v", 0)
		req := fullScan()
		req.BatchSize = 1
		for range 3 {
			res, _ := d.GetScanner(req)
			if res.ContextID <= 0 || ids[res.ContextID] {
				t.Fatalf("context id %d repeated or not positive", res.ContextID)
			}
			ids[res.ContextID] = true
		}
		_ = d.Close()
	}
}

func TestScannerSnapshot(t *testing.T) {
	d := openTest(t, nil)
	d.put("h", "a", "old", 0)
	d.put("h", "b", "old", 0)
	req := fullScan()
	req.BatchSize = 1
	res, _ := d.GetScanner(req)
	d.put("h", "b", "new", 0)
	d.put("h", "c", "new", 0)
	res, _ = d.Scan(res.ContextID)
	if len(res.KVs) != 1 || string(res.KVs[0].Value) != "old" {
		t.Fatalf("later batch sees newer data: %+v", res)
	}
	if res.ContextID != ContextComplete {
		t.Fatalf("record written after get_scanner is visible: context %d", res.ContextID)
	}
}

func TestScannerOptions(t *testing.T) {
	d := openTest(t, nil)
	now := d.clock.epoch()
	for _, h := range []string{"", "a", "ab", "b"} {
		for _, s := range []string{"", "x1", "y1"} {
			d.put(h, s, h+s, 0)
		}
	}
	d.put("ab", "ttl", "t", now+100)
	d.put("ab", "gone", "t", now)
	join := func(ks []string) string { return strings.Join(ks, " ") }

	all, _ := scanAll(t, d, fullScan())
	if got, want := join(all), "/ /x1 /y1 a/ a/x1 a/y1 b/ b/x1 b/y1 ab/ ab/ttl ab/x1 ab/y1"; got != want {
		t.Fatalf("full scan %q, want %q", got, want)
	}
	for name, tc := range map[string]struct {
		mod  func(*GetScannerRequest)
		want string
	}{
		"hash prefix raises start": {func(r *GetScannerRequest) {
			r.HashKeyFilterType, r.HashKeyFilter = idl.FilterMatchPrefix, []byte("a")
		}, "a/ a/x1 a/y1 ab/ ab/ttl ab/x1 ab/y1"},
		"hash postfix": {func(r *GetScannerRequest) {
			r.HashKeyFilterType, r.HashKeyFilter = idl.FilterMatchPostfix, []byte("b")
		}, "b/ b/x1 b/y1 ab/ ab/ttl ab/x1 ab/y1"},
		"sort anywhere": {func(r *GetScannerRequest) {
			r.SortKeyFilterType, r.SortKeyFilter = idl.FilterMatchAnywhere, []byte("1")
		}, "/x1 /y1 a/x1 a/y1 b/x1 b/y1 ab/x1 ab/y1"},
		"sort prefix and hash anywhere": {func(r *GetScannerRequest) {
			r.SortKeyFilterType, r.SortKeyFilter = idl.FilterMatchPrefix, []byte("y")
			r.HashKeyFilterType, r.HashKeyFilter = idl.FilterMatchAnywhere, []byte("a")
		}, "a/y1 ab/y1"},
		"exclusive start skips exact": {func(r *GetScannerRequest) {
			r.StartKey, r.StartInclusive = key.Encode([]byte("a"), []byte("x1")), false
			r.StopKey = key.Encode([]byte("b"), []byte("x1"))
		}, "a/y1 b/"},
		"inclusive stop": {func(r *GetScannerRequest) {
			r.StartKey = key.Encode([]byte("a"), []byte("x1"))
			r.StopKey, r.StopInclusive = key.Encode([]byte("b"), []byte("x1")), true
		}, "a/x1 a/y1 b/ b/x1"},
		"single hash key as go-client": {func(r *GetScannerRequest) {
			r.StartKey, r.StopKey = key.Encode([]byte("ab"), nil), key.Encode([]byte("ab"), []byte{0xFF, 0xFF})
		}, "ab/ ab/ttl ab/x1 ab/y1"},
		"batch size 1":         {func(r *GetScannerRequest) { r.BatchSize = 1 }, all[0] + " " + join(all[1:])},
		"start below metadata": {func(r *GetScannerRequest) { r.StartKey = nil }, join(all)},
	} {
		t.Run(name, func(t *testing.T) {
			req := fullScan()
			tc.mod(req)
			got, _ := scanAll(t, d, req)
			if join(got) != tc.want {
				t.Errorf("%s: got %q, want %q", name, join(got), tc.want)
			}
		})
	}

	// Validation and empty ranges.
	req := fullScan()
	req.SortKeyFilterType = 4
	if r, _ := d.GetScanner(req); r.Error != wire.StatusInvalidArgument || r.ContextID != 0 {
		t.Fatalf("bad filter: %+v", r)
	}
	req = fullScan()
	req.StartKey, req.StopKey = []byte{0xFF, 0xFF}, []byte{0, 0}
	if r, _ := d.GetScanner(req); r.Error != 0 || r.ContextID != ContextComplete || len(r.KVs) != 0 {
		t.Fatalf("empty range: %+v", r)
	}

	// no_value, return_expire_ts, only_return_count.
	req = fullScan()
	req.StartKey, req.StopKey = key.Encode([]byte("ab"), []byte("t")), key.Encode([]byte("ab"), []byte("u"))
	req.NoValue, req.ReturnExpireTS = true, true
	r, _ := d.GetScanner(req)
	if len(r.KVs) != 1 || len(r.KVs[0].Value) != 0 || r.KVs[0].ExpireTS != now+100 || r.ContextID != ContextComplete {
		t.Fatalf("no_value/return_expire_ts: %+v", r)
	}
	req = fullScan()
	req.OnlyReturnCount, req.BatchSize = true, 5
	r, _ = d.GetScanner(req)
	if len(r.KVs) != 0 || r.KVCount != 5 || r.ContextID <= 0 {
		t.Fatalf("only_return_count: %+v", r)
	}
	r, _ = d.Scan(r.ContextID)
	if r.KVCount != 5 {
		t.Fatalf("only_return_count second batch: %+v", r)
	}
}

func TestScanExaminedLimits(t *testing.T) {
	d := openTest(t, nil)
	now := d.clock.epoch()
	d.putMany("h", "%05d", 2500, now+1)
	d.put("i", "live", "v", 0)
	d.clock.Advance(time.Second)
	req := fullScan()
	req.BatchSize = 700
	// get_scanner examines 1000 records whatever the batch size, a scan batch_size records.
	r, _ := d.GetScanner(req)
	if len(r.KVs) != 0 || r.ContextID <= 0 {
		t.Fatalf("first batch %+v", r)
	}
	r, _ = d.Scan(r.ContextID) // 1000..1699
	r, _ = d.Scan(r.ContextID) // 1700..2399
	if len(r.KVs) != 0 || r.ContextID <= 0 {
		t.Fatalf("third batch %+v", r)
	}
	r, _ = d.Scan(r.ContextID) // 2400..2499 + live
	if len(r.KVs) != 1 || r.ContextID != ContextComplete {
		t.Fatalf("last batch %d kvs ctx %d", len(r.KVs), r.ContextID)
	}
}

func TestScanValidatePartitionHash(t *testing.T) {
	d := openTest(t, func(o *Options) { o.PartitionIndex, o.PartitionCount = 4, 8 })
	// "a" hashes to partition 4 of 8, "hello" to 7; an empty hash key hashes its sort key.
	d.put("a", "s", "v", 0)
	d.put("hello", "s", "v", 0)
	d.put("", "abc", "v", 0) // crc64("abc") -> partition 3
	scan := func(validate bool) string {
		req := fullScan()
		req.ValidatePartitionHash = validate
		ks, _ := scanAll(t, d, req)
		return strings.Join(ks, " ")
	}
	if got := scan(true); got != "/abc a/s hello/s" {
		t.Fatalf("env off: %q", got)
	}
	d.SetEnv(Env{ValidatePartitionHash: true})
	if got := scan(true); got != "a/s" {
		t.Fatalf("env on: %q", got)
	}
	if got := scan(false); got != "/abc a/s hello/s" {
		t.Fatalf("env on, request off: %q", got)
	}
}

func TestScanTimeLimit(t *testing.T) {
	clock := newFakeClock()
	calls := 0
	d := openTest(t, func(o *Options) {
		o.Now = func() time.Time { calls++; return clock.Now().Add(time.Duration(calls) * time.Minute) }
	})
	for i := range 300 {
		d.put("h", fmt.Sprintf("%03d", i), "v", 0)
	}
	r, err := d.GetScanner(fullScan())
	if err != nil || r.Error != wire.StatusIncomplete || r.ContextID != 0 || len(r.KVs) != 100 {
		t.Fatalf("code %d ctx %d kvs %d", r.Error, r.ContextID, len(r.KVs))
	}
	if d.Metrics().ScannerContexts != 0 {
		t.Fatal("context kept after time budget error")
	}
}

// With a partition count that is not a power of two, the scan's partition check is the
// modulo every client routes by (a mask would keep other partitions' keys and drop this
// one's).
func TestScanValidatePartitionHashAnyCount(t *testing.T) {
	const count = 6
	for pidx := range count {
		d := openTest(t, func(o *Options) { o.PartitionIndex, o.PartitionCount = int32(pidx), count })
		d.SetEnv(Env{ValidatePartitionHash: true})
		var want []string
		for i := range 60 {
			h := fmt.Sprintf("h%d", i)
			d.put(h, "s", "v", 0)
			if key.Partition(key.Hash([]byte(h)), count) == pidx {
				want = append(want, h+"/s")
			}
		}
		ks, _ := scanAll(t, d, fullScan())
		slices.Sort(ks)
		slices.Sort(want)
		if !slices.Equal(ks, want) {
			t.Fatalf("partition %d of %d: scan kept %v, want %v", pidx, count, ks, want)
		}
	}
}
