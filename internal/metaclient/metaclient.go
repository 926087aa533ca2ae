// Package metaclient sends meta RPCs to the leader of a group of meta servers. It is the one
// meta client of gopegasus: the Go client, the admin client (and through it the shell and the
// onebox) and the replica servers all use it.
//
// A [Client] knows a set of meta addresses and which of them it takes for the leader. [Call]
// sends a request there first. The answer is read through a status function that gives the
// reply's error code and, from a meta that is not the leader, the leader it names
// (protocol.md §6.2):
//
//   - ERR_OK: the call succeeded; the meta that answered is the leader from now on.
//   - ERR_FORWARD_TO_OTHERS: not the leader. A named leader is asked next (and added to the
//     set when new). Configuration queries name it as their one partition's primary
//     ([QueryConfigStatus]), replica servers' syncs in a field of their own; the admin replies
//     name none, so the client then asks that meta a configuration query, whose refusal does.
//   - ERR_SERVICE_NOT_ACTIVE, ERR_UNDER_RECOVERY, ERR_TIMEOUT, ERR_BUSY (in the reply or its
//     envelope), a transport failure, or no answer from the presumed leader within
//     [Config].AttemptTimeout: this meta cannot answer now. Every other known meta is asked
//     at once; the first real answer wins and its meta becomes the leader. A refusal naming a
//     leader the client did not know adds it to the set for the next round.
//   - any other error: final, returned at once with the reply.
//
// When a round finds no meta to answer, the client waits (50 ms, doubling up to 1 s) and
// starts again, until the context ends: the budget of a call is its context's deadline.
//
// Requests may thus reach more than one meta and the same meta more than once, so they must be
// safe to repeat; the meta RPCs are (only the leader acts, and a repeated create or drop
// answers as the first one did when the request asks for success if the table exists or is
// missing).
package metaclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// DefaultAttemptTimeout is the default of [Config].AttemptTimeout. The official go-client
// moves on after 1 s (protocol.md §6.2); a little more spares a loaded leader.
const DefaultAttemptTimeout = 2 * time.Second

// Retry backoff between rounds.
const (
	backoffMin = 50 * time.Millisecond
	backoffMax = time.Second
)

// errClosed is the error of calls on a closed Client.
var errClosed = fmt.Errorf("metaclient: %w", rpc.ErrClosed)

// Config configures a [Client]. Zero values mean the documented defaults.
type Config struct {
	// Addrs lists the meta servers as "host:port"; the first is taken for the leader until a
	// call learns better. They are used as given (callers check them); at least one is
	// required.
	Addrs []string
	// Pool supplies the connections, shared with the caller's other uses (the Go client's
	// replica connections). Its owner closes it, after Close. Default: a pool of the
	// client's own, made with ConnConfig and closed by Close.
	Pool *rpc.Pool
	// ConnConfig configures the connections of the client's own pool; unused with Pool.
	ConnConfig rpc.ConnConfig
	// AttemptTimeout bounds the attempt at the presumed leader when other metas are known,
	// before they are asked. Default [DefaultAttemptTimeout].
	AttemptTimeout time.Duration
	// MaxRounds bounds how many rounds a call makes (a round asks the presumed leader, the
	// leader it names, then every other meta) before it fails with the last error. Default 0:
	// no bound, calls go on until their context ends.
	MaxRounds int
	// Logger receives a warning for each round that found no meta to answer. Default: discard.
	Logger *slog.Logger
}

// Client sends meta RPCs to the meta leader. It is safe for concurrent use.
type Client struct {
	cfg     Config
	pool    *rpc.Pool
	ownPool bool
	done    chan struct{} // closed by Close
	close   sync.Once

	mu struct {
		sync.Mutex
		addrs  []string
		leader int // index in addrs
	}
}

// New returns a client of the meta servers cfg lists. It does not connect. It panics when cfg
// lists none: its callers require one in their own configurations.
func New(cfg Config) *Client {
	if len(cfg.Addrs) == 0 {
		panic("metaclient: no meta servers")
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, pool: cfg.Pool, done: make(chan struct{})}
	if c.pool == nil {
		c.pool, c.ownPool = rpc.NewPool(cfg.ConnConfig), true
	}
	c.mu.addrs = slices.Clone(cfg.Addrs)
	return c
}

// Close ends the calls waiting between rounds and closes the client's own connections (not
// those of a [Config].Pool); later calls fail with an error wrapping [rpc.ErrClosed]. It is
// idempotent and returns nil.
func (c *Client) Close() error {
	c.close.Do(func() { close(c.done) })
	if c.ownPool {
		return c.pool.Close() // idempotent
	}
	return nil
}

func (c *Client) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Addrs returns the meta servers the client knows: those configured, then those it learnt.
func (c *Client) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.mu.addrs)
}

// Leader returns the meta server the client takes for the leader.
func (c *Client) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.addrs[c.mu.leader]
}

// setLeader makes addr the leader, adding it to the set if it is new.
func (c *Client) setLeader(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.mu.addrs, addr)
	if i < 0 {
		c.mu.addrs = append(c.mu.addrs, addr)
		i = len(c.mu.addrs) - 1
	}
	c.mu.leader = i
}

// learn adds addr to the set if it is new, without making it the leader.
func (c *Client) learn(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.mu.addrs, addr) {
		c.mu.addrs = append(c.mu.addrs, addr)
	}
}

func (c *Client) snapshot() (addrs []string, leader string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.mu.addrs), c.mu.addrs[c.mu.leader]
}

// sleep waits d, or until ctx ends or the client closes.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return errClosed
	}
}

// Status is what a reply says about its meta's answer.
type Status struct {
	// Err is nil when the meta served the call; otherwise the reply's error code as
	// [wire.CodeError] gives it (a [wire.Code], or [wire.UnknownCodeError]), or why the reply
	// could not be read.
	Err error
	// Leader is the "host:port" of the leader a meta refusing with ERR_FORWARD_TO_OTHERS
	// names, or "".
	Leader string
	// Final makes Err the call's answer even when its code usually means the meta cannot
	// serve now (ERR_BUSY of a partition split already running is the table's state).
	Final bool
}

// CodeStatus is the status of a reply whose only word on its answer is its err field.
func CodeStatus(code idl.ErrorCode) Status {
	return Status{Err: wire.CodeError(string(code))}
}

// QueryConfigStatus is the status of a configuration query's reply: a refusal names the
// leader as the primary of its one partition (protocol.md §6.2).
func QueryConfigStatus(r *idl.QueryCfgResponse) Status {
	st := CodeStatus(r.Err)
	if errors.Is(st.Err, wire.ErrForwardToOthers) && len(r.Partitions) > 0 && !r.Partitions[0].Primary.IsZero() {
		st.Leader = r.Partitions[0].Primary.String()
	}
	return st
}

// QueryConfig asks for the configuration of every partition of table (the request the
// official go-client sends). Its error is as [Call]'s.
func (c *Client) QueryConfig(ctx context.Context, table string) (*idl.QueryCfgResponse, error) {
	req := idl.QueryCfgRequest{AppName: table, PartitionIndices: []int32{}}
	return Call(ctx, c, idl.RPCQueryConfig, &req, QueryConfigStatus)
}

// Reply is the pointer type of a reply struct R.
type Reply[R any] interface {
	*R
	idl.Value
}

// Call sends the meta RPC name with args to the meta leader, as the package doc says, and
// returns the reply, decoded into a new R, of the meta that answered. status reads a
// reply's error code and leader hint; it may run on several goroutines at once.
//
// The error is nil when status found none. A final reply error is returned wrapped (with
// the meta's address) together with its reply. Otherwise the reply is nil and the error
// wraps the context's error, after the last error met, when ctx ended before a meta
// answered; the last error when [Config].MaxRounds ran out; or [rpc.ErrClosed] when the
// client (or its pool) is closed.
func Call[R any, P Reply[R]](ctx context.Context, c *Client, name string, args idl.Value, status func(P) Status) (P, error) {
	backoff := backoffMin
	var lastErr error
	for round := 1; ; round++ {
		if c.closed() {
			return nil, errClosed
		}
		addrs, leader := c.snapshot()
		if err := ctx.Err(); err != nil {
			return nil, giveUp(name, addrs, err, lastErr)
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if len(addrs) > 1 {
			actx, cancel = context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		}
		a := attempt(actx, c, leader, name, args, status)
		cancel()
		if a.final {
			return a.reply, a.err
		}
		lastErr = a.err
		tried := []string{leader}
		if a.leader != "" && a.leader != leader {
			c.setLeader(a.leader)
			tried = append(tried, a.leader)
			if a = attempt(ctx, c, a.leader, name, args, status); a.final {
				return a.reply, a.err
			}
			lastErr = a.err
		}
		var others []string
		for _, addr := range addrs {
			if !slices.Contains(tried, addr) {
				others = append(others, addr)
			}
		}
		if len(others) > 0 {
			if a = askAll(ctx, c, others, name, args, status); a.final {
				c.setLeader(a.addr)
				return a.reply, a.err
			}
			lastErr = a.err
		}
		if err := ctx.Err(); err != nil {
			return nil, giveUp(name, addrs, err, lastErr)
		}
		if c.cfg.MaxRounds > 0 && round >= c.cfg.MaxRounds {
			return nil, fmt.Errorf("%s to meta servers %v: %w", name, addrs, lastErr)
		}
		c.cfg.Logger.Warn("meta servers unavailable, retrying", "rpc", name, "err", lastErr)
		if err := c.sleep(ctx, backoff); err != nil {
			if errors.Is(err, rpc.ErrClosed) {
				return nil, err
			}
			return nil, giveUp(name, addrs, err, lastErr)
		}
		backoff = min(2*backoff, backoffMax)
	}
}

func giveUp(name string, addrs []string, ctxErr, lastErr error) error {
	if lastErr == nil {
		return fmt.Errorf("%s to meta servers %v: %w", name, addrs, ctxErr)
	}
	return fmt.Errorf("%s to meta servers %v: %w (last error: %w)", name, addrs, ctxErr, lastErr)
}

// outcome is the result of asking one meta.
type outcome[P any] struct {
	addr   string
	reply  P
	err    error
	final  bool   // the call is over: success or an error no other meta can change
	leader string // the leader the meta named, when not final
}

// attempt asks the meta at addr once.
func attempt[R any, P Reply[R]](ctx context.Context, c *Client, addr, name string, args idl.Value, status func(P) Status) outcome[P] {
	cn, err := c.pool.Get(addr)
	if err != nil {
		return outcome[P]{addr: addr, err: errClosed, final: true}
	}
	reply := P(new(R))
	if err := cn.Call(ctx, wire.Header{}, name, args, reply); err != nil {
		// A code in the envelope is the meta's answer; anything else is the way there.
		var unknown wire.UnknownCodeError
		code, isCode := wire.AsCode(err)
		final := errors.Is(err, rpc.ErrClosed) || errors.As(err, &unknown) || isCode && !notServing(code)
		return outcome[P]{addr: addr, err: fmt.Errorf("meta %s: %w", addr, err), final: final}
	}
	st := status(reply)
	if st.Err == nil {
		return outcome[P]{addr: addr, reply: reply, final: true}
	}
	err = fmt.Errorf("meta %s: %w", addr, st.Err)
	code, isCode := wire.AsCode(st.Err)
	if !isCode || !notServing(code) || st.Final {
		return outcome[P]{addr: addr, reply: reply, err: err, final: true}
	}
	o := outcome[P]{addr: addr, err: err}
	if code == wire.ErrForwardToOthers {
		o.leader = st.Leader
		if o.leader == "" && name != idl.RPCQueryConfig {
			o.leader = probeLeader(ctx, cn)
		}
	}
	return o
}

// notServing reports whether a meta answering code cannot serve the call now, while another
// meta, or this one later, may.
func notServing(code wire.Code) bool {
	switch code {
	case wire.ErrForwardToOthers, wire.ErrServiceNotActive, wire.ErrUnderRecovery, wire.ErrTimeout, wire.ErrBusy:
		return true
	}
	return false
}

// probeLeader asks a meta that refused a call without naming the leader for the leader, with
// a configuration query, whose refusal names it. It returns "" when it learns none.
func probeLeader(ctx context.Context, cn *rpc.Conn) string {
	var resp idl.QueryCfgResponse
	if err := cn.Call(ctx, wire.Header{}, idl.RPCQueryConfig, &idl.QueryCfgRequest{PartitionIndices: []int32{}}, &resp); err != nil {
		return ""
	}
	return QueryConfigStatus(&resp).Leader
}

// askAll asks every meta of addrs at once and returns the first final outcome, or, when
// there is none, one whose error joins all of theirs. Leaders they name are learnt.
func askAll[R any, P Reply[R]](ctx context.Context, c *Client, addrs []string, name string, args idl.Value, status func(P) Status) outcome[P] {
	ctx, cancel := context.WithCancel(ctx)
	results := make(chan outcome[P], len(addrs))
	var wg sync.WaitGroup
	defer func() {
		cancel() // the others' answers are not needed any more
		wg.Wait()
	}()
	for _, addr := range addrs {
		wg.Go(func() { results <- attempt(ctx, c, addr, name, args, status) })
	}
	var errs []error
	for range addrs {
		o := <-results
		if o.final {
			return o
		}
		if o.leader != "" {
			c.learn(o.leader)
		}
		errs = append(errs, o.err)
	}
	return outcome[P]{err: errors.Join(errs...)}
}
