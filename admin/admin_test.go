package admin

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/golden"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// fakeMeta is a recording meta server for these tests: it keeps every request frame and
// answers as the fake of the vectors README did.
type fakeMeta struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	frames [][]byte
	conns  []net.Conn
}

func startFakeMeta(t *testing.T) *fakeMeta {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMeta{ln: ln}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Go(func() { f.serve(t, c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakeMeta) serve(t *testing.T, c net.Conn) {
	defer c.Close()
	for {
		raw := make([]byte, wire.HeaderV0Len)
		if _, err := io.ReadFull(c, raw); err != nil {
			return
		}
		_, n, err := wire.DecodeHeader(raw)
		if err != nil {
			t.Errorf("fake meta: %v", err)
			return
		}
		raw = append(raw, make([]byte, n)...)
		if _, err := io.ReadFull(c, raw[wire.HeaderV0Len:]); err != nil {
			return
		}
		name, seq, argsBytes, err := wire.ParseRequestBody(raw[wire.HeaderV0Len:])
		if err != nil {
			t.Errorf("fake meta: %v", err)
			return
		}
		r, _ := idl.LookupRPC(string(name))
		args := r.NewRequest()
		if err := wire.DecodeArgs(argsBytes, args); err != nil {
			t.Errorf("fake meta: %v", err)
			return
		}
		f.mu.Lock()
		f.frames = append(f.frames, raw)
		f.mu.Unlock()
		var reply idl.Value
		switch string(name) {
		case idl.RPCCreateApp:
			reply = &idl.CreateAppResponse{Err: "ERR_OK", AppID: 3}
		case idl.RPCQueryConfig:
			reply = &idl.QueryCfgResponse{Err: "ERR_OBJECT_NOT_FOUND"}
		case idl.RPCDropApp:
			reply = &idl.DropAppResponse{Err: "ERR_OK"}
		case idl.RPCListApps:
			info := idl.NewAppInfo()
			info.Status, info.AppType, info.AppName, info.AppID, info.PartitionCount = idl.AppStatusAvailable, "pegasus", "temp", 2, 8
			info.Envs = map[string]string{"k": "v"}
			reply = &idl.ListAppsResponse{Err: "ERR_OK", Infos: []idl.AppInfo{info}}
		case idl.RPCClusterInfo:
			reply = &idl.ClusterInfoResponse{Err: "ERR_OK", Keys: []string{"meta_servers", "primary_meta_server", "odd"},
				Values: []string{"127.0.0.1:34601,127.0.0.1:34602", "127.0.0.1:34601"}}
		case idl.RPCListNodes:
			ra, _ := idl.ParseRPCAddress("127.0.0.1:34801")
			reply = &idl.ListNodesResponse{Err: "ERR_OK", Infos: []idl.NodeInfo{{Status: idl.NodeStatusAlive, Node: ra}}}
		default:
			t.Errorf("fake meta: unexpected %s", name)
			return
		}
		if _, err := c.Write(wire.AppendReply(nil, r.AckName, seq, wire.OK, reply)); err != nil {
			return
		}
	}
}

func (f *fakeMeta) take() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	fr := f.frames
	f.frames = nil
	return fr
}

// sameFrame compares a request frame with a captured one, except for client_timeout and seqid.
func sameFrame(t *testing.T, name string, want, got []byte) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: %d bytes, want %d\n got %x\nwant %x", name, len(got), len(want), got, want)
		return
	}
	seqAt := 56 + int(binary.BigEndian.Uint32(want[52:56]))
	w, g := bytes.Clone(want), bytes.Clone(got)
	for _, b := range [][]byte{w, g} {
		copy(b[32:36], []byte{0, 0, 0, 0})
		copy(b[seqAt:seqAt+4], []byte{0, 0, 0, 0})
	}
	if !bytes.Equal(w, g) {
		t.Errorf("%s differs:\n got %x\nwant %x", name, got, want)
	}
	if ct := binary.BigEndian.Uint32(got[32:36]); ct == 0 || ct > 5000 {
		t.Errorf("%s: client_timeout %d ms", name, ct)
	}
}

// TestWireCompatibility compares the admin requests with the official admin client's.
func TestWireCompatibility(t *testing.T) {
	f := startFakeMeta(t)
	adm, err := New(Config{MetaServers: []string{f.ln.Addr().String()}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := t.Context()

	_, err = adm.CreateTable(ctx, "t1", 8, 3, map[string]string{}, 1)
	if !errors.Is(err, wire.ErrObjectNotFound) {
		t.Errorf("CreateTable whose table never appears = %v", err)
	}
	frames := f.take()
	if len(frames) < 2 {
		t.Fatalf("CreateTable sent %d frames", len(frames))
	}
	sameFrame(t, "30-createtable", golden.Frame(t, golden.Dir(t), "30"), frames[0])
	for _, fr := range frames[1:] { // it polls the configuration until its wait ends
		sameFrame(t, "31-createtable", golden.Frame(t, golden.Dir(t), "31"), fr)
	}

	if err := adm.DropTable(ctx, "t1", 0); err != nil {
		t.Fatal(err)
	}
	tables, err := adm.ListTables(ctx)
	if err != nil || len(tables) != 1 || tables[0].Name != "temp" || tables[0].PartitionCount != 8 || tables[0].Envs["k"] != "v" {
		t.Fatalf("ListTables = %+v, %v", tables, err)
	}
	nodes, err := adm.ListNodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Address != "127.0.0.1:34801" || nodes[0].Status != "NS_ALIVE" {
		t.Fatalf("ListNodes = %+v, %v", nodes, err)
	}
	frames = f.take()
	if len(frames) != 3 {
		t.Fatalf("%d frames for drop, list tables, list nodes", len(frames))
	}
	sameFrame(t, "32-droptable", golden.Frame(t, golden.Dir(t), "32"), frames[0])
	sameFrame(t, "33-listtables", golden.Frame(t, golden.Dir(t), "33"), frames[1])
	sameFrame(t, "34-listnodes", golden.Frame(t, golden.Dir(t), "34"), frames[2])

	envs, err := adm.GetAppEnvs(ctx, "temp")
	if err != nil || envs["k"] != "v" {
		t.Fatalf("GetAppEnvs = %v, %v", envs, err)
	}
	if _, err := adm.GetAppEnvs(ctx, "missing"); !errors.Is(err, wire.ErrObjectNotFound) {
		t.Fatalf("GetAppEnvs(missing) = %v", err)
	}
}

func TestNewChecksAddresses(t *testing.T) {
	for _, metas := range [][]string{nil, {"x"}, {"127.0.0.1:0"}} {
		if _, err := New(Config{MetaServers: metas}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(%q) = %v", metas, err)
		}
	}
}

// deadAddr returns an address where nothing listens: connections are refused.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestFailover(t *testing.T) {
	f := startFakeMeta(t)
	adm, err := New(Config{MetaServers: []string{deadAddr(t), f.ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := adm.ListNodes(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClusterInfo(t *testing.T) {
	f := startFakeMeta(t)
	adm, err := New(Config{MetaServers: []string{f.ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	items, err := adm.ClusterInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// In the meta's order; a key without a value is left out.
	want := []InfoItem{{"meta_servers", "127.0.0.1:34601,127.0.0.1:34602"}, {"primary_meta_server", "127.0.0.1:34601"}}
	if !slices.Equal(items, want) {
		t.Fatalf("ClusterInfo = %v, want %v", items, want)
	}
}

func TestMaxRounds(t *testing.T) {
	adm, err := New(Config{MetaServers: []string{deadAddr(t)}, MaxRounds: 1, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := adm.ListNodes(t.Context()); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ListNodes after one round = %v, want the connection's error", err)
	}
}

func TestClosed(t *testing.T) {
	f := startFakeMeta(t)
	adm, err := New(Config{MetaServers: []string{f.ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.ListTables(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("ListTables after Close = %v", err)
	}
	if err := adm.Close(); err != nil {
		t.Fatal(err)
	}
}
