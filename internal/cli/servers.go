package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/certs"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/replica"
)

// logFlags adds the logging flags shared by the server commands.
func logFlags(fs *flag.FlagSet) *string {
	return fs.String("log-level", "info", "log level: debug, info, warn or error")
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: %v", errUsage, level, err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// splitList splits a comma-separated flag value.
var splitList = config.SplitList

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errors.Join(errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

// loadConfig reads --config into reg (when given) and returns flagValue, which picks a
// flag's value: a flag given on the command line wins over the file, the file wins over the
// flag's default ("" then lets the server take the file's value).
func loadConfig(fs *flag.FlagSet, path string, reg *config.Registry) (func(flagName, setting, value string) string, error) {
	if path != "" {
		if err := reg.LoadFile(path); err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return func(flagName, setting, value string) string {
		if in, ok := reg.Lookup(setting); ok && in.Value != "" && !given[flagName] {
			return ""
		}
		return value
	}, nil
}

// serverFlags are the flags `pegasus meta` and `pegasus replica` share.
type serverFlags struct {
	fs                                      *flag.FlagSet
	listen, advertise, data, metas, cfgFile *string
	level                                   *string
}

func newServerFlags(name, listen, advertiseHelp, data, metas, metasHelp string, stderr io.Writer) *serverFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &serverFlags{
		fs:        fs,
		listen:    fs.String("listen", listen, "address to listen on (RPC and HTTP)"),
		advertise: fs.String("advertise", "", advertiseHelp),
		data:      fs.String("data", data, "data directory"),
		metas:     fs.String("metas", metas, metasHelp),
		cfgFile:   fs.String("config", "", "configuration file ([section] and key = value lines; flags given override it); /configs lists the settings"),
		level:     logFlags(fs),
	}
}

// setup parses args, loads the configuration file into reg and makes the logger. pick
// resolves a setting from its flag or the file.
func (f *serverFlags) setup(args []string, reg *config.Registry, stderr io.Writer) (pick func(flagName, setting, value string) string, lg *slog.Logger, err error) {
	if err := parse(f.fs, args); err != nil {
		return nil, nil, err
	}
	if pick, err = loadConfig(f.fs, *f.cfgFile, reg); err != nil {
		return nil, nil, err
	}
	lg, err = newLogger(stderr, *f.level)
	return pick, lg, err
}

func runMeta(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newServerFlags("meta", "127.0.0.1:34601", "ip:port others reach this server at (default: --listen)", "./meta", "",
		"all meta servers of a new group, comma separated, this one included; the first starts the first election (default: this one alone)", stderr)
	join := f.fs.Bool("join", false, "with an empty --data: join an existing group (the leader adds this meta with the remote command meta-add) instead of creating one")
	settings := meta.NewSettings()
	security := newServerSecurity(f.fs, settings.Registry())
	pick, lg, err := f.setup(args, settings.Registry(), stderr)
	if err != nil {
		return err
	}
	sec, err := security.resolve(settings.Registry(), lg)
	if err != nil {
		return err
	}
	listen, advertise, data, metas := f.listen, f.advertise, f.data, f.metas
	ms := splitList(pick("metas", "server_list", *metas))
	s, err := meta.New(meta.Config{Listen: pick("listen", "listen", *listen), Advertise: pick("advertise", "advertise", *advertise),
		DataDir: pick("data", "data_dir", *data), Metas: ms, Join: *join, Version: Version, Logger: lg, Settings: settings, Secret: sec.secret,
		TLS: sec.tls, MandatoryTLS: sec.mandatoryTLS, DupTLS: sec.dupTLS})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "meta server listening on %s, data in %s\n", s.Addr(), settings.DataDir.Get())
	ctx, stop := launch(ctx, lg, []namedServer{{"meta " + s.Addr(), s}})
	<-ctx.Done()
	return stop()
}

func runReplica(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newServerFlags("replica", "127.0.0.1:34801", "ip:port clients reach this server at (default: --listen); must be an IPv4 address",
		"./replica", "127.0.0.1:34601", "meta servers, comma separated", stderr)
	settings := replica.NewSettings()
	security := newServerSecurity(f.fs, settings.Registry())
	pick, lg, err := f.setup(args, settings.Registry(), stderr)
	if err != nil {
		return err
	}
	sec, err := security.resolve(settings.Registry(), lg)
	if err != nil {
		return err
	}
	listen, advertise, data, metas := f.listen, f.advertise, f.data, f.metas
	ms := splitList(pick("metas", "meta_servers", *metas))
	if len(ms) == 0 && settings.Metas.Get() == "" {
		return fmt.Errorf("%w: --metas is required", errUsage)
	}
	s, err := replica.New(replica.Config{Listen: pick("listen", "listen", *listen), Advertise: pick("advertise", "advertise", *advertise),
		DataDir: pick("data", "data_dir", *data), Metas: ms, Version: Version, Logger: lg, Settings: settings, Secret: sec.secret,
		TLS: sec.tls, MandatoryTLS: sec.mandatoryTLS, DupTLS: sec.dupTLS})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replica server listening on %s, data in %s, metas %s\n", s.Addr(), settings.DataDir.Get(), settings.Metas.Get())
	ctx, stop := launch(ctx, lg, []namedServer{{"replica " + s.Addr(), s}})
	<-ctx.Done()
	return stop()
}

// shutdownGrace bounds the graceful stop of each stage of servers when the command is
// interrupted: requests still in flight after it are abandoned.
const shutdownGrace = 10 * time.Second

// server is a meta or replica server.
type server interface {
	Run(context.Context) error
	Shutdown(context.Context) error
	Close() error
}

type namedServer struct {
	name string
	s    server
}

// launch runs every server of stages, each in its own goroutine. The returned context ends
// when ctx does (Ctrl-C) or a server fails; stop then shuts the servers down gracefully,
// stage after stage (the servers of a stage at once, for at most shutdownGrace), waits for
// every Run to return and reports the failures.
func launch(ctx context.Context, lg *slog.Logger, stages ...[]namedServer) (context.Context, func() error) {
	// The servers stop through Shutdown, not through the end of their Run's context.
	runCtx := context.WithoutCancel(ctx)
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		cancel()
	}
	for _, stage := range stages {
		for _, n := range stage {
			wg.Go(func() {
				if err := n.s.Run(runCtx); !errors.Is(err, meta.ErrServerClosed) {
					fail(fmt.Errorf("%s: %w", n.name, err))
				}
			})
		}
	}
	return ctx, func() error {
		cancel()
		for _, stage := range stages {
			sctx, stop := context.WithTimeout(runCtx, shutdownGrace)
			var sg sync.WaitGroup
			for _, n := range stage {
				sg.Go(func() {
					err := n.s.Shutdown(sctx)
					switch {
					case errors.Is(err, context.DeadlineExceeded):
						lg.Warn("requests still in flight abandoned", "server", n.name, "after", shutdownGrace)
					case err != nil:
						fail(fmt.Errorf("%s: stop: %w", n.name, err))
					}
				})
			}
			sg.Wait()
			stop()
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return errors.Join(errs...)
	}
}

// oneboxTables are created on the onebox's first start, like Apache Pegasus's onebox.
var oneboxTables = []struct {
	name       string
	partitions int32
}{{"stat", 4}, {"temp", 8}}

// oneboxReplicaCount is the replica count of the onebox's tables, as in Apache Pegasus's
// onebox: every partition is a raft group across three replica servers.
const oneboxReplicaCount = 3

func runOnebox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("onebox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./onebox", "data directory")
	metas := fs.Int("metas", 3, "number of meta servers (one raft group)")
	replicas := fs.Int("replicas", 3, "number of replica servers")
	metaPort := fs.Int("meta-port", 34601, "port of the first meta server; the others follow")
	replicaPort := fs.Int("replica-port", 34801, "port of the first replica server; the others follow")
	host := fs.String("host", "127.0.0.1", "IPv4 address to listen on and advertise")
	level := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	name := fs.String("cluster-name", "onebox", "the cluster's name, as other clusters duplicating to it call it")
	withTLS := fs.Bool("tls", false, "serve TLS on every server's port beside plaintext, with certificates made on the first start in <data>/tls "+
		"(a CA, a server certificate for --host, 127.0.0.1 and localhost, a client certificate with CN onebox); client certificates are verified against that CA")
	mandatoryTLS := fs.Bool("mandatory-tls", false, "with --tls: refuse plaintext clients (the official Pegasus clients cannot do TLS)")
	durability := fs.String("durability", "always", "raft_log_durability of every server: always (a write is acknowledged once fsynced on a quorum) "+
		"or os (unsafe: once a quorum has written it to the operating system, the log fsynced every 100 ms; see the README)")
	var remotes remoteFlag
	fs.Var(&remotes, "remote", "a cluster tables can be duplicated to, NAME=META[,META...]; repeat for several. "+
		"The duplication cluster ids are 1, 2, ... in name order of this cluster and the remotes, so two oneboxes that name each other agree")
	if err := parse(fs, args); err != nil {
		return err
	}
	peers, err := remotes.peers(*name)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *durability != "always" && *durability != "os" {
		return fmt.Errorf("%w: --durability must be always or os, not %q", errUsage, *durability)
	}
	if *metas < 1 {
		return fmt.Errorf("%w: --metas must be at least 1", errUsage)
	}
	if *replicas < 1 {
		return fmt.Errorf("%w: --replicas must be at least 1", errUsage)
	}
	lg, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*data, 0o755); err != nil {
		return err
	}
	// The onebox's servers authenticate each other with a secret of its own, made on the
	// first start.
	secret, err := oneboxSecret(*data, lg)
	if err != nil {
		return err
	}
	if *mandatoryTLS && !*withTLS {
		return fmt.Errorf("%w: --mandatory-tls needs --tls", errUsage)
	}
	var serverTLS, clientTLS *tls.Config
	if *withTLS {
		files, made, err := certs.EnsureFiles(filepath.Join(*data, "tls"), *host, "127.0.0.1", "localhost")
		if err != nil {
			return err
		}
		if serverTLS, err = certs.ServerConfig(files.ServerCert, files.ServerKey, files.CA, false); err != nil {
			return err
		}
		if clientTLS, err = certs.ClientConfig(files.CA, files.ClientCert, files.ClientKey); err != nil {
			return err
		}
		if made {
			fmt.Fprintf(stdout, "onebox: made TLS certificates in %s\n", filepath.Dir(files.CA))
		}
		fmt.Fprintf(stdout, "onebox: TLS on; pegasus shell --cacert %s --cert %s --key %s\n", files.CA, files.ClientCert, files.ClientKey)
	}

	var metaAddrs []string
	var specs []meta.TableSpec
	for _, t := range oneboxTables {
		specs = append(specs, meta.TableSpec{Name: t.name, Partitions: t.partitions, Replicas: min(oneboxReplicaCount, int32(*replicas))})
	}
	// Port 0 gives every server a free port of its own (for tests).
	portOf := func(first, i int) int {
		if first == 0 {
			return 0
		}
		return first + i
	}
	// The metas form one raft group: every one needs every address before it starts.
	var metaLns []net.Listener
	var metaServers, replicaServers []namedServer
	// abandon releases what was made when one of the servers cannot be: the listeners (a
	// server closes its own too, and closing twice is harmless) and the servers made so far.
	abandon := func(err error) error {
		for _, ln := range metaLns {
			_ = ln.Close()
		}
		for _, n := range slices.Concat(metaServers, replicaServers) {
			_ = n.s.Close()
		}
		return err
	}
	for i := range *metas {
		ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", *host, portOf(*metaPort, i)))
		if err != nil {
			return abandon(fmt.Errorf("meta %d: %w", i+1, err))
		}
		metaLns = append(metaLns, ln)
		metaAddrs = append(metaAddrs, ln.Addr().String())
	}
	for i, ln := range metaLns {
		m, err := meta.New(meta.Config{
			Listener: ln, DataDir: filepath.Join(*data, fmt.Sprintf("meta%d", i+1)), Metas: metaAddrs,
			InitialTables: specs, ClusterName: *name, Peers: peers, Version: Version, Logger: lg.With("meta", metaAddrs[i]),
			Secret: secret, TLS: serverTLS, MandatoryTLS: *mandatoryTLS, RaftLogDurability: *durability,
			// Like a small Pegasus cluster an operator runs: servers added to the onebox
			// get their share at once.
			LevelOnStart: "lively",
		})
		if err != nil {
			return abandon(err)
		}
		metaServers = append(metaServers, namedServer{"meta " + metaAddrs[i], m})
	}
	var replicaAddrs []string
	for i := range *replicas {
		addr := fmt.Sprintf("%s:%d", *host, portOf(*replicaPort, i))
		r, err := replica.New(replica.Config{
			Listen: addr, DataDir: filepath.Join(*data, fmt.Sprintf("replica%d", i+1)), Metas: metaAddrs,
			ClusterName: *name, Peers: peers, Version: Version, Logger: lg.With("replica", addr),
			Secret: secret, TLS: serverTLS, MandatoryTLS: *mandatoryTLS, RaftLogDurability: *durability,
		})
		if err != nil {
			return abandon(err)
		}
		addr = r.Addr()
		replicaAddrs = append(replicaAddrs, addr)
		replicaServers = append(replicaServers, namedServer{"replica " + addr, r})
	}
	// Replica servers stop first, while the metas still answer their last reports.
	ctx, stop := launch(ctx, lg, replicaServers, metaServers)
	fmt.Fprintf(stdout, "onebox: metas %s, replica servers %s, data in %s\n",
		strings.Join(metaAddrs, ","), strings.Join(replicaAddrs, ","), *data)

	began := time.Now()
	if err := waitTablesReady(ctx, metaAddrs[0], clientTLS, stdout); err == nil {
		fmt.Fprintf(stdout, "onebox: ready in %.1fs; tables temp (8 partitions) and stat (4); press Ctrl-C to stop\n", time.Since(began).Seconds())
		scheme := "http"
		if *mandatoryTLS {
			scheme = "https"
		}
		fmt.Fprintf(stdout, "onebox: web console at %s://%s/console\n", scheme, metaAddrs[0])
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "onebox: stopping")
	return stop()
}

// remoteFlag is onebox's repeatable --remote NAME=META[,META...].
type remoteFlag map[string]string

func (f *remoteFlag) String() string { return fmt.Sprint(map[string]string(*f)) }

func (f *remoteFlag) Set(v string) error {
	name, metas, ok := strings.Cut(v, "=")
	if !ok || name == "" || metas == "" {
		return fmt.Errorf("want NAME=META[,META...], got %q", v)
	}
	if *f == nil {
		*f = remoteFlag{}
	}
	(*f)[name] = metas
	return nil
}

// peers are the duplication peers of cluster self: the remotes, and ids 1, 2, ... for self
// and the remotes in name order.
func (f remoteFlag) peers(self string) (*dup.Peers, error) {
	if _, ok := f[self]; ok {
		return nil, fmt.Errorf("--remote %s names this cluster", self)
	}
	names := append(slices.Collect(maps.Keys(f)), self)
	slices.Sort(names)
	group := map[string]string{}
	for i, n := range names {
		group[n] = strconv.Itoa(i + 1)
	}
	p, err := dup.NewPeers(f, group)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// waitTablesReady polls the meta leader until every partition of the onebox tables has a
// primary, printing progress. It starts at metaAddr and follows the leader hint of a meta
// that is not the leader.
func waitTablesReady(ctx context.Context, metaAddr string, clientTLS *tls.Config, stdout io.Writer) error {
	adm, err := admin.New(admin.Config{MetaServers: []string{metaAddr}, TLS: clientTLS})
	if err != nil {
		return err
	}
	defer adm.Close()
	last := ""
	for {
		ready, status := 0, ""
		for _, t := range oneboxTables {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			cfg, err := adm.QueryConfig(cctx, t.name)
			cancel()
			n := 0
			if err == nil {
				for _, p := range cfg.Partitions {
					if p.Primary != "" && p.Ballot >= 1 {
						n++
					}
				}
			}
			if n == int(t.partitions) {
				ready++
			}
			status += fmt.Sprintf(" %s %d/%d", t.name, n, t.partitions)
		}
		if status != last {
			fmt.Fprintf(stdout, "onebox: partitions with a primary:%s\n", status)
			last = status
		}
		if ready == len(oneboxTables) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
