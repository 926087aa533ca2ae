package remotecmd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

func newTestCommands() (*Commands, *time.Time) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	now := start
	return New(Info{Role: "replica", Address: "10.0.0.1:34801", Version: "9.9.9", StartTime: start,
		Now: func() time.Time { return now }}), &now
}

func TestBuiltins(t *testing.T) {
	c, now := newTestCommands()
	*now = now.Add(2*time.Hour + 3*time.Second + 500*time.Millisecond)
	help := c.Run("help", nil)
	lines := strings.Split(strings.TrimSpace(help), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "help") || !strings.HasPrefix(lines[1], "server-info") || !strings.HasPrefix(lines[2], "version") {
		t.Fatalf("help:\n%s", help)
	}
	if got := c.Run("help", []string{"version", "nope"}); !strings.HasPrefix(got, "version:") || !strings.Contains(got, "unknown command 'nope'") {
		t.Fatalf("help version nope: %q", got)
	}
	if got := c.Run("version", nil); got != "gopegasus 9.9.9\n" {
		t.Fatalf("version: %q", got)
	}
	info := c.Run("server-info", nil)
	for _, want := range []string{"9.9.9", "role replica", "10.0.0.1:34801", "Started at " + time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Local().Format("2006-01-02 15:04:05"), "uptime 2h0m3s"} {
		if !strings.Contains(info, want) {
			t.Errorf("server-info lacks %q: %q", want, info)
		}
	}
}

func TestRegisterAndErrors(t *testing.T) {
	c, _ := newTestCommands()
	c.Register("sum", "sum N...: add the numbers", func(args []string) (string, error) {
		if len(args) == 0 {
			return "", errors.New("no numbers")
		}
		return strings.Join(args, "+"), nil
	})
	if got := c.Run("sum", []string{"1", "2"}); got != "1+2" {
		t.Fatalf("sum: %q", got)
	}
	if got := c.Run("sum", nil); got != "error: sum: no numbers\n" {
		t.Fatalf("failing command: %q", got)
	}
	if got := c.Run("nope", nil); !strings.Contains(got, "unknown command 'nope'") || !strings.Contains(got, "help") {
		t.Fatalf("unknown: %q", got)
	}
	if !strings.Contains(c.Run("help", nil), "sum N...: add the numbers") {
		t.Fatal("help does not list a registered command")
	}
	for name, reg := range map[string]func(){
		"duplicate": func() { c.Register("sum", "", func([]string) (string, error) { return "", nil }) },
		"empty":     func() { c.Register("", "", func([]string) (string, error) { return "", nil }) },
		"space":     func() { c.Register("a b", "", func([]string) (string, error) { return "", nil }) },
		"nil func":  func() { c.Register("x", "", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Register did not panic", name)
				}
			}()
			reg()
		}()
	}
}

func TestHandlerOverRPC(t *testing.T) {
	c, _ := newTestCommands()
	c.Register("echo", "echo ARGS: print the arguments", func(args []string) (string, error) {
		return strings.Join(args, " "), nil
	})
	srv, err := rpc.NewServer(rpc.ServerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle(idl.RPCCLICall, c.Handler())
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	defer func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("server: %v", err)
		}
	}()
	conn := rpc.NewConn(srv.Addr().String(), rpc.ConnConfig{})
	defer conn.Close()
	for _, tc := range []struct {
		cmd  idl.Command
		want string
	}{
		{idl.Command{Cmd: "echo", Arguments: []string{"a", "b"}}, "a b"},
		{idl.Command{Cmd: "version"}, "gopegasus 9.9.9\n"},
		{idl.Command{Cmd: "what"}, "unknown command 'what', try 'help' for the list of commands\n"},
	} {
		t.Run(tc.cmd.Cmd, func(t *testing.T) {
			for _, v := range []int{0, 1} {
				var text idl.Text
				if err := conn.Call(t.Context(), wire.Header{Version: v}, idl.RPCCLICall, &tc.cmd, &text); err != nil {
					t.Fatalf("%s (header v%d): %v", tc.cmd.Cmd, v, err)
				}
				if string(text) != tc.want {
					t.Errorf("%s (header v%d): %q, want %q", tc.cmd.Cmd, v, text, tc.want)
				}
			}
		})
	}
}

// TestMutatingNeedsSuperUser checks RegisterMutating: with a SuperUser check, a request
// that fails it is refused and the command does not run; one that passes, and in-process
// callers, run it; read-only commands stay open.
func TestMutatingNeedsSuperUser(t *testing.T) {
	ran := 0
	c := New(Info{Role: "meta", SuperUser: func(req *rpc.Request) bool { return req.User == "root" }})
	c.RegisterMutating("set-level", "set-level L: change the level", func([]string) (string, error) {
		ran++
		return "done\n", nil
	})
	h := c.Handler()
	call := func(user, cmd string) string {
		t.Helper()
		v, code := h(t.Context(), &rpc.Request{User: user, Args: &idl.Command{Cmd: cmd}})
		if code != wire.OK {
			t.Fatalf("%s by %q: %v", cmd, user, code)
		}
		return string(*v.(*idl.Text))
	}
	if got := call("alice", "set-level"); !strings.Contains(got, "ERR_ACL_DENY") || ran != 0 {
		t.Fatalf("non-super user: %q (ran %d)", got, ran)
	}
	if got := call("", "set-level"); !strings.Contains(got, "ERR_ACL_DENY") || ran != 0 {
		t.Fatalf("anonymous: %q (ran %d)", got, ran)
	}
	if got := call("root", "set-level"); got != "done\n" || ran != 1 {
		t.Fatalf("super user: %q (ran %d)", got, ran)
	}
	if got := c.Run("set-level", nil); got != "done\n" || ran != 2 {
		t.Fatalf("in process: %q (ran %d)", got, ran)
	}
	if got := call("alice", "version"); !strings.HasPrefix(got, "gopegasus") {
		t.Fatalf("read-only command for a non-super user: %q", got)
	}
}
