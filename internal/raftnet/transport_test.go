package raftnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/heappeak"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metric"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// received is one message a handler got.
type received struct {
	from  string
	group idl.GPID
	msg   raftpb.Message
}

// inbox collects what a transport's handler receives.
type inbox struct {
	mu      sync.Mutex
	msgs    []received
	changed chan struct{}
}

func newInbox() *inbox { return &inbox{changed: make(chan struct{}, 1)} }

func (in *inbox) handle(from string, group idl.GPID, m raftpb.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, received{from: from, group: group, msg: m})
	in.mu.Unlock()
	select {
	case in.changed <- struct{}{}:
	default:
	}
}

func (in *inbox) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.msgs)
}

// waitFor returns the messages received once there are at least n.
func (in *inbox) waitFor(t *testing.T, n int) []received {
	t.Helper()
	for {
		in.mu.Lock()
		if len(in.msgs) >= n {
			out := append([]received(nil), in.msgs...)
			in.mu.Unlock()
			return out
		}
		in.mu.Unlock()
		select {
		case <-in.changed:
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %d messages", n)
		}
	}
}

func testLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

// newTransport returns a transport of the replica servers' RPC, closed at the end of the test.
func newTransport(t *testing.T, addr string, cfg Config, h Handler) *Transport {
	t.Helper()
	cfg.Addr, cfg.RPCName, cfg.Handler = addr, idl.RPCRaft, h
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, addr)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// server is a receiving rpc server with a transport registered on it.
type server struct {
	addr string
	tr   *Transport
	in   *inbox
	stop func() // stops the rpc server and waits for it
}

// startServer serves a transport on ln (a new 127.0.0.1:0 listener when nil) until stop or
// the end of the test.
func startServer(t *testing.T, ln net.Listener) *server {
	t.Helper()
	if ln == nil {
		ln = listen(t)
	}
	rs, err := rpc.NewServer(rpc.ServerConfig{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String(), in: newInbox()}
	s.tr = newTransport(t, s.addr, Config{}, s.in.handle)
	rs.HandleInline(idl.RPCRaft, s.tr.HandleRPC)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- rs.Run(ctx) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, rpc.ErrServerClosed) {
				t.Errorf("rpc server: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

// listen opens a listener on a free port of 127.0.0.1.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	ln := listen(t)
	_ = ln.Close()
	return ln.Addr().String()
}

// stuckPeer accepts connections and never reads them, so writes to it stall once the
// socket buffers are full. Its connections are closed and joined at the end of the test.
func stuckPeer(t *testing.T) string {
	ln := listen(t)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func appMsg(to, index uint64, payload int) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgApp, From: 1, To: to, Term: 3, Index: index, LogTerm: 3,
		Entries: []raftpb.Entry{{Term: 3, Index: index + 1, Data: make([]byte, payload)}}}
}

// stalledPeer registers a peer for addr whose sender is not running, so what Send queues
// stays queued until startSender.
func stalledPeer(tr *Transport, addr string) *peer {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.addPeerLocked(addr)
}

func startSender(tr *Transport, p *peer) { tr.senders.Go(func() { tr.runSender(p) }) }

// TestBatchRoundTrip queues the messages of several groups for one peer before its sender
// runs: they leave in one frame, and the receiver hands every message to its handler with
// its group and the sender's address, in order.
func TestBatchRoundTrip(t *testing.T) {
	srv := startServer(t, nil)
	const from = "127.0.0.1:1"
	tr := newTransport(t, from, Config{}, func(string, idl.GPID, raftpb.Message) {})
	p := stalledPeer(tr, srv.addr)
	var want []received
	for i := range 64 {
		g := idl.GPID{AppID: int32(1 + i%3), PartitionIndex: int32(i % 8)}
		m := appMsg(uint64(2+i%2), uint64(i), i)
		tr.Send(srv.addr, g, m)
		want = append(want, received{from: from, group: g, msg: *m})
	}
	// A heartbeat queued last leaves first: it does not wait behind appends.
	tr.Send(srv.addr, idl.GPID{}, &raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3})
	want = append([]received{{from: from, msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3}}}, want...)
	startSender(tr, p)

	got := srv.in.waitFor(t, len(want))
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].from != want[i].from || got[i].group != want[i].group || !equalMessages(&got[i].msg, &want[i].msg) {
			t.Fatalf("message %d: got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// The sender counts a frame once the connection took it, which may be after it arrived.
	poll.Until(t, "every message counted sent", func() bool { return tr.Metrics().MessagesSent == int64(len(want)) })
	sm, rm := tr.Metrics(), srv.tr.Metrics()
	if sm.FramesSent != 1 || sm.MessagesSent != int64(len(want)) || rm.FramesReceived != 1 || rm.MessagesReceived != int64(len(want)) {
		t.Fatalf("one frame expected: sender %+v, receiver %+v", sm, rm)
	}
	if sm.BytesSent != rm.BytesReceived || sm.Peers != 1 {
		t.Fatalf("sender %+v, receiver %+v", sm, rm)
	}
}

// equalMessages compares two messages by their encoding (decoding makes empty slices nil).
func equalMessages(a, b *raftpb.Message) bool {
	x, err1 := a.Marshal()
	y, err2 := b.Marshal()
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// TestFrameByteBound queues more than one frame holds: the sender splits them into frames
// of at most MaxFrameBytes, a message larger than that alone in its own, in order.
func TestFrameByteBound(t *testing.T) {
	srv := startServer(t, nil)
	const maxFrame = 4 << 10
	tr := newTransport(t, "127.0.0.1:1", Config{MaxFrameBytes: maxFrame}, func(string, idl.GPID, raftpb.Message) {})
	p := stalledPeer(tr, srv.addr)
	sizes := []int{1000, 1000, 1000, 1000, 10 << 10, 1000, 100}
	for i, n := range sizes {
		tr.Send(srv.addr, idl.GPID{AppID: 1}, appMsg(2, uint64(i), n))
	}
	startSender(tr, p)
	got := srv.in.waitFor(t, len(sizes))
	for i := range got {
		if got[i].msg.Index != uint64(i) {
			t.Fatalf("message %d has index %d: out of order", i, got[i].msg.Index)
		}
	}
	// Three 1000-byte messages fit in 4 KiB, the fourth does not; the large one goes alone.
	poll.Until(t, "every message counted sent", func() bool { return tr.Metrics().MessagesSent == int64(len(sizes)) })
	if m := tr.Metrics(); m.FramesSent != 4 {
		t.Fatalf("frames: %+v", m)
	}
}

// TestQueueFullDrops fills a peer's queue while its sender is not running: the messages
// beyond the bound are dropped and counted, and the queued ones are delivered.
func TestQueueFullDrops(t *testing.T) {
	srv := startServer(t, nil)
	const queue, sent = 8, 20
	tr := newTransport(t, "127.0.0.1:1", Config{QueueSize: queue}, func(string, idl.GPID, raftpb.Message) {})
	p := stalledPeer(tr, srv.addr)
	for i := range sent {
		tr.Send(srv.addr, idl.GPID{AppID: 1}, appMsg(2, uint64(i), 10))
	}
	if m := tr.Metrics(); m.MessagesDropped != sent-queue {
		t.Fatalf("dropped %d, want %d", m.MessagesDropped, sent-queue)
	}
	startSender(tr, p)
	got := srv.in.waitFor(t, queue)
	for i, r := range got {
		if r.msg.Index != uint64(i) {
			t.Fatalf("message %d has index %d: want the first %d queued", i, r.msg.Index, queue)
		}
	}
	poll.Until(t, "a queue's worth counted sent", func() bool { return tr.Metrics().MessagesSent == queue })
	if m := tr.Metrics(); m.FramesSent != 1 || m.MessagesDropped != sent-queue {
		t.Fatalf("%+v", m)
	}
}

// TestUnroutable drops messages without an address or to this server itself.
func TestUnroutable(t *testing.T) {
	tr := newTransport(t, "127.0.0.1:1", Config{}, func(string, idl.GPID, raftpb.Message) {})
	tr.Send("", idl.GPID{}, appMsg(2, 1, 1))
	tr.Send("127.0.0.1:1", idl.GPID{}, appMsg(2, 1, 1))
	if m := tr.Metrics(); m.MessagesUnroutable != 2 || m.Peers != 0 {
		t.Fatalf("%+v", m)
	}
}

// TestDeadPeerDoesNotBlock sends to a peer nobody listens on, to one that never reads and
// to a live one, from several goroutines: Send never blocks, the live peer gets every
// message, each group's in order, and the unreachable peer's frames are counted as failed.
func TestDeadPeerDoesNotBlock(t *testing.T) {
	live := startServer(t, nil)
	dead, stuck := deadAddr(t), stuckPeer(t)
	const goroutines, each = 4, 500
	// Queues hold everything, so nothing is dropped for being queued behind a dial.
	tr := newTransport(t, "127.0.0.1:1", Config{QueueSize: goroutines * each, MaxQueueBytes: 64 << 20}, func(string, idl.GPID, raftpb.Message) {})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				group := idl.GPID{AppID: 1, PartitionIndex: int32(g)}
				tr.Send(dead, group, appMsg(2, uint64(i), 100))
				tr.Send(stuck, group, appMsg(2, uint64(i), 16<<10)) // fills its socket buffers
				tr.Send(live.addr, group, appMsg(2, uint64(i), 100))
			}
		})
	}
	wg.Wait()
	got := live.in.waitFor(t, goroutines*each)
	next := make(map[idl.GPID]uint64)
	for _, r := range got {
		if r.msg.Index != next[r.group] {
			t.Fatalf("group %s: index %d, want %d", r.group, r.msg.Index, next[r.group])
		}
		next[r.group]++
	}
	poll.Until(t, "a failed send counted", func() bool { return tr.Metrics().MessagesFailed > 0 })
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if m := tr.Metrics(); m.MessagesDropped != 0 || m.Peers != 3 {
		t.Fatalf("%+v", m)
	}
}

// TestConcurrentSendAllDelivered has many goroutines send to one live peer with a queue
// large enough for all: every message arrives, each group's in order.
func TestConcurrentSendAllDelivered(t *testing.T) {
	srv := startServer(t, nil)
	const goroutines, each = 8, 400
	tr := newTransport(t, "127.0.0.1:1", Config{QueueSize: goroutines * each}, func(string, idl.GPID, raftpb.Message) {})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				tr.Send(srv.addr, idl.GPID{AppID: 2, PartitionIndex: int32(g)}, appMsg(2, uint64(i), 50))
			}
		})
	}
	wg.Wait()
	got := srv.in.waitFor(t, goroutines*each)
	poll.Until(t, "every message counted sent", func() bool { return tr.Metrics().MessagesSent == goroutines*each })
	next := make(map[idl.GPID]uint64)
	for _, r := range got {
		if r.msg.Index != next[r.group] {
			t.Fatalf("group %s: index %d, want %d", r.group, r.msg.Index, next[r.group])
		}
		next[r.group]++
	}
	m := tr.Metrics()
	if m.MessagesSent != goroutines*each || m.MessagesDropped != 0 || m.FramesSent > m.MessagesSent {
		t.Fatalf("%+v", m)
	}
	t.Logf("%d messages in %d frames", m.MessagesSent, m.FramesSent)
}

// TestReconnect restarts the receiving server on the same address: the sender's connection
// breaks, and later messages go over a new one.
func TestReconnect(t *testing.T) {
	first := startServer(t, nil)
	addr := first.addr
	tr := newTransport(t, "127.0.0.1:1", Config{}, func(string, idl.GPID, raftpb.Message) {})
	tr.Send(addr, idl.GPID{AppID: 1}, appMsg(2, 0, 1))
	first.in.waitFor(t, 1)
	first.stop()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	second := startServer(t, ln)
	// The first sends after the restart may go to the broken connection and be lost, as
	// raft messages may be; one of them gets through once the connection is dialled again.
	i := uint64(0)
	poll.Until(t, "a message after the restart", func() bool {
		i++
		tr.Send(addr, idl.GPID{AppID: 1}, appMsg(2, i, 1))
		return second.in.len() > 0
	})
	if got := second.in.waitFor(t, 1); got[0].from != "127.0.0.1:1" {
		t.Fatalf("from %q", got[0].from)
	}
}

// senderGoroutines lists the goroutines of transports' senders and of rpc client
// connections.
func senderGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "raftnet.(*Transport).runSender") || strings.Contains(g, "rpc.(*session)") {
			out = append(out, g)
		}
	}
	return out
}

// noSenderGoroutines fails the test unless the goroutines of senders and connections are
// gone. Close has joined them; one may still be between its last deferred call and its
// exit, so the check waits for that (a goroutine left blocked never goes).
func noSenderGoroutines(t *testing.T, when string) {
	t.Helper()
	var left []string
	if err := poll.Wait(t.Context(), func(context.Context) (bool, error) {
		left = senderGoroutines()
		return len(left) == 0, nil
	}); err != nil {
		t.Fatalf("%s: %d goroutines left:\n%s", when, len(left), strings.Join(left, "\n\n"))
	}
}

// TestCloseJoinsGoroutines opens transports, sends to live, dead and stuck peers and closes
// them, many times: after Close none of their goroutines is left, and once the receivers
// are stopped the number of goroutines is back to what it was.
func TestCloseJoinsGoroutines(t *testing.T) {
	noSenderGoroutines(t, "before the test")
	before := runtime.NumGoroutine()
	t.Run("cycles", func(t *testing.T) {
		live, dead, stuck := startServer(t, nil), deadAddr(t), stuckPeer(t)
		for i := range 20 {
			tr, err := New(Config{Addr: "127.0.0.1:1", RPCName: idl.RPCRaft, Handler: func(string, idl.GPID, raftpb.Message) {}})
			if err != nil {
				t.Fatal(err)
			}
			n := live.in.len()
			for j := range 10 {
				for _, to := range []string{live.addr, dead, stuck} {
					tr.Send(to, idl.GPID{AppID: 1}, appMsg(2, uint64(j), 1<<10))
				}
			}
			if i%2 == 0 {
				live.in.waitFor(t, n+1)
			}
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			noSenderGoroutines(t, fmt.Sprintf("cycle %d, after Close", i))
			tr.Send(live.addr, idl.GPID{AppID: 1}, appMsg(2, 0, 1))
			if m := tr.Metrics(); m.MessagesDropped != 1 {
				t.Fatalf("a Send after Close was not dropped: %+v", m)
			}
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			if left := senderGoroutines(); len(left) != 0 {
				t.Fatalf("a Send after Close started a sender:\n%s", strings.Join(left, "\n\n"))
			}
		}
	})
	// The receivers' connection goroutines end once they see the senders' connections
	// closed, after Close returned: wait for them.
	poll.Until(t, "the goroutines back to their number before the test", func() bool { return runtime.NumGoroutine() <= before })
}

// TestMalformedFrameOverRPC sends a malformed frame to a live receiver, then a good one on
// the same connection: the first is rejected, and the receiver goes on serving.
func TestMalformedFrameOverRPC(t *testing.T) {
	srv := startServer(t, nil)
	c := rpc.NewConn(srv.addr, rpc.ConnConfig{})
	t.Cleanup(func() { _ = c.Close() })
	good := frame{from: "127.0.0.1:1", msgs: []envelope{{group: idl.GPID{AppID: 1}, msg: *appMsg(2, 7, 1)}}}
	for _, b := range []idl.Blob{{frameVersion, 0, 3, 'a', 'b'}, encode(t, &good)} {
		if err := c.Send(t.Context(), wire.Header{}, idl.RPCRaft, &b); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.in.waitFor(t, 1); got[0].msg.Index != 7 || got[0].from != "127.0.0.1:1" {
		t.Fatalf("%+v", got[0])
	}
	if m := srv.tr.Metrics(); m.FramesRejected != 1 || m.FramesReceived != 1 {
		t.Fatalf("%+v", m)
	}
}

func TestNewValidates(t *testing.T) {
	h := func(string, idl.GPID, raftpb.Message) {}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no address", Config{RPCName: idl.RPCRaft, Handler: h}},
		{"no handler", Config{Addr: "127.0.0.1:1", RPCName: idl.RPCRaft}},
		{"unknown rpc", Config{Addr: "127.0.0.1:1", RPCName: "RPC_NONE", Handler: h}},
		{"rpc with replies", Config{Addr: "127.0.0.1:1", RPCName: idl.RPCGet, Handler: h}},
		{"address too long", Config{Addr: strings.Repeat("a", 1<<16), RPCName: idl.RPCRaft, Handler: h}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}

// BenchmarkBurst sends bursts of messages of different groups to one live peer, as the
// partitions of a server do on a tick, and waits for each burst to arrive. "unbatched" has
// every message go alone in its frame, as one RPC per message would.
func BenchmarkBurst(b *testing.B) {
	for _, burst := range []int{1, 16, 256} {
		for _, batched := range []bool{true, false} {
			name := fmt.Sprintf("burst=%d/batched", burst)
			maxFrame := 0
			if !batched {
				name, maxFrame = fmt.Sprintf("burst=%d/unbatched", burst), 1
			}
			b.Run(name, func(b *testing.B) { benchmarkBurst(b, burst, maxFrame) })
		}
	}
}

func benchmarkBurst(b *testing.B, burst, maxFrame int) {
	ln := listen(b)
	var got atomic.Int64
	arrived := make(chan struct{}, 1)
	recv, err := New(Config{Addr: ln.Addr().String(), RPCName: idl.RPCRaft, Handler: func(string, idl.GPID, raftpb.Message) {
		if got.Add(1)%int64(burst) == 0 {
			arrived <- struct{}{}
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	rs, err := rpc.NewServer(rpc.ServerConfig{Listener: ln})
	if err != nil {
		b.Fatal(err)
	}
	rs.HandleInline(idl.RPCRaft, recv.HandleRPC)
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- rs.Run(ctx) }()
	defer func() { cancel(); <-done }()

	tr, err := New(Config{Addr: "127.0.0.1:1", RPCName: idl.RPCRaft, MaxFrameBytes: maxFrame,
		Handler: func(string, idl.GPID, raftpb.Message) {}})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	to := ln.Addr().String()
	m := &raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 7, Commit: 1000}
	b.ReportAllocs()
	for b.Loop() {
		for i := range burst {
			tr.Send(to, idl.GPID{AppID: 1, PartitionIndex: int32(i)}, m)
		}
		<-arrived
	}
	met := tr.Metrics()
	if met.MessagesDropped != 0 {
		b.Fatalf("%d messages dropped", met.MessagesDropped)
	}
	b.ReportMetric(float64(met.MessagesSent)/max(float64(met.FramesSent), 1), "msgs/frame")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(met.MessagesSent, 1)), "ns/msg")
}

// TestServerMetrics checks that every counter of Metrics is reported under its name, with
// its value and kind.
func TestServerMetrics(t *testing.T) {
	m := Metrics{Peers: 1, FramesSent: 2, MessagesSent: 3, BytesSent: 4, MessagesDropped: 5, BytesDropped: 6, QueuedBytes: 7,
		MessagesUnroutable: 8, FramesFailed: 9, MessagesFailed: 10, FramesReceived: 11, MessagesReceived: 12, BytesReceived: 13,
		FramesRejected: 14}
	want := []string{"raft_peers", "raft_frames_sent", "raft_messages_sent", "raft_bytes_sent", "raft_messages_dropped",
		"raft_bytes_dropped", "raft_queued_bytes", "raft_messages_unroutable", "raft_frames_failed", "raft_messages_failed", "raft_frames_received",
		"raft_messages_received", "raft_bytes_received", "raft_frames_rejected"}
	got := m.ServerMetrics()
	if len(got) != len(want) || len(want) != reflect.TypeFor[Metrics]().NumField() {
		t.Fatalf("%d metrics for %d fields, want %d", len(got), reflect.TypeFor[Metrics]().NumField(), len(want))
	}
	for i, mm := range got {
		wantKind := metric.Counter
		if i == 0 || want[i] == "raft_queued_bytes" {
			wantKind = metric.Gauge
		}
		if mm.Name != want[i] || mm.Value != int64(i+1) || mm.Kind != wantKind || mm.Desc == "" || mm.Unit == "" {
			t.Errorf("metric %d: %+v, want %s = %d (%v)", i, mm, want[i], i+1, wantKind)
		}
	}
}

// TestQueueBytesBound sends 256 MiB of appends to a peer that never reads, and heartbeats
// to a live one: the appends beyond MaxQueueBytes (8 MiB) are dropped and counted, so the
// process's heap grows by far less than what was sent (before the bound, the connection
// queued every frame), and the live peer gets every heartbeat.
func TestQueueBytesBound(t *testing.T) {
	live := startServer(t, nil)
	stuck := stuckPeer(t)
	const bound, payload, n = 8 << 20, 64 << 10, 4096
	tr := newTransport(t, "127.0.0.1:1", Config{MaxQueueBytes: bound, MaxFrameBytes: 1 << 20}, func(string, idl.GPID, raftpb.Message) {})
	app := appMsg(2, 0, payload)
	w := heappeak.Start()
	for i := range n {
		app.Index = uint64(i)
		tr.Send(stuck, idl.GPID{AppID: 1}, app)
		if i%64 == 0 {
			tr.Send(live.addr, idl.GPID{AppID: 1}, &raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: uint64(i)})
		}
	}
	live.in.waitFor(t, n/64)
	peak := w.Stop()
	m := tr.Metrics()
	t.Logf("peak heap +%.1f MiB; %d appends dropped (%.1f MiB), %.1f MiB queued", float64(peak)/(1<<20), m.MessagesDropped, float64(m.BytesDropped)/(1<<20), float64(m.QueuedBytes)/(1<<20))
	if peak > 48<<20 {
		t.Fatalf("peak heap grew by %.1f MiB sending 256 MiB to a stuck peer (budget 48 MiB)", float64(peak)/(1<<20))
	}
	if m.MessagesDropped < n/2 || m.BytesDropped < int64(n/2)*payload {
		t.Fatalf("%+v: appends past the bound not dropped", m)
	}
	if m.QueuedBytes > bound+payload+1024 {
		t.Fatalf("%d bytes queued, bound %d", m.QueuedBytes, bound)
	}
}

// TestUrgentOvertakesAppends queues appends that fill several frames and then a vote and a
// heartbeat while the peer's sender is stopped: the vote and the heartbeat are in the first
// frame, ahead of the appends, which keep their order.
func TestUrgentOvertakesAppends(t *testing.T) {
	srv := startServer(t, nil)
	tr := newTransport(t, "127.0.0.1:1", Config{MaxFrameBytes: 64 << 10}, func(string, idl.GPID, raftpb.Message) {})
	p := stalledPeer(tr, srv.addr)
	const apps = 40
	for i := range apps {
		tr.Send(srv.addr, idl.GPID{AppID: 1}, appMsg(2, uint64(i), 8<<10))
	}
	tr.Send(srv.addr, idl.GPID{AppID: 2}, &raftpb.Message{Type: raftpb.MsgVote, From: 1, To: 2, Term: 4})
	tr.Send(srv.addr, idl.GPID{AppID: 2}, &raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 4})
	startSender(tr, p)
	got := srv.in.waitFor(t, apps+2)
	if got[0].msg.Type != raftpb.MsgVote || got[1].msg.Type != raftpb.MsgHeartbeat {
		t.Fatalf("first messages %v, %v: want the vote and the heartbeat", got[0].msg.Type, got[1].msg.Type)
	}
	for i, r := range got[2:] {
		if r.msg.Type != raftpb.MsgApp || r.msg.Index != uint64(i) {
			t.Fatalf("message %d: %v index %d", i+2, r.msg.Type, r.msg.Index)
		}
	}
	poll.Until(t, "every message counted sent", func() bool { return tr.Metrics().MessagesSent == apps+2 })
	if m := tr.Metrics(); m.FramesSent < 5 {
		t.Fatalf("%+v: the appends should take several frames", m)
	}
}
