package pegasus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// benchReplica answers GET, PUT and MULTI_GET with precomputed replies, reusing its buffers,
// so that the allocations a benchmark reports are the client's.
type benchReplica struct {
	ln      net.Listener
	wg      sync.WaitGroup
	replies map[string][]byte // by RPC name; seqid patched in at seqAt[name]
	seqAt   map[string]int
}

const seqMarker = 0x7a6b5c4d

func startBenchReplica(b *testing.B) *benchReplica {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	r := &benchReplica{ln: ln, replies: map[string][]byte{}, seqAt: map[string]int{}}
	add := func(name string, v idl.Value) {
		rpc, _ := idl.LookupRPC(name)
		out := wire.AppendReply(nil, rpc.AckName, seqMarker, wire.OK, v)
		var m [4]byte
		binary.BigEndian.PutUint32(m[:], seqMarker)
		r.replies[name], r.seqAt[name] = out, bytes.Index(out, m[:])
	}
	add(idl.RPCGet, &idl.ReadResponse{Value: []byte("value-of-some-length"), AppID: 2, PartitionIndex: 2, Server: "x"})
	add(idl.RPCPut, &idl.UpdateResponse{AppID: 2, PartitionIndex: 2, Server: "x"})
	var kvs []idl.KeyValue
	for _, s := range []string{"s1", "s2", "s3"} {
		kvs = append(kvs, idl.KeyValue{Key: []byte(s), Value: []byte("value-" + s)})
	}
	add(idl.RPCMultiGet, &idl.MultiGetResponse{KVs: kvs, AppID: 2, PartitionIndex: 2, Server: "x"})
	var conns []net.Conn
	var mu sync.Mutex
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			r.wg.Go(func() { r.serve(c) })
		}
	})
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *benchReplica) serve(c net.Conn) {
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	buf := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(br, buf[:wire.HeaderV0Len]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(buf[16:20]))
		if n > len(buf) {
			return
		}
		body := buf[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		nameLen := int(binary.BigEndian.Uint32(body[4:8]))
		name := body[8 : 8+nameLen]
		seq := body[8+nameLen : 12+nameLen]
		var out []byte
		var at int
		switch string(name) { // no allocation: the compiler matches []byte against constants
		case idl.RPCGet:
			out, at = r.replies[idl.RPCGet], r.seqAt[idl.RPCGet]
		case idl.RPCPut:
			out, at = r.replies[idl.RPCPut], r.seqAt[idl.RPCPut]
		case idl.RPCMultiGet:
			out, at = r.replies[idl.RPCMultiGet], r.seqAt[idl.RPCMultiGet]
		default:
			return
		}
		copy(out[at:at+4], seq) // one goroutine per connection: the shared reply is not raced
		_, _ = bw.Write(out)
		if br.Buffered() == 0 {
			if bw.Flush() != nil {
				return
			}
		}
	}
}

// benchTable opens table "temp" whose meta is a fake and whose every primary is a
// benchReplica.
func benchTable(b *testing.B) TableConnector {
	rep := startBenchReplica(b)
	meta := startFake(b)
	meta.setHandler(func(fr *frame) (idl.Value, wire.Code, bool) {
		return tempConfig(b, rep.ln.Addr().String(), 2, 8), wire.OK, false
	})
	c := newTestClient(b, meta.addr())
	tb, err := c.OpenTable(b.Context(), "temp")
	if err != nil {
		b.Fatal(err)
	}
	return tb
}

func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(b.Context(), time.Hour)
	b.Cleanup(cancel)
	return ctx
}

func BenchmarkGet(b *testing.B) {
	tb := benchTable(b)
	ctx := benchCtx(b)
	h, s := []byte("hash-key"), []byte("sort-key")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tb.Get(ctx, h, s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	tb := benchTable(b)
	ctx := benchCtx(b)
	h, s := []byte("hash-key"), []byte("sort-key")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tb.Get(ctx, h, s); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSet(b *testing.B) {
	tb := benchTable(b)
	ctx := benchCtx(b)
	h, s, v := []byte("hash-key"), []byte("sort-key"), []byte("a value of moderate length")
	b.ReportAllocs()
	for b.Loop() {
		if err := tb.Set(ctx, h, s, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMultiGet(b *testing.B) {
	tb := benchTable(b)
	ctx := benchCtx(b)
	h := []byte("hash-key")
	sks := [][]byte{[]byte("s1"), []byte("s2"), []byte("s3")}
	b.ReportAllocs()
	for b.Loop() {
		kvs, _, err := tb.MultiGet(ctx, h, sks)
		if err != nil || len(kvs) != 3 {
			b.Fatal(len(kvs), err)
		}
	}
}
