package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/sasl"
)

// defaultMetas is the onebox's meta server, where the shell and the benchmark connect unless
// told otherwise.
const defaultMetas = "127.0.0.1:34601"

// errShellCommand marks a shell command that failed; the one-shot and script modes turn it
// into a non-zero exit status after running every command.
var errShellCommand = errors.New("shell commands failed")

// shell is one session of "pegasus shell": the clients, the table in use and the output
// modes. It is used by one goroutine.
type shell struct {
	metas  []string
	client pegasus.Client
	admin  admin.Client
	out    *printer
	stderr io.Writer

	table   string // "" until "use"
	tbl     pegasus.TableConnector
	timeout time.Duration // bounds each single-record command
	quit    bool
	secret  *rpc.Secret // the cluster's secret (--cluster-secret-file), or nil
	tls     *tls.Config // the clients' TLS (--cacert, --cert, --key), or nil
	// auth authenticates remote_command's connections (--krb5-*), or nil.
	auth rpc.ClientAuthenticator
}

func runShell(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return shellMain(ctx, args, os.Stdin, stdout, stderr)
}

// shellMain is runShell with the input given, so tests can feed a script.
func shellMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shell", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metas := fs.String("metas", defaultMetas, "meta servers, comma separated")
	command := fs.String("c", "", "run these commands (separated by ';' or new lines) and exit")
	asJSON := fs.Bool("json", false, "print results as JSON (one document per command)")
	hexMode := fs.Bool("hex", false, "read and print keys and values as hexadecimal")
	table := fs.String("table", "", "table to use from the start (as the \"use\" command)")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of each single-record command")
	secretFile := fs.String("cluster-secret-file", "", "the cluster's secret: remote_command then authenticates as a member, which the commands changing the metas' group need")
	tf := newClientTLSFlags(fs)
	krbFlags := newKerberosFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	tlsCfg, err := tf.config()
	if err != nil {
		return err
	}
	krb, err := krbFlags.config()
	if err != nil {
		return err
	}
	var secret *rpc.Secret
	if *secretFile != "" {
		var err error
		if secret, err = readSecretFile(*secretFile, slog.New(slog.NewTextHandler(stderr, nil))); err != nil {
			return err
		}
	}
	var auth rpc.ClientAuthenticator
	if krb != nil {
		k, err := sasl.NewClient(*krb)
		if err != nil {
			return err
		}
		defer k.Close()
		auth = k
	}
	ms := discoverMetas(ctx, splitList(*metas), tlsCfg, krb)
	cl, err := pegasus.New(pegasus.Config{MetaServers: ms, TLS: tlsCfg, Kerberos: krb})
	if err != nil {
		return fmt.Errorf("%w: --metas: %v", errUsage, err)
	}
	defer cl.Close()
	ad, err := admin.New(admin.Config{MetaServers: ms, TLS: tlsCfg, Kerberos: krb})
	if err != nil {
		return fmt.Errorf("%w: --metas: %v", errUsage, err)
	}
	defer ad.Close()
	sh := &shell{
		metas:   ms,
		client:  cl,
		admin:   ad,
		out:     &printer{w: stdout, json: *asJSON, hex: *hexMode},
		stderr:  stderr,
		timeout: *timeout,
		secret:  secret,
		tls:     tlsCfg,
		auth:    auth,
	}
	if *table != "" {
		if err := sh.use(ctx, *table); err != nil {
			return err
		}
	}
	if *command != "" {
		return sh.script(ctx, strings.NewReader(*command))
	}
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		return sh.interactive(ctx, f, stdout)
	}
	return sh.script(ctx, stdin)
}

// discoverMetas adds to the meta servers given those the cluster names in its cluster info,
// so that the clients can go on when the given ones fail. When the cluster cannot be asked
// (the metas are each tried once), the list stays as given (the commands then report what is
// wrong).
func discoverMetas(ctx context.Context, given []string, tlsCfg *tls.Config, krb *pegasus.Kerberos) []string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ad, err := admin.New(admin.Config{MetaServers: given, MaxRounds: 1, TLS: tlsCfg, Kerberos: krb})
	if err != nil {
		return given
	}
	defer ad.Close()
	items, err := ad.ClusterInfo(ctx)
	if err != nil {
		return given
	}
	all := slices.Clone(given)
	for _, it := range items {
		if it.Key != "meta_servers" {
			continue
		}
		for _, m := range splitList(it.Value) {
			if !slices.Contains(all, m) {
				all = append(all, m)
			}
		}
	}
	return all
}

// script runs every command read from r, going on after a failed one, and reports whether
// any failed.
func (sh *shell) script(ctx context.Context, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	failed := 0
	for sc.Scan() && !sh.quit {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !sh.runLine(ctx, sc.Text()) {
			failed++
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading commands: %w", err)
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of them", errShellCommand, failed)
	}
	return nil
}

// runLine runs the commands of one input line, printing errors to stderr. It reports
// whether every command succeeded.
func (sh *shell) runLine(ctx context.Context, line string) bool {
	cmds, err := splitCommands(line)
	if err != nil {
		fmt.Fprintf(sh.stderr, "error: %v\n", err)
		return false
	}
	ok := true
	for _, words := range cmds {
		if sh.quit {
			break
		}
		if err := sh.exec(ctx, words); err != nil {
			fmt.Fprintf(sh.stderr, "error: %s: %v\n", words[0], err)
			ok = false
		}
	}
	return ok
}

// exec runs one command given as words.
func (sh *shell) exec(ctx context.Context, words []string) error {
	c, ok := lookupShellCommand(words[0])
	if !ok {
		return fmt.Errorf("unknown command; \"help\" lists them")
	}
	if c.needTable && sh.tbl == nil {
		return errors.New("no table in use; run \"use TABLE\" first")
	}
	return c.run(sh, ctx, words[1:])
}

// use makes name the table that data commands work on.
func (sh *shell) use(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, sh.timeout)
	defer cancel()
	t, err := sh.client.OpenTable(ctx, name)
	if err != nil {
		return fmt.Errorf("use %s: %w", name, err)
	}
	sh.table, sh.tbl = name, t
	return nil
}

// shellCommand is one command of the shell.
type shellCommand struct {
	name      string
	aliases   []string
	args      string // synopsis of the arguments
	summary   string // one line for "help"
	detail    string // more lines for "help NAME"
	needTable bool
	run       func(sh *shell, ctx context.Context, args []string) error
}

// shellCommands lists every command in the order "help" shows them.
func shellCommands() []shellCommand {
	var cmds []shellCommand
	cmds = append(cmds, sessionCommands()...)
	cmds = append(cmds, dataCommands()...)
	cmds = append(cmds, adminCommands()...)
	cmds = append(cmds, remoteCommands()...)
	cmds = append(cmds, dupCommands()...)
	cmds = append(cmds, opsCommands()...)
	cmds = append(cmds, elasticCommands()...)
	cmds = append(cmds, balanceCommands()...)
	cmds = append(cmds, hotkeyCommands()...)
	return cmds
}

func lookupShellCommand(name string) (shellCommand, bool) {
	for _, c := range shellCommands() {
		if c.name == name || slices.Contains(c.aliases, name) {
			return c, true
		}
	}
	return shellCommand{}, false
}

func sessionCommands() []shellCommand {
	return []shellCommand{
		{name: "help", args: "[COMMAND]", summary: "list the commands, or explain one", run: (*shell).cmdHelp},
		{name: "use", args: "[TABLE]", summary: "choose the table the data commands work on (without TABLE: show it)", run: (*shell).cmdUse},
		{name: "json", args: "[on|off]", summary: "print results as JSON (on) or aligned tables (off); without argument: show the mode", run: (*shell).cmdJSON},
		{name: "hex", aliases: []string{"escape_all"}, args: "[on|off]", summary: "read and print keys and values as hexadecimal; without argument: show the mode",
			detail: "Off (the default), keys and values are printed with non-printable bytes escaped as \\xHH\n" +
				"(and \\\\, \\\", \\n, \\r, \\t), and arguments may use the same escapes, in or out of quotes.\n" +
				"On, every key and value argument is read as hexadecimal and printed as hexadecimal.", run: (*shell).cmdHex},
		{name: "timeout", args: "[DURATION]", summary: "timeout of single-record commands (\"500ms\", \"10s\"; a plain number is milliseconds)", run: (*shell).cmdTimeout},
		{name: "exit", aliases: []string{"quit"}, summary: "leave the shell", run: func(sh *shell, _ context.Context, _ []string) error {
			sh.quit = true
			return nil
		}},
	}
}

func (sh *shell) cmdHelp(_ context.Context, args []string) error {
	if len(args) > 0 {
		c, ok := lookupShellCommand(args[0])
		if !ok {
			return fmt.Errorf("no command %q", args[0])
		}
		fields := []field{{"command", c.name}, {"usage", strings.TrimSpace(c.name + " " + c.args)}, {"summary", c.summary}}
		if len(c.aliases) > 0 {
			fields = append(fields, field{"aliases", strings.Join(c.aliases, ", ")})
		}
		if sh.out.json {
			if c.detail != "" {
				fields = append(fields, field{"detail", c.detail})
			}
			sh.out.object(fields)
			return nil
		}
		sh.out.object(fields)
		if c.detail != "" {
			fmt.Fprintln(sh.out.w)
			fmt.Fprintln(sh.out.w, c.detail)
		}
		return nil
	}
	if sh.out.json {
		var rows [][]any
		for _, c := range shellCommands() {
			rows = append(rows, []any{strings.TrimSpace(c.name + " " + c.args), c.summary})
		}
		sh.out.table([]string{"usage", "summary"}, rows, "commands", nil)
		return nil
	}
	groups := []struct {
		title string
		cmds  []shellCommand
	}{{"Session:", sessionCommands()}, {"Data, on the table in use:", dataCommands()}, {"Administration:", slices.Concat(adminCommands(), remoteCommands())},
		{"Duplication:", dupCommands()}, {"Backup, restore, bulk load:", opsCommands()}, {"Partition split and recall:", elasticCommands()},
		{"Balancer and decommission:", balanceCommands()}, {"Hot keys:", hotkeyCommands()}}
	for i, g := range groups {
		if i > 0 {
			fmt.Fprintln(sh.out.w)
		}
		fmt.Fprintln(sh.out.w, g.title)
		for _, c := range g.cmds {
			fmt.Fprintf(sh.out.w, "  %s\n      %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
		}
	}
	fmt.Fprintln(sh.out.w, "\n\"help COMMAND\" explains a command's options. Arguments may be quoted; \\xHH escapes any byte.")
	return nil
}

func (sh *shell) cmdUse(ctx context.Context, args []string) error {
	if len(args) > 1 {
		return usageErr("use [TABLE]")
	}
	if len(args) == 1 {
		if err := sh.use(ctx, args[0]); err != nil {
			return err
		}
	}
	if sh.table == "" {
		sh.out.object([]field{{"table", nil}})
		return nil
	}
	sh.out.object([]field{{"table", sh.table}})
	return nil
}

func onOff(args []string, v *bool, what string) error {
	switch {
	case len(args) == 0:
	case len(args) == 1 && (args[0] == "on" || args[0] == "true"):
		*v = true
	case len(args) == 1 && (args[0] == "off" || args[0] == "false"):
		*v = false
	default:
		return usageErr(what + " [on|off]")
	}
	return nil
}

func onOffText(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (sh *shell) cmdJSON(_ context.Context, args []string) error {
	if err := onOff(args, &sh.out.json, "json"); err != nil {
		return err
	}
	sh.out.object([]field{{"json", onOffText(sh.out.json)}})
	return nil
}

func (sh *shell) cmdHex(_ context.Context, args []string) error {
	if err := onOff(args, &sh.out.hex, "hex"); err != nil {
		return err
	}
	sh.out.object([]field{{"hex", onOffText(sh.out.hex)}})
	return nil
}

func (sh *shell) cmdTimeout(_ context.Context, args []string) error {
	switch len(args) {
	case 0:
	case 1:
		d, err := parseDurationMS(args[0])
		if err != nil || d <= 0 {
			return usageErr("timeout DURATION (positive)")
		}
		sh.timeout = d
	default:
		return usageErr("timeout [DURATION]")
	}
	sh.out.object([]field{{"timeout", sh.timeout.String()}})
	return nil
}

// parseDurationMS parses a Go duration, or a plain number of milliseconds as the Pegasus
// shell takes them.
func parseDurationMS(s string) (time.Duration, error) {
	var ms int64
	if _, err := fmt.Sscanf(s, "%d", &ms); err == nil && fmt.Sprint(ms) == s {
		return time.Duration(ms) * time.Millisecond, nil
	}
	return time.ParseDuration(s)
}

func usageErr(usage string) error {
	return fmt.Errorf("usage: %s", usage)
}
