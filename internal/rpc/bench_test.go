package rpc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// benchValue is the value every benchmark GET returns.
var benchValue = make([]byte, 100)

func benchGet(_ context.Context, req *Request) (idl.Value, wire.Code) {
	return &idl.ReadResponse{Value: benchValue, AppID: req.Header.AppID, PartitionIndex: req.Header.PartitionIndex, Server: "127.0.0.1:34801"}, wire.OK
}

// BenchmarkRoundTrip measures pipelined GET round trips over loopback through our RPC layer
// (sub-benchmark "rpc") and through a raw TCP echo of the same request and reply bytes
// ("echo"), with 1, 16 and 64 concurrent callers sharing one connection. Compare calls/s of
// the two at each concurrency. "tls" is "rpc" over TLS (TLS 1.3, ECDSA P-256, AES-GCM):
// TLS's cost per call.
func BenchmarkRoundTrip(b *testing.B) {
	for _, callers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("callers=%d/rpc", callers), func(b *testing.B) { benchRPC(b, callers, false) })
		b.Run(fmt.Sprintf("callers=%d/tls", callers), func(b *testing.B) { benchRPC(b, callers, true) })
		b.Run(fmt.Sprintf("callers=%d/echo", callers), func(b *testing.B) { benchEcho(b, callers) })
	}
}

func benchRequest() (wire.Header, idl.Blob) {
	k := key.Encode([]byte("hash-key-0001"), []byte("sort-key-0001"))
	return wire.Header{AppID: 2, PartitionIndex: 4, ThreadHash: wire.ThreadHash(2, 4), PartitionHash: key.Hash([]byte("hash-key-0001"))}, idl.Blob(k)
}

func benchRPC(b *testing.B, callers int, withTLS bool) {
	scfg, ccfg := ServerConfig{Logger: slog.New(slog.DiscardHandler)}, ConnConfig{}
	if withTLS {
		f := newTLSFixture(b)
		scfg.TLS, ccfg.TLS = f.server, f.client(b, nil, "")
	}
	s := startServer(b, scfg, map[string]HandlerFunc{idl.RPCGet: benchGet})
	c := NewConn(s.Addr().String(), ccfg)
	defer c.Close()
	h, args := benchRequest()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(1)
	runCallers(b, callers, func() error {
		var rr idl.ReadResponse
		return c.Call(ctx, h, idl.RPCGet, &args, &rr)
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// runCallers runs b.N calls of fn spread over exactly callers goroutines.
func runCallers(b *testing.B, callers int, fn func() error) {
	var wg sync.WaitGroup
	var next sync.Mutex
	n := b.N
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			for {
				next.Lock()
				if n == 0 {
					next.Unlock()
					return
				}
				n--
				next.Unlock()
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// benchEcho is the baseline: a server that reads each request frame and writes back the
// reply bytes our server would send, and a client whose callers share one connection, write
// under a mutex and are woken in FIFO order by one reader goroutine. No seqid matching, no
// decoding, no goroutine per request: about the least work a pipelined exchange of the same
// bytes can take.
func benchEcho(b *testing.B, callers int) {
	h, args := benchRequest()
	req := wire.AppendRequest(nil, &h, idl.RPCGet, 1, &args)
	reply := wire.AppendReply(nil, idl.RPCGet+"_ACK", 1, wire.OK, &idl.ReadResponse{Value: benchValue, AppID: 2, PartitionIndex: 4, Server: "127.0.0.1:34801"})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReaderSize(nc, 64<<10)
		bw := bufio.NewWriterSize(nc, 64<<10)
		in := make([]byte, len(req))
		for {
			if _, err := io.ReadFull(br, in); err != nil {
				return
			}
			bw.Write(reply)
			if br.Buffered() == 0 {
				if bw.Flush() != nil {
					return
				}
			}
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetNoDelay(true)

	var mu sync.Mutex
	var queue []chan struct{}
	go func() {
		br := bufio.NewReaderSize(nc, 64<<10)
		buf := make([]byte, len(reply))
		for {
			if _, err := io.ReadFull(br, buf); err != nil {
				return
			}
			mu.Lock()
			ch := queue[0]
			queue = queue[1:]
			mu.Unlock()
			ch <- struct{}{}
		}
	}()
	pool := sync.Pool{New: func() any { return make(chan struct{}, 1) }}
	b.ReportAllocs()
	runCallers(b, callers, func() error {
		ch := pool.Get().(chan struct{})
		mu.Lock()
		queue = append(queue, ch)
		_, err := nc.Write(req)
		mu.Unlock()
		if err != nil {
			return err
		}
		<-ch
		pool.Put(ch)
		return nil
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
