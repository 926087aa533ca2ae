package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/quick"

	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// shellRun runs "pegasus shell" with args and stdin, returning stdout, stderr and the error.
func shellRun(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := shellMain(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// oneShot runs one command line on table temp and fails the test if it fails.
func oneShot(t *testing.T, metas, line string, extra ...string) string {
	t.Helper()
	args := append([]string{"--metas", metas, "--table", "temp", "-c", line}, extra...)
	out, errOut, err := shellRun(t, "", args...)
	if err != nil {
		t.Fatalf("%q: %v\nstderr: %s", line, err, errOut)
	}
	return out
}

// oneShotJSON runs a command line with --json and decodes the JSON document of its last
// command (each command prints one line).
func oneShotJSON(t *testing.T, metas, line string) map[string]any {
	t.Helper()
	out := oneShot(t, metas, line, "--json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("%q: output is not one JSON object: %v\n%s", line, err, out)
	}
	return m
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Fatalf("%s: output lacks %q:\n%s", what, w, got)
		}
	}
}

func records(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	raw, ok := m["records"].([]any)
	if !ok {
		t.Fatalf("no records in %v", m)
	}
	var out []map[string]any
	for _, r := range raw {
		out = append(out, r.(map[string]any))
	}
	return out
}

func TestShellCommands(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 3})
	c.CreateTable(t, "temp", 8)
	c.CreateTable(t, "copy", 4)
	metas := strings.Join(c.MetaAddrs(), ",")

	t.Run("set get del exist ttl", func(t *testing.T) {
		if out := oneShot(t, metas, "set h s v"); out != "OK\n" {
			t.Fatalf("set: %q", out)
		}
		wantContains(t, "get", oneShot(t, metas, "get h s"), "hash_key", "sort_key", "value", "h ", "v\n")
		m := oneShotJSON(t, metas, "get h s")
		if m["found"] != true || m["value"] != "v" || m["hash_key"] != "h" {
			t.Fatalf("get json: %v", m)
		}
		if m := oneShotJSON(t, metas, "exist h s"); m["exist"] != true {
			t.Fatalf("exist: %v", m)
		}
		if m := oneShotJSON(t, metas, "ttl h s"); m["ttl_seconds"] != -1.0 {
			t.Fatalf("ttl without expiry: %v", m)
		}
		wantContains(t, "ttl text", oneShot(t, metas, "ttl h s"), "infinite")
		oneShot(t, metas, "set h t v 100")
		if m := oneShotJSON(t, metas, "ttl h t"); m["ttl_seconds"].(float64) < 1 || m["ttl_seconds"].(float64) > 100 {
			t.Fatalf("ttl: %v", m)
		}
		oneShot(t, metas, "del h s")
		if out := oneShot(t, metas, "get h s"); out != "not found\n" {
			t.Fatalf("get after del: %q", out)
		}
		if m := oneShotJSON(t, metas, "get h s"); m["found"] != false {
			t.Fatalf("get after del: %v", m)
		}
		if m := oneShotJSON(t, metas, "exist h s"); m["exist"] != false {
			t.Fatalf("exist after del: %v", m)
		}
	})

	t.Run("binary keys and hex mode", func(t *testing.T) {
		oneShot(t, metas, `set "b\x00in" "s p" "\x01\xff\"q\n"`)
		m := oneShotJSON(t, metas, `get "b\x00in" "s p"`)
		if m["value"] != `\x01\xFF\"q\n` || m["hash_key"] != `b\x00in` {
			t.Fatalf("escaped get: %v", m)
		}
		out := oneShot(t, metas, "get 6200696e 732070", "--hex")
		wantContains(t, "hex get", out, "01ff22710a")
		oneShot(t, metas, "set 00ff 01 0203", "--hex")
		if m := oneShotJSON(t, metas, `get "\x00\xff" "\x01"`); m["value"] != `\x02\x03` {
			t.Fatalf("value set in hex mode: %v", m)
		}
		if _, _, err := shellRun(t, "", "--metas", metas, "--table", "temp", "--hex", "-c", "get zz 00"); err == nil {
			t.Fatal("a non-hex key in hex mode was accepted")
		}
	})

	t.Run("incr check_and_set", func(t *testing.T) {
		oneShot(t, metas, "incr n c")
		if m := oneShotJSON(t, metas, "incr n c 41"); m["new_value"] != 42.0 {
			t.Fatalf("incr: %v", m)
		}
		m := oneShotJSON(t, metas, "check_and_set n -c c -t int_equal -o 42 -s d -v yes -r")
		if m["set_succeed"] != true || m["check_value"] != "42" || m["check_value_exist"] != true {
			t.Fatalf("check_and_set: %v", m)
		}
		if m := oneShotJSON(t, metas, "check_and_set n -c c -t not_exist -s d -v no"); m["set_succeed"] != false {
			t.Fatalf("failing check_and_set: %v", m)
		}
		if m := oneShotJSON(t, metas, "get n d"); m["value"] != "yes" {
			t.Fatalf("after check_and_set: %v", m)
		}
		if _, _, err := shellRun(t, "", "--metas", metas, "--table", "temp", "-c", "check_and_set n -t bogus -v x"); err == nil {
			t.Fatal("unknown check type accepted")
		}
	})

	t.Run("multi commands", func(t *testing.T) {
		oneShot(t, metas, "multi_set m a 1 b 2 c 3 d 4 e 5")
		m := oneShotJSON(t, metas, "multi_get m a c z")
		if rs := records(t, m); len(rs) != 2 || rs[0]["sort_key"] != "a" || rs[1]["value"] != "3" || m["all_fetched"] != true {
			t.Fatalf("multi_get: %v", m)
		}
		if rs := records(t, oneShotJSON(t, metas, "multi_get m")); len(rs) != 5 {
			t.Fatalf("multi_get all: %v", rs)
		}
		wantContains(t, "multi_get text", oneShot(t, metas, "multi_get m a"), "sort_key", "count", ": 1")
		m = oneShotJSON(t, metas, `multi_get_range m b e -b true`)
		if rs := records(t, m); len(rs) != 4 || rs[3]["sort_key"] != "e" {
			t.Fatalf("multi_get_range: %v", m)
		}
		m = oneShotJSON(t, metas, `multi_get_range m "" "" -n 2 -r -i`)
		if rs := records(t, m); len(rs) != 2 || rs[0]["sort_key"] != "d" || rs[0]["value"] != nil || m["all_fetched"] != false {
			t.Fatalf("multi_get_range reverse limited: %v", m)
		}
		oneShot(t, metas, "set m xa 6")
		if rs := records(t, oneShotJSON(t, metas, `multi_get_range m "" "" -s prefix -y x`)); len(rs) != 1 {
			t.Fatalf("multi_get_range prefix filter: %v", rs)
		}
		if rs := records(t, oneShotJSON(t, metas, "multi_get_sortkeys m")); len(rs) != 6 {
			t.Fatalf("multi_get_sortkeys: %v", rs)
		}
		if m := oneShotJSON(t, metas, "sortkey_count m"); m["count"] != 6.0 {
			t.Fatalf("sortkey_count: %v", m)
		}
		oneShot(t, metas, "multi_del m a b")
		oneShot(t, metas, "del_range m c e")
		if rs := records(t, oneShotJSON(t, metas, "multi_get m")); len(rs) != 2 || rs[0]["sort_key"] != "e" || rs[1]["sort_key"] != "xa" {
			t.Fatalf("after multi_del and del_range: %v", rs)
		}
	})

	t.Run("scans count copy", func(t *testing.T) {
		oneShot(t, metas, "multi_set sc k1 apple k2 banana k3 cherry x1 apricot")
		m := oneShotJSON(t, metas, "scan sc")
		if rs := records(t, m); len(rs) != 4 || rs[0]["sort_key"] != "k1" || m["count"] != 4.0 {
			t.Fatalf("scan: %v", m)
		}
		if rs := records(t, oneShotJSON(t, metas, "scan sc k2 x1 -b true")); len(rs) != 3 {
			t.Fatalf("scan range: %v", rs)
		}
		if rs := records(t, oneShotJSON(t, metas, "scan sc -s prefix -y k -v prefix -z ap")); len(rs) != 1 || rs[0]["value"] != "apple" {
			t.Fatalf("scan filters: %v", rs)
		}
		if rs := records(t, oneShotJSON(t, metas, "scan sc -n 2 -i")); len(rs) != 2 || len(rs[0]) != 2 {
			t.Fatalf("scan limited, no value: %v", rs)
		}
		wantContains(t, "scan text", oneShot(t, metas, "scan sc"), "hash_key", "k3", "cherry")

		total := len(records(t, oneShotJSON(t, metas, "full_scan")))
		if total < 10 {
			t.Fatalf("full_scan found %d records", total)
		}
		if rs := records(t, oneShotJSON(t, metas, "full_scan -h prefix -x s -s prefix -y k")); len(rs) != 3 {
			t.Fatalf("full_scan filters: %v", rs)
		}
		m = oneShotJSON(t, metas, "count_data -d -a")
		if m["row_count"] != float64(total) || m["hash_key_count"].(float64) < 5 || m["value_bytes"].(float64) <= 0 {
			t.Fatalf("count_data: %v (full_scan saw %d)", m, total)
		}
		wantContains(t, "count_data text", oneShot(t, metas, "count_data"), "row_count")

		m = oneShotJSON(t, metas, "copy_data -a copy")
		if m["copied"] != float64(total) {
			t.Fatalf("copy_data: %v", m)
		}
		if m := oneShotJSON(t, metas, "use copy; count_data"); m["row_count"] != float64(total) {
			t.Fatalf("count of the copy: %v", m)
		}
		if m := oneShotJSON(t, metas, "use copy; ttl h t"); m["ttl_seconds"].(float64) < 1 {
			t.Fatalf("copied record lost its TTL: %v", m)
		}
	})

	t.Run("admin", func(t *testing.T) {
		m := oneShotJSON(t, metas, "create made -p 4 -r 3 -e a.b=1,c=2")
		if m["result"] != "OK" || m["partition_count"] != 4.0 {
			t.Fatalf("create: %v", m)
		}
		wantContains(t, "ls", oneShot(t, metas, "ls"), "app_id", "made", "temp", "copy")
		m = oneShotJSON(t, metas, "ls -d")
		var found bool
		for _, r := range m["tables"].([]any) {
			r := r.(map[string]any)
			if r["app_name"] == "made" {
				found = true
				if r["fully_healthy"] != 4.0 || r["replica_count"] != 3.0 || r["envs_count"] != 2.0 {
					t.Fatalf("ls -d row: %v", r)
				}
			}
		}
		if !found {
			t.Fatalf("ls: %v", m)
		}
		m = oneShotJSON(t, metas, "app made -d")
		parts := m["partitions"].([]any)
		if len(parts) != 4 || parts[0].(map[string]any)["primary"] == nil || len(parts[0].(map[string]any)["secondaries"].([]any)) != 2 {
			t.Fatalf("app -d: %v", m)
		}
		if nodes := m["nodes"].([]any); len(nodes) != 3 {
			t.Fatalf("app -d nodes: %v", m)
		}
		wantContains(t, "app -d text", oneShot(t, metas, "app made -d"), "pidx", "ballot", "secondaries", "primary", "3/3")
		m = oneShotJSON(t, metas, "nodes -d")
		if ns := m["nodes"].([]any); len(ns) != 3 || ns[0].(map[string]any)["status"] != "ALIVE" {
			t.Fatalf("nodes -d: %v", m)
		}
		var primaries float64
		for _, n := range m["nodes"].([]any) {
			primaries += n.(map[string]any)["primary_count"].(float64)
		}
		if primaries != 4+8+4 {
			t.Fatalf("nodes -d primaries %v: %v", primaries, m)
		}
		wantContains(t, "nodes", oneShot(t, metas, "nodes"), "address", "ALIVE")
		if m := oneShotJSON(t, metas, "cluster_info"); m["meta_servers"] == nil {
			t.Fatalf("cluster_info: %v", m)
		}
		oneShot(t, metas, "use made; set_app_envs x.y 1 x.z 2 w 3")
		m = oneShotJSON(t, metas, "use made; get_app_envs")
		if m["count"] != 5.0 {
			t.Fatalf("get_app_envs: %v", m)
		}
		oneShot(t, metas, "use made; del_app_envs w; clear_app_envs -p x")
		if m := oneShotJSON(t, metas, "use made; get_app_envs"); m["count"] != 2.0 {
			t.Fatalf("after del and clear: %v", m)
		}
		oneShot(t, metas, "use made; clear_app_envs -a")
		if m := oneShotJSON(t, metas, "use made; get_app_envs"); m["count"] != 0.0 {
			t.Fatalf("after clear -a: %v", m)
		}
		if out := oneShot(t, metas, "drop made"); out != "OK\n" {
			t.Fatalf("drop: %q", out)
		}
		if out := oneShot(t, metas, "ls"); strings.Contains(out, "made") {
			t.Fatalf("dropped table listed:\n%s", out)
		}
		m = oneShotJSON(t, metas, "manual_compact -a copy -b force")
		if m["result"] != "OK" || m["manual_compact.once.bottommost_level_compaction"] != "force" {
			t.Fatalf("manual_compact: %v", m)
		}
		envs := oneShotJSON(t, metas, "use copy; get_app_envs")
		var trigger string
		for _, e := range envs["envs"].([]any) {
			if e := e.(map[string]any); e["key"] == "manual_compact.once.trigger_time" {
				trigger = e["value"].(string)
			}
		}
		if trigger == "" || trigger != m["manual_compact.once.trigger_time"] {
			t.Fatalf("trigger time env %q, want %v (envs %v)", trigger, m["manual_compact.once.trigger_time"], envs)
		}
		// The replicas act on it: every partition of copy reports a finished compaction.
		appID := int(oneShotJSON(t, metas, "app copy")["app_id"].(float64))
		poll.UntilOK(t, "4 partitions finished compacting", func(context.Context) (bool, error) {
			finished := 0
			for _, addr := range c.ReplicaAddrs() {
				resp, err := http.Get(fmt.Sprintf("http://%s/replica/manual_compaction?app_id=%d", addr, appID))
				if err != nil {
					return false, err
				}
				var st struct{ Status map[string]int }
				err = json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
				if err != nil {
					return false, err
				}
				finished += st.Status["finished"]
			}
			return finished >= 4, nil
		})
		for _, bad := range []string{"manual_compact", "manual_compact -a copy -t periodic", "manual_compact -a copy -e 0", "manual_compact -a copy -b maybe"} {
			t.Run(bad, func(t *testing.T) {
				if _, _, err := shellRun(t, "", "--metas", metas, "-c", bad); !errors.Is(err, errShellCommand) {
					t.Errorf("%q: %v", bad, err)
				}
			})
		}
	})

	t.Run("script over stdin", func(t *testing.T) {
		script := "use temp\nset sa sb sc\nget sa sb\nbogus\nhelp get\njson on\nget sa sb\nexit\nset never run x\n"
		out, errOut, err := shellRun(t, script, "--metas", metas)
		if !errors.Is(err, errShellCommand) || !strings.Contains(err.Error(), "1 of them") {
			t.Fatalf("one command failed, got %v", err)
		}
		wantContains(t, "script", out, "table : temp", "OK\n", "sc\n", "usage   : get HASH SORT", `{"json":"on"}`, `"value":"sc"`)
		wantContains(t, "script stderr", errOut, "bogus")
		if m := oneShotJSON(t, metas, "exist never run"); m["exist"] != false {
			t.Fatal("a command after exit ran")
		}
		// Commands from a pipe, as from "echo ... | pegasus shell": not a terminal.
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.WriteString("use temp\nget sa sb\n")
		w.Close()
		defer r.Close()
		var o, e bytes.Buffer
		if err := shellMain(t.Context(), []string{"--metas", metas, "--json"}, r, &o, &e); err != nil {
			t.Fatalf("pipe: %v %s", err, e.String())
		}
		wantContains(t, "pipe", o.String(), `"value":"sc"`)
	})

	t.Run("errors", func(t *testing.T) {
		for _, line := range []string{"get onlyone", "set a", "nosuch", "scan", "create", "incr a b x", "timeout -1"} {
			t.Run(line, func(t *testing.T) {
				if _, _, err := shellRun(t, "", "--metas", metas, "--table", "temp", "-c", line); !errors.Is(err, errShellCommand) {
					t.Errorf("%q: %v", line, err)
				}
			})
		}
		if _, errOut, err := shellRun(t, "", "--metas", metas, "-c", "get a b"); err == nil || !strings.Contains(errOut, "use TABLE") {
			t.Errorf("data command without a table: %v %q", err, errOut)
		}
		if _, _, err := shellRun(t, "", "--metas", metas, "--table", "nosuchtable", "-c", "get a b"); err == nil {
			t.Error("missing table accepted")
		}
	})
}

func TestShellHelpDocumentsEveryCommand(t *testing.T) {
	out, _, err := shellRun(t, "", "--metas", "127.0.0.1:1", "-c", "help")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range shellCommands() {
		if c.summary == "" || !strings.Contains(out, c.name) {
			t.Errorf("help lacks %s", c.name)
		}
		o, _, err := shellRun(t, "", "--metas", "127.0.0.1:1", "--json", "-c", "help "+c.name)
		if err != nil || !strings.Contains(o, `"usage":"`+c.name) {
			t.Errorf("help %s: %v %s", c.name, err, o)
		}
	}
	for _, want := range []string{"set", "get", "del", "exist", "ttl", "incr", "check_and_set", "multi_set", "multi_get",
		"multi_get_range", "multi_del", "del_range", "sortkey_count", "scan", "full_scan", "count_data", "copy_data",
		"ls", "create", "drop", "app", "nodes", "cluster_info", "get_app_envs", "set_app_envs", "del_app_envs",
		"clear_app_envs", "manual_compact", "use", "json", "hex"} {
		if _, ok := lookupShellCommand(want); !ok {
			t.Errorf("no command %s", want)
		}
	}
}

func TestSplitCommands(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [][]string
	}{
		{"", nil},
		{"  get a  b ", [][]string{{"get", "a", "b"}}},
		{`set "a b" 'c d' e\ f`, [][]string{{"set", "a b", "c d", "e f"}}},
		{`set a "" ''`, [][]string{{"set", "a", "", ""}}},
		{`use t; get a b;;`, [][]string{{"use", "t"}, {"get", "a", "b"}}},
		{`set a "x;y" \;`, [][]string{{"set", "a", "x;y", ";"}}},
		{`set \x00\xFf "\n\t\r\0" \"\\`, [][]string{{"set", "\x00\xff", "\n\t\r\x00", `"\`}}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := splitCommands(tc.in)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("splitCommands(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{`set "a`, `set a\`, `set \x1`, `set \xzz`} {
		t.Run(bad, func(t *testing.T) {
			if _, err := splitCommands(bad); err == nil {
				t.Errorf("splitCommands(%q) accepted", bad)
			}
		})
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	f := func(b []byte) bool {
		s := escapeBytes(b)
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] >= 0x7f {
				return false
			}
		}
		got, err := splitCommands(`x "` + s + `"`)
		return err == nil && len(got) == 1 && len(got[0]) == 2 && got[0][1] == string(b)
	}
	if err := quick.Check(f, nil); err != nil {
		t.Fatal(err)
	}
}

func TestParseOpts(t *testing.T) {
	specs := []optSpec{{"a", "start_inclusive", true}, {"i", "no_value", false}, {"n", "max_count", true}}
	o, err := parseOpts([]string{"h", "-a", "false", "s", "--max_count=5", "-i", "--", "-x"}, specs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.pos, []string{"h", "s", "-x"}) || !o.has("no_value") || o.str("start_inclusive", "") != "false" {
		t.Fatalf("%+v", o)
	}
	if n, _ := o.int("max_count", 0); n != 5 {
		t.Fatalf("max_count %d", n)
	}
	if b, _ := o.bool("start_inclusive", true); b {
		t.Fatal("start_inclusive")
	}
	for _, bad := range [][]string{{"-q"}, {"-n"}, {"--nope=1"}} {
		if _, err := parseOpts(bad, specs); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCompleteCommand(t *testing.T) {
	if l, p, ok := completeCommand("multi_get_s", 11, '\t'); !ok || l != "multi_get_sortkeys " || p != 19 {
		t.Fatalf("%q %d %v", l, p, ok)
	}
	if l, _, ok := completeCommand("multi_g", 7, '\t'); !ok || l != "multi_get" {
		t.Fatalf("common prefix: %q %v", l, ok)
	}
	if _, _, ok := completeCommand("get a", 5, '\t'); ok {
		t.Fatal("completed an argument")
	}
	h := &history{}
	h.Add("a")
	h.Add("b")
	h.Add("b")
	if h.Len() != 2 || h.At(0) != "b" || h.At(1) != "a" {
		t.Fatalf("history %q", h.entries)
	}
}

// With three metas, admin commands work whichever one the shell is given: followers send
// it to the leader.
func TestShellThroughAnyMeta(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Metas: 3, Replicas: 3})
	c.CreateTable(t, "temp", 4)
	for _, addr := range c.MetaAddrs() {
		m := oneShotJSON(t, addr, "cluster_info")
		if m["primary_meta_server"] == nil || m["meta_servers"] == nil {
			t.Fatalf("cluster_info through %s: %v", addr, m)
		}
		if m := oneShotJSON(t, addr, "ls"); m["count"] != 1.0 {
			t.Fatalf("ls through %s: %v", addr, m)
		}
		if m := oneShotJSON(t, addr, "set a b c; get a b"); m["value"] != "c" {
			t.Fatalf("get through %s: %v", addr, m)
		}
	}
}
