package meta

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/golden"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// TestGoldenAdminFrames sends the official go-client's admin frames (create, query_cfg, drop,
// list_apps, list_nodes, and an OpenTable of a missing table) byte for byte and checks that
// every reply decodes as the client would decode it.
func TestGoldenAdminFrames(t *testing.T) {
	dir := golden.Dir(t)
	frame := func(name string) []byte { return golden.Frame(t, dir, name) }
	tm := startMeta(t, Config{})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)

	c, err := net.Dial("tcp", tm.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	roundTrip := func(name, ack string, result idl.Value) {
		t.Helper()
		roundTripFrame(t, c, frame(name), ack, result)
	}

	var cr idl.CreateAppResponse
	roundTrip("30", "RPC_CM_CREATE_APP_ACK", &cr)
	if cr.Err != "ERR_OK" || cr.AppID != 1 {
		t.Fatalf("create t1: %+v", cr)
	}
	var qr idl.QueryCfgResponse
	roundTrip("31", "RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX_ACK", &qr)
	if qr.Err != "ERR_OK" || qr.AppID != 1 || qr.PartitionCount != 8 || len(qr.Partitions) != 8 {
		t.Fatalf("query t1: %+v", qr)
	}
	var dr idl.DropAppResponse
	roundTrip("32", "RPC_CM_DROP_APP_ACK", &dr)
	if dr.Err != "ERR_OK" {
		t.Fatalf("drop t1: %+v", dr)
	}
	var lr idl.ListAppsResponse
	roundTrip("33", "RPC_CM_LIST_APPS_ACK", &lr)
	if lr.Err != "ERR_OK" || len(lr.Infos) != 0 { // t1 is dropped; the frame asks for AS_AVAILABLE
		t.Fatalf("list apps: %+v", lr)
	}
	var nr idl.ListNodesResponse
	roundTrip("34", "RPC_CM_LIST_NODES_ACK", &nr)
	if nr.Err != "ERR_OK" || len(nr.Infos) != 3 || nr.Infos[0].Status != idl.NodeStatusAlive || nr.Infos[0].Node.String() != nodes[0] {
		t.Fatalf("list nodes: %+v", nr)
	}
	var nf idl.QueryCfgResponse
	roundTrip("35", "RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX_ACK", &nf)
	if nf.Err != "ERR_OBJECT_NOT_FOUND" {
		t.Fatalf("query no_such_table: %+v", nf)
	}
}

// roundTripFrame writes a request frame to c, reads the reply and decodes its result into
// result, failing the test unless the reply is ERR_OK under the name ack.
func roundTripFrame(t *testing.T, c net.Conn, frame []byte, ack string, result idl.Value) {
	t.Helper()
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		t.Fatalf("%s: read reply: %v", ack, err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(n[:]))
	copy(buf, n[:])
	if _, err := io.ReadFull(c, buf[4:]); err != nil {
		t.Fatalf("%s: read reply: %v", ack, err)
	}
	r, err := wire.DecodeReply(buf)
	if err != nil || r.Err != nil || string(r.Name) != ack {
		t.Fatalf("reply %q (want %s) err %v / %v", r.Name, ack, err, r.Err)
	}
	if err := wire.DecodeResult(r.Body, result); err != nil {
		t.Fatalf("%s: %v", ack, err)
	}
}
