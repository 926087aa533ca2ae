package gocli2018

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/XiaoMi/pegasus-go-client/pegasus"
	"github.com/XiaoMi/pegasus-go-client/pegasus2"

	"github.com/gopegasus/pegasus/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the captured frame in testdata/vectors/gocli2018")

const (
	vectors     = "../../testdata/vectors"
	frame2018   = vectors + "/gocli2018/01-RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX-opentable-temp.hex"
	headerLen   = 48
	timeoutOff  = 32 // client_timeout in a v0 header (protocol.md §1.3)
	timeoutSize = 4
)

// writeHex stores a frame as hex text, 32 bytes a line, as the other vectors are.
func writeHex(t *testing.T, path string, b []byte) {
	t.Helper()
	var sb strings.Builder
	for len(b) > 0 {
		n := min(32, len(b))
		sb.WriteString(hex.EncodeToString(b[:n]) + "\n")
		b = b[n:]
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// captureOpenTable returns the first frame the 2018 client sends to its meta server when it
// opens table "temp": a listener stands in for the meta and never answers.
func captureOpenTable(t *testing.T) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	got := make(chan []byte, 1)
	go func() {
		defer close(got)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		hdr := make([]byte, headerLen)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[16:20]))
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		got <- append(hdr, body...)
	}()

	cl := pegasus2.NewClient(pegasus.Config{MetaServers: []string{ln.Addr().String()}})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	opened := make(chan struct{})
	go func() {
		defer close(opened)
		if tb, err := cl.OpenTable(ctx, "temp"); err == nil {
			tb.Close()
		}
	}()
	frame, ok := <-got
	cancel()
	<-opened
	if !ok {
		t.Fatal("the 2018 client sent no complete frame")
	}
	return frame
}

// TestQueryConfigFrame pins what tells the 2018 client apart from the current one on the
// wire: their query_cfg frames for the same table are the same bytes but for the header's
// client_timeout, which the 2018 client leaves 0 and the current one fills from the call's
// deadline. The meta's host_port rule (internal/meta/hostport.go) rests on this.
func TestQueryConfigFrame(t *testing.T) {
	logTo(t)
	old := captureOpenTable(t)
	if *update {
		writeHex(t, frame2018, old)
	}
	if want := golden.Read(t, frame2018); !bytes.Equal(old, want) {
		t.Fatalf("the 2018 client's query_cfg frame changed (rerun with -update to store it):\n got %x\nwant %x", old, want)
	}
	if v := binary.BigEndian.Uint32(old[4:8]); v != 0 {
		t.Fatalf("2018 frame: header version %d, want 0", v)
	}
	if v := binary.BigEndian.Uint32(old[timeoutOff:]); v != 0 {
		t.Fatalf("2018 frame: client_timeout %d, want 0", v)
	}

	cur := golden.Frame(t, golden.Dir(t), "01") // the current client's query_cfg
	if v := binary.BigEndian.Uint32(cur[timeoutOff:]); v == 0 {
		t.Fatal("current client's frame: client_timeout 0")
	}
	if len(cur) != len(old) {
		t.Fatalf("frames of %d and %d bytes", len(cur), len(old))
	}
	for i := range cur {
		if cur[i] != old[i] && (i < timeoutOff || i >= timeoutOff+timeoutSize) {
			t.Fatalf("frames differ at byte %d (%#x vs %#x), outside client_timeout", i, cur[i], old[i])
		}
	}
}
