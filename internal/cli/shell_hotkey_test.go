package cli

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// detect_hotkey and hotkeys against a cluster: the refusals with Pegasus's messages, a
// write hot key found and printed as Pegasus prints it, and the table's top-k ranking it
// first in its partition.
func TestShellHotkeys(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 1,
		Replica: func(cfg *replica.Config) { cfg.HotkeyInterval = 200 * time.Millisecond }})
	app := c.CreateTableReplicas(t, "temp", 4, 1)
	run := clusterShell(t, c)
	hot := []byte("hot key")
	pidx := key.Partition(key.Hash(hot), 4)
	addr := c.ReplicaAddrs()[0]
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	flags := func(typ, act string) string {
		return fmt.Sprintf("detect_hotkey -a %d -p %d -t %s -c %s -d %s", app, pidx, typ, act, addr)
	}
	refusals(t, run, []refusal{
		{"detect_hotkey -a 1 -p 0 -t read", "usage"},
		{fmt.Sprintf("detect_hotkey -a x -p 0 -t read -c start -d %s", addr), `"x" is an invalid num`},
		{flags("hot", "start"), `"hot" is an invalid hotkey type (should be 'read' or 'write')`},
		{flags("write", "go"), `"go" is an invalid hotkey detect action`},
		{flags("write", "query"), fmt.Sprintf("Hotkey detection performed failed, in %d.%d, error_hint:ERR_BUSY Can't get hotkey now, now state: hotkey_collector_state::STOPPED", app, pidx)},
		{fmt.Sprintf("detect_hotkey -a 99 -p 0 -t read -c start -d %s", addr), "Hotkey detection performed failed, in 99.0, error_hint:ERR_OBJECT_NOT_FOUND not find the replica 99.0"},
		{fmt.Sprintf("detect_hotkey -a %d -p 0 -t read -c start -d %s", app, deadAddr), "Hotkey detection rpc sending failed, in"},
		{"hotkeys nope", "ERR_OBJECT_NOT_FOUND"},
		{"hotkeys temp -t both", `"both" is an invalid hotkey type`},
	})

	out, errOut, err := run(flags("write", "start"))
	if want := fmt.Sprintf("Hotkey detection is starting, using 'detect_hotkey -a %d -p %d -t write -c query -d %s' to get the result later\n", app, pidx, addr); err != nil || out != want {
		t.Fatalf("start: %v %q %q, want %q", err, out, errOut, want)
	}
	tbl := c.OpenTable(t, "temp")
	i := 0
	var found string
	poll.Until(t, "the write hot key", func() bool {
		for range 50 {
			h := hot
			if i%2 == 1 {
				h = fmt.Appendf(nil, "other%d", i)
			}
			i++
			if err := tbl.Set(t.Context(), h, []byte("s"), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		out, _, err := run(flags("write", "query"))
		found = out
		return err == nil
	})
	if want := fmt.Sprintf("Find write hotkey in %d.%d result:hot key\n", app, pidx); found != want {
		t.Fatalf("query: %q, want %q", found, want)
	}
	// The WRITE of Pegasus's hint is the type's thrift name.
	refusals(t, run, []refusal{{flags("write", "start"), "ERR_BUSY WRITE hotkey result has been found: hot key, you can send a stop rpc"}})
	if out, _, err := run(flags("write", "stop")); err != nil || out != "Hotkey detection is stopped now\n" {
		t.Fatalf("stop: %v %q", err, out)
	}

	out, errOut, err = run("hotkeys temp -t write -k 2")
	if err != nil {
		t.Fatalf("hotkeys: %v %q", err, errOut)
	}
	wantContains(t, "hotkeys", out, "pidx", "hash_key", "share", "partitions : 4", "failed     : 0")
	var line string
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) > 3 && f[0] == fmt.Sprint(pidx) && f[2] == "write" && f[3] == "1" {
			line = l
		}
	}
	if !strings.Contains(line, "hot key") {
		t.Fatalf("hotkeys: partition %d's first write key is not the hot key:\n%s", pidx, out)
	}
	if out := oneShotJSON(t, strings.Join(c.MetaAddrs(), ","), "hotkeys temp -t read"); out["table"] != "temp" {
		t.Fatalf("hotkeys --json: %v", out)
	}
}
