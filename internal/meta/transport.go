package meta

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// peerQueue bounds the raft messages waiting for one meta; raft tolerates lost messages, so
// a slow or dead meta costs memory only up to this bound.
const peerQueue = 1024

// transport carries the metas' raft messages as one-way [idl.RPCMetaRaft] calls. The
// argument blob is the sender's address (2-byte length, then the bytes), so the receiver can
// answer a meta it did not know (one being added), followed by the marshalled
// raftpb.Message. Each peer has a sender goroutine: the raft loop never blocks on the network.
type transport struct {
	self string
	lg   *slog.Logger
	wg   sync.WaitGroup

	mu struct {
		sync.Mutex
		peers map[string]*peer
	}
}

type peer struct {
	conn *rpc.Conn
	msgs chan *idl.Blob
}

func newTransport(self string, lg *slog.Logger) *transport {
	t := &transport{self: self, lg: lg}
	t.mu.peers = make(map[string]*peer)
	return t
}

// send queues msgs for their recipients, found in addrs by raft id. Messages to unknown
// ids or to full queues are dropped. ctx bounds the senders' lifetime.
func (t *transport) send(ctx context.Context, msgs []raftpb.Message, addrs map[uint64]string) {
	for i := range msgs {
		m := &msgs[i]
		addr, ok := addrs[m.To]
		if !ok || addr == t.self {
			continue
		}
		buf := make([]byte, 2+len(t.self), 2+len(t.self)+m.Size())
		binary.BigEndian.PutUint16(buf, uint16(len(t.self)))
		copy(buf[2:], t.self)
		n, err := m.MarshalTo(buf[len(buf):cap(buf)])
		if err != nil {
			continue
		}
		blob := idl.Blob(buf[:len(buf)+n])
		select {
		case t.peer(ctx, addr).msgs <- &blob:
		default:
		}
	}
}

func (t *transport) peer(ctx context.Context, addr string) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.mu.peers[addr]; ok {
		return p
	}
	p := &peer{conn: rpc.NewConn(addr, rpc.ConnConfig{}), msgs: make(chan *idl.Blob, peerQueue)}
	t.mu.peers[addr] = p
	t.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-p.msgs:
				_ = p.conn.Send(ctx, wire.Header{}, idl.RPCMetaRaft, b)
			}
		}
	})
	return p
}

// close waits for the senders (their ctx must be done) and closes the connections.
func (t *transport) close() {
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.mu.peers {
		_ = p.conn.Close()
	}
}

var errBadRaftMessage = errors.New("meta: malformed raft message")

// decodeRaftMessage splits a received blob into the sender's address and the message.
func decodeRaftMessage(b []byte) (string, raftpb.Message, error) {
	var m raftpb.Message
	if len(b) < 2 {
		return "", m, errBadRaftMessage
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", m, errBadRaftMessage
	}
	if err := m.Unmarshal(b[2+n:]); err != nil {
		return "", m, errors.Join(errBadRaftMessage, err)
	}
	return string(b[2 : 2+n]), m, nil
}
