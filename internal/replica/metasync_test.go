package replica

import (
	"context"
	"net"
	"testing"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// startForwarder starts a meta that is not the leader: it answers syncs with
// ERR_FORWARD_TO_OTHERS naming leader.
func startForwarder(t *testing.T, leader string) string {
	t.Helper()
	srv, err := rpc.NewServer(rpc.ServerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle(idl.RPCConfigSync, func(context.Context, *rpc.Request) (idl.Value, wire.Code) {
		return cluster.Encode(&cluster.SyncResponse{Err: wire.ErrForwardToOthers.Name(), Leader: leader,
			Assignments: []cluster.Assignment{}}), wire.OK
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.Addr().String()
}

// TestSyncReachesMetaLeader gives the replica server metas that cannot serve: its reports
// reach the leader all the same and it hosts what the leader assigns.
func TestSyncReachesMetaLeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	for _, tc := range []struct {
		name  string
		metas func(leader string) []string
	}{
		{"through the leader hint", func(leader string) []string { return []string{startForwarder(t, leader)} }},
		{"past a meta that is down", func(leader string) []string { return []string{dead, leader} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, leader := startAssigner(t)
			s, _ := runReplica(t, t.TempDir(), "127.0.0.1:0", tc.metas(leader))
			singleNodeTable(a, s.Addr(), 2)
			poll.Until(t, "2 primaries reported to the leader", func() bool { return len(a.leaders()) == 2 })
		})
	}
}
