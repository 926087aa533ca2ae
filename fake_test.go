package pegasus

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// frame is one request a fake server received.
type frame struct {
	raw    []byte // the whole frame, header included
	header wire.Header
	name   string
	seqID  int32
	args   idl.Value
}

// handlerFunc answers one request. noReply leaves it unanswered.
type handlerFunc func(f *frame) (reply idl.Value, code wire.Code, noReply bool)

// fakeServer is a recording Pegasus server on 127.0.0.1:0 written for these tests: it keeps
// every request frame byte for byte and answers through a handler, by default the one of
// the capture in the vectors README (a meta server that knows table "temp" with app id 2
// and 8 partitions whose primary is the fake itself, and a replica holding h1 = {s1: v1,
// s2: v2, s3: v3}).
type fakeServer struct {
	t  testing.TB
	ln net.Listener
	wg sync.WaitGroup

	handler atomic.Pointer[handlerFunc]

	mu     sync.Mutex
	frames []*frame
	conns  []net.Conn
	closed bool

	nextContext atomic.Int64
	arrived     chan struct{} // signalled (without blocking) on every frame
	scans       sync.Map      // context id -> *idl.GetScannerRequest
}

func startFake(t testing.TB) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{t: t, ln: ln, arrived: make(chan struct{}, 1)}
	f.setHandler(f.capture)
	f.wg.Go(f.accept)
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) addr() string { return f.ln.Addr().String() }

func (f *fakeServer) setHandler(h handlerFunc) { f.handler.Store(&h) }

func (f *fakeServer) close() {
	f.mu.Lock()
	f.closed = true
	conns := f.conns
	f.mu.Unlock()
	_ = f.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	f.wg.Wait()
}

func (f *fakeServer) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = c.Close()
			return
		}
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		f.wg.Go(func() { f.serve(c) })
	}
}

func (f *fakeServer) serve(c net.Conn) {
	defer c.Close()
	var wmu sync.Mutex
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		prefix := make([]byte, wire.PrefixLen)
		if _, err := io.ReadFull(c, prefix); err != nil {
			return
		}
		hl, err := wire.HeaderLen(prefix)
		if err != nil {
			f.t.Errorf("fake: %v", err)
			return
		}
		raw := make([]byte, hl)
		copy(raw, prefix)
		if _, err := io.ReadFull(c, raw[wire.PrefixLen:]); err != nil {
			return
		}
		h, bodyLen, err := wire.DecodeHeader(raw)
		if err != nil {
			f.t.Errorf("fake: %v", err)
			return
		}
		raw = append(raw, make([]byte, bodyLen)...)
		if _, err := io.ReadFull(c, raw[hl:]); err != nil {
			return
		}
		name, seq, argsBytes, err := wire.ParseRequestBody(raw[hl:])
		if err != nil {
			f.t.Errorf("fake: %v", err)
			return
		}
		r, ok := idl.LookupRPC(string(name))
		if !ok {
			f.t.Errorf("fake: unknown rpc %q", name)
			return
		}
		args := r.NewRequest()
		if err := wire.DecodeArgs(argsBytes, args); err != nil {
			f.t.Errorf("fake: decode %s: %v", name, err)
			return
		}
		fr := &frame{raw: raw, header: h, name: string(name), seqID: seq, args: args}
		f.mu.Lock()
		f.frames = append(f.frames, fr)
		f.mu.Unlock()
		select {
		case f.arrived <- struct{}{}:
		default:
		}
		// Answer concurrently, as a real server may, so handlers can block (tests that hold
		// replies back) without stopping the reading of later requests.
		inflight.Go(func() {
			reply, code, noReply := (*f.handler.Load())(fr)
			if noReply {
				return
			}
			out := wire.AppendReply(nil, r.AckName, seq, code, reply)
			wmu.Lock()
			defer wmu.Unlock()
			_, _ = c.Write(out)
		})
	}
}

// take returns the frames received so far and forgets them.
func (f *fakeServer) take() []*frame {
	f.mu.Lock()
	defer f.mu.Unlock()
	fr := f.frames
	f.frames = nil
	return fr
}

// waitFrames waits until at least n frames have arrived (since the last take).
func (f *fakeServer) waitFrames(ctx context.Context, n int) {
	for {
		f.mu.Lock()
		got := len(f.frames)
		f.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-f.arrived:
		case <-ctx.Done():
			f.t.Errorf("waiting for %d frames, have %d: %v", n, got, ctx.Err())
			return
		}
	}
}

func (f *fakeServer) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, fr := range f.frames {
		if fr.name == name {
			n++
		}
	}
	return n
}

// tempConfig is the query_cfg answer of the capture: app 2, partitionCount partitions,
// ballot 1, primary at addr.
func tempConfig(t testing.TB, addr string, appID int32, partitionCount int) *idl.QueryCfgResponse {
	ra, err := idl.ParseRPCAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	ap := ra.AddrPort()
	resp := &idl.QueryCfgResponse{Err: "ERR_OK", AppID: appID, PartitionCount: int32(partitionCount), IsStateful: true}
	for i := range partitionCount {
		resp.Partitions = append(resp.Partitions, idl.PartitionConfiguration{
			PID:             idl.GPID{AppID: appID, PartitionIndex: int32(i)},
			Ballot:          1,
			MaxReplicaCount: 3,
			Primary:         ra,
			Secondaries:     []idl.RPCAddress{},
			LastDrops:       []idl.RPCAddress{},
			HPPrimary:       idl.Some(idl.NewHostPort(ap.Addr().String(), ap.Port())),
			HPSecondaries:   idl.Some([]idl.HostPort{}),
			HPLastDrops:     idl.Some([]idl.HostPort{}),
		})
	}
	return resp
}

var captureData = map[string]string{"s1": "v1", "s2": "v2", "s3": "v3"}

// capture answers like the fake server of the vectors README.
func (f *fakeServer) capture(fr *frame) (idl.Value, wire.Code, bool) {
	switch a := fr.args.(type) {
	case *idl.QueryCfgRequest:
		if a.AppName != "temp" {
			return &idl.QueryCfgResponse{Err: "ERR_OBJECT_NOT_FOUND"}, wire.OK, false
		}
		return tempConfig(f.t, f.addr(), 2, 8), wire.OK, false
	case *idl.Blob:
		switch fr.name {
		case idl.RPCGet:
			_, sk, _ := key.Decode(*a)
			if v, ok := captureData[string(sk)]; ok {
				return &idl.ReadResponse{Value: []byte(v), AppID: 2, PartitionIndex: 2, Server: f.addr()}, wire.OK, false
			}
			return &idl.ReadResponse{Error: 1, Value: []byte{}}, wire.OK, false
		case idl.RPCRemove:
			return &idl.UpdateResponse{Server: f.addr()}, wire.OK, false
		case idl.RPCTTL:
			return &idl.TTLResponse{TTLSeconds: 10, Server: f.addr()}, wire.OK, false
		case idl.RPCSortKeyCount:
			return &idl.CountResponse{Count: 3, Server: f.addr()}, wire.OK, false
		}
	case *idl.UpdateRequest, *idl.MultiPutRequest:
		return &idl.UpdateResponse{Server: f.addr()}, wire.OK, false
	case *idl.MultiRemoveRequest:
		return &idl.MultiRemoveResponse{Count: int64(len(a.SortKeys)), Server: f.addr()}, wire.OK, false
	case *idl.MultiGetRequest:
		resp := &idl.MultiGetResponse{Server: f.addr()}
		if len(a.SortKeys) > 0 {
			for _, sk := range a.SortKeys {
				if v, ok := captureData[string(sk)]; ok {
					resp.KVs = append(resp.KVs, idl.KeyValue{Key: sk, Value: []byte(v)})
				}
			}
		} else {
			for _, sk := range []string{"s1", "s2", "s3"} {
				resp.KVs = append(resp.KVs, idl.KeyValue{Key: []byte(sk), Value: []byte(captureData[sk])})
			}
		}
		return resp, wire.OK, false
	case *idl.IncrRequest:
		return &idl.IncrResponse{NewValue: a.Increment, Server: f.addr()}, wire.OK, false
	case *idl.CheckAndSetRequest:
		return &idl.CheckAndSetResponse{CheckValue: []byte{}, Server: f.addr()}, wire.OK, false
	case *idl.GetScannerRequest:
		id := f.nextContext.Add(1)
		f.scans.Store(id, a)
		kv := idl.KeyValue{Key: key.Encode([]byte("h1"), []byte("s1")), Value: []byte("v1")}
		if a.ValidatePartitionHash.Or(true) {
			// A full scan of one partition: a record of that partition of the 8.
			kv.Key = key.Encode(hashKeyOf(int(fr.header.PartitionIndex), 8), []byte("s1"))
		}
		return &idl.ScanResponse{KVs: []idl.KeyValue{kv}, ContextID: id, Server: f.addr()}, wire.OK, false
	case *idl.ScanRequest:
		v, ok := f.scans.LoadAndDelete(a.ContextID)
		if !ok {
			return &idl.ScanResponse{Error: 1, ContextID: -1}, wire.OK, false
		}
		gs := v.(*idl.GetScannerRequest)
		var kvs []idl.KeyValue
		for _, sk := range []string{"s2", "s3"} {
			k := key.Encode([]byte("h1"), []byte(sk))
			if c := bytes.Compare(k, gs.StopKey); c > 0 || (c == 0 && !gs.StopInclusive) {
				break
			}
			kvs = append(kvs, idl.KeyValue{Key: k, Value: []byte(captureData[sk])})
		}
		return &idl.ScanResponse{KVs: kvs, ContextID: -1, Server: f.addr()}, wire.OK, false
	case *idl.ContextID:
		return nil, wire.OK, true // CLEAR_SCANNER is never answered
	}
	f.t.Errorf("fake: no answer for %s", fr.name)
	return nil, wire.ErrHandlerNotFound, false
}

// hashKeyOf returns a hash key of partition pidx of count.
func hashKeyOf(pidx, count int) []byte {
	for i := 0; ; i++ {
		if h := []byte(fmt.Sprint("h", i)); key.Partition(key.Hash(h), count) == pidx {
			return h
		}
	}
}

// newTestClient returns a client of the given meta servers, closed when the test ends.
func newTestClient(t testing.TB, metas ...string) Client {
	t.Helper()
	c, err := New(Config{MetaServers: metas})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func openTemp(t testing.TB, c Client) TableConnector {
	t.Helper()
	tb, err := c.OpenTable(t.Context(), "temp")
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func bs(s string) []byte { return []byte(s) }
