package pegasus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gopegasus/pegasus/internal/certs"
	"github.com/gopegasus/pegasus/internal/metaclient"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/sasl"
)

// DefaultTimeout bounds an operation whose context has no deadline, unless
// [Config.DefaultTimeout] says otherwise.
const DefaultTimeout = 10 * time.Second

// Config is the configuration of a [Client]. Only MetaServers is required; every other field's
// zero value means its documented default. The extra fields are not part of the JSON form.
type Config struct {
	// MetaServers lists the meta servers as "host:port". Any one of them is enough to find
	// the leader, but listing all of them lets the client go on when some are down.
	MetaServers []string `json:"meta_servers"`

	// DefaultTimeout bounds an operation (including its retries) whose context has no
	// deadline. Default [DefaultTimeout].
	DefaultTimeout time.Duration `json:"-"`
	// DialTimeout bounds connecting to one server. Default 3 s.
	DialTimeout time.Duration `json:"-"`
	// Logger receives warnings about retries and configuration refreshes. Default: discard.
	Logger *slog.Logger `json:"-"`
	// Registerer, if set, gets the client's metrics: a latency histogram
	// (pegasus_client_operation_duration_seconds) and an error counter
	// (pegasus_client_operation_errors_total), both labelled by table and operation. Nothing
	// global is registered and no listener is started. Several clients may share one
	// Registerer.
	Registerer prometheus.Registerer `json:"-"`
	// TLS, if set, makes every connection to the cluster's servers TLS (gopegasus servers
	// with TLS on the client port; Apache Pegasus servers have none). Each server's
	// certificate is verified against TLS.RootCAs (nil: the system's roots) for
	// TLS.ServerName, or for the host of the server's address when that is empty (an IP
	// address against the certificate's IP addresses). A certificate in TLS.Certificates
	// is the client's identity to servers that verify client certificates (its subject's
	// common name is the user they see). [TLSConfig] makes one from PEM files. Default
	// nil: plaintext.
	TLS *tls.Config `json:"-"`
	// Kerberos, if set, authenticates every connection of the client with Kerberos (SASL
	// GSSAPI through RPC_NEGOTIATION, as Pegasus's Java client does), for clusters with
	// [security] enable_auth: its user is then the one the servers' ACLs know. New logs in
	// to the KDC. A server with authentication off is spoken to unauthenticated. Default:
	// none, every connection is anonymous (as with the official Go client).
	Kerberos *Kerberos `json:"-"`
}

// TLSConfig returns a TLS configuration for [Config].TLS from PEM files, with the meaning
// of etcdctl's --cacert, --cert and --key: caFile is the CA the servers' certificates
// are verified against (empty: the system's roots); certFile and keyFile, both or
// neither, are the client's certificate and key.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg, err := certs.ClientConfig(caFile, certFile, keyFile)
	if err != nil {
		return nil, invalidArg("%v", err)
	}
	return cfg, nil
}

// Kerberos is how a client authenticates with Kerberos: its principal with a keytab, or a
// credential cache made by kinit; the krb5.conf naming the KDC; and the servers' service
// principal (default pegasus/<the host of each server's address>).
type Kerberos = sasl.ClientConfig

// Client is a connection to one Pegasus cluster. It is safe for concurrent use; one Client per
// cluster is enough for a whole program.
type Client interface {
	// Close closes every connection of the client. Calls in progress fail, and later calls
	// fail with an error wrapping [ErrClientClosed]. Close is idempotent and returns nil.
	Close() error

	// OpenTable returns the connector of the table tableName. The first open of a table
	// queries its configuration from the meta servers; later opens return the same shared
	// connector. It fails (wrapping [ErrObjectNotFound]) when the table does not exist.
	OpenTable(ctx context.Context, tableName string) (TableConnector, error)
}

// NewClient returns a new client for cfg. It panics if the configured addresses are illegal
// (no meta server, or one that is not "host:port"); [New] returns that as an error instead.
// It does not connect: the first OpenTable does.
func NewClient(cfg Config) Client {
	c, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return c
}

// New returns a new client for cfg, or an error wrapping [ErrInvalidArgument] when an address
// is illegal. It does not connect: the first OpenTable does.
func New(cfg Config) (Client, error) {
	if len(cfg.MetaServers) == 0 {
		return nil, invalidArg("no meta servers configured")
	}
	for _, a := range cfg.MetaServers {
		if err := checkAddr(a); err != nil {
			return nil, err
		}
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = DefaultTimeout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = rpc.DefaultDialTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &client{
		cfg:  cfg,
		lg:   cfg.Logger,
		done: make(chan struct{}),
	}
	cc := rpc.ConnConfig{DialTimeout: cfg.DialTimeout, CallTimeout: cfg.DefaultTimeout, TLS: cfg.TLS}
	if cfg.Kerberos != nil {
		krb, err := sasl.NewClient(*cfg.Kerberos)
		if err != nil {
			return nil, fmt.Errorf("pegasus: %w", err)
		}
		c.krb, cc.Auth = krb, krb
	}
	c.pool = rpc.NewPool(cc)
	c.mu.tables = make(map[string]*openEntry)
	c.meta = newMetaClient(c)
	if cfg.Registerer != nil {
		m, err := newMetrics(cfg.Registerer)
		if err != nil {
			return nil, err
		}
		c.metrics = m
	}
	return c, nil
}

// checkAddr accepts "host:port" with a non-empty host and a port in 1..65535.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return invalidArg("meta server address %q: %v", a, err)
	}
	p, err := strconv.Atoi(port)
	if host == "" || err != nil || p <= 0 || p > 65535 {
		return invalidArg("meta server address %q is not host:port", a)
	}
	return nil
}

type client struct {
	cfg     Config
	lg      *slog.Logger
	meta    *metaclient.Client
	metrics *metrics
	done    chan struct{} // closed by Close
	pool    *rpc.Pool     // one connection per server, shared by every table
	krb     *sasl.Client  // authenticates the connections, or nil

	mu struct {
		sync.Mutex
		closed bool
		tables map[string]*openEntry
	}
}

// openEntry is a table being opened or open; concurrent opens of one name share it.
type openEntry struct {
	ready chan struct{} // closed when t or err is set
	t     *table
	err   error
}

var _ Client = (*client)(nil)

// conn returns the shared connection to addr, creating it on first use.
func (c *client) conn(addr string) (*rpc.Conn, error) {
	cn, err := c.pool.Get(addr)
	if err != nil {
		return nil, ErrClientClosed
	}
	return cn, nil
}

func (c *client) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Close implements [Client].
func (c *client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	close(c.done)
	c.mu.Unlock()
	_ = c.meta.Close()
	err := c.pool.Close()
	if c.krb != nil {
		c.krb.Close()
	}
	return err
}

// OpenTable implements [Client].
func (c *client) OpenTable(ctx context.Context, tableName string) (TableConnector, error) {
	if tableName == "" {
		return nil, opError(OpQueryConfig, invalidArg("empty table name"))
	}
	for {
		c.mu.Lock()
		if c.mu.closed {
			c.mu.Unlock()
			return nil, opError(OpQueryConfig, ErrClientClosed)
		}
		e, ok := c.mu.tables[tableName]
		if !ok {
			e = &openEntry{ready: make(chan struct{})}
			c.mu.tables[tableName] = e
			c.mu.Unlock()
			e.t, e.err = c.openTable(ctx, tableName)
			if e.err != nil {
				c.mu.Lock()
				delete(c.mu.tables, tableName) // a later open tries again
				c.mu.Unlock()
			}
			close(e.ready)
			if e.err != nil {
				return nil, e.err
			}
			return e.t, nil
		}
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, opError(OpQueryConfig, fmt.Errorf("open table %q: %w", tableName, ctx.Err()))
		}
		if e.err == nil {
			return e.t, nil
		}
		// The open we waited for failed (perhaps on its own context): try ourselves.
	}
}

func (c *client) openTable(ctx context.Context, name string) (*table, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	t := newTable(c, name)
	start := time.Now()
	if _, err := t.loadConfig(ctx); err != nil {
		c.observe(t, OpQueryConfig, start, err)
		return nil, opError(OpQueryConfig, err)
	}
	c.observe(t, OpQueryConfig, start, nil)
	return t, nil
}

// withTimeout gives ctx the default timeout when it has no deadline. The cancel function must
// be called.
func (c *client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.DefaultTimeout)
}

func (c *client) observe(t *table, op OpType, start time.Time, err error) {
	if c.metrics == nil {
		return
	}
	t.observe(op, start, err)
}

// sleep waits d, or until ctx ends or the client closes.
func (c *client) sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClientClosed
	}
}

// mapClosed turns the connection-level "closed" error into ErrClientClosed.
func mapClosed(err error) error {
	if errors.Is(err, rpc.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClientClosed, err)
	}
	return err
}
