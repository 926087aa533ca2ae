package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// router sends rrdb RPCs to the primary of the key's partition, as an official client does,
// with the header version under test.
type router struct {
	t       *testing.T
	version int
	appID   int32
	count   int
	primary []string
	conns   map[string]*rpc.Conn
}

func newRouter(t *testing.T, c *Cluster, table string, version int) *router {
	var resp idl.QueryCfgResponse
	if err := c.MetaCall(t.Context(), idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: table}, &resp); err != nil {
		t.Fatal(err)
	}
	r := &router{t: t, version: version, appID: resp.AppID, count: int(resp.PartitionCount), conns: map[string]*rpc.Conn{}}
	r.primary = make([]string, r.count)
	for _, p := range resp.Partitions {
		r.primary[p.PID.PartitionIndex] = p.Primary.String()
	}
	t.Cleanup(func() {
		for _, c := range r.conns {
			c.Close()
		}
	})
	return r
}

func (r *router) conn(addr string) *rpc.Conn {
	if c, ok := r.conns[addr]; ok {
		return c
	}
	c := rpc.NewConn(addr, rpc.ConnConfig{})
	r.conns[addr] = c
	return c
}

func (r *router) header(hash uint64, pidx int) wire.Header {
	return wire.Header{Version: r.version, AppID: r.appID, PartitionIndex: int32(pidx),
		ThreadHash: wire.ThreadHash(r.appID, int32(pidx)), PartitionHash: hash}
}

// call routes by raw hash key.
func (r *router) call(hashKey []byte, name string, args, reply idl.Value) {
	r.t.Helper()
	h := key.Hash(hashKey)
	p := key.Partition(h, r.count)
	if err := r.conn(r.primary[p]).Call(r.t.Context(), r.header(h, p), name, args, reply); err != nil {
		r.t.Fatalf("%s: %v", name, err)
	}
}

// callPartition sends to one partition (scans).
func (r *router) callPartition(p int, name string, args, reply idl.Value) error {
	return r.conn(r.primary[p]).Call(r.t.Context(), r.header(uint64(p), p), name, args, reply)
}

func enc(h, s string) []byte { return key.Encode([]byte(h), []byte(s)) }

func TestEveryRRDBRPC(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	c.CreateTable(t, "temp", 8)
	for _, version := range []int{0, 1} {
		t.Run(fmt.Sprintf("header v%d", version), func(t *testing.T) {
			r := newRouter(t, c, "temp", version)
			h := fmt.Sprintf("hash-v%d", version)
			hk := []byte(h)

			var up idl.UpdateResponse
			r.call(hk, idl.RPCPut, &idl.UpdateRequest{Key: enc(h, "s1"), Value: []byte("v1")}, &up)
			if up.Error != 0 || up.Decree <= 0 || up.AppID != r.appID || up.Server == "" {
				t.Fatalf("put: %+v", up)
			}
			var rd idl.ReadResponse
			k := idl.Blob(enc(h, "s1"))
			r.call(hk, idl.RPCGet, &k, &rd)
			if rd.Error != 0 || string(rd.Value) != "v1" {
				t.Fatalf("get: %+v", rd)
			}

			r.call(hk, idl.RPCMultiPut, &idl.MultiPutRequest{HashKey: hk, KVs: []idl.KeyValue{
				{Key: []byte("s2"), Value: []byte("v2")}, {Key: []byte("s3"), Value: []byte("v3")}, {Key: []byte("n"), Value: []byte("5")},
			}}, &up)
			if up.Error != 0 {
				t.Fatalf("multi_put: %+v", up)
			}
			var mg idl.MultiGetResponse
			r.call(hk, idl.RPCMultiGet, &idl.MultiGetRequest{HashKey: hk, MaxKVCount: 100, MaxKVSize: 100000,
				StartInclusive: true, SortKeyFilterType: idl.FilterMatchPrefix, SortKeyFilterPattern: []byte("s")}, &mg)
			if mg.Error != 0 || len(mg.KVs) != 3 || string(mg.KVs[2].Value) != "v3" {
				t.Fatalf("multi_get: %+v", mg)
			}
			var cnt idl.CountResponse
			hb := idl.Blob(hk)
			r.call(hk, idl.RPCSortKeyCount, &hb, &cnt)
			if cnt.Error != 0 || cnt.Count != 4 {
				t.Fatalf("sortkey_count: %+v", cnt)
			}
			var ttl idl.TTLResponse
			r.call(hk, idl.RPCTTL, &k, &ttl)
			if ttl.Error != 0 || ttl.TTLSeconds != -1 {
				t.Fatalf("ttl: %+v", ttl)
			}
			var incr idl.IncrResponse
			nk := enc(h, "n")
			r.call(hk, idl.RPCIncr, &idl.IncrRequest{Key: nk, Increment: 3}, &incr)
			if incr.Error != 0 || incr.NewValue != 8 {
				t.Fatalf("incr: %+v", incr)
			}
			var cas idl.CheckAndSetResponse
			r.call(hk, idl.RPCCheckAndSet, &idl.CheckAndSetRequest{HashKey: hk, CheckSortKey: []byte("n"),
				CheckType: idl.CheckValueIntEqual, CheckOperand: []byte("8"), SetValue: []byte("9"), ReturnCheckValue: true}, &cas)
			if cas.Error != 0 || !cas.CheckValueExist || string(cas.CheckValue) != "8" {
				t.Fatalf("check_and_set: %+v", cas)
			}
			r.call(hk, idl.RPCCheckAndSet, &idl.CheckAndSetRequest{HashKey: hk, CheckSortKey: []byte("n"),
				CheckType: idl.CheckValueIntEqual, CheckOperand: []byte("8"), SetValue: []byte("10")}, &cas)
			if cas.Error != 13 {
				t.Fatalf("failing check_and_set: %+v", cas)
			}
			var cam idl.CheckAndMutateResponse
			r.call(hk, idl.RPCCheckAndMutate, &idl.CheckAndMutateRequest{HashKey: hk, CheckSortKey: []byte("n"),
				CheckType: idl.CheckValueExist, MutateList: []idl.Mutate{
					{Operation: idl.MutatePut, SortKey: []byte("m"), Value: []byte("mv")},
					{Operation: idl.MutateDelete, SortKey: []byte("s3")},
				}}, &cam)
			if cam.Error != 0 {
				t.Fatalf("check_and_mutate: %+v", cam)
			}
			var bg idl.BatchGetResponse
			r.call(hk, idl.RPCBatchGet, &idl.BatchGetRequest{Keys: []idl.FullKey{
				{HashKey: hk, SortKey: []byte("m")}, {HashKey: hk, SortKey: []byte("s3")}, {HashKey: hk, SortKey: []byte("n")},
			}}, &bg)
			if bg.Error != 0 || len(bg.Data) != 2 || string(bg.Data[0].Value) != "mv" || string(bg.Data[1].Value) != "9" {
				t.Fatalf("batch_get: %+v", bg)
			}
			var mr idl.MultiRemoveResponse
			r.call(hk, idl.RPCMultiRemove, &idl.MultiRemoveRequest{HashKey: hk, SortKeys: [][]byte{[]byte("m"), []byte("s2")}}, &mr)
			if mr.Error != 0 || mr.Count != 2 {
				t.Fatalf("multi_remove: %+v", mr)
			}
			r.call(hk, idl.RPCRemove, &k, &up)
			r.call(hk, idl.RPCGet, &k, &rd)
			if rd.Error != 1 {
				t.Fatalf("get after remove: %+v", rd)
			}
		})
	}
}

// A full-table scan over every partition with small batches, including CLEAR_SCANNER of an
// abandoned context, returns every record exactly once.
func TestScanAllPartitions(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	c.CreateTable(t, "temp", 8)
	r := newRouter(t, c, "temp", 0)
	want := map[string]bool{}
	for i := range 300 {
		h := fmt.Sprintf("h%03d", i)
		var up idl.UpdateResponse
		r.call([]byte(h), idl.RPCPut, &idl.UpdateRequest{Key: enc(h, "s"), Value: []byte(h)}, &up)
		want[h] = true
	}
	var got []string
	for p := range r.count {
		var sr idl.ScanResponse
		err := r.callPartition(p, idl.RPCGetScanner, &idl.GetScannerRequest{StartKey: []byte{0, 0}, StopKey: []byte{0xFF, 0xFF},
			StartInclusive: true, BatchSize: 7, ValidatePartitionHash: idl.Some(true)}, &sr)
		for {
			if err != nil || sr.Error != 0 {
				t.Fatalf("partition %d: %v %+v", p, err, sr)
			}
			for _, kv := range sr.KVs {
				h, _, _ := key.Decode(kv.Key)
				if !bytes.Equal(kv.Value, h) {
					t.Fatalf("value of %q is %q", h, kv.Value)
				}
				got = append(got, string(h))
			}
			if sr.ContextID == -1 {
				break
			}
			err = r.callPartition(p, idl.RPCScan, &idl.ScanRequest{ContextID: sr.ContextID}, &sr)
		}
	}
	sort.Strings(got)
	if len(got) != len(want) {
		t.Fatalf("scanned %d records, want %d", len(got), len(want))
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("%s scanned twice", got[i])
		}
	}
	// An abandoned scan: CLEAR_SCANNER releases it (no reply), and SCAN of it then says 1.
	var sr idl.ScanResponse
	if err := r.callPartition(0, idl.RPCGetScanner, &idl.GetScannerRequest{StartKey: []byte{0, 0}, StopKey: []byte{0xFF, 0xFF},
		StartInclusive: true, BatchSize: 1}, &sr); err != nil || sr.ContextID <= 0 {
		t.Fatalf("get_scanner: %v %+v", err, sr)
	}
	id := idl.ContextID(sr.ContextID)
	conn := r.conn(r.primary[0])
	if err := conn.Send(t.Context(), r.header(0, 0), idl.RPCClearScanner, &id); err != nil {
		t.Fatal(err)
	}
	poll.UntilOK(t, "context cleared", func(ctx context.Context) (bool, error) {
		var sr2 idl.ScanResponse
		if err := r.callPartition(0, idl.RPCScan, &idl.ScanRequest{ContextID: int64(id)}, &sr2); err != nil {
			return false, err
		}
		return sr2.Error == 1, nil
	})
}

// Bad requests fail alone: the next request on the same connection is served.
func TestBadRequestsFailAlone(t *testing.T) {
	c := Start(t, Options{Replicas: 1})
	c.CreateTable(t, "temp", 4)
	r := newRouter(t, c, "temp", 0)
	hk := []byte("h")
	var up idl.UpdateResponse
	// A malformed encoded key (length prefix past the end): InvalidArgument, nothing stored.
	bad := []byte{0, 9, 'h'}
	h := key.Hash(hk)
	p := key.Partition(h, r.count)
	err := r.conn(r.primary[p]).Call(t.Context(), r.header(0, p), idl.RPCPut, &idl.UpdateRequest{Key: bad, Value: []byte("v")}, &up)
	if err != nil || up.Error != 4 {
		t.Fatalf("malformed key: %v %+v", err, up)
	}
	var mg idl.MultiGetResponse
	r.call(hk, idl.RPCMultiGet, &idl.MultiGetRequest{HashKey: hk, SortKeyFilterType: 9}, &mg)
	if mg.Error != 4 {
		t.Fatalf("bad filter type: %+v", mg)
	}
	var mp idl.UpdateResponse
	r.call(hk, idl.RPCMultiPut, &idl.MultiPutRequest{HashKey: hk}, &mp)
	if mp.Error != 4 {
		t.Fatalf("empty multi_put: %+v", mp)
	}
	r.call(hk, idl.RPCPut, &idl.UpdateRequest{Key: enc("h", "s"), Value: []byte("ok")}, &up)
	var rd idl.ReadResponse
	k := idl.Blob(enc("h", "s"))
	r.call(hk, idl.RPCGet, &k, &rd)
	if string(rd.Value) != "ok" {
		t.Fatalf("after bad requests: %+v", rd)
	}
	// Unknown table at the meta.
	var q idl.QueryCfgResponse
	if err := c.MetaCall(t.Context(), idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "nope"}, &q); err != nil ||
		!errors.Is(wire.CodeError(string(q.Err)), wire.ErrObjectNotFound) {
		t.Fatalf("unknown table: %v %q", err, q.Err)
	}
}

func TestWholeClusterRestartKeepsData(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	c.CreateTable(t, "temp", 8)
	r := newRouter(t, c, "temp", 0)
	for i := range 200 {
		h := fmt.Sprintf("k%d", i)
		var up idl.UpdateResponse
		r.call([]byte(h), idl.RPCPut, &idl.UpdateRequest{Key: enc(h, ""), Value: []byte(fmt.Sprint(i))}, &up)
	}
	c.Restart(t)
	c.WaitPrimaries(t, "temp")
	r = newRouter(t, c, "temp", 1)
	for i := range 200 {
		h := fmt.Sprintf("k%d", i)
		var rd idl.ReadResponse
		k := idl.Blob(enc(h, ""))
		r.call([]byte(h), idl.RPCGet, &k, &rd)
		if rd.Error != 0 || string(rd.Value) != fmt.Sprint(i) {
			t.Fatalf("%s after restart: %+v", h, rd)
		}
	}
}
