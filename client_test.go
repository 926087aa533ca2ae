package pegasus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/leakcheck"
	"github.com/gopegasus/pegasus/internal/wire"
)

func TestLocate(t *testing.T) {
	// protocol.md §4.4.
	for _, tc := range []struct {
		hashKey string
		p8, p16 int
	}{
		{"a", 4, 12}, {"hello", 7, 7}, {"h1", 2, 10}, {"key_1", 4, 4},
	} {
		t.Run(tc.hashKey, func(t *testing.T) {
			for _, n := range []int{8, 16} {
				r := &route{partitions: make([]partition, n)}
				for i := range r.partitions {
					r.partitions[i].ballot = 1
				}
				want := tc.p8
				if n == 16 {
					want = tc.p16
				}
				if got := r.locate(key.Hash([]byte(tc.hashKey))); got != want {
					t.Errorf("%q of %d partitions: %d, want %d", tc.hashKey, n, got, want)
				}
			}
		})
	}
	// A split child that is not ready (ballot <= 0) sends its keys to the parent.
	r := &route{partitions: make([]partition, 16)}
	for i := range 8 {
		r.partitions[i].ballot = 1
	}
	for i := 8; i < 16; i++ {
		r.partitions[i].ballot = -1
	}
	if got := r.locate(key.Hash([]byte("a"))); got != 4 {
		t.Errorf("\"a\" with a not-ready child 12: %d, want parent 4", got)
	}
	// A not-ready partition of the lower half has no parent: it is used as is.
	r.partitions[4].ballot = 0
	if got := r.locate(key.Hash([]byte("key_1"))); got != 4 {
		t.Errorf("lower-half partition with ballot 0: %d, want 4", got)
	}
}

func TestSplitPartitions(t *testing.T) {
	for _, tc := range []struct {
		count, max int
		want       string
	}{
		{8, 1, "[[0 1 2 3 4 5 6 7]]"},
		{8, 2, "[[0 1 2 3] [4 5 6 7]]"},
		{8, 3, "[[0 1] [2 3 4] [5 6 7]]"}, // the Apache go-client's split
		{8, 5, "[[0] [1] [2 3] [4 5] [6 7]]"},
		{8, 6, "[[0] [1] [2] [3] [4 5] [6 7]]"}, // the Apache client panics here
		{8, 7, "[[0] [1] [2] [3] [4] [5] [6 7]]"},
		{8, 8, "[[0] [1] [2] [3] [4] [5] [6] [7]]"},
		{8, 100, "[[0] [1] [2] [3] [4] [5] [6] [7]]"},
		{1, 3, "[[0]]"},
	} {
		t.Run(fmt.Sprintf("count=%d,max=%d", tc.count, tc.max), func(t *testing.T) {
			if got := fmt.Sprint(splitPartitions(tc.count, tc.max)); got != tc.want {
				t.Errorf("split %d into %d: %s, want %s", tc.count, tc.max, got, tc.want)
			}
		})
	}
	// Every partition exactly once, shares differing by at most one.
	for count := 1; count <= 64; count++ {
		for m := 1; m <= 70; m++ {
			shares := splitPartitions(count, m)
			var all []int
			lo, hi := count, 0
			for _, s := range shares {
				all = append(all, s...)
				lo, hi = min(lo, len(s)), max(hi, len(s))
			}
			if len(shares) != min(count, m) || lo == 0 || hi-lo > 1 || !slices.IsSorted(all) || len(all) != count {
				t.Fatalf("split %d into %d: %v", count, m, shares)
			}
		}
	}
}

func TestUnorderedScannersOrder(t *testing.T) {
	f := startFake(t)
	tb := openTemp(t, newTestClient(t, f.addr()))
	if _, err := tb.GetUnorderedScanners(t.Context(), 0, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("maxSplitCount 0: %v", err)
	}
	scs, err := tb.GetUnorderedScanners(t.Context(), 3, nil)
	if err != nil || len(scs) != 3 {
		t.Fatalf("%d scanners, %v", len(scs), err)
	}
	f.setHandler(func(fr *frame) (idl.Value, wire.Code, bool) {
		if _, ok := fr.args.(*idl.GetScannerRequest); ok {
			return &idl.ScanResponse{ContextID: -1, KVs: []idl.KeyValue{}}, wire.OK, false
		}
		return f.capture(fr)
	})
	f.take()
	for _, sc := range scs {
		if done, _, _, _, err := sc.Next(t.Context()); !done || err != nil {
			t.Fatalf("Next = %v, %v", done, err)
		}
	}
	var order []int32
	for _, fr := range f.take() {
		if fr.name == idl.RPCQueryConfig {
			continue // the check, after each get_scanner, that no split changed the count
		}
		if fr.header.PartitionHash != uint64(fr.header.PartitionIndex) {
			t.Errorf("partition_hash %d for partition %d", fr.header.PartitionHash, fr.header.PartitionIndex)
		}
		order = append(order, fr.header.PartitionIndex)
	}
	// Each scanner visits its partitions from the highest down.
	if fmt.Sprint(order) != "[1 0 4 3 2 7 6 5]" {
		t.Errorf("partitions visited %v", order)
	}
}

func TestArgumentChecks(t *testing.T) {
	f := startFake(t)
	tb := openTemp(t, newTestClient(t, f.addr()))
	f.take()
	ctx := t.Context()
	long := make([]byte, 65535)
	h, s, v := bs("h"), bs("s"), bs("v")
	checks := map[string]error{}
	add := func(name string, err error) { checks[name] = err }

	_, err := tb.Get(ctx, nil, s)
	add("Get nil hash key", err)
	_, err = tb.Get(ctx, bs(""), s)
	add("Get empty hash key", err)
	_, err = tb.Get(ctx, h, nil)
	add("Get nil sort key", err)
	_, err = tb.Get(ctx, long, s)
	add("Get 65535-byte hash key", err)
	add("Set nil value", tb.Set(ctx, h, s, nil))
	add("SetTTL negative", tb.SetTTL(ctx, h, s, v, -time.Second))
	add("Del nil sort key", tb.Del(ctx, h, nil))
	_, _, err = tb.MultiGet(ctx, h, [][]byte{s, nil})
	add("MultiGet nil sort key", err)
	_, _, err = tb.MultiGetOpt(ctx, h, nil, &MultiGetOptions{SortKeyFilter: Filter{Type: 9}})
	add("MultiGetOpt bad filter", err)
	_, _, err = tb.MultiGetRange(ctx, nil, nil, nil)
	add("MultiGetRange nil hash key", err)
	add("MultiSet no keys", tb.MultiSet(ctx, h, nil, nil))
	add("MultiSet length mismatch", tb.MultiSet(ctx, h, [][]byte{s}, [][]byte{v, v}))
	add("MultiSet nil value", tb.MultiSet(ctx, h, [][]byte{s}, [][]byte{nil}))
	add("MultiSetOpt negative TTL", tb.MultiSetOpt(ctx, h, [][]byte{s}, [][]byte{v}, -time.Second))
	add("MultiDel no keys", tb.MultiDel(ctx, h, nil))
	add("DelRange empty hash key", tb.DelRange(ctx, bs(""), nil, nil))
	_, err = tb.TTL(ctx, h, nil)
	add("TTL nil sort key", err)
	_, err = tb.Exist(ctx, nil, s)
	add("Exist nil hash key", err)
	_, err = tb.GetScanner(ctx, nil, nil, nil, nil)
	add("GetScanner nil hash key", err)
	_, err = tb.GetScanner(ctx, h, nil, nil, &ScannerOptions{HashKeyFilter: Filter{Type: -1}})
	add("GetScanner bad filter", err)
	_, err = tb.GetUnorderedScanners(ctx, -1, nil)
	add("GetUnorderedScanners negative split", err)
	_, err = tb.CheckAndSet(ctx, h, s, CheckType(18), nil, s, v, nil)
	add("CheckAndSet bad check type", err)
	_, err = tb.CheckAndSet(ctx, h, s, CheckTypeNoCheck, nil, s, v, &CheckAndSetOptions{SetValueTTLSeconds: -1})
	add("CheckAndSet negative TTL", err)
	_, err = tb.CheckAndSet(ctx, h, nil, CheckTypeNoCheck, nil, s, v, nil)
	add("CheckAndSet nil check sort key", err)
	_, err = tb.SortKeyCount(ctx, nil)
	add("SortKeyCount nil hash key", err)
	_, err = tb.Incr(ctx, h, nil, 1)
	add("Incr nil sort key", err)
	_, err = tb.BatchGet(ctx, nil)
	add("BatchGet no keys", err)
	_, err = tb.BatchGet(ctx, []CompositeKey{{HashKey: h, SortKey: s}, {HashKey: nil, SortKey: s}})
	add("BatchGet nil hash key", err)

	for name, err := range checks {
		t.Run(name, func(t *testing.T) {
			var pe *PError
			if !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &pe) {
				t.Errorf("%s: %v, want a PError wrapping ErrInvalidArgument", name, err)
			}
		})
	}
	if fr := f.take(); len(fr) != 0 {
		t.Errorf("rejected calls sent %d frames", len(fr))
	}
	// 65534 bytes is the longest hash key accepted.
	if _, err := tb.Get(ctx, long[:65534], s); err != nil {
		t.Errorf("Get with a 65534-byte hash key: %v", err)
	}
}

func TestNewChecksAddresses(t *testing.T) {
	for _, metas := range [][]string{nil, {}, {"127.0.0.1"}, {"127.0.0.1:0"}, {":34601"}, {"127.0.0.1:34601", "x:y"}, {"h:70000"}} {
		if _, err := New(Config{MetaServers: metas}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(%q) = %v, want ErrInvalidArgument", metas, err)
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("NewClient with an illegal address did not panic")
			}
		}()
		NewClient(Config{MetaServers: []string{"nonsense"}})
	}()
	c := NewClient(Config{MetaServers: []string{"localhost:34601", "127.0.0.1:34602"}})
	_ = c.Close()
}

func TestOpTypeStrings(t *testing.T) {
	want := []string{"table configuration query", "GET", "SET", "DEL", "MULTI_DEL", "MULTI_GET", "MULTI_GET_RANGE",
		"Close", "MULTI_SET", "TTL", "EXIST", "GET_SCANNER", "GET_UNORDERED_SCANNERS", "SCAN_NEXT", "SCANNER_CLOSE",
		"CHECK_AND_SET", "SORTKEY_COUNT", "INCR", "BATCH_GET", "DEL_RANGE"}
	for i, w := range want {
		if got := OpType(i).String(); got != w {
			t.Errorf("OpType(%d) = %q, want %q", i, got, w)
		}
	}
	err := &PError{Op: OpGet, Err: errors.New("boom")}
	if err.Error() != "pegasus GET failed: boom" {
		t.Errorf("PError text %q", err.Error())
	}
}

func TestConstantsWireValues(t *testing.T) {
	// cas_check_type and filter_type of protocol.md §2.3.
	checks := []CheckType{CheckTypeNoCheck, CheckTypeValueNotExist, CheckTypeValueNotExistOrEmpty, CheckTypeValueExist,
		CheckTypeValueNotEmpty, CheckTypeMatchAnywhere, CheckTypeMatchPrefix, CheckTypeMatchPostfix, CheckTypeBytesLess,
		CheckTypeBytesLessOrEqual, CheckTypeBytesEqual, CheckTypeBytesGreaterOrEqual, CheckTypeBytesGreater,
		CheckTypeIntLess, CheckTypeIntLessOrEqual, CheckTypeIntEqual, CheckTypeIntGreaterOrEqual, CheckTypeIntGreater}
	for i, c := range checks {
		if int(c) != i {
			t.Errorf("check type %d has value %d", i, c)
		}
	}
	if CheckTypeIntGreater != 17 {
		t.Errorf("CheckTypeIntGreater = %d, want 17 (CT_VALUE_INT_GREATER)", CheckTypeIntGreater)
	}
	for i, f := range []FilterType{FilterTypeNoFilter, FilterTypeMatchAnywhere, FilterTypeMatchPrefix, FilterTypeMatchPostfix} {
		if int(f) != i {
			t.Errorf("filter type %d has value %d", i, f)
		}
	}
	o := NewScanOptions()
	if o.BatchSize != 1000 || !o.StartInclusive || o.StopInclusive || o.NoValue {
		t.Errorf("NewScanOptions = %+v", o)
	}
	d := DefaultMultiGetOptions
	if !d.StartInclusive || d.StopInclusive || d.MaxFetchCount != 100 || d.MaxFetchSize != 100000 || d.Reverse || d.NoValue {
		t.Errorf("DefaultMultiGetOptions = %+v", d)
	}
	if r := DefaultDelRangeOptions; !r.StartInclusive || r.StopInclusive || r.SortKeyFilter.Type != FilterTypeNoFilter {
		t.Errorf("DefaultDelRangeOptions = %+v", r)
	}
}

// answerWith makes the fake answer replica RPCs (not the meta's) through h.
func answerWith(f *fakeServer, h func(fr *frame) (idl.Value, wire.Code, bool)) {
	f.setHandler(func(fr *frame) (idl.Value, wire.Code, bool) {
		if fr.name == idl.RPCQueryConfig {
			return f.capture(fr)
		}
		return h(fr)
	})
}

func TestErrorWrapping(t *testing.T) {
	f := startFake(t)
	tb := openTemp(t, newTestClient(t, f.addr()))
	answerWith(f, func(fr *frame) (idl.Value, wire.Code, bool) {
		switch fr.name {
		case idl.RPCIncr:
			return &idl.IncrResponse{Error: 4}, wire.OK, false
		case idl.RPCPut:
			return nil, wire.ErrInvalidData, false
		}
		return f.capture(fr)
	})
	_, err := tb.Incr(t.Context(), bs("h1"), bs("s"), 1)
	var pe *PError
	if !errors.As(err, &pe) || pe.Op != OpIncr || !errors.Is(err, StatusInvalidArgument) {
		t.Fatalf("Incr on a non-integer = %v", err)
	}
	if !strings.Contains(err.Error(), `table "temp" partition 2`) {
		t.Errorf("error %q does not name table and partition", err)
	}
	err = tb.Set(t.Context(), bs("h1"), bs("s"), bs("v"))
	if !errors.As(err, &pe) || pe.Op != OpSet || !errors.Is(err, ErrInvalidData) {
		t.Fatalf("Set answered ERR_INVALID_DATA = %v", err)
	}
	if !strings.Contains(err.Error(), f.addr()) {
		t.Errorf("error %q does not name the server", err)
	}
	// Neither is retried: one frame each.
	if n := f.count(idl.RPCIncr); n != 1 {
		t.Errorf("Incr sent %d times", n)
	}
	if n := f.count(idl.RPCPut); n != 1 {
		t.Errorf("Set sent %d times", n)
	}
	// A context error stays recognisable.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := tb.Get(ctx, bs("h1"), bs("s1")); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context = %v", err)
	}
}

// TestRefreshCoalescing fails many concurrent calls with ERR_INVALID_STATE at once and
// checks that they share one configuration query, then succeed on retry.
func TestRefreshCoalescing(t *testing.T) {
	f := startFake(t)
	tb := openTemp(t, newTestClient(t, f.addr()))
	const callers = 50
	var mu sync.Mutex
	failed := map[string]bool{}
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(callers)
	answerWith(f, func(fr *frame) (idl.Value, wire.Code, bool) {
		k := string(*fr.args.(*idl.Blob))
		mu.Lock()
		first := !failed[k]
		failed[k] = true
		mu.Unlock()
		if first {
			// Fail every caller's first attempt together, once all have arrived.
			arrived.Done()
			<-release
			return nil, wire.ErrInvalidState, false
		}
		return &idl.ReadResponse{Value: []byte("v")}, wire.OK, false
	})
	f.take()
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			v, err := tb.Get(t.Context(), bs("h1"), bs(fmt.Sprint(i)))
			if err != nil || string(v) != "v" {
				t.Errorf("Get = %q, %v", v, err)
			}
		})
	}
	arrived.Wait()
	close(release)
	wg.Wait()
	if n := f.count(idl.RPCQueryConfig); n != 1 {
		t.Errorf("%d configuration queries for %d concurrent failures, want 1", n, callers)
	}
	if n := f.count(idl.RPCGet); n != 2*callers {
		t.Errorf("%d GETs, want %d (each failed once, then retried)", n, 2*callers)
	}
}

// TestRetryPolicy checks which failures are retried for which operations.
func TestRetryPolicy(t *testing.T) {
	f := startFake(t)
	tb := openTemp(t, newTestClient(t, f.addr()))
	var mu sync.Mutex
	fails := map[string]int{}
	answerWith(f, func(fr *frame) (idl.Value, wire.Code, bool) {
		mu.Lock()
		fails[fr.name]++
		n := fails[fr.name]
		mu.Unlock()
		if n == 1 {
			return nil, wire.ErrInvalidState, false
		}
		return f.capture(fr)
	})
	ctx := t.Context()
	if _, err := tb.Get(ctx, bs("h1"), bs("s1")); err != nil {
		t.Errorf("Get is retried after ERR_INVALID_STATE: %v", err)
	}
	if err := tb.Set(ctx, bs("h1"), bs("s1"), bs("v")); err != nil {
		t.Errorf("Set (idempotent) is retried after ERR_INVALID_STATE: %v", err)
	}
	if _, err := tb.Incr(ctx, bs("h1"), bs("s1"), 1); !errors.Is(err, ErrInvalidState) {
		t.Errorf("Incr after ERR_INVALID_STATE = %v; must not be repeated", err)
	}
	if _, err := tb.CheckAndSet(ctx, bs("h1"), bs("s1"), CheckTypeNoCheck, nil, bs("s1"), bs("v"), nil); !errors.Is(err, ErrInvalidState) {
		t.Errorf("CheckAndSet after ERR_INVALID_STATE = %v; must not be repeated", err)
	}
	// ERR_OBJECT_NOT_FOUND means the replica does not host the partition: nothing ran, so even
	// Incr goes again (to the refreshed primary).
	f.take()
	answerWith(f, func(fr *frame) (idl.Value, wire.Code, bool) {
		mu.Lock()
		fails["incr2"]++
		n := fails["incr2"]
		mu.Unlock()
		if n == 1 {
			return nil, wire.ErrObjectNotFound, false
		}
		return f.capture(fr)
	})
	if n, err := tb.Incr(ctx, bs("h1"), bs("s1"), 5); err != nil || n != 5 {
		t.Errorf("Incr after ERR_OBJECT_NOT_FOUND = %d, %v", n, err)
	}
	// Retries stop at the context's deadline.
	answerWith(f, func(fr *frame) (idl.Value, wire.Code, bool) { return nil, wire.ErrBusy, false })
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := tb.Get(dctx, bs("h1"), bs("s1")); !errors.Is(err, ErrBusy) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get against a busy server = %v", err)
	}
}

// TestRetryGoesToNewPrimary moves partition 2's primary to a second server after the first
// answers ERR_INVALID_STATE; the retry must reach the new one.
func TestRetryGoesToNewPrimary(t *testing.T) {
	oldP, newP := startFake(t), startFake(t)
	moved := make(chan struct{})
	var once sync.Once
	oldP.setHandler(func(fr *frame) (idl.Value, wire.Code, bool) {
		if fr.name == idl.RPCQueryConfig {
			select {
			case <-moved:
				return tempConfig(t, newP.addr(), 2, 8), wire.OK, false
			default:
				return oldP.capture(fr)
			}
		}
		once.Do(func() { close(moved) })
		return nil, wire.ErrInvalidState, false
	})
	tb := openTemp(t, newTestClient(t, oldP.addr()))
	v, err := tb.Get(t.Context(), bs("h1"), bs("s1"))
	if err != nil || string(v) != "v1" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if n := newP.count(idl.RPCGet); n != 1 {
		t.Errorf("new primary got %d GETs", n)
	}
}

// TestMetaFailover lists a meta address that refuses connections first.
func TestMetaFailover(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more: connections are refused
	f := startFake(t)
	c := newTestClient(t, dead, f.addr())
	tb := openTemp(t, c)
	if v, err := tb.Get(t.Context(), bs("h1"), bs("s1")); err != nil || string(v) != "v1" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	// The live meta is now the leader: the next query goes there first.
	if _, err := c.OpenTable(t.Context(), "other"); !errors.Is(err, ErrObjectNotFound) {
		t.Fatalf("OpenTable(other) = %v", err)
	}
}

// TestMetaForward follows a non-leader's hint to the leader.
func TestMetaForward(t *testing.T) {
	leader, follower := startFake(t), startFake(t)
	follower.setHandler(func(fr *frame) (idl.Value, wire.Code, bool) {
		ra, _ := idl.ParseRPCAddress(leader.addr())
		return &idl.QueryCfgResponse{Err: "ERR_FORWARD_TO_OTHERS",
			Partitions: []idl.PartitionConfiguration{{Primary: ra}}}, wire.OK, false
	})
	leader.setHandler(func(fr *frame) (idl.Value, wire.Code, bool) {
		if fr.name == idl.RPCQueryConfig {
			return tempConfig(t, leader.addr(), 2, 8), wire.OK, false
		}
		return leader.capture(fr)
	})
	tb := openTemp(t, newTestClient(t, follower.addr()))
	if v, err := tb.Get(t.Context(), bs("h1"), bs("s1")); err != nil || string(v) != "v1" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if follower.count(idl.RPCQueryConfig) != 1 || leader.count(idl.RPCQueryConfig) != 1 {
		t.Errorf("queries: follower %d, leader %d", follower.count(idl.RPCQueryConfig), leader.count(idl.RPCQueryConfig))
	}
}

func TestScannerRestartsLostContext(t *testing.T) {
	f := startFake(t)
	tb := openTemp(t, newTestClient(t, f.addr()))
	var starts []*idl.GetScannerRequest
	var mu sync.Mutex
	answerWith(f, func(fr *frame) (idl.Value, wire.Code, bool) {
		switch a := fr.args.(type) {
		case *idl.GetScannerRequest:
			mu.Lock()
			starts = append(starts, a)
			n := len(starts)
			mu.Unlock()
			if n == 1 {
				kv := idl.KeyValue{Key: key.Encode(bs("h1"), bs("s1")), Value: bs("v1")}
				return &idl.ScanResponse{KVs: []idl.KeyValue{kv}, ContextID: 7}, wire.OK, false
			}
			kv := idl.KeyValue{Key: key.Encode(bs("h1"), bs("s2")), Value: bs("v2")}
			return &idl.ScanResponse{KVs: []idl.KeyValue{kv}, ContextID: -1}, wire.OK, false
		case *idl.ScanRequest:
			return &idl.ScanResponse{Error: 1, ContextID: 0, KVs: []idl.KeyValue{}}, wire.OK, false
		}
		return f.capture(fr)
	})
	sc, err := tb.GetScanner(t.Context(), bs("h1"), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		done, _, sk, _, err := sc.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
		got = append(got, string(sk))
	}
	if fmt.Sprint(got) != "[s1 s2]" || len(starts) != 2 {
		t.Fatalf("scanned %v with %d get_scanners", got, len(starts))
	}
	if r := starts[1]; string(r.StartKey) != string(key.Encode(bs("h1"), bs("s1"))) || r.StartInclusive {
		t.Errorf("restart from %x inclusive=%v, want after s1", r.StartKey, r.StartInclusive)
	}
}

func TestMetrics(t *testing.T) {
	f := startFake(t)
	reg := prometheus.NewRegistry()
	c, err := New(Config{MetaServers: []string{f.addr()}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A second client on the same registry shares the collectors.
	c2, err := New(Config{MetaServers: []string{f.addr()}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	tb := openTemp(t, c)
	_, _ = tb.Get(t.Context(), bs("h1"), bs("s1"))
	_, _ = tb.Get(t.Context(), bs("h1"), nil) // an argument error is not counted: nothing ran
	answerWith(f, func(fr *frame) (idl.Value, wire.Code, bool) { return &idl.ReadResponse{Error: 2}, wire.OK, false })
	_, _ = tb.Get(t.Context(), bs("h1"), bs("s1"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var op string
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" {
					op = l.GetValue()
				}
			}
			if m.GetHistogram() != nil {
				found[mf.GetName()+"/"+op] = float64(m.GetHistogram().GetSampleCount())
			} else {
				found[mf.GetName()+"/"+op] = m.GetCounter().GetValue()
			}
		}
	}
	if found["pegasus_client_operation_duration_seconds/GET"] != 2 || found["pegasus_client_operation_errors_total/GET"] != 1 {
		t.Errorf("metrics %v", found)
	}
}

// TestNoGoroutineLeak opens tables, scans, fails calls and closes the client: afterwards no
// goroutine of the client may remain.
func TestNoGoroutineLeak(t *testing.T) {
	f := startFake(t)
	snap := leakcheck.Take()
	c, err := New(Config{MetaServers: []string{f.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	tb := openTemp(t, c)
	ctx := t.Context()
	_, _ = tb.Get(ctx, bs("h1"), bs("s1"))
	_, _ = tb.BatchGet(ctx, []CompositeKey{{HashKey: bs("h1"), SortKey: bs("s1")}, {HashKey: bs("h2"), SortKey: bs("s1")}})
	scs, _ := tb.GetUnorderedScanners(ctx, 2, nil)
	for _, sc := range scs {
		_, _, _, _, _ = sc.Next(ctx)
		_ = sc.Close()
	}
	_ = tb.DelRange(ctx, bs("h1"), nil, nil)
	_, _ = c.OpenTable(ctx, "missing")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Get(ctx, bs("h1"), bs("s1")); !errors.Is(err, ErrClientClosed) {
		t.Errorf("Get after Close = %v", err)
	}
	if _, err := c.OpenTable(ctx, "temp"); !errors.Is(err, ErrClientClosed) {
		t.Errorf("OpenTable after Close = %v", err)
	}
	snap.Check(t)
}

func TestOpenTableShared(t *testing.T) {
	f := startFake(t)
	c := newTestClient(t, f.addr())
	var wg sync.WaitGroup
	tbs := make([]TableConnector, 10)
	for i := range tbs {
		wg.Go(func() {
			tb, err := c.OpenTable(t.Context(), "temp")
			if err != nil {
				t.Error(err)
			}
			tbs[i] = tb
		})
	}
	wg.Wait()
	for _, tb := range tbs[1:] {
		if tb != tbs[0] {
			t.Fatal("OpenTable of one table returned different connectors")
		}
	}
	if n := f.count(idl.RPCQueryConfig); n != 1 {
		t.Errorf("%d configuration queries for 10 opens", n)
	}
}
