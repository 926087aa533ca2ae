package raftnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/stopctx"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Defaults of [Config].
const (
	// DefaultQueueSize is the default bound, in messages, of each queue of one peer.
	DefaultQueueSize = 4096
	// DefaultMaxQueueBytes is the default bound of the bytes of the appends (messages
	// carrying entries) queued for one peer: at the rate of 64 KiB writes a onebox
	// saturates at (about 60 MiB/s over two followers each), well over a second of
	// replication; past it appends are dropped, which raft resends.
	DefaultMaxQueueBytes = 32 << 20
	// DefaultMaxFrameBytes is the default bound of a frame's size. It stays well below the
	// request size a server accepts (rpc.DefaultMaxRequestSize), so that a frame of messages
	// each below raft's MaxSizePerMsg is always accepted.
	DefaultMaxFrameBytes = 4 << 20
)

// Handler receives one message of a frame: the sender's address as the frame gives it, the
// group the message belongs to and the message, which the handler owns. It is called on the
// goroutine of [Transport.Receive] (a connection's reader, when registered with
// rpc.Server.HandleInline) and must not block.
type Handler func(from string, group idl.GPID, m raftpb.Message)

// Config configures a [Transport]. Zero values mean the documented defaults.
type Config struct {
	// Addr is this server's address as its peers know it, sent as the sender of every frame
	// (required). Messages addressed to it are not sent.
	Addr string
	// RPCName is the one-way RPC frames are sent as, e.g. idl.RPCRaft (required).
	RPCName string
	// Handler receives the messages of the frames handed to [Transport.Receive] (required).
	Handler Handler
	// QueueSize bounds the messages waiting for one peer in each of its two queues
	// (appends, and everything else); more are dropped (default DefaultQueueSize).
	QueueSize int
	// MaxQueueBytes bounds the bytes of the appends waiting for one peer, those queued
	// and those handed to its connection and not yet written; an append past it is
	// dropped, unless nothing is queued (default DefaultMaxQueueBytes).
	MaxQueueBytes int64
	// MaxFrameBytes bounds the size of a frame in bytes; a single larger message is sent
	// alone in its own frame (default DefaultMaxFrameBytes).
	MaxFrameBytes int
	// Conn configures the connections to the peers (zero values: the rpc defaults).
	Conn rpc.ConnConfig
	// Logger receives the transport's logs (default: discard).
	Logger *slog.Logger
}

// ErrNotPeer is wrapped by the error of a frame whose sender is not the authenticated peer
// of the connection it came on.
var ErrNotPeer = errors.New("raftnet: sender is not the connection's peer")

// Transport sends raft messages to peers and hands received ones to its [Handler]; see the
// package documentation. It is safe for concurrent use.
type Transport struct {
	cfg       Config
	lg        *slog.Logger
	stop      chan struct{} // closed by Close: the senders return
	closeOnce sync.Once
	senders   sync.WaitGroup

	mu struct {
		sync.RWMutex
		peers  map[string]*peer
		closed bool
	}

	metrics counters
}

// peer is one destination: its connection and its queues of encoded records, each a group
// id, a length and a marshalled message, ready to be appended to a frame. Appends carrying
// entries go in bulk, bounded in bytes too (queued); every other message (heartbeats,
// votes, answers, empty appends) in urgent, which a frame takes first: a heartbeat or an
// answer never waits behind megabytes of entries, so a busy group does not cost its
// neighbours their leases or elections.
type peer struct {
	addr         string
	conn         *rpc.Conn
	urgent, bulk chan []byte
	queued       atomic.Int64 // bytes of bulk records queued
}

// isBulk reports whether m goes in the bulk queue: a message carrying entries.
func isBulk(m *raftpb.Message) bool {
	return (m.Type == raftpb.MsgApp || m.Type == raftpb.MsgSnap) && (len(m.Entries) > 0 || m.Snapshot != nil)
}

type counters struct {
	framesSent, messagesSent, bytesSent          atomic.Int64
	messagesDropped, messagesUnroutable          atomic.Int64
	bytesDropped, queuedBytes                    atomic.Int64
	framesFailed, messagesFailed                 atomic.Int64
	framesReceived, messagesReceived, bytesRecvd atomic.Int64
	framesRejected                               atomic.Int64
}

// Metrics is a snapshot of a transport's counters, totals since [New].
type Metrics struct {
	// Peers is the number of addresses messages were sent to.
	Peers int
	// FramesSent, MessagesSent and BytesSent count what was handed to the connections
	// (bytes: frame sizes).
	FramesSent, MessagesSent, BytesSent int64
	// MessagesDropped counts messages dropped because their peer's queue was full, or
	// because they were sent after Close; BytesDropped the bytes of those that were
	// appends.
	MessagesDropped, BytesDropped int64
	// QueuedBytes is the bytes of appends queued for all peers now, with those handed to
	// their connections and not yet taken by the writers (bounded by MaxQueueBytes per
	// peer, and by MaxFrameBytes per connection).
	QueuedBytes int64
	// MessagesUnroutable counts messages not sent because they had no address or this
	// server's own.
	MessagesUnroutable int64
	// FramesFailed and MessagesFailed count frames (and their messages) that the
	// connection could not take: the peer was unreachable.
	FramesFailed, MessagesFailed int64
	// FramesReceived, MessagesReceived and BytesReceived count well-formed frames handed
	// to Receive.
	FramesReceived, MessagesReceived, BytesReceived int64
	// FramesRejected counts malformed frames handed to Receive.
	FramesRejected int64
}

// New returns a transport. It starts no goroutine and opens no connection: the first
// [Transport.Send] to an address does. It fails when cfg lacks a required field or names an
// RPC that is not a one-way RPC of idl's registry.
func New(cfg Config) (*Transport, error) {
	if cfg.Addr == "" {
		return nil, errors.New("raftnet: Config.Addr is required")
	}
	if len(cfg.Addr) > 1<<16-1 {
		return nil, fmt.Errorf("raftnet: Config.Addr of %d bytes", len(cfg.Addr))
	}
	if cfg.Handler == nil {
		return nil, errors.New("raftnet: Config.Handler is required")
	}
	if r, ok := idl.LookupRPC(cfg.RPCName); !ok || !r.IsOneWay() {
		return nil, fmt.Errorf("raftnet: Config.RPCName %q is not a one-way RPC", cfg.RPCName)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.MaxQueueBytes <= 0 {
		cfg.MaxQueueBytes = DefaultMaxQueueBytes
	}
	// A frame handed to a connection waits there until the previous one was taken by
	// its writer, so what is not written yet stays within a frame or two.
	cfg.Conn.MaxQueuedBytes = cfg.MaxFrameBytes
	t := &Transport{cfg: cfg, lg: cfg.Logger, stop: make(chan struct{})}
	if t.lg == nil {
		t.lg = slog.New(slog.DiscardHandler)
	}
	t.mu.peers = make(map[string]*peer)
	return t, nil
}

// Send queues m, a message of group, for the peer at address to. It never blocks: when the
// peer's queue is full (for an append: MaxQueueBytes are queued), after Close, or when to
// is empty or this server's own address, m is dropped and counted. m is marshalled before
// Send returns; the caller keeps it.
func (t *Transport) Send(to string, group idl.GPID, m *raftpb.Message) {
	if to == "" || to == t.cfg.Addr {
		t.metrics.messagesUnroutable.Add(1)
		return
	}
	p := t.peer(to)
	if p == nil {
		t.metrics.messagesDropped.Add(1)
		return
	}
	bulk := isBulk(m)
	var n int64
	if bulk {
		// Room first: under overload most appends past the bound are never marshalled.
		n = int64(recordHeaderLen + m.Size())
		if q := p.queued.Add(n); q > t.cfg.MaxQueueBytes && q > n {
			p.queued.Add(-n)
			t.metrics.messagesDropped.Add(1)
			t.metrics.bytesDropped.Add(n)
			return
		}
	}
	rec, err := appendRecord(make([]byte, 0, recordHeaderLen+m.Size()), group, m)
	if err != nil {
		p.queued.Add(-n)
		t.metrics.messagesDropped.Add(1)
		t.lg.Error("raft message not marshalled", "addr", to, "group", group.String(), "err", err)
		return
	}
	if !bulk {
		select {
		case p.urgent <- rec:
		default:
			t.metrics.messagesDropped.Add(1)
		}
		return
	}
	select {
	case p.bulk <- rec:
		t.metrics.queuedBytes.Add(n)
	default:
		p.queued.Add(-n)
		t.metrics.messagesDropped.Add(1)
		t.metrics.bytesDropped.Add(n)
	}
}

// peer returns the peer at addr, starting its sender if it is new, or nil after Close.
func (t *Transport) peer(addr string) *peer {
	t.mu.RLock()
	p, closed := t.mu.peers[addr], t.mu.closed
	t.mu.RUnlock()
	if closed {
		return nil
	}
	if p != nil {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return nil
	}
	if p = t.mu.peers[addr]; p != nil {
		return p
	}
	p = t.addPeerLocked(addr)
	t.senders.Go(func() { t.runSender(p) })
	return p
}

// addPeerLocked registers a peer for addr, without starting its sender.
func (t *Transport) addPeerLocked(addr string) *peer {
	p := &peer{addr: addr, conn: rpc.NewConn(addr, t.cfg.Conn),
		urgent: make(chan []byte, t.cfg.QueueSize), bulk: make(chan []byte, t.cfg.QueueSize)}
	t.mu.peers[addr] = p
	return p
}

// runSender sends p's queued records, as many as fit in a frame at a time, until Close:
// first every urgent record queued, then appends.
func (t *Transport) runSender(p *peer) {
	// Done once Close has begun, so that a dial to an unreachable peer ends then rather than
	// at its timeout.
	ctx := stopctx.New(t.stop)
	lg := t.lg.With("addr", p.addr)
	max := t.cfg.MaxFrameBytes
	var (
		buf      []byte
		carry    []byte // a record taken from a queue that did not fit in the last frame
		carryBig bool   // carry is an append
		failures int    // consecutive failed frames
	)
	for {
		var bulkBytes int64 // of the appends in this frame
		first, firstBig := carry, carryBig
		carry = nil
		if first == nil {
			select {
			case first = <-p.urgent:
				firstBig = false
			default:
				select {
				case first = <-p.urgent:
					firstBig = false
				case first = <-p.bulk:
					firstBig = true
				case <-t.stop:
					return
				}
			}
			// Let raft loops about to send to this peer queue their messages first: one
			// frame of many costs far less than many frames.
			runtime.Gosched()
		} else {
			select {
			case <-t.stop:
				return
			default:
			}
		}
		if firstBig {
			bulkBytes += int64(len(first))
		}
		buf = append(appendFrameHeader(buf[:0], t.cfg.Addr), first...)
		n := 1
		// Urgent records first, then appends, while the frame has room.
	fill:
		for _, q := range [2]chan []byte{p.urgent, p.bulk} {
			for len(buf) < max {
				select {
				case rec := <-q:
					if len(buf)+len(rec) > max {
						carry, carryBig = rec, q == p.bulk
						break fill
					}
					buf = append(buf, rec...)
					if q == p.bulk {
						bulkBytes += int64(len(rec))
					}
					n++
				default:
					continue fill
				}
			}
		}
		// The connection copies the frame before Send returns, so buf is reused. Send
		// waits while the connection's previous frame is not taken by its writer.
		blob := idl.Blob(buf)
		err := p.conn.Send(ctx, wire.Header{}, t.cfg.RPCName, &blob)
		p.queued.Add(-bulkBytes)
		t.metrics.queuedBytes.Add(-bulkBytes)
		if err != nil {
			t.metrics.framesFailed.Add(1)
			t.metrics.messagesFailed.Add(int64(n))
			if failures++; failures == 1 && ctx.Err() == nil {
				lg.Warn("raft peer unreachable", "err", err)
			}
		} else {
			t.metrics.framesSent.Add(1)
			t.metrics.messagesSent.Add(int64(n))
			t.metrics.bytesSent.Add(int64(len(buf)))
			if failures > 0 {
				lg.Info("raft peer reachable again", "failed_frames", failures)
				failures = 0
			}
		}
		if cap(buf) > 2*max {
			buf = nil // a huge message went alone: do not keep its buffer
		}
	}
}

// Receive decodes a frame and hands each of its messages to the [Handler], in order. A
// malformed frame is rejected as a whole with an error wrapping [ErrBadFrame]; nothing of it
// is handed on. Nothing of b is retained. Safe for concurrent use.
func (t *Transport) Receive(b []byte) error { return t.receive(b, "") }

// receive is Receive for a frame that came from the authenticated peer at address peer
// ("" for a connection that did not authenticate): a frame of an authenticated peer must
// name it as its sender, or it is rejected (wrapping [ErrNotPeer]).
func (t *Transport) receive(b []byte, peer string) error {
	f, err := decodeFrame(b)
	if err != nil {
		t.metrics.framesRejected.Add(1)
		return err
	}
	if peer != "" && f.from != peer {
		t.metrics.framesRejected.Add(1)
		return fmt.Errorf("%w: frame from %q on the connection of %q", ErrNotPeer, f.from, peer)
	}
	t.metrics.framesReceived.Add(1)
	t.metrics.messagesReceived.Add(int64(len(f.msgs)))
	t.metrics.bytesRecvd.Add(int64(len(b)))
	for i := range f.msgs {
		t.cfg.Handler(f.from, f.msgs[i].group, f.msgs[i].msg)
	}
	return nil
}

// HandleRPC is the rpc handler of the transport's one-way RPC: register it with
// rpc.Server.HandleInline under [Config.RPCName]. A malformed frame is logged and dropped.
func (t *Transport) HandleRPC(_ context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	b, ok := req.Args.(*idl.Blob)
	if !ok {
		t.metrics.framesRejected.Add(1)
		t.lg.Warn("raft frame rejected", "remote", req.Remote, "err", fmt.Errorf("%w: argument of type %T", ErrBadFrame, req.Args))
		return nil, wire.OK
	}
	if err := t.receive(*b, req.Peer); err != nil {
		t.lg.Warn("raft frame rejected", "remote", req.Remote, "peer", req.Peer, "err", err)
	}
	return nil, wire.OK
}

// Metrics returns a snapshot of the transport's counters. Safe for concurrent use.
func (t *Transport) Metrics() Metrics {
	t.mu.RLock()
	peers := len(t.mu.peers)
	t.mu.RUnlock()
	c := &t.metrics
	return Metrics{
		Peers:              peers,
		FramesSent:         c.framesSent.Load(),
		MessagesSent:       c.messagesSent.Load(),
		BytesSent:          c.bytesSent.Load(),
		MessagesDropped:    c.messagesDropped.Load(),
		BytesDropped:       c.bytesDropped.Load(),
		QueuedBytes:        c.queuedBytes.Load(),
		MessagesUnroutable: c.messagesUnroutable.Load(),
		FramesFailed:       c.framesFailed.Load(),
		MessagesFailed:     c.messagesFailed.Load(),
		FramesReceived:     c.framesReceived.Load(),
		MessagesReceived:   c.messagesReceived.Load(),
		BytesReceived:      c.bytesRecvd.Load(),
		FramesRejected:     c.framesRejected.Load(),
	}
}

// Close stops every sender, waits for them to return and closes the connections. Messages
// still queued are discarded; later Sends are dropped; Receive keeps working. Close is safe
// to call more than once and from any goroutine; every call returns once the first has
// finished. It returns nil.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.mu.closed = true
		peers := t.mu.peers
		t.mu.Unlock()
		close(t.stop)
		t.senders.Wait()
		for _, p := range peers {
			_ = p.conn.Close()
		}
	})
	return nil
}
