package testcluster

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/raftnet"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// The attacks on a cluster's members, each from a process that is not a member of the cluster: one
// that holds no secret, and one that holds another cluster's. Each test checks that the
// attack is refused (and counted), that the cluster keeps serving, and that no data changed.

// intruder is a process that can reach the servers' ports but is not a member.
type intruder struct {
	name string
	// creds are what it authenticates with (nil: it does not try).
	creds func(claim string) *rpc.PeerCredentials
}

func intruders(t *testing.T) []intruder {
	other, err := rpc.NewSecret(rpc.GenerateSecret())
	if err != nil {
		t.Fatal(err)
	}
	return []intruder{
		{"no secret", func(string) *rpc.PeerCredentials { return nil }},
		{"another cluster's secret", func(claim string) *rpc.PeerCredentials {
			return &rpc.PeerCredentials{Secret: other, Addr: claim}
		}},
	}
}

// refusals is what the server's counters say it refused: requests from connections that did
// not authenticate, and connections whose authentication failed.
func refusals(m rpc.ServerMetrics) int64 { return m.PeerRequestsRefused + m.PeerConnectionsRefused }

// securedCluster is a three-meta, three-replica cluster (with a secret, testcluster's
// default) and a table of four partitions, three replicas each, holding rows written by a
// client.
type securedCluster struct {
	c    *Cluster
	kv   *kv
	cfg  idl.QueryCfgResponse
	rows int
}

func startSecured(t *testing.T, adjust ...func(*replica.Config)) *securedCluster {
	opts := Options{Metas: 3, Replicas: 3}
	if len(adjust) > 0 {
		opts.Replica = adjust[0]
	}
	c := Start(t, opts)
	c.CreateTableReplicas(t, "sec", 4, 3)
	sc := &securedCluster{c: c, kv: newKV(t, c, "sec"), rows: 40}
	poll.UntilOK(t, "every partition with its three replicas", func(ctx context.Context) (bool, error) {
		var resp idl.QueryCfgResponse
		if err := c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "sec"}, &resp); err != nil {
			return false, nil
		}
		for _, p := range resp.Partitions {
			if p.Primary.IsZero() || len(p.Secondaries) != 2 {
				return false, nil
			}
		}
		sc.cfg = resp
		return true, nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range sc.rows {
		if err := sc.kv.put(ctx, fmt.Sprintf("h%d", i), "s", fmt.Sprintf("v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	return sc
}

// checkIntact checks that every row reads back as written and that the table takes writes.
func (sc *securedCluster) checkIntact(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range sc.rows {
		v, ok, err := sc.kv.get(ctx, fmt.Sprintf("h%d", i), "s")
		if err != nil || !ok || v != fmt.Sprintf("v%d", i) {
			t.Fatalf("row h%d: %q found %v, %v", i, v, ok, err)
		}
	}
	if err := sc.kv.put(ctx, "after", "s", "v"); err != nil {
		t.Fatalf("write after the attack: %v", err)
	}
}

// partition returns partition 0's configuration: its primary and a secondary.
func (sc *securedCluster) partition0() (primary, secondary string, ballot int64) {
	p := sc.cfg.Partitions[0]
	return p.Primary.String(), p.Secondaries[0].String(), p.Ballot
}

// ballots returns the current ballot of every partition of the table.
func (sc *securedCluster) ballots(t *testing.T) []int64 {
	t.Helper()
	var resp idl.QueryCfgResponse
	if err := sc.c.MetaCall(t.Context(), idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "sec"}, &resp); err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, p := range resp.Partitions {
		out = append(out, p.Ballot)
	}
	return out
}

// forgeRaft sends msgs, claiming to be from claim, to the server at to over rpcName, as the
// intruder can: through a raft transport of its own.
func forgeRaft(t *testing.T, in intruder, rpcName, claim, to string, group idl.GPID, msgs []raftpb.Message) {
	t.Helper()
	cfg := raftnet.Config{Addr: claim, RPCName: rpcName, Handler: func(string, idl.GPID, raftpb.Message) {}}
	cfg.Conn.Peer = in.creds(claim)
	tr, err := raftnet.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for i := range msgs {
		tr.Send(to, group, &msgs[i])
	}
	// Sent (or refused at the connection) once the transport says so.
	poll.UntilOK(t, "forged raft messages sent", func(context.Context) (bool, error) {
		m := tr.Metrics()
		return m.MessagesSent+m.MessagesFailed >= int64(len(msgs)), nil
	})
}

// hugeRaft are the forged messages: a heartbeat whose term and commit would make etcd raft
// panic (commitTo beyond the log), an append that would depose the leader and commit the
// attacker's entry, and a vote request with a log far ahead.
func hugeRaft(from, to uint64) []raftpb.Message {
	const huge = 1 << 40
	return []raftpb.Message{
		{Type: raftpb.MsgHeartbeat, From: from, To: to, Term: huge, Commit: huge},
		{Type: raftpb.MsgApp, From: from, To: to, Term: huge, LogTerm: 1, Index: 1, Commit: huge,
			Entries: []raftpb.Entry{{Term: huge, Index: 2, Data: []byte("forged")}}},
		{Type: raftpb.MsgVote, From: from, To: to, Term: huge, LogTerm: huge, Index: huge},
	}
}

func TestForgedRaftToReplicaRefused(t *testing.T) {
	sc := startSecured(t)
	primary, secondary, _ := sc.partition0()
	before := sc.ballots(t)
	group := idl.GPID{AppID: sc.cfg.AppID, PartitionIndex: 0}
	for _, in := range intruders(t) {
		t.Run(in.name, func(t *testing.T) {
			srv := sc.c.Replica(t, primary)
			was := refusals(srv.RPCMetrics())
			// Claiming to be a real member of the group: the strongest forgery.
			forgeRaft(t, in, idl.RPCRaft, secondary, primary, group, hugeRaft(cluster.MemberID(secondary), cluster.MemberID(primary)))
			poll.UntilOK(t, "the forged frames refused", func(context.Context) (bool, error) {
				return refusals(srv.RPCMetrics()) > was, nil
			})
			sc.checkIntact(t)
			if got := sc.ballots(t); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Fatalf("ballots changed by the attack: %v, were %v", got, before)
			}
		})
	}
}

func TestForgedRaftToMetaRefused(t *testing.T) {
	sc := startSecured(t)
	leader := sc.c.MetaLeader(t)
	var follower string
	for _, a := range sc.c.MetaAddrs() {
		if a != leader {
			follower = a
		}
	}
	for _, in := range intruders(t) {
		t.Run(in.name, func(t *testing.T) {
			for _, target := range []string{leader, follower} {
				m := sc.c.Meta(t, target)
				was := refusals(m.RPCMetrics())
				claim := leader
				if target == leader {
					claim = follower
				}
				forgeRaft(t, in, idl.RPCMetaRaft, claim, target, idl.GPID{}, hugeRaft(cluster.MemberID(claim), cluster.MemberID(target)))
				poll.UntilOK(t, "the forged frames refused by "+target, func(context.Context) (bool, error) {
					return refusals(m.RPCMetrics()) > was, nil
				})
			}
			if got := sc.c.MetaLeader(t); got != leader {
				t.Fatalf("meta leader %s, was %s", got, leader)
			}
			sc.checkIntact(t)
			sc.c.CreateTableReplicas(t, "after_"+strings.ReplaceAll(in.name, " ", "_")[:7], 1, 3)
		})
	}
}

// cliCall runs a remote command on addr from a connection made with creds (nil: plain).
func cliCall(t *testing.T, addr string, creds *rpc.PeerCredentials, cmd string, args ...string) (string, error) {
	conn := rpc.NewConn(addr, rpc.ConnConfig{Peer: creds})
	defer conn.Close()
	var txt idl.Text
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := conn.Call(ctx, wire.Header{}, idl.RPCCLICall, &idl.Command{Cmd: cmd, Arguments: args}, &txt)
	return string(txt), err
}

// Membership commands need a connection authenticated with the cluster's secret: from any
// other they are refused, and the metas' group stays as it was.
func TestUnauthenticatedMetaMembershipRefused(t *testing.T) {
	sc := startSecured(t)
	leader := sc.c.MetaLeader(t)
	var follower string
	for _, a := range sc.c.MetaAddrs() {
		if a != leader {
			follower = a
		}
	}
	// The group's leader and members, in a stable order.
	list := func() string {
		out, err := cliCall(t, leader, nil, "meta-list")
		if err != nil {
			t.Fatal(err)
		}
		lead, metas, _ := strings.Cut(out, "\nmetas ")
		ms := strings.Split(strings.TrimSpace(metas), ",")
		slices.Sort(ms)
		return lead + " " + strings.Join(ms, ",")
	}
	was := list()
	for _, in := range intruders(t) {
		t.Run(in.name, func(t *testing.T) {
			for _, c := range [][]string{{"meta-add", "10.255.255.1:1"}, {"meta-remove", follower}} {
				out, err := cliCall(t, leader, in.creds("127.0.0.1:1"), c[0], c[1:]...)
				switch {
				case in.creds("x") == nil && (err != nil || !strings.Contains(out, "refused")):
					t.Fatalf("%s: %q, %v; want refused", c[0], out, err)
				case in.creds("x") != nil && !errors.Is(err, rpc.ErrPeerRefused):
					t.Fatalf("%s with another cluster's secret: %q, %v; want the connection refused", c[0], out, err)
				}
			}
			if got := list(); got != was {
				t.Fatalf("meta-list after the attack:\n%s\nwas:\n%s", got, was)
			}
			sc.checkIntact(t)
		})
	}
	// A member (a connection holding the cluster's secret) may change the group.
	member := &rpc.PeerCredentials{Secret: sc.c.Secret(), Addr: "127.0.0.1:1"}
	if out, err := cliCall(t, leader, member, "meta-add", "127.0.0.1:9"); err != nil || !strings.HasPrefix(out, "added") {
		t.Fatalf("meta-add by a member: %q, %v", out, err)
	}
	if out, err := cliCall(t, leader, member, "meta-remove", "127.0.0.1:9"); err != nil || !strings.HasPrefix(out, "removed") {
		t.Fatalf("meta-remove by a member: %q, %v", out, err)
	}
	if got := list(); got != was {
		t.Fatalf("meta-list after add and remove:\n%s\nwas:\n%s", got, was)
	}
}

func syncCall(t *testing.T, addr string, creds *rpc.PeerCredentials, node string) error {
	conn := rpc.NewConn(addr, rpc.ConnConfig{Peer: creds})
	defer conn.Close()
	req := cluster.SyncRequest{Node: node, StartTime: time.Now().Unix(), Replicas: []cluster.ReplicaState{}}
	var reply idl.Blob
	return conn.Call(t.Context(), wire.Header{}, cluster.RPCConfigSync, cluster.Encode(&req), &reply)
}

func TestFakeReplicaServerRegistrationRefused(t *testing.T) {
	sc := startSecured(t)
	leader := sc.c.MetaLeader(t)
	const fake = "127.0.0.1:1"
	for _, in := range intruders(t) {
		t.Run(in.name, func(t *testing.T) {
			err := syncCall(t, leader, in.creds(fake), fake)
			if in.creds(fake) == nil && !errors.Is(err, wire.ErrUnauthenticated) {
				t.Fatalf("config sync without a secret: %v, want ERR_UNAUTHENTICATED", err)
			}
			if in.creds(fake) != nil && !errors.Is(err, rpc.ErrPeerRefused) {
				t.Fatalf("config sync with another cluster's secret: %v, want the connection refused", err)
			}
		})
	}
	// A member reports for itself only: not for another address.
	member := &rpc.PeerCredentials{Secret: sc.c.Secret(), Addr: sc.c.ReplicaAddrs()[0]}
	if err := syncCall(t, leader, member, fake); !errors.Is(err, wire.ErrUnauthenticated) {
		t.Fatalf("config sync for another address: %v, want ERR_UNAUTHENTICATED", err)
	}
	var nodes idl.ListNodesResponse
	if err := sc.c.MetaCall(t.Context(), idl.RPCListNodes, &idl.ListNodesRequest{}, &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Infos) != 3 {
		t.Fatalf("nodes after the attack: %+v", nodes.Infos)
	}
	for _, n := range nodes.Infos {
		if n.Node.String() == fake {
			t.Fatalf("the fake replica server was registered: %+v", nodes.Infos)
		}
	}
	sc.checkIntact(t)
}

// snapshotStream is a snapshot transfer's body (replica/snapshot.go's format) carrying m
// and a checkpoint whose only file is a junk CURRENT.
func snapshotStream(t *testing.T, index uint64, m raftpb.Message) []byte {
	t.Helper()
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("GPSNAP1\n")
	b.Write(binary.BigEndian.AppendUint64(nil, index))
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(raw))))
	b.Write(raw)
	tw := tar.NewWriter(&b)
	junk := []byte("MANIFEST-999999\n")
	if err := tw.WriteHeader(&tar.Header{Name: "CURRENT", Mode: 0o644, Size: int64(len(junk)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(junk)
	_ = tw.Close()
	return b.Bytes()
}

// postSnapshot posts body as a snapshot of partition pidx to addr, from a connection
// authenticated with creds (nil: plain).
func postSnapshot(t *testing.T, addr string, creds *rpc.PeerCredentials, app int32, body []byte) (int, string, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	if creds != nil {
		tr.DialContext = func(ctx context.Context, _, a string) (net.Conn, error) {
			return rpc.DialPeer(ctx, a, creds, 2*time.Second)
		}
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		fmt.Sprintf("http://%s/gopegasus/snapshot?app=%d&pidx=0", addr, app), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text), nil
}

func forgedSnap(from, to uint64, term uint64) raftpb.Message {
	const huge = 1 << 40
	return raftpb.Message{Type: raftpb.MsgSnap, From: from, To: to, Term: term,
		Snapshot: &raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: huge, Term: term,
			ConfState: raftpb.ConfState{Voters: []uint64{from}}}}}
}

// A forged snapshot posted to a partition's primary (which used to swap its store for the
// attacker's at once) is refused before it is read.
func TestForgedSnapshotPostRefused(t *testing.T) {
	sc := startSecured(t)
	primary, secondary, _ := sc.partition0()
	body := snapshotStream(t, 1<<40, forgedSnap(cluster.MemberID(secondary), cluster.MemberID(primary), 1<<40))
	for _, in := range intruders(t) {
		t.Run(in.name, func(t *testing.T) {
			srv := sc.c.Replica(t, primary)
			was := refusals(srv.RPCMetrics())
			code, text, err := postSnapshot(t, primary, in.creds(secondary), sc.cfg.AppID, body)
			switch {
			case in.creds("x") == nil && code != http.StatusForbidden:
				t.Fatalf("snapshot POST without a secret: %d %q %v, want 403", code, text, err)
			case in.creds("x") != nil && !errors.Is(err, rpc.ErrPeerRefused):
				t.Fatalf("snapshot POST with another cluster's secret: %d %q %v, want the connection refused", code, text, err)
			}
			poll.UntilOK(t, "the refusal counted", func(context.Context) (bool, error) {
				return refusals(srv.RPCMetrics()) > was, nil
			})
			if srv.SnapshotsInstalled() != 0 {
				t.Fatalf("%d snapshots installed", srv.SnapshotsInstalled())
			}
			sc.checkIntact(t)
		})
	}
}

// Even from a member, a snapshot is installed only on a follower, once raft accepted it, and
// only if its checkpoint opens as a store: a junk checkpoint (a bad CURRENT file) leaves the
// follower's store as it was, and the server starts again.
func TestJunkSnapshotFromMemberKeepsStoreAndServerRestarts(t *testing.T) {
	sc := startSecured(t)
	primary, secondary, _ := sc.partition0()
	member := &rpc.PeerCredentials{Secret: sc.c.Secret(), Addr: primary}
	term := uint64(1 << 20) // ahead of the group's: raft would take it

	// To the primary, claiming to be a follower: the leader takes no snapshot.
	code, text, err := postSnapshot(t, primary, &rpc.PeerCredentials{Secret: sc.c.Secret(), Addr: secondary}, sc.cfg.AppID,
		snapshotStream(t, 1<<40, forgedSnap(cluster.MemberID(secondary), cluster.MemberID(primary), term)))
	if err != nil || code != http.StatusConflict || !strings.Contains(text, "leads") {
		t.Fatalf("snapshot to the primary: %d %q %v, want 409 (it leads)", code, text, err)
	}
	// Claiming to be another member than the connection's: refused.
	code, text, err = postSnapshot(t, secondary, &rpc.PeerCredentials{Secret: sc.c.Secret(), Addr: "127.0.0.1:1"}, sc.cfg.AppID,
		snapshotStream(t, 1<<40, forgedSnap(cluster.MemberID(primary), cluster.MemberID(secondary), term)))
	if err != nil || code != http.StatusConflict || !strings.Contains(text, "claims") {
		t.Fatalf("snapshot naming another sender: %d %q %v, want 409", code, text, err)
	}
	// To a follower, from the leader's address: the junk checkpoint does not open.
	code, text, err = postSnapshot(t, secondary, member, sc.cfg.AppID,
		snapshotStream(t, 1<<40, forgedSnap(cluster.MemberID(primary), cluster.MemberID(secondary), term)))
	if err != nil || code != http.StatusConflict || !strings.Contains(text, "does not open") {
		t.Fatalf("junk snapshot to a follower: %d %q %v, want 409 (does not open)", code, text, err)
	}
	if n := sc.c.Replica(t, secondary).SnapshotsInstalled(); n != 0 {
		t.Fatalf("%d snapshots installed", n)
	}
	sc.checkIntact(t)

	// The follower restarts on its store, and is a healthy member of every group again.
	sc.c.StopReplica(t, secondary)
	leftovers, _ := filepath.Glob(filepath.Join(sc.c.ReplicaDir(t, secondary), "*", "*.old"))
	if len(leftovers) != 0 {
		t.Fatalf("leftover stores: %v", leftovers)
	}
	sc.c.StartReplica(t, secondary)
	sc.c.WaitAlive(t, 3)
	sc.checkIntact(t)
	poll.UntilOK(t, "the restarted follower back in every group", func(ctx context.Context) (bool, error) {
		var resp idl.QueryCfgResponse
		if err := sc.c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "sec"}, &resp); err != nil {
			return false, nil
		}
		for _, p := range resp.Partitions {
			if p.Primary.IsZero() || len(p.Secondaries) != 2 {
				return false, nil
			}
		}
		return true, nil
	})
	if _, err := os.Stat(sc.c.ReplicaDir(t, secondary)); err != nil {
		t.Fatal(err)
	}
}

// A snapshot larger than the replica's bound is refused, from a member too, and changes
// nothing.
func TestOversizedSnapshotRefused(t *testing.T) {
	sc := startSecured(t, func(cfg *replica.Config) { cfg.MaxSnapshotBytes = 64 << 10 })
	primary, secondary, _ := sc.partition0()
	m := forgedSnap(cluster.MemberID(primary), cluster.MemberID(secondary), 1<<20)
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("GPSNAP1\n")
	b.Write(binary.BigEndian.AppendUint64(nil, 1<<40))
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(raw))))
	b.Write(raw)
	tw := tar.NewWriter(&b)
	big := bytes.Repeat([]byte("x"), 256<<10)
	if err := tw.WriteHeader(&tar.Header{Name: "000001.sst", Mode: 0o644, Size: int64(len(big)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(big)
	_ = tw.Close()
	code, text, err := postSnapshot(t, secondary, &rpc.PeerCredentials{Secret: sc.c.Secret(), Addr: primary}, sc.cfg.AppID, b.Bytes())
	if err != nil || code != http.StatusBadRequest || !strings.Contains(text, "too large") {
		t.Fatalf("oversized snapshot: %d %q %v, want 400 (too large)", code, text, err)
	}
	if n := sc.c.Replica(t, secondary).SnapshotsInstalled(); n != 0 {
		t.Fatalf("%d snapshots installed", n)
	}
	sc.checkIntact(t)
}

// Under --insecure (no secret) the same attacks are taken, as the README warns: here a fake
// replica server registers from a plain connection and an anonymous meta-add runs. This is
// what the tests above check does not happen with a secret.
func TestInsecureClusterTakesAnyone(t *testing.T) {
	c := Start(t, Options{Metas: 3, Replicas: 3, Insecure: true})
	c.CreateTableReplicas(t, "open", 2, 3)
	const fake = "127.0.0.1:1"
	if err := syncCall(t, c.MetaLeader(t), nil, fake); err != nil {
		t.Fatalf("config sync on an insecure cluster: %v", err)
	}
	var nodes idl.ListNodesResponse
	if err := c.MetaCall(t.Context(), idl.RPCListNodes, &idl.ListNodesRequest{}, &nodes); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(nodes.Infos, func(n idl.NodeInfo) bool { return n.Node.String() == fake }) {
		t.Fatalf("the fake replica server is not registered: %+v", nodes.Infos)
	}
	out, err := cliCall(t, c.MetaLeader(t), nil, "meta-add", "127.0.0.1:9")
	if err != nil || !strings.HasPrefix(out, "added") {
		t.Fatalf("anonymous meta-add on an insecure cluster: %q, %v", out, err)
	}
}
