package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// freePorts finds n consecutive ports that are free right now. A server's address is its
// identity, so a restarted onebox must get the same ports again. The ports are taken below
// the kernel's ephemeral range (where it picks ports for outgoing connections and for
// listeners on port 0), so nothing else is handed them meanwhile.
func freePorts(t *testing.T, n int) int {
	for try := 0; try < 200; try++ {
		base := 20000 + rand.IntN(12000-n)
		ok := true
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func TestOneboxServesTempAndRestarts(t *testing.T) {
	dir := t.TempDir()
	base := freePorts(t, 6) // 3 metas, 3 replica servers
	ports := []string{"--meta-port", fmt.Sprint(base), "--replica-port", fmt.Sprint(base + 3)}
	for round := range 2 {
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, append([]string{"onebox", "--data", dir}, ports...), pw, io.Discard)
			pw.Close()
		}()
		sc := bufio.NewScanner(pr)
		var metaAddr, console string
		ready := false
		for sc.Scan() {
			line := sc.Text()
			t.Log(line)
			if after, ok := strings.CutPrefix(line, "onebox: metas "); ok {
				metaAddr, _, _ = strings.Cut(after, ",")
				metaAddr, _, _ = strings.Cut(metaAddr, " ")
			}
			if strings.Contains(line, "ready in") {
				ready = true
			}
			if after, ok := strings.CutPrefix(line, "onebox: web console at "); ok {
				console = after
				break
			}
		}
		go io.Copy(io.Discard, pr)
		if !ready || metaAddr == "" || console != "http://"+metaAddr+"/console" {
			t.Fatalf("onebox did not become ready (meta %q) or print its console (%q)", metaAddr, console)
		}
		page, err := http.Get(console) // from whichever meta leads
		if err != nil {
			t.Fatal(err)
		}
		page.Body.Close()
		if page.StatusCode != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", console, page.StatusCode, page.Header.Get("Content-Type"))
		}

		// HTTP answers on the meta's RPC port.
		resp, err := http.Get("http://" + metaAddr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET / on the meta: %d", resp.StatusCode)
		}

		// Write on the first run, read back on the second: table temp serves and keeps data.
		meta := rpc.NewConn(metaAddr, rpc.ConnConfig{})
		var cfg idl.QueryCfgResponse
		if err := meta.Call(t.Context(), wire.Header{}, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "temp"}, &cfg); err != nil || cfg.PartitionCount != 8 {
			t.Fatalf("query temp: %v %+v", err, cfg)
		}
		meta.Close()
		hk := []byte("onebox-key")
		h := key.Hash(hk)
		p := key.Partition(h, 8)
		conn := rpc.NewConn(cfg.Partitions[p].Primary.String(), rpc.ConnConfig{})
		hdr := wire.Header{AppID: cfg.AppID, PartitionIndex: int32(p), ThreadHash: wire.ThreadHash(cfg.AppID, int32(p)), PartitionHash: h}
		k := key.Encode(hk, []byte("s"))
		cctx, ccancel := context.WithTimeout(t.Context(), 10*time.Second)
		if round == 0 {
			var up idl.UpdateResponse
			if err := conn.Call(cctx, hdr, idl.RPCPut, &idl.UpdateRequest{Key: k, Value: []byte("kept")}, &up); err != nil || up.Error != 0 {
				t.Fatalf("put: %v %+v", err, up)
			}
		}
		var rd idl.ReadResponse
		kb := idl.Blob(k)
		if err := conn.Call(cctx, hdr, idl.RPCGet, &kb, &rd); err != nil || string(rd.Value) != "kept" {
			t.Fatalf("round %d get: %v %+v", round, err, rd)
		}
		ccancel()
		conn.Close()

		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("onebox exit code %d", code)
		}
	}
}

func TestOneboxRefusesUnknownDurability(t *testing.T) {
	var stderr strings.Builder
	err := runOnebox(t.Context(), []string{"--data", t.TempDir(), "--durability", "never"}, io.Discard, &stderr)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--durability must be always or os") {
		t.Fatalf("onebox --durability never: %v, want a usage error naming the two values", err)
	}
}
