package replica

import (
	"context"
	"encoding/binary"
	"sync"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// peerQueue bounds the raft messages waiting for one peer; raft tolerates dropped messages
// (it retries), so a slow or dead peer costs memory only up to this bound.
const peerQueue = 4096

// transport carries raft messages between replica servers as one-way RPC_GP_RAFT calls:
// an 8-byte gpid followed by the marshalled raftpb.Message. Each peer has a sender goroutine
// so the partitions' raft loops never block on the network.
type transport struct {
	s     *Server
	mu    sync.Mutex
	peers map[string]*peer
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
}

type peer struct {
	conn *rpc.Conn
	msgs chan *idl.Blob
}

func newTransport(s *Server) *transport {
	ctx, cancel := context.WithCancel(context.Background())
	return &transport{s: s, peers: make(map[string]*peer), ctx: ctx, stop: cancel}
}

func (t *transport) run(ctx context.Context) {
	<-ctx.Done()
	t.stop()
}

func (t *transport) close() {
	t.stop()
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.peers {
		_ = p.conn.Close()
	}
}

// send queues a partition's outgoing messages (snapshots excepted: they are streamed by
// sendSnapshot). Messages for peers outside the placement are dropped.
func (t *transport) send(p *partition, msgs []raftpb.Message) {
	pid := p.pid
	for i := range msgs {
		m := &msgs[i]
		addr := p.addressOf(m.To)
		if addr == "" {
			continue
		}
		buf := make([]byte, 8, 8+m.Size())
		binary.BigEndian.PutUint32(buf, uint32(pid.AppID))
		binary.BigEndian.PutUint32(buf[4:], uint32(pid.PartitionIndex))
		n, err := m.MarshalTo(buf[8:cap(buf)])
		if err != nil {
			continue
		}
		blob := idl.Blob(buf[:8+n])
		select {
		case t.peer(addr).msgs <- &blob:
		default: // queue full: drop, raft will retry
		}
	}
}

func (t *transport) peer(addr string) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[addr]; ok {
		return p
	}
	p := &peer{conn: rpc.NewConn(addr, rpc.ConnConfig{}), msgs: make(chan *idl.Blob, peerQueue)}
	t.peers[addr] = p
	t.wg.Go(func() {
		for {
			select {
			case <-t.ctx.Done():
				return
			case b := <-p.msgs:
				_ = p.conn.Send(t.ctx, wire.Header{}, idl.RPCRaft, b)
			}
		}
	})
	return p
}

// receive hands an incoming message to its partition.
func (s *Server) receiveRaft(b []byte) {
	if len(b) < 8 {
		return
	}
	pid := idl.GPID{AppID: int32(binary.BigEndian.Uint32(b)), PartitionIndex: int32(binary.BigEndian.Uint32(b[4:]))}
	p := s.partition(pid)
	if p == nil {
		return
	}
	var m raftpb.Message
	if err := m.Unmarshal(b[8:]); err != nil {
		s.lg.Warn("bad raft message", "err", err)
		return
	}
	select {
	case p.recvC <- m:
	default:
	}
}
