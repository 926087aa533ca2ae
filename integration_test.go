package pegasus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// overTLS holds the tests TestIntegrationOverTLS runs: their cluster takes TLS only
// (mandatory_tls) and their clients connect with TLS.
var overTLS sync.Map // *testing.T -> struct{}

// startCluster starts the cluster of an integration test: 3 replica servers, plaintext,
// or TLS only when the test runs under TestIntegrationOverTLS.
func startCluster(t *testing.T) *testcluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	opts := testcluster.Options{Replicas: 3}
	_, withTLS := overTLS.Load(t)
	if withTLS {
		opts.TLS = testcluster.NewTLS(t)
		opts.TLS.Mandatory = true
	}
	c := testcluster.Start(t, opts)
	if withTLS {
		// The run proves something only if a plaintext client is refused.
		plain, err := admin.New(admin.Config{MetaServers: c.MetaAddrs(), MaxRounds: 1})
		must(t, err)
		defer plain.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if _, err := plain.ListTables(ctx); err == nil {
			t.Fatal("a plaintext client was served by a mandatory_tls cluster")
		}
	}
	return c
}

// cluster starts a test cluster with table "temp" (8 partitions) and returns a connector.
func cluster(t *testing.T) (*testcluster.Cluster, pegasus.Client, pegasus.TableConnector) {
	t.Helper()
	c := startCluster(t)
	c.CreateTable(t, "temp", 8)
	cl, err := pegasus.New(c.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	tb, err := cl.OpenTable(t.Context(), "temp")
	if err != nil {
		t.Fatal(err)
	}
	return c, cl, tb
}

func b(s string) []byte { return []byte(s) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func kvString(kvs []*pegasus.KeyValue) string {
	var out []string
	for _, kv := range kvs {
		out = append(out, string(kv.SortKey)+"="+string(kv.Value))
	}
	return fmt.Sprint(out)
}

func TestIntegrationBasics(t *testing.T) {
	_, _, tb := cluster(t)
	ctx := t.Context()

	v, err := tb.Get(ctx, b("h"), b("s"))
	if err != nil || v != nil {
		t.Fatalf("Get of a missing key = %q, %v; want nil, nil", v, err)
	}
	must(t, tb.Set(ctx, b("h"), b("s"), b("v")))
	if v, err := tb.Get(ctx, b("h"), b("s")); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	// Empty sort key and empty value are legal and distinct from "not found".
	must(t, tb.Set(ctx, b("h"), b(""), b("")))
	if v, err := tb.Get(ctx, b("h"), b("")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get of empty value = %#v, %v; want empty non-nil", v, err)
	}
	if ok, err := tb.Exist(ctx, b("h"), b("")); err != nil || !ok {
		t.Fatalf("Exist = %v, %v", ok, err)
	}
	must(t, tb.Del(ctx, b("h"), b("s")))
	if v, err := tb.Get(ctx, b("h"), b("s")); err != nil || v != nil {
		t.Fatalf("Get after Del = %q, %v", v, err)
	}
	if ok, err := tb.Exist(ctx, b("h"), b("s")); err != nil || ok {
		t.Fatalf("Exist after Del = %v, %v", ok, err)
	}
	must(t, tb.Del(ctx, b("h"), b("never"))) // deleting a missing key is fine
	if n, err := tb.SortKeyCount(ctx, b("h")); err != nil || n != 1 {
		t.Fatalf("SortKeyCount = %d, %v; want 1", n, err)
	}
}

func TestIntegrationTTL(t *testing.T) {
	_, _, tb := cluster(t)
	ctx := t.Context()
	if ttl, err := tb.TTL(ctx, b("h"), b("missing")); err != nil || ttl != -2 {
		t.Fatalf("TTL of missing = %d, %v; want -2", ttl, err)
	}
	must(t, tb.Set(ctx, b("h"), b("forever"), b("v")))
	if ttl, err := tb.TTL(ctx, b("h"), b("forever")); err != nil || ttl != -1 {
		t.Fatalf("TTL without expiry = %d, %v; want -1", ttl, err)
	}
	must(t, tb.SetTTL(ctx, b("h"), b("short"), b("v"), 100*time.Second))
	ttl, err := tb.TTL(ctx, b("h"), b("short"))
	if err != nil || ttl < 98 || ttl > 100 {
		t.Fatalf("TTL = %d, %v; want about 100", ttl, err)
	}
	must(t, tb.MultiSetOpt(ctx, b("h"), [][]byte{b("m1"), b("m2")}, [][]byte{b("1"), b("2")}, 50*time.Second))
	if ttl, err := tb.TTL(ctx, b("h"), b("m2")); err != nil || ttl < 48 || ttl > 50 {
		t.Fatalf("TTL after MultiSetOpt = %d, %v; want about 50", ttl, err)
	}
	// A record whose TTL has run out is gone.
	must(t, tb.SetTTL(ctx, b("h"), b("gone"), b("v"), time.Second))
	poll.UntilOK(t, "a record with a 1 s TTL to expire", func(context.Context) (bool, error) {
		v, err := tb.Get(ctx, b("h"), b("gone"))
		return v == nil, err
	})
	if ttl, err := tb.TTL(ctx, b("h"), b("gone")); err != nil || ttl != -2 {
		t.Fatalf("TTL of expired = %d, %v; want -2", ttl, err)
	}
	// Incr keeps the TTL.
	must(t, tb.SetTTL(ctx, b("h"), b("n"), b("5"), 100*time.Second))
	if n, err := tb.Incr(ctx, b("h"), b("n"), 2); err != nil || n != 7 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	if ttl, err := tb.TTL(ctx, b("h"), b("n")); err != nil || ttl < 95 {
		t.Fatalf("TTL after Incr = %d, %v", ttl, err)
	}
}

func TestIntegrationMultiGet(t *testing.T) {
	_, _, tb := cluster(t)
	ctx := t.Context()
	var sks, vs [][]byte
	for i := range 20 {
		sks = append(sks, b(fmt.Sprintf("k%02d", i)))
		vs = append(vs, b(fmt.Sprintf("v%02d", i)))
	}
	must(t, tb.MultiSet(ctx, b("h"), sks, vs))

	// Listed keys come back sorted; missing ones are skipped.
	kvs, all, err := tb.MultiGet(ctx, b("h"), [][]byte{b("k05"), b("k01"), b("zz"), b("k03")})
	if err != nil || !all || kvString(kvs) != "[k01=v01 k03=v03 k05=v05]" {
		t.Fatalf("MultiGet = %s, %v, %v", kvString(kvs), all, err)
	}
	// Nothing found: nil.
	kvs, all, err = tb.MultiGet(ctx, b("h"), [][]byte{b("zz")})
	if err != nil || !all || kvs != nil {
		t.Fatalf("MultiGet of missing keys = %v, %v, %v; want nil, true, nil", kvs, all, err)
	}
	kvs, _, err = tb.MultiGet(ctx, b("nobody"), nil)
	if err != nil || kvs != nil {
		t.Fatalf("MultiGet of an empty hash key = %v, %v; want nil", kvs, err)
	}
	// Whole hash key.
	kvs, all, err = tb.MultiGet(ctx, b("h"), nil)
	if err != nil || !all || len(kvs) != 20 {
		t.Fatalf("MultiGet(all) = %d records, %v, %v", len(kvs), all, err)
	}
	// Limits and the allFetched flag.
	opts := *pegasus.DefaultMultiGetOptions
	opts.MaxFetchCount = 5
	kvs, all, err = tb.MultiGetOpt(ctx, b("h"), nil, &opts)
	if err != nil || all || kvString(kvs) != "[k00=v00 k01=v01 k02=v02 k03=v03 k04=v04]" {
		t.Fatalf("MultiGetOpt(count 5) = %s, %v, %v", kvString(kvs), all, err)
	}
	opts.MaxFetchCount, opts.MaxFetchSize = 100, 12 // each record is 6 bytes: two fit
	kvs, all, err = tb.MultiGetOpt(ctx, b("h"), nil, &opts)
	if err != nil || all || len(kvs) != 2 {
		t.Fatalf("MultiGetOpt(size 12) = %s, %v, %v", kvString(kvs), all, err)
	}
	// Reverse: the last records of the range, still ascending.
	opts = *pegasus.DefaultMultiGetOptions
	opts.MaxFetchCount, opts.Reverse = 3, true
	kvs, all, err = tb.MultiGetOpt(ctx, b("h"), nil, &opts)
	if err != nil || all || kvString(kvs) != "[k17=v17 k18=v18 k19=v19]" {
		t.Fatalf("MultiGetOpt(reverse) = %s, %v, %v", kvString(kvs), all, err)
	}
	// No value.
	opts = *pegasus.DefaultMultiGetOptions
	opts.NoValue = true
	kvs, _, err = tb.MultiGetRangeOpt(ctx, b("h"), b("k10"), b("k12"), &opts)
	if err != nil || kvString(kvs) != "[k10= k11=]" {
		t.Fatalf("MultiGetRangeOpt(no value) = %s, %v", kvString(kvs), err)
	}
	// Range bounds.
	kvs, all, err = tb.MultiGetRange(ctx, b("h"), b("k10"), b("k13"))
	if err != nil || !all || kvString(kvs) != "[k10=v10 k11=v11 k12=v12]" {
		t.Fatalf("MultiGetRange = %s, %v, %v", kvString(kvs), all, err)
	}
	opts = *pegasus.DefaultMultiGetOptions
	opts.StartInclusive, opts.StopInclusive = false, true
	kvs, _, err = tb.MultiGetRangeOpt(ctx, b("h"), b("k10"), b("k13"), &opts)
	if err != nil || kvString(kvs) != "[k11=v11 k12=v12 k13=v13]" {
		t.Fatalf("MultiGetRangeOpt(exclusive start, inclusive stop) = %s, %v", kvString(kvs), err)
	}
	// Filters.
	must(t, tb.MultiSet(ctx, b("f"), [][]byte{b("apple"), b("banana"), b("cherry"), b("grape")}, [][]byte{b("1"), b("2"), b("3"), b("4")}))
	for _, tc := range []struct {
		f    pegasus.Filter
		want string
	}{
		{pegasus.Filter{Type: pegasus.FilterTypeMatchPrefix, Pattern: b("b")}, "[banana=2]"},
		{pegasus.Filter{Type: pegasus.FilterTypeMatchPostfix, Pattern: b("e")}, "[apple=1 grape=4]"},
		{pegasus.Filter{Type: pegasus.FilterTypeMatchAnywhere, Pattern: b("an")}, "[banana=2]"},
		{pegasus.Filter{Type: pegasus.FilterTypeMatchAnywhere, Pattern: nil}, "[apple=1 banana=2 cherry=3 grape=4]"},
		{pegasus.Filter{Type: pegasus.FilterTypeNoFilter, Pattern: b("zzz")}, "[apple=1 banana=2 cherry=3 grape=4]"},
	} {
		t.Run(fmt.Sprintf("%v_%s", tc.f.Type, tc.f.Pattern), func(t *testing.T) {
			opts := *pegasus.DefaultMultiGetOptions
			opts.SortKeyFilter = tc.f
			kvs, _, err := tb.MultiGetRangeOpt(ctx, b("f"), nil, nil, &opts)
			if err != nil || kvString(kvs) != tc.want {
				t.Errorf("filter %v %q: %s, %v; want %s", tc.f.Type, tc.f.Pattern, kvString(kvs), err, tc.want)
			}
		})
	}
}

func TestIntegrationMultiDelAndDelRange(t *testing.T) {
	_, _, tb := cluster(t)
	ctx := t.Context()
	var sks, vs [][]byte
	for i := range 2500 {
		sks = append(sks, b(fmt.Sprintf("k%04d", i)))
		vs = append(vs, b("v"))
	}
	for i := 0; i < len(sks); i += 500 {
		must(t, tb.MultiSet(ctx, b("h"), sks[i:i+500], vs[i:i+500]))
	}
	must(t, tb.MultiDel(ctx, b("h"), [][]byte{b("k0000"), b("k0001")}))
	if n, err := tb.SortKeyCount(ctx, b("h")); err != nil || n != 2498 {
		t.Fatalf("SortKeyCount after MultiDel = %d, %v", n, err)
	}
	// A filtered range: only sort keys ending in 7 between k0100 and k0200.
	opts := &pegasus.DelRangeOptions{StartInclusive: true, StopInclusive: true,
		SortKeyFilter: pegasus.Filter{Type: pegasus.FilterTypeMatchPostfix, Pattern: b("7")}}
	must(t, tb.DelRangeOpt(ctx, b("h"), b("k0100"), b("k0200"), opts))
	if opts.NextSortKey() != nil {
		t.Errorf("NextSortKey after success = %q", opts.NextSortKey())
	}
	if n, err := tb.SortKeyCount(ctx, b("h")); err != nil || n != 2498-10 {
		t.Fatalf("SortKeyCount after filtered DelRange = %d, %v; want %d", n, err, 2498-10)
	}
	if v, _ := tb.Get(ctx, b("h"), b("k0117")); v != nil {
		t.Error("k0117 survived")
	}
	if v, _ := tb.Get(ctx, b("h"), b("k0118")); v == nil {
		t.Error("k0118 was deleted")
	}
	// More than one batch: everything from k1000 on.
	must(t, tb.DelRange(ctx, b("h"), b("k1000"), nil))
	if n, err := tb.SortKeyCount(ctx, b("h")); err != nil || n != 1000-2-10 {
		t.Fatalf("SortKeyCount after DelRange = %d, %v; want %d", n, err, 1000-2-10)
	}
	// A failed DelRange tells where to go on.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	opts = &pegasus.DelRangeOptions{StartInclusive: true}
	if err := tb.DelRangeOpt(cctx, b("h"), b("k0500"), nil, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("DelRangeOpt with a canceled context = %v", err)
	}
	if string(opts.NextSortKey()) != "k0500" {
		t.Errorf("NextSortKey = %q, want k0500", opts.NextSortKey())
	}
	// The shared defaults are never written to, even by failing calls running at once (the
	// race detector would see the writes).
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { _ = tb.DelRangeOpt(cctx, b("h"), b("k0500"), nil, pegasus.DefaultDelRangeOptions) })
	}
	wg.Wait()
	if k := pegasus.DefaultDelRangeOptions.NextSortKey(); k != nil {
		t.Errorf("DefaultDelRangeOptions.NextSortKey = %q after failed calls", k)
	}
	must(t, tb.DelRange(ctx, b("h"), nil, nil))
	if n, err := tb.SortKeyCount(ctx, b("h")); err != nil || n != 0 {
		t.Fatalf("SortKeyCount after deleting all = %d, %v", n, err)
	}
}

func TestIntegrationCheckAndSet(t *testing.T) {
	_, _, tb := cluster(t)
	ctx := t.Context()
	h := b("cas")
	type tc struct {
		name    string
		stored  []byte // nil: check key absent
		ct      pegasus.CheckType
		operand string
		pass    bool
		err     error
	}
	tests := []tc{
		{"no check", nil, pegasus.CheckTypeNoCheck, "", true, nil},
		{"not exist/absent", nil, pegasus.CheckTypeValueNotExist, "", true, nil},
		{"not exist/present", b("x"), pegasus.CheckTypeValueNotExist, "", false, nil},
		{"not exist or empty/empty", b(""), pegasus.CheckTypeValueNotExistOrEmpty, "", true, nil},
		{"not exist or empty/x", b("x"), pegasus.CheckTypeValueNotExistOrEmpty, "", false, nil},
		{"exist/present", b(""), pegasus.CheckTypeValueExist, "", true, nil},
		{"exist/absent", nil, pegasus.CheckTypeValueExist, "", false, nil},
		{"not empty/x", b("x"), pegasus.CheckTypeValueNotEmpty, "", true, nil},
		{"not empty/empty", b(""), pegasus.CheckTypeValueNotEmpty, "", false, nil},
		{"match anywhere", b("hello"), pegasus.CheckTypeMatchAnywhere, "ell", true, nil},
		{"match anywhere/no", b("hello"), pegasus.CheckTypeMatchAnywhere, "xyz", false, nil},
		{"match prefix", b("hello"), pegasus.CheckTypeMatchPrefix, "he", true, nil},
		{"match prefix/no", b("hello"), pegasus.CheckTypeMatchPrefix, "lo", false, nil},
		{"match postfix", b("hello"), pegasus.CheckTypeMatchPostfix, "lo", true, nil},
		{"match postfix/no", b("hello"), pegasus.CheckTypeMatchPostfix, "he", false, nil},
		{"bytes less", b("abc"), pegasus.CheckTypeBytesLess, "abd", true, nil},
		{"bytes less/no", b("abc"), pegasus.CheckTypeBytesLess, "abc", false, nil},
		{"bytes less or equal", b("abc"), pegasus.CheckTypeBytesLessOrEqual, "abc", true, nil},
		{"bytes equal", b("abc"), pegasus.CheckTypeBytesEqual, "abc", true, nil},
		{"bytes equal/no", b("abc"), pegasus.CheckTypeBytesEqual, "ab", false, nil},
		{"bytes greater or equal", b("abc"), pegasus.CheckTypeBytesGreaterOrEqual, "abc", true, nil},
		{"bytes greater", b("abd"), pegasus.CheckTypeBytesGreater, "abc", true, nil},
		{"bytes greater/no", b("abc"), pegasus.CheckTypeBytesGreater, "abc", false, nil},
		{"int less", b("9"), pegasus.CheckTypeIntLess, "10", true, nil},
		{"int less/no", b("10"), pegasus.CheckTypeIntLess, "9", false, nil},
		{"int less or equal", b("10"), pegasus.CheckTypeIntLessOrEqual, "10", true, nil},
		{"int equal", b("0x10"), pegasus.CheckTypeIntEqual, "16", true, nil},
		{"int greater or equal", b("10"), pegasus.CheckTypeIntGreaterOrEqual, "10", true, nil},
		// Bytewise "9" > "10" but numerically it is not: this is what tells int-greater from
		// the Apache go-client's bytes-greater constant.
		{"int greater/no", b("9"), pegasus.CheckTypeIntGreater, "10", false, nil},
		{"int greater", b("11"), pegasus.CheckTypeIntGreater, "10", true, nil},
		{"int greater/absent", nil, pegasus.CheckTypeIntGreater, "10", false, nil},
		{"int/not a number", b("abc"), pegasus.CheckTypeIntEqual, "1", false, pegasus.StatusInvalidArgument},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			must(t, tb.Del(ctx, h, b("check")))
			must(t, tb.Del(ctx, h, b("set")))
			if c.stored != nil {
				must(t, tb.Set(ctx, h, b("check"), c.stored))
			}
			res, err := tb.CheckAndSet(ctx, h, b("check"), c.ct, b(c.operand), b("set"), b("new"),
				&pegasus.CheckAndSetOptions{ReturnCheckValue: true})
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("CheckAndSet = %+v, %v; want %v", res, err, c.err)
				}
				return
			}
			must(t, err)
			if res.SetSucceed != c.pass {
				t.Fatalf("SetSucceed = %v, want %v", res.SetSucceed, c.pass)
			}
			if !res.CheckValueReturned || res.CheckValueExist != (c.stored != nil) ||
				(c.stored != nil && !bytes.Equal(res.CheckValue, c.stored)) {
				t.Errorf("check value: %+v, stored %q", res, c.stored)
			}
			v, err := tb.Get(ctx, h, b("set"))
			must(t, err)
			if (v != nil) != c.pass {
				t.Errorf("set key value %q after SetSucceed=%v", v, res.SetSucceed)
			}
		})
	}
	// Same sort key with a TTL, check value = the old value.
	must(t, tb.Set(ctx, h, b("same"), b("1")))
	res, err := tb.CheckAndSet(ctx, h, b("same"), pegasus.CheckTypeBytesEqual, b("1"), b("same"), b("2"),
		&pegasus.CheckAndSetOptions{SetValueTTLSeconds: 100, ReturnCheckValue: true})
	if err != nil || !res.SetSucceed || string(res.CheckValue) != "1" {
		t.Fatalf("CheckAndSet(same key) = %+v, %v", res, err)
	}
	if ttl, err := tb.TTL(ctx, h, b("same")); err != nil || ttl < 95 {
		t.Fatalf("TTL after CheckAndSet = %d, %v", ttl, err)
	}
	// Without ReturnCheckValue nothing is returned.
	res, err = tb.CheckAndSet(ctx, h, b("same"), pegasus.CheckTypeNoCheck, nil, b("same"), b("3"), nil)
	if err != nil || !res.SetSucceed || res.CheckValueReturned || res.CheckValue != nil {
		t.Fatalf("CheckAndSet(nil options) = %+v, %v", res, err)
	}
}

func TestIntegrationIncrConcurrent(t *testing.T) {
	c, _, tb := cluster(t)
	ctx := t.Context()
	if _, err := tb.Incr(ctx, b("h"), b("s"), 0); err != nil {
		t.Fatal(err)
	}
	must(t, tb.Set(ctx, b("h"), b("bad"), b("abc")))
	if _, err := tb.Incr(ctx, b("h"), b("bad"), 1); !errors.Is(err, pegasus.StatusInvalidArgument) {
		t.Fatalf("Incr of a non-integer = %v, want StatusInvalidArgument", err)
	}
	const clients, each = 4, 50
	var mu sync.Mutex
	var got []int64
	var wg sync.WaitGroup
	for range clients {
		cl, err := pegasus.New(c.ClientConfig())
		must(t, err)
		defer cl.Close()
		tb, err := cl.OpenTable(ctx, "temp")
		must(t, err)
		wg.Go(func() {
			for range each {
				n, err := tb.Incr(ctx, b("h"), b("s"), 1)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, n := range got {
		if n != int64(i+1) {
			t.Fatalf("incr results %v: want every value 1..%d exactly once", got, clients*each)
		}
	}
	v, err := tb.Get(ctx, b("h"), b("s"))
	if err != nil || string(v) != strconv.Itoa(clients*each) {
		t.Fatalf("final value %q, %v", v, err)
	}
}

func TestIntegrationBatchGet(t *testing.T) {
	_, _, tb := cluster(t)
	ctx := t.Context()
	var keys []pegasus.CompositeKey
	for i := range 100 {
		hk, sk := b(fmt.Sprintf("h%d", i)), b("s")
		keys = append(keys, pegasus.CompositeKey{HashKey: hk, SortKey: sk})
		if i%2 == 0 {
			must(t, tb.Set(ctx, hk, sk, b(strconv.Itoa(i))))
		}
	}
	vs, err := tb.BatchGet(ctx, keys)
	must(t, err)
	for i, v := range vs {
		if i%2 == 0 && string(v) != strconv.Itoa(i) || i%2 == 1 && v != nil {
			t.Fatalf("values[%d] = %q", i, v)
		}
	}
}

func scanAll(t *testing.T, sc pegasus.Scanner) []string {
	t.Helper()
	defer sc.Close()
	var out []string
	for {
		done, hk, sk, v, err := sc.Next(t.Context())
		must(t, err)
		if done {
			return out
		}
		out = append(out, string(hk)+"/"+string(sk)+"="+string(v))
	}
}

func TestIntegrationScanners(t *testing.T) {
	_, _, tb := cluster(t)
	ctx := t.Context()
	const hashKeys, sortKeys = 300, 10 // 3000 records over 8 partitions
	want := map[string]bool{}
	for i := range hashKeys {
		hk := b(fmt.Sprintf("hash%03d", i))
		var sks, vs [][]byte
		for j := range sortKeys {
			sks = append(sks, b(fmt.Sprintf("s%d", j)))
			vs = append(vs, b(fmt.Sprintf("v%d.%d", i, j)))
			want[fmt.Sprintf("hash%03d/s%d=v%d.%d", i, j, i, j)] = true
		}
		must(t, tb.MultiSet(ctx, hk, sks, vs))
	}
	for _, batch := range []int{1, 7, 100, 1000, 0} {
		for _, split := range []int{1, 3, 8, 20} {
			opts := pegasus.NewScanOptions()
			opts.BatchSize = batch
			scs, err := tb.GetUnorderedScanners(ctx, split, opts)
			must(t, err)
			if len(scs) != min(split, 8) {
				t.Fatalf("split %d: %d scanners", split, len(scs))
			}
			seen := map[string]bool{}
			for _, sc := range scs {
				for _, r := range scanAll(t, sc) {
					if seen[r] {
						t.Fatalf("batch %d split %d: %s seen twice", batch, split, r)
					}
					seen[r] = true
				}
			}
			if len(seen) != len(want) {
				t.Fatalf("batch %d split %d: %d records, want %d", batch, split, len(seen), len(want))
			}
		}
	}
	// Hash-key filter over the full scan.
	opts := pegasus.NewScanOptions()
	opts.HashKeyFilter = pegasus.Filter{Type: pegasus.FilterTypeMatchPrefix, Pattern: b("hash01")}
	opts.SortKeyFilter = pegasus.Filter{Type: pegasus.FilterTypeMatchPostfix, Pattern: b("3")}
	opts.NoValue = true
	scs, err := tb.GetUnorderedScanners(ctx, 4, opts)
	must(t, err)
	var got []string
	for _, sc := range scs {
		got = append(got, scanAll(t, sc)...)
	}
	slices.Sort(got)
	if len(got) != 10 || got[0] != "hash010/s3=" || got[9] != "hash019/s3=" {
		t.Fatalf("filtered full scan: %v", got)
	}
	// Ordered scanner over one hash key, with range options and a prefix filter.
	sc, err := tb.GetScanner(ctx, b("hash005"), b("s2"), b("s5"), nil)
	must(t, err)
	if got := scanAll(t, sc); fmt.Sprint(got) != "[hash005/s2=v5.2 hash005/s3=v5.3 hash005/s4=v5.4]" {
		t.Fatalf("GetScanner range: %v", got)
	}
	opts = pegasus.NewScanOptions()
	opts.StartInclusive, opts.StopInclusive, opts.BatchSize = false, true, 1
	sc, err = tb.GetScanner(ctx, b("hash005"), b("s2"), b("s5"), opts)
	must(t, err)
	if got := scanAll(t, sc); fmt.Sprint(got) != "[hash005/s3=v5.3 hash005/s4=v5.4 hash005/s5=v5.5]" {
		t.Fatalf("GetScanner (s2, s5]: %v", got)
	}
	opts = pegasus.NewScanOptions()
	opts.SortKeyFilter = pegasus.Filter{Type: pegasus.FilterTypeMatchPrefix, Pattern: b("s7")}
	sc, err = tb.GetScanner(ctx, b("hash005"), nil, nil, opts)
	must(t, err)
	if got := scanAll(t, sc); fmt.Sprint(got) != "[hash005/s7=v5.7]" {
		t.Fatalf("GetScanner prefix: %v", got)
	}
	// An empty range completes at once.
	sc, err = tb.GetScanner(ctx, b("hash005"), b("s5"), b("s2"), nil)
	must(t, err)
	if got := scanAll(t, sc); len(got) != 0 {
		t.Fatalf("empty range: %v", got)
	}
	// Closing early releases the context; Next after Close fails.
	opts = pegasus.NewScanOptions()
	opts.BatchSize = 2
	sc, err = tb.GetScanner(ctx, b("hash005"), nil, nil, opts)
	must(t, err)
	if done, _, _, _, err := sc.Next(ctx); done || err != nil {
		t.Fatalf("Next = %v, %v", done, err)
	}
	must(t, sc.Close())
	if _, _, _, _, err := sc.Next(ctx); !errors.Is(err, pegasus.ErrScannerClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
}

func TestIntegrationDropAndRecreate(t *testing.T) {
	c, cl, tb := cluster(t)
	ctx := t.Context()
	must(t, tb.Set(ctx, b("h"), b("s"), b("old")))
	dropTable(t, c, "temp")
	// Replica servers let go of a dropped table's partitions asynchronously; once one has,
	// the client finds the table gone and fails at once instead of retrying.
	poll.UntilOK(t, "Get on the dropped table to fail", func(context.Context) (bool, error) {
		_, err := tb.Get(ctx, b("h"), b("s"))
		if err != nil && !errors.Is(err, pegasus.ErrObjectNotFound) {
			return false, fmt.Errorf("Get on a dropped table = %w, want ERR_OBJECT_NOT_FOUND", err)
		}
		return err != nil, nil
	})
	c.CreateTable(t, "temp", 4)
	// The same connector follows the new table (new app id, new partition count).
	if v, err := tb.Get(ctx, b("h"), b("s")); err != nil || v != nil {
		t.Fatalf("Get on the recreated table = %q, %v; want nil, nil", v, err)
	}
	must(t, tb.Set(ctx, b("h"), b("s"), b("new")))
	tb2, err := cl.OpenTable(ctx, "temp")
	must(t, err)
	if v, err := tb2.Get(ctx, b("h"), b("s")); err != nil || string(v) != "new" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}

func TestIntegrationReplicaRestart(t *testing.T) {
	c, _, tb := cluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var hks [][]byte
	for i := range 32 {
		hk := b(fmt.Sprintf("k%d", i))
		hks = append(hks, hk)
		must(t, tb.Set(ctx, hk, b("s"), hk))
	}
	addr := c.ReplicaAddrs()[0]
	c.StopReplica(t, addr)
	c.StartReplica(t, addr)
	for _, hk := range hks {
		v, err := tb.Get(ctx, hk, b("s"))
		if err != nil || !bytes.Equal(v, hk) {
			t.Fatalf("Get(%s) after a replica restart = %q, %v", hk, v, err)
		}
	}
}

// dropTable drops a table through the meta server's RPC.
func dropTable(t *testing.T, c *testcluster.Cluster, name string) {
	t.Helper()
	adm := newAdmin(t, c)
	must(t, adm.DropTable(t.Context(), name, 0))
}

func newAdmin(t *testing.T, c *testcluster.Cluster) admin.Client {
	t.Helper()
	adm, err := admin.New(admin.Config{MetaServers: c.MetaAddrs(), TLS: c.ClientTLS()})
	must(t, err)
	t.Cleanup(func() { _ = adm.Close() })
	return adm
}

// TestIntegrationOverTLS runs integration tests again with TLS on the client port, TLS
// mandatory: the client passes them over TLS as it does over plaintext.
func TestIntegrationOverTLS(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Basics", TestIntegrationBasics},
		{"TTL", TestIntegrationTTL},
		{"MultiGet", TestIntegrationMultiGet},
		{"MultiDelAndDelRange", TestIntegrationMultiDelAndDelRange},
		{"CheckAndSet", TestIntegrationCheckAndSet},
		{"IncrConcurrent", TestIntegrationIncrConcurrent},
		{"BatchGet", TestIntegrationBatchGet},
		{"Scanners", TestIntegrationScanners},
		{"DropAndRecreate", TestIntegrationDropAndRecreate},
		{"ReplicaRestart", TestIntegrationReplicaRestart},
		{"FailoverFollowsNewPrimary", TestIntegrationFailoverFollowsNewPrimary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			overTLS.Store(t, struct{}{})
			defer overTLS.Delete(t)
			tc.run(t)
		})
	}
}

// With 3 replicas, stopping the server that is primary of a key's partition: the client
// follows the new primary within its context deadline, for reads and writes, and nothing
// written before is lost.
func TestIntegrationFailoverFollowsNewPrimary(t *testing.T) {
	c := startCluster(t)
	c.CreateTableReplicas(t, "temp", 8, 3)
	cl, err := pegasus.New(c.ClientConfig())
	must(t, err)
	defer cl.Close()
	tb, err := cl.OpenTable(t.Context(), "temp")
	must(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range 50 {
		must(t, tb.Set(ctx, b(fmt.Sprintf("f%d", i)), b("s"), b(strconv.Itoa(i))))
	}
	// Stop every server in turn (one at a time): each time, some partitions lose their
	// primary, and every call still succeeds within a 10 s deadline.
	for _, addr := range c.ReplicaAddrs() {
		c.StopReplica(t, addr)
		for i := range 50 {
			cctx, ccancel := context.WithTimeout(t.Context(), 10*time.Second)
			v, err := tb.Get(cctx, b(fmt.Sprintf("f%d", i)), b("s"))
			if err == nil {
				err = tb.Set(cctx, b(fmt.Sprintf("g%d", i)), b("s"), b(addr))
				// A Set in flight when its server stopped may or may not have been
				// applied: the client says so rather than sending it again. This test is
				// the keys' only writer, so it may send it again itself.
				for errors.Is(err, pegasus.ErrOutcomeUnknown) && cctx.Err() == nil {
					err = tb.Set(cctx, b(fmt.Sprintf("g%d", i)), b("s"), b(addr))
				}
			}
			ccancel()
			if err != nil || string(v) != strconv.Itoa(i) {
				t.Fatalf("with %s stopped, key f%d: %q %v", addr, i, v, err)
			}
		}
		c.StartReplica(t, addr)
		c.WaitPrimaries(t, "temp")
	}
}
