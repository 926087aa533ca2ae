package pegasus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/golden"
	"github.com/gopegasus/pegasus/internal/idl"
)

// Capture-time values of the fields that depend on the clock (vectors README).
const (
	captureNow = 343758821
)

// compareFrame checks that got is want byte for byte except for the client timeout (bytes
// 32..35), the seqid and, when expireTTL > 0, the expire timestamp the vector carries as
// captureExpire, which in got must be now + expireTTL.
func compareFrame(t *testing.T, name string, want, got []byte, captureExpire, expireTTL int32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: frame of %d bytes, want %d\n got %x\nwant %x", name, len(got), len(want), got, want)
		return
	}
	mask := make([]bool, len(want))
	for i := 32; i < 36; i++ {
		mask[i] = true
	}
	nameLen := int(binary.BigEndian.Uint32(want[52:56]))
	seqAt := 56 + nameLen
	for i := seqAt; i < seqAt+4; i++ {
		mask[i] = true
	}
	if captureExpire != 0 {
		var enc [4]byte
		binary.BigEndian.PutUint32(enc[:], uint32(captureExpire))
		at := bytes.Index(want[seqAt+4:], enc[:])
		if at < 0 {
			t.Fatalf("%s: expire timestamp %d not found in the vector", name, captureExpire)
		}
		at += seqAt + 4
		gotExpire := int64(binary.BigEndian.Uint32(got[at:]))
		now := time.Now().Unix() - epochBegin
		if gotExpire < now+int64(expireTTL)-2 || gotExpire > now+int64(expireTTL)+2 {
			t.Errorf("%s: expire timestamp %d, want about %d", name, gotExpire, now+int64(expireTTL))
		}
		for i := at; i < at+4; i++ {
			mask[i] = true
		}
	}
	for i := range want {
		if !mask[i] && got[i] != want[i] {
			t.Errorf("%s: byte %d is %#02x, want %#02x\n got %x\nwant %x", name, i, got[i], want[i], got, want)
			return
		}
	}
	// Unlike the official client, the timeout sent is the real one (5 s here, minus a little).
	if ct := binary.BigEndian.Uint32(got[32:36]); ct < 3000 || ct > 5000 {
		if !strings.Contains(name, "CLEAR_SCANNER") || int64(ct) > clearScannerTimeout.Milliseconds() {
			t.Errorf("%s: client_timeout %d ms", name, ct)
		}
	}
}

// TestWireCompatibility drives every API call of the vectors README, in the README's order,
// against a recording fake and compares each request frame with the official go-client's.
func TestWireCompatibility(t *testing.T) {
	f := startFake(t)
	c := newTestClient(t, f.addr())
	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(t.Context(), 5*time.Second)
	}
	h1 := bs("h1")

	type step struct {
		vectors []string
		expire  []int32 // capture expire ts per vector (0: none)
		ttl     []int32
		run     func(t *testing.T, tb TableConnector)
		// checks is how many configuration queries the step sends besides its vectors:
		// an unordered scanner queries the configuration after each get_scanner, to follow
		// a partition split (scanner.go). They are left out of the comparison.
		checks int
	}
	var tb TableConnector
	steps := []step{
		{vectors: []string{"01-RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX-opentable-temp.hex"}, run: func(t *testing.T, _ TableConnector) {
			ctx, cancel := call()
			defer cancel()
			var err error
			if tb, err = c.OpenTable(ctx, "temp"); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"02-RPC_RRDB_RRDB_GET-get.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			v, err := tb.Get(ctx, h1, bs("s1"))
			if err != nil || string(v) != "v1" {
				t.Fatalf("Get = %q, %v", v, err)
			}
		}},
		{vectors: []string{"03-RPC_RRDB_RRDB_PUT-set.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if err := tb.Set(ctx, h1, bs("s1"), bs("v1")); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"04-RPC_RRDB_RRDB_PUT-setttl.hex"}, expire: []int32{captureNow + 10}, ttl: []int32{10}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if err := tb.SetTTL(ctx, h1, bs("s2"), bs("v2"), 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"05-RPC_RRDB_RRDB_REMOVE-del.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if err := tb.Del(ctx, h1, bs("s1")); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"06-RPC_RRDB_RRDB_MULTI_GET-multiget.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			kvs, all, err := tb.MultiGet(ctx, h1, [][]byte{bs("s1"), bs("s2"), bs("s3")})
			if err != nil || !all || len(kvs) != 3 {
				t.Fatalf("MultiGet = %v, %v, %v", kvs, all, err)
			}
		}},
		{vectors: []string{"07-RPC_RRDB_RRDB_MULTI_GET-multigetopt.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			_, _, err := tb.MultiGetOpt(ctx, h1, nil, &MultiGetOptions{StartInclusive: true, StopInclusive: false,
				SortKeyFilter: Filter{Type: FilterTypeMatchPrefix, Pattern: bs("s")}, MaxFetchCount: 4, MaxFetchSize: 100000,
				Reverse: true, NoValue: true})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"08-RPC_RRDB_RRDB_MULTI_GET-multigetrange.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if _, _, err := tb.MultiGetRange(ctx, h1, bs("s1"), bs("s3")); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"09-RPC_RRDB_RRDB_MULTI_GET-multigetrangeopt.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			_, _, err := tb.MultiGetRangeOpt(ctx, h1, bs("s1"), bs("s3"), &MultiGetOptions{StartInclusive: false, StopInclusive: true,
				SortKeyFilter: Filter{Type: FilterTypeNoFilter}, MaxFetchCount: 100, MaxFetchSize: 100000})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"10-RPC_RRDB_RRDB_MULTI_PUT-multiset.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if err := tb.MultiSet(ctx, h1, [][]byte{bs("s1"), bs("s2"), bs("s3")}, [][]byte{bs("v1"), bs("v2"), bs("v3")}); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"11-RPC_RRDB_RRDB_MULTI_PUT-multisetopt.hex"}, expire: []int32{captureNow + 10}, ttl: []int32{10}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if err := tb.MultiSetOpt(ctx, h1, [][]byte{bs("s1"), bs("s2")}, [][]byte{bs("v1"), bs("v2")}, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"12-RPC_RRDB_RRDB_MULTI_REMOVE-multidel.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if err := tb.MultiDel(ctx, h1, [][]byte{bs("s1"), bs("s2")}); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"13-RPC_RRDB_RRDB_GET_SCANNER-delrange.hex", "14-RPC_RRDB_RRDB_SCAN-delrange.hex",
			"15-RPC_RRDB_RRDB_MULTI_REMOVE-delrange.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if err := tb.DelRange(ctx, h1, bs("s1"), bs("s3")); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"16-RPC_RRDB_RRDB_TTL-ttl.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if ttl, err := tb.TTL(ctx, h1, bs("s1")); err != nil || ttl != 10 {
				t.Fatalf("TTL = %d, %v", ttl, err)
			}
		}},
		{vectors: []string{"17-RPC_RRDB_RRDB_TTL-exist.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if ok, err := tb.Exist(ctx, h1, bs("s1")); err != nil || !ok {
				t.Fatalf("Exist = %v, %v", ok, err)
			}
		}},
		{vectors: []string{"18-RPC_RRDB_RRDB_GET_SCANNER-getscanner.hex", "19-RPC_RRDB_RRDB_SCAN-getscanner.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			sc, err := tb.GetScanner(ctx, h1, nil, nil, NewScanOptions())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for {
				ctx, cancel := call()
				done, hk, sk, v, err := sc.Next(ctx)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if done {
					break
				}
				got = append(got, string(hk)+"/"+string(sk)+"="+string(v))
			}
			if strings.Join(got, " ") != "h1/s1=v1 h1/s2=v2 h1/s3=v3" {
				t.Errorf("scanned %v", got)
			}
			if err := sc.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"20-RPC_RRDB_RRDB_GET_SCANNER-unorderedscanners.hex", "21-RPC_RRDB_RRDB_CLEAR_SCANNER-unorderedscanners.hex",
			"22-RPC_RRDB_RRDB_GET_SCANNER-unorderedscanners.hex", "23-RPC_RRDB_RRDB_CLEAR_SCANNER-unorderedscanners.hex"},
			run: func(t *testing.T, tb TableConnector) {
				ctx, cancel := call()
				defer cancel()
				scs, err := tb.GetUnorderedScanners(ctx, 2, NewScanOptions())
				if err != nil || len(scs) != 2 {
					t.Fatalf("GetUnorderedScanners = %d scanners, %v", len(scs), err)
				}
				for i, sc := range scs {
					nctx, ncancel := call()
					done, _, _, _, err := sc.Next(nctx)
					ncancel()
					if err != nil || done {
						t.Fatalf("Next = %v, %v", done, err)
					}
					if err := sc.Close(); err != nil {
						t.Fatal(err)
					}
					f.waitFrames(ctx, 3*(i+1)) // CLEAR_SCANNER gets no reply: wait for it to arrive
				}
			}, checks: 2},
		{vectors: []string{"24-RPC_RRDB_RRDB_CHECK_AND_SET-checkandset-notexist.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			res, err := tb.CheckAndSet(ctx, h1, bs("s1"), CheckTypeValueNotExist, nil, bs("s1"), bs("v1"), &CheckAndSetOptions{ReturnCheckValue: true})
			if err != nil || !res.SetSucceed {
				t.Fatalf("CheckAndSet = %+v, %v", res, err)
			}
		}},
		{vectors: []string{"25-RPC_RRDB_RRDB_CHECK_AND_SET-checkandset-intless.hex"}, expire: []int32{captureNow + 31}, ttl: []int32{30}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if _, err := tb.CheckAndSet(ctx, h1, bs("s1"), CheckTypeIntLess, bs("10"), bs("s2"), bs("v2"), &CheckAndSetOptions{SetValueTTLSeconds: 30}); err != nil {
				t.Fatal(err)
			}
		}},
		{vectors: []string{"26-RPC_RRDB_RRDB_SORTKEY_COUNT-sortkeycount.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if n, err := tb.SortKeyCount(ctx, h1); err != nil || n != 3 {
				t.Fatalf("SortKeyCount = %d, %v", n, err)
			}
		}},
		{vectors: []string{"27-RPC_RRDB_RRDB_INCR-incr.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			if n, err := tb.Incr(ctx, h1, bs("s1"), 1); err != nil || n != 1 {
				t.Fatalf("Incr = %d, %v", n, err)
			}
		}},
		{vectors: []string{"28-RPC_RRDB_RRDB_GET-batchget.hex", "29-RPC_RRDB_RRDB_GET-batchget.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			vs, err := tb.BatchGet(ctx, []CompositeKey{{HashKey: h1, SortKey: bs("s1")}, {HashKey: h1, SortKey: bs("s2")}})
			if err != nil || len(vs) != 2 || string(vs[0]) != "v1" || string(vs[1]) != "v2" {
				t.Fatalf("BatchGet = %q, %v", vs, err)
			}
		}},
		{vectors: []string{"35-RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX-opentable-no-such-table.hex"}, run: func(t *testing.T, tb TableConnector) {
			ctx, cancel := call()
			defer cancel()
			_, err := c.OpenTable(ctx, "no_such_table")
			if !errors.Is(err, ErrObjectNotFound) {
				t.Fatalf("OpenTable(no_such_table) = %v, want ERR_OBJECT_NOT_FOUND", err)
			}
			var pe *PError
			if !errors.As(err, &pe) || pe.Op != OpQueryConfig {
				t.Fatalf("error %v is not a PError of the configuration query", err)
			}
		}},
	}
	for _, st := range steps {
		name := strings.TrimSuffix(st.vectors[0], ".hex")
		t.Run(name, func(t *testing.T) {
			f.take()
			st.run(t, tb)
			ctx, cancel := call()
			defer cancel()
			f.waitFrames(ctx, len(st.vectors)+st.checks)
			got := f.take()
			if st.checks > 0 {
				n := len(got)
				got = slices.DeleteFunc(got, func(fr *frame) bool { return fr.name == idl.RPCQueryConfig })
				if n-len(got) != st.checks {
					t.Fatalf("%d configuration queries, want %d", n-len(got), st.checks)
				}
			}
			if len(got) != len(st.vectors) {
				var names []string
				for _, fr := range got {
					names = append(names, fr.name)
				}
				t.Fatalf("sent %d frames %v, want %d", len(got), names, len(st.vectors))
			}
			if strings.Contains(name, "batchget") {
				// Parallel GETs: match them to the vectors by their key, not their order.
				if bytes.Compare(got[0].raw[len(got[0].raw)-3:], got[1].raw[len(got[1].raw)-3:]) > 0 {
					got[0], got[1] = got[1], got[0]
				}
			}
			for i, v := range st.vectors {
				var exp, ttl int32
				if st.expire != nil {
					exp, ttl = st.expire[i], st.ttl[i]
				}
				compareFrame(t, v, golden.Read(t, filepath.Join(golden.Dir(t), v)), got[i].raw, exp, ttl)
			}
		})
	}
}
