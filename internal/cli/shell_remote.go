package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// shellPeerName is the address the shell names itself by when it authenticates with the
// cluster's secret (it is no server: nobody dials it).
const shellPeerName = "pegasus-shell"

func remoteCommands() []shellCommand {
	return []shellCommand{
		{name: "remote_command", args: "[-l HOST:PORT,...] COMMAND [ARGUMENT...]",
			summary: "run a remote command (RPC_CLI_CLI_CALL) on servers: those of -l/--node_list, or every meta server",
			detail: "The servers' own commands: help lists them. The commands that change the metas' group\n" +
				"(meta-add, meta-remove) need the cluster's secret when the cluster has one: start the shell\n" +
				"with --cluster-secret-file. The meta leader also takes Pegasus's balancer commands:\n" +
				"meta.lb.only_move_primary, meta.lb.only_primary_balancer, meta.lb.balancer_in_turn,\n" +
				"meta.lb.add_secondary_max_count_for_one_node, meta.lb.assign_secondary_black_list,\n" +
				"meta.lb.assign_delay_ms, meta.live_percentage and meta.lb.get_balance_operation_count\n" +
				"(run them with -l LEADER). Put \"--\" before a command argument that starts with \"-\".",
			run: (*shell).cmdRemoteCommand},
	}
}

func (sh *shell) cmdRemoteCommand(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"l", "node_list", true}})
	if err != nil {
		return err
	}
	if len(o.pos) == 0 {
		return usageErr("remote_command [-l HOST:PORT,...] COMMAND [ARGUMENT...]")
	}
	nodes := sh.metas
	if o.has("node_list") {
		nodes = splitList(o.str("node_list", ""))
	}
	// A member's connection authenticates with the secret (plaintext, as the servers'
	// own); any other is a client's, TLS when the shell's is.
	cfg := rpc.ConnConfig{TLS: sh.tls, Auth: sh.auth}
	if sh.secret != nil {
		cfg.Peer = &rpc.PeerCredentials{Secret: sh.secret, Addr: shellPeerName}
	}
	var cols = []string{"node", "result"}
	var rows [][]any
	failed := 0
	for _, n := range nodes {
		text, err := remoteCall(ctx, sh, n, cfg, o.pos[0], o.pos[1:])
		if err != nil {
			failed++
			text = "error: " + err.Error()
		}
		rows = append(rows, []any{n, strings.TrimRight(text, "\n")})
	}
	sh.out.table(cols, rows, "nodes", []field{{"succeed", len(nodes) - failed}, {"failed", failed}})
	if failed > 0 {
		return fmt.Errorf("remote_command failed on %d of %d servers", failed, len(nodes))
	}
	return nil
}

func remoteCall(ctx context.Context, sh *shell, addr string, cfg rpc.ConnConfig, cmd string, args []string) (string, error) {
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	conn := rpc.NewConn(addr, cfg)
	defer conn.Close()
	var txt idl.Text
	if err := conn.Call(ctx, wire.Header{}, idl.RPCCLICall, &idl.Command{Cmd: cmd, Arguments: append([]string{}, args...)}, &txt); err != nil {
		return "", err
	}
	return string(txt), nil
}
