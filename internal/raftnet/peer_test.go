package raftnet

import (
	"context"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// With a cluster secret, a frame is taken only from an authenticated peer, and only when it
// names that peer as its sender.
func TestFramesBoundToTheAuthenticatedPeer(t *testing.T) {
	secret, err := rpc.NewSecret(rpc.GenerateSecret())
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	var got atomic.Int64
	var from atomic.Value
	recv, err := New(Config{Addr: ln.Addr().String(), RPCName: idl.RPCRaft, Handler: func(f string, _ idl.GPID, _ raftpb.Message) {
		from.Store(f)
		got.Add(1)
	}})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rpc.NewServer(rpc.ServerConfig{Listener: ln, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	rs.HandleInline(idl.RPCRaft, recv.HandleRPC)
	rs.RequirePeer(idl.RPCRaft)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- rs.Run(ctx) }()
	defer func() { cancel(); <-done }()

	send := func(claim string, creds *rpc.PeerCredentials) {
		t.Helper()
		cfg := Config{Addr: claim, RPCName: idl.RPCRaft, Handler: func(string, idl.GPID, raftpb.Message) {}}
		cfg.Conn.Peer = creds
		tr, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		tr.Send(ln.Addr().String(), idl.GPID{AppID: 1}, &raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3})
		poll.UntilOK(t, "the frame sent", func(context.Context) (bool, error) {
			m := tr.Metrics()
			return m.MessagesSent+m.MessagesFailed > 0, nil
		})
	}
	// Not authenticated, then authenticated as another address than the frame names.
	send("10.0.0.1:1", nil)
	send("10.0.0.1:1", &rpc.PeerCredentials{Secret: secret, Addr: "10.0.0.2:1"})
	// The peer itself.
	send("10.0.0.2:1", &rpc.PeerCredentials{Secret: secret, Addr: "10.0.0.2:1"})
	poll.UntilOK(t, "the peer's frame handed on, the others refused", func(context.Context) (bool, error) {
		return got.Load() == 1 && recv.Metrics().FramesRejected == 1 && rs.Metrics().PeerRequestsRefused == 1, nil
	})
	if from.Load() != "10.0.0.2:1" {
		t.Fatalf("message from %v, want the peer", from.Load())
	}
	if got.Load() != 1 {
		t.Fatalf("%d messages handed on, want 1", got.Load())
	}
}
