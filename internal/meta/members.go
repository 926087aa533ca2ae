package meta

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/cluster"
)

// memberChangeTimeout bounds the wait for a membership change to be committed.
const memberChangeTimeout = 10 * time.Second

// registerMemberCommands adds the remote commands that show and change the metas' group.
func (s *Server) registerMemberCommands() {
	s.cmds.Register("meta-list", "meta-list: the meta servers of the group and its leader", func([]string) (string, error) {
		st := s.raft.status.Load()
		leader := st.leader
		if leader == "" {
			leader = "unknown"
		}
		return fmt.Sprintf("leader %s\nmetas %s\n", leader, strings.Join(st.voters, ",")), nil
	})
	s.cmds.RegisterPeerOnly("meta-add", "meta-add HOST:PORT: add a meta server to the group (run on the leader; start the new meta with --join)",
		func(args []string) (string, error) { return s.changeMember(raftpb.ConfChangeAddNode, args) })
	s.cmds.RegisterPeerOnly("meta-remove", "meta-remove HOST:PORT: remove a meta server from the group (run on the leader)",
		func(args []string) (string, error) { return s.changeMember(raftpb.ConfChangeRemoveNode, args) })
}

func (s *Server) changeMember(typ raftpb.ConfChangeType, args []string) (string, error) {
	if len(args) != 1 {
		return "", errors.New("want one argument, HOST:PORT")
	}
	addr := args[0]
	if _, err := netip.ParseAddrPort(addr); err != nil {
		return "", fmt.Errorf("%q is not an ip:port", addr)
	}
	if st := s.raft.status.Load(); !st.ready {
		if st.leader != "" && !st.isLeader {
			return "", fmt.Errorf("this meta is not the leader; run the command on %s", st.leader)
		}
		return "", errors.New("this meta is not the serving leader; retry on the leader")
	}
	cc := raftpb.ConfChange{Type: typ, NodeID: cluster.MemberID(addr), Context: []byte(addr)}
	if err := s.raft.changeMembers(cc, memberChangeTimeout); err != nil {
		return "", err
	}
	verb := "added"
	if typ == raftpb.ConfChangeRemoveNode {
		verb = "removed"
	}
	s.lg.Info("meta group membership changed by command", "change", verb, "meta", addr)
	return fmt.Sprintf("%s %s\n", verb, addr), nil
}
