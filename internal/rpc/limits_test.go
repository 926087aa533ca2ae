package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/heappeak"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// goodClient calls GET on its own connection until stop is called, which returns how many
// calls succeeded and the first error.
func goodClient(t *testing.T, addr string) (stop func() (int64, error)) {
	c := NewConn(addr, ConnConfig{})
	done := make(chan struct{})
	var n atomic.Int64
	var firstErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			k := fmt.Sprintf("good-%d", i)
			got, err := get(ctx, c, 0, k)
			cancel()
			if err != nil || string(got) != k {
				firstErr = fmt.Errorf("good client call %d: %q %v", i, got, err)
				return
			}
			n.Add(1)
		}
	})
	return func() (int64, error) {
		close(done)
		wg.Wait()
		c.Close()
		return n.Load(), firstErr
	}
}

// TestHeaderClaimsDoNotAllocate: 64 connections each send a header claiming a body of
// almost 16 MiB and then 48 bytes of it. The server holds what arrived, not what was
// claimed: its heap grows by less than 32 MiB (the claims add up to 1 GiB), and a client on
// another connection keeps being answered.
func TestHeaderClaimsDoNotAllocate(t *testing.T) {
	s := startServer(t, ServerConfig{Logger: slog.New(slog.DiscardHandler)}, map[string]HandlerFunc{idl.RPCGet: echoGet})
	addr := s.Addr().String()
	stopGood := goodClient(t, addr)
	w := heappeak.Start()
	k := idl.Blob("k")
	hdr := bytes.Clone(frame(idl.RPCGet, 1, &k)[:48])
	binary.BigEndian.PutUint32(hdr[16:], DefaultMaxRequestSize-1)
	var conns []*rawConn
	for range 64 {
		r := dialRaw(t, addr)
		r.write(append(bytes.Clone(hdr), make([]byte, 48)...))
		conns = append(conns, r)
	}
	// Wait until the server has read what every claim sent.
	for deadline := time.Now().Add(10 * time.Second); s.Metrics().BufferedBytes < 64*48 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	peak := w.Stop()
	good, err := stopGood()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("64 claims of 16 MiB: peak heap +%.1f MiB, server holds %d claimed bytes, good client %d calls", float64(peak)/(1<<20), s.Metrics().BufferedBytes, good)
	if peak > 32<<20 {
		t.Fatalf("peak heap grew by %d bytes for 64 stalled 16 MiB claims (budget 32 MiB)", peak)
	}
	if good == 0 {
		t.Fatal("the good client got no answer")
	}
	for _, r := range conns {
		r.nc.Close()
	}
}

// TestStalledFrameIsClosed: a frame started and not finished within FrameTimeout closes its
// connection (FrameTimeouts counts it); an idle connection between frames is kept.
func TestStalledFrameIsClosed(t *testing.T) {
	s := startServer(t, ServerConfig{Logger: slog.New(slog.DiscardHandler), Limits: Limits{FrameTimeout: 200 * time.Millisecond}},
		map[string]HandlerFunc{idl.RPCGet: echoGet})
	k := idl.Blob("k")
	valid := frame(idl.RPCGet, 1, &k)
	for _, cut := range []int{10, 48, len(valid) - 2} {
		r := dialRaw(t, s.Addr().String())
		r.write(valid[:cut])
		r.expectClosed()
	}
	if m := s.Metrics(); m.FrameTimeouts != 3 {
		t.Fatalf("frame timeouts: %+v", m)
	}
	idle := dialRaw(t, s.Addr().String())
	idle.write(valid)
	idle.readReply()
	time.Sleep(500 * time.Millisecond) // idle for longer than the frame timeout
	idle.write(valid)
	if rep := idle.readReply(); rep.Err != nil {
		t.Fatalf("idle connection: %+v", rep)
	}
}

// dialFrom connects from a loopback source address of the test's choice.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// served tells whether a GET on c is answered (false: the server closed it).
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	k := idl.Blob("k")
	if _, err := c.Write(frame(idl.RPCGet, 1, &k)); err != nil {
		return false
	}
	var lb [4]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		return false
	}
	rest := make([]byte, binary.BigEndian.Uint32(lb[:])-4)
	_, err := io.ReadFull(c, rest)
	return err == nil
}

// TestConnectionLimits: past max_connections_per_host, and past max_connections from
// another address, a new connection is closed at accept; a place given back is reused.
func TestConnectionLimits(t *testing.T) {
	s := startServer(t, ServerConfig{Logger: slog.New(slog.DiscardHandler), Limits: Limits{MaxConns: 3, MaxConnsPerHost: 2}},
		map[string]HandlerFunc{idl.RPCGet: echoGet})
	addr := s.Addr().String()
	a1, a2 := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	if !served(t, a1) || !served(t, a2) {
		t.Fatal("connections under the limits refused")
	}
	if served(t, dialFrom(t, "127.0.0.1", addr)) {
		t.Fatal("third connection of one host served (max_connections_per_host 2)")
	}
	b1 := dialFrom(t, "127.0.0.2", addr)
	if !served(t, b1) {
		t.Fatal("connection of another host refused")
	}
	if served(t, dialFrom(t, "127.0.0.3", addr)) {
		t.Fatal("fourth connection served (max_connections 3)")
	}
	if m := s.Metrics(); m.RejectedConnections != 2 {
		t.Fatalf("rejected: %+v", m)
	}
	a1.Close()
	// The server gives the place back once it has seen the close.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if served(t, dialFrom(t, "127.0.0.1", addr)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the place of a closed connection was not given back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClientThatNeverReads: a client pipelines requests for 2 GiB of 1 MiB replies and never
// reads. The server stops reading it once max_connection_buffered_bytes (8 MiB) are queued,
// closes it after WriteTimeout, and serves another client meanwhile. Its peak heap stays
// under 128 MiB: the queue, the batch being written and the garbage of the batches the
// kernel's socket buffers (up to 32 MiB here) took before the writes blocked; without the
// bound it reached 3 GiB.
func TestClientThatNeverReads(t *testing.T) {
	big := bytes.Repeat([]byte("v"), 1<<20)
	s := startServer(t, ServerConfig{Logger: slog.New(slog.DiscardHandler), WriteTimeout: time.Second, Limits: Limits{MaxConnBuffered: 8 << 20}},
		map[string]HandlerFunc{idl.RPCGet: func(ctx context.Context, req *Request) (idl.Value, wire.Code) {
			if string(*req.Args.(*idl.Blob)) == "big" {
				return &idl.ReadResponse{Value: big}, wire.OK
			}
			return echoGet(ctx, req)
		}})
	addr := s.Addr().String()
	stopGood := goodClient(t, addr)
	w := heappeak.Start()
	r := dialRaw(t, addr)
	k := idl.Blob("big")
	var wr sync.WaitGroup
	wr.Go(func() {
		f := frame(idl.RPCGet, 1, &k)
		for range 2000 { // asks for 2 GiB of replies
			if _, err := r.nc.Write(f); err != nil {
				return // closed by the server
			}
		}
	})
	// The server closes the connection after WriteTimeout: only the good client's is left.
	for deadline := time.Now().Add(10 * time.Second); s.Metrics().OpenConnections < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	closed := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s.Metrics().OpenConnections == 1 {
			closed = true
			break
		}
	}
	wr.Wait() // the writes fail once the server closed the connection
	peak := w.Stop()
	good, gerr := stopGood()
	if gerr != nil {
		t.Fatal(gerr)
	}
	m := s.Metrics()
	t.Logf("client never reading 1 MiB replies: peak heap +%.1f MiB, buffer waits %d, good client %d calls", float64(peak)/(1<<20), m.BufferWaits, good)
	if !closed {
		t.Fatal("the server did not close a client that never reads")
	}
	if peak > 128<<20 {
		t.Fatalf("peak heap grew by %d bytes (budget 128 MiB)", peak)
	}
	if m.BufferWaits == 0 {
		t.Fatal("the server never paused reading the connection")
	}
	if good == 0 {
		t.Fatal("the good client got no answer")
	}
}

// TestListDecodingBounded: 16 connections each send a 4 MiB multi_put of empty key_value
// structs (4 million list elements, 224 MiB of decoded Go values each before the bound). The
// decoder refuses them on the reader goroutine, before any handler: each connection is
// closed, the peak heap grows by less than 160 MiB (the 16 bodies of 4 MiB themselves, read
// in doubling chunks, and their garbage; 3.5 GiB of decoded values without the bound) and a
// client on another connection keeps being answered.
func TestListDecodingBounded(t *testing.T) {
	var handled atomic.Int64
	s := startServer(t, ServerConfig{Logger: slog.New(slog.DiscardHandler)}, map[string]HandlerFunc{
		idl.RPCGet: echoGet,
		idl.RPCMultiPut: func(context.Context, *Request) (idl.Value, wire.Code) {
			handled.Add(1)
			return &idl.UpdateResponse{}, wire.OK
		},
	})
	addr := s.Addr().String()
	e := &idl.Encoder{}
	e.FieldBegin(idl.TypeStruct, 1)
	e.Binary([]byte("h"))
	e.FieldBegin(idl.TypeList, 2)
	const n = 4 << 20
	e.ListBegin(idl.TypeStruct, n)
	e.Buf = append(e.Buf, make([]byte, n)...) // n empty structs: a STOP byte each
	e.FieldStop()
	hostile := frame(idl.RPCMultiPut, 1, &rawArgs{b: e.Buf})
	stopGood := goodClient(t, addr)
	w := heappeak.Start()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			r := dialRaw(t, addr)
			r.write(hostile)
			r.expectClosed()
		})
	}
	wg.Wait()
	peak := w.Stop()
	good, err := stopGood()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("16 multi_puts of 4 Mi empty structs: peak heap +%.1f MiB, good client %d calls", float64(peak)/(1<<20), good)
	if handled.Load() != 0 {
		t.Fatalf("%d hostile multi_puts reached the handler", handled.Load())
	}
	if peak > 160<<20 {
		t.Fatalf("peak heap grew by %.1f MiB (budget 160 MiB)", float64(peak)/(1<<20))
	}
	if good == 0 {
		t.Fatal("the good client got no answer")
	}
}

// rawArgs encodes as the given bytes: a hand-made args struct.
type rawArgs struct{ b []byte }

func (r *rawArgs) ThriftType() idl.Type  { return idl.TypeStruct }
func (r *rawArgs) Encode(e *idl.Encoder) { e.Buf = append(e.Buf, r.b...) }
func (r *rawArgs) Decode(d *idl.Decoder) {}

// TestServerBudgetSheds: with max_server_buffered_bytes 8 MiB, 32 connections send 8
// writes of 1 MiB each, one after the other, to a handler that holds them until released. The writes past the budget
// are answered ERR_BUSY at once, unread (before this bound shed, they waited for room and
// stalled their connections); the peak heap of the process, clients included, stays under
// 96 MiB (the writes add up to 256 MiB); and a client sending small gets on another connection keeps being answered
// while the budget is full.
func TestServerBudgetSheds(t *testing.T) {
	release := make(chan struct{})
	var held atomic.Int64
	s := startServer(t, ServerConfig{Logger: slog.New(slog.DiscardHandler), Limits: Limits{MaxServerBuffered: 8 << 20, MaxRequestSize: 2 << 20}},
		map[string]HandlerFunc{
			idl.RPCGet: echoGet,
			idl.RPCPut: func(ctx context.Context, _ *Request) (idl.Value, wire.Code) {
				held.Add(1)
				select {
				case <-release:
				case <-ctx.Done():
				}
				return &idl.UpdateResponse{}, wire.OK
			},
		})
	addr := s.Addr().String()
	w := heappeak.Start()
	value := make([]byte, 1<<20)
	var busy, ok, other, finished atomic.Int64
	var wg sync.WaitGroup
	var conns []*Conn
	for range 32 {
		c := NewConn(addr, ConnConfig{})
		conns = append(conns, c)
		wg.Go(func() {
			defer finished.Add(1)
			for range 8 {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				var resp idl.UpdateResponse
				err := c.Call(ctx, wire.Header{AppID: 1}, idl.RPCPut, &idl.UpdateRequest{Key: []byte("k"), Value: value}, &resp)
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, wire.ErrBusy):
					busy.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	// Every connection has a write held by the handler or was refused all of its writes.
	for deadline := time.Now().Add(20 * time.Second); held.Load()+finished.Load() < 32 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	stopGood := goodClient(t, addr)
	time.Sleep(200 * time.Millisecond) // the good client is served while the budget is full
	good, err := stopGood()
	peak := w.Stop()
	holding, shed := held.Load(), s.Metrics().ShedRequests
	close(release)
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	m := s.Metrics()
	t.Logf("peak heap +%.1f MiB; %d writes held at once, %d shed meanwhile; in all %d ERR_BUSY (%d shed), %d other; good client %d gets",
		float64(peak)/(1<<20), holding, shed, busy.Load(), m.ShedRequests, other.Load(), good)
	if err != nil {
		t.Fatal(err)
	}
	if good == 0 {
		t.Fatal("the good client got no answer while the budget was full")
	}
	if holding > 8 || shed < 24*8 || m.ShedRequests != busy.Load() || other.Load() != 0 {
		t.Fatalf("%d held, %d shed, %d busy, %d other: want at most 8 held, the rest shed", holding, shed, busy.Load(), other.Load())
	}
	if peak > 96<<20 {
		t.Fatalf("peak heap grew by %.1f MiB (budget 96 MiB)", float64(peak)/(1<<20))
	}
}
