package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/wire"
)

// bigRecords writes n records of 64 KiB values under hash key h, sort keys s0..s(n-1).
func bigRecords(d *testDB, h string, n int) {
	v := strings.Repeat("v", 64<<10)
	for i := range n {
		d.put(h, fmt.Sprintf("s%d", i), v, 0)
	}
}

// TestBatchGetLimits: more than MaxBatchGetKeys keys, or a reply past MaxReplyBytes, is
// ErrReadTooLarge; repeated keys are read once, still repeated in the reply, and counted.
func TestBatchGetLimits(t *testing.T) {
	d := openTest(t, func(o *Options) { o.Limits = Limits{MaxBatchGetKeys: 100, MaxReplyBytes: 1 << 20} })
	bigRecords(d, "h", 8)
	keys := func(n int, distinct int) []FullKey {
		var ks []FullKey
		for i := range n {
			ks = append(ks, FullKey{HashKey: []byte("h"), SortKey: fmt.Appendf(nil, "s%d", i%distinct)})
		}
		return ks
	}
	if _, _, err := d.BatchGet(keys(101, 1)); !errors.Is(err, ErrReadTooLarge) {
		t.Fatalf("101 keys: %v", err)
	}
	data, code, err := d.BatchGet(keys(12, 4)) // 12 × 64 KiB, 4 distinct: under 1 MiB
	if err != nil || code != wire.StatusOK || len(data) != 12 {
		t.Fatalf("12 repeated keys: %d records, code %d, %v", len(data), code, err)
	}
	if &data[0].Value[0] != &data[4].Value[0] || string(data[5].SortKey) != "s1" {
		t.Fatal("a repeated key was read again, or out of order")
	}
	if _, _, err := d.BatchGet(keys(20, 2)); !errors.Is(err, ErrReadTooLarge) {
		t.Fatalf("20 × 64 KiB of repeats past 1 MiB: %v", err)
	}
	if _, _, err := d.BatchGet(keys(20, 8)); !errors.Is(err, ErrReadTooLarge) {
		t.Fatalf("20 × 64 KiB past 1 MiB: %v", err)
	}
}

// TestMultiGetPointReplyBound: in point mode with max_kv_size 0 (no limit in Pegasus), the
// reply stops past MaxReplyBytes with error 7 (incomplete), so the client fetches the rest.
func TestMultiGetPointReplyBound(t *testing.T) {
	d := openTest(t, func(o *Options) { o.Limits = Limits{MaxReplyBytes: 256 << 10} })
	bigRecords(d, "h", 10)
	var sks [][]byte
	for i := range 10 {
		sks = append(sks, fmt.Appendf(nil, "s%d", i))
	}
	res, err := d.MultiGet(&MultiGetRequest{HashKey: []byte("h"), SortKeys: sks})
	if err != nil || res.Error != wire.StatusIncomplete || len(res.KVs) != 4 {
		t.Fatalf("point multi_get: %d kvs, error %d, %v (want 4, incomplete)", len(res.KVs), res.Error, err)
	}
	res, err = d.MultiGet(&MultiGetRequest{HashKey: []byte("h"), SortKeys: sks, MaxKVSize: 100 << 10})
	if err != nil || res.Error != wire.StatusIncomplete || len(res.KVs) != 2 {
		t.Fatalf("point multi_get with max_kv_size: %d kvs, error %d, %v", len(res.KVs), res.Error, err)
	}
	res, err = d.MultiGet(&MultiGetRequest{HashKey: []byte("h")})
	if err != nil || res.Error != wire.StatusIncomplete || len(res.KVs) != 4 {
		t.Fatalf("range multi_get: %d kvs, error %d, %v", len(res.KVs), res.Error, err)
	}
}

// TestScanBatchReplyBound: a scan batch stops past MaxReplyBytes and its context carries on
// to the end, every record delivered once.
func TestScanBatchReplyBound(t *testing.T) {
	d := openTest(t, func(o *Options) { o.Limits = Limits{MaxReplyBytes: 256 << 10} })
	bigRecords(d, "h", 10)
	keys, batches := scanAll(t, d, fullScan())
	if len(keys) != 10 || batches != 3 {
		t.Fatalf("%d records in %d batches (want 10 in 3)", len(keys), batches)
	}
}

// TestScannerContextEviction: past MaxScanners a new context evicts the least recently
// used, whose scan is then answered as an expired context's (error 1).
func TestScannerContextEviction(t *testing.T) {
	d := openTest(t, func(o *Options) { o.Limits = Limits{MaxScanners: 3} })
	d.putMany("h", "s%03d", 50, 0)
	var ids []int64
	for range 5 {
		req := fullScan()
		req.BatchSize = 1
		res, err := d.GetScanner(req)
		if err != nil || res.ContextID <= 0 {
			t.Fatalf("get_scanner: %+v %v", res, err)
		}
		ids = append(ids, res.ContextID)
		d.clock.Advance(1)
	}
	if n := d.scanners.len(); n != 3 || d.ScannerEvictions() != 2 {
		t.Fatalf("%d contexts, %d evictions", n, d.ScannerEvictions())
	}
	for i, id := range ids {
		res, err := d.Scan(id)
		if err != nil {
			t.Fatal(err)
		}
		if want := i < 2; (res.Error == wire.StatusNotFound) != want {
			t.Fatalf("context %d: error %d", i, res.Error)
		}
	}
}
