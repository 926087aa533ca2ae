// Package remotecmd serves Pegasus remote commands (RPC_CLI_CLI_CALL): a command name and
// arguments in, human-readable text out. Every server (meta and replica) owns one [Commands],
// registers its own commands next to the built-in ones and routes the RPC to [Commands.Handler].
//
// Pegasus answers every remote command with text, errors included: the envelope is ERR_OK even
// for an unknown command or a failing one, and the text says what went wrong.
package remotecmd

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Info describes the server the commands run in; the built-in commands report it.
type Info struct {
	// Role is "meta" or "replica".
	Role string
	// Address is the server's advertised "host:port".
	Address string
	// Version is the gopegasus version the server runs.
	Version string
	// StartTime is when the server started.
	StartTime time.Time
	// Now is the clock used for the uptime (default time.Now).
	Now func() time.Time
	// Secured says the cluster has a secret: the commands registered with
	// [Commands.RegisterPeerOnly] then run only for authenticated peers.
	Secured bool
	// SuperUser reports whether a request may run the commands registered with
	// [Commands.RegisterMutating]: with access control on, only a super user's or a
	// member's (package acl). Nil: every request may.
	SuperUser func(req *rpc.Request) bool
}

// Func runs one command. Its text is the reply; an error is reported as text too.
type Func func(args []string) (string, error)

type command struct {
	help     string
	fn       Func
	peerOnly bool
	mutating bool
}

// Commands is a set of remote commands. It is safe for concurrent use: commands may be
// registered while the handler serves.
type Commands struct {
	info Info

	mu struct {
		sync.Mutex
		cmds map[string]command
	}
}

// New returns a Commands holding the built-in commands help, version and server-info.
func New(info Info) *Commands {
	if info.Now == nil {
		info.Now = time.Now
	}
	c := &Commands{info: info}
	c.mu.cmds = make(map[string]command)
	c.Register("help", "help [command]: list the commands, or show one command's help", c.help)
	c.Register("version", "version: the server's version", func([]string) (string, error) {
		return fmt.Sprintf("gopegasus %s\n", c.info.Version), nil
	})
	c.Register("server-info", "server-info: version, role, address, start time and uptime", c.serverInfo)
	return c
}

// Register adds the command name. help is one line: usage, a colon, what it does. fn may be
// called concurrently. Registering an empty or an existing name panics: command names are
// fixed by the program, so that is a programming error.
func (c *Commands) Register(name, help string, fn Func) {
	c.register(name, command{help: help, fn: fn})
}

func (c *Commands) register(name string, cmd command) {
	if name == "" || strings.ContainsAny(name, " \t\n") || cmd.fn == nil {
		panic(fmt.Sprintf("remotecmd: Register(%q): bad name or nil func", name))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.mu.cmds[name]; dup {
		panic(fmt.Sprintf("remotecmd: Register(%q): already registered", name))
	}
	c.mu.cmds[name] = cmd
}

// RegisterPeerOnly is Register for a command that changes what only the cluster's members
// may change (the metas' group): when [Info].Secured is set, it runs only for a request
// from a connection authenticated with the cluster's secret, and answers any other that it
// was refused.
func (c *Commands) RegisterPeerOnly(name, help string, fn Func) {
	c.register(name, command{help: help, fn: fn, peerOnly: true})
}

// RegisterMutating is Register for a command that changes the server's configuration or
// state: with access control on it runs only for a super user ([Info].SuperUser), and
// answers any other request that it was refused.
func (c *Commands) RegisterMutating(name, help string, fn Func) {
	c.register(name, command{help: help, fn: fn, mutating: true})
}

// Run runs the command name with args, for a caller trusted as a member (in-process), and
// returns its text. An unknown command or a failing one yields a text saying so, as Pegasus
// answers.
func (c *Commands) Run(name string, args []string) string { return c.run(name, args, nil) }

// run is Run for a request (nil: an in-process caller, trusted as a member).
func (c *Commands) run(name string, args []string, req *rpc.Request) string {
	peer := req == nil || req.Peer != ""
	c.mu.Lock()
	cmd, ok := c.mu.cmds[name]
	c.mu.Unlock()
	if !ok {
		return fmt.Sprintf("unknown command '%s', try 'help' for the list of commands\n", name)
	}
	if cmd.peerOnly && c.info.Secured && !peer {
		return fmt.Sprintf("error: %s: refused: this command needs a connection authenticated with the cluster's secret (pegasus shell --cluster-secret-file)\n", name)
	}
	if cmd.mutating && req != nil && c.info.SuperUser != nil && !c.info.SuperUser(req) {
		return fmt.Sprintf("error: %s: refused (ERR_ACL_DENY): this command changes the server and needs a super user\n", name)
	}
	out, err := cmd.fn(args)
	if err != nil {
		return fmt.Sprintf("error: %s: %v\n", name, err)
	}
	return out
}

// Handler returns the RPC_CLI_CLI_CALL handler: it runs the command and replies with its
// text (result type STRING), always with envelope ERR_OK.
func (c *Commands) Handler() rpc.HandlerFunc {
	return func(_ context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		cmd := req.Args.(*idl.Command)
		text := idl.Text(c.run(cmd.Cmd, cmd.Arguments, req))
		return &text, wire.OK
	}
}

func (c *Commands) help(args []string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	if len(args) > 0 {
		for _, name := range args {
			cmd, ok := c.mu.cmds[name]
			if !ok {
				fmt.Fprintf(&b, "unknown command '%s'\n", name)
				continue
			}
			fmt.Fprintf(&b, "%s\n", cmd.help)
		}
		return b.String(), nil
	}
	for _, name := range slices.Sorted(maps.Keys(c.mu.cmds)) {
		fmt.Fprintf(&b, "%s\n", c.mu.cmds[name].help)
	}
	return b.String(), nil
}

func (c *Commands) serverInfo([]string) (string, error) {
	up := c.info.Now().Sub(c.info.StartTime).Truncate(time.Second)
	return fmt.Sprintf("gopegasus %s, role %s, address %s, Started at %s, uptime %s\n",
		c.info.Version, c.info.Role, c.info.Address,
		c.info.StartTime.Local().Format("2006-01-02 15:04:05"), up), nil
}
