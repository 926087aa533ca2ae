package pegasus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// metaAttemptTimeout bounds the first attempt of a meta call at the presumed leader before the
// other meta servers are tried (protocol.md §6.2: the go-client waits 1 s).
const metaAttemptTimeout = 2 * time.Second

// metaSession sends configuration queries to the meta servers. It remembers which one is the
// leader: calls go there first; when it fails, or answers ERR_FORWARD_TO_OTHERS, a leader hint
// in the reply is followed, else every other meta server is asked at once and the first
// answer that is not a forward wins (protocol.md §6.2).
type metaSession struct {
	c *client

	mu struct {
		sync.Mutex
		addrs  []string
		leader int
	}
}

func newMetaSession(c *client, addrs []string) *metaSession {
	m := &metaSession{c: c}
	m.mu.addrs = slices.Clone(addrs)
	return m
}

// errRetryMeta marks a meta answer that is no answer: not the leader, or not ready yet.
var errRetryMeta = errors.New("meta server cannot answer now")

// queryConfig returns the leader's answer to query_cfg for table name (whatever its err
// field holds, except a forward). It keeps trying until ctx ends.
func (m *metaSession) queryConfig(ctx context.Context, name string) (*idl.QueryCfgResponse, error) {
	backoff := 50 * time.Millisecond
	var lastErr error
	for {
		m.mu.Lock()
		addrs := slices.Clone(m.mu.addrs)
		leader := addrs[m.mu.leader]
		m.mu.Unlock()

		actx, cancel := ctx, context.CancelFunc(func() {})
		if len(addrs) > 1 {
			actx, cancel = context.WithTimeout(ctx, metaAttemptTimeout)
		}
		resp, err := m.try(actx, leader, name)
		cancel()
		if err == nil {
			return resp, nil
		}
		lastErr = err
		tried := []string{leader}
		if hint := leaderHint(resp); hint != "" && !slices.Contains(tried, hint) {
			m.setLeader(hint)
			tried = append(tried, hint)
			if resp, err = m.try(ctx, hint, name); err == nil {
				return resp, nil
			}
			lastErr = err
		}
		var others []string
		for _, a := range addrs {
			if !slices.Contains(tried, a) {
				others = append(others, a)
			}
		}
		if len(others) > 0 {
			addr, resp, err := m.tryAll(ctx, others, name)
			if err == nil {
				m.setLeader(addr)
				return resp, nil
			}
			lastErr = err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("query meta servers %v: %w (last error: %w)", addrs, ctx.Err(), lastErr)
		}
		m.c.lg.Warn("meta servers unavailable, retrying", "table", name, "err", lastErr)
		if err := m.c.sleep(ctx, backoff); err != nil {
			return nil, fmt.Errorf("query meta servers %v: %w (last error: %w)", addrs, err, lastErr)
		}
		backoff = min(backoff*2, time.Second)
	}
}

// try asks one meta server. It returns an error wrapping errRetryMeta (and the reply, for its
// leader hint) when that server is not the one to answer.
func (m *metaSession) try(ctx context.Context, addr, name string) (*idl.QueryCfgResponse, error) {
	cn, err := m.c.conn(addr)
	if err != nil {
		return nil, err
	}
	req := idl.QueryCfgRequest{AppName: name, PartitionIndices: []int32{}}
	resp := new(idl.QueryCfgResponse)
	if err := cn.Call(ctx, wire.Header{}, idl.RPCQueryConfig, &req, resp); err != nil {
		return nil, mapClosed(err)
	}
	switch err := wire.CodeError(string(resp.Err)); {
	case errors.Is(err, wire.ErrForwardToOthers), errors.Is(err, wire.ErrServiceNotActive),
		errors.Is(err, wire.ErrUnderRecovery):
		return resp, fmt.Errorf("meta %s: %w: %w", addr, errRetryMeta, err)
	}
	return resp, nil
}

// tryAll asks every address at once and returns the first real answer.
func (m *metaSession) tryAll(ctx context.Context, addrs []string, name string) (string, *idl.QueryCfgResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		addr string
		resp *idl.QueryCfgResponse
		err  error
	}
	results := make(chan result, len(addrs))
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Go(func() {
			resp, err := m.try(ctx, a, name)
			results <- result{a, resp, err}
		})
	}
	defer wg.Wait()
	var errs []error
	for range addrs {
		r := <-results
		if r.err == nil {
			return r.addr, r.resp, nil
		}
		if hint := leaderHint(r.resp); hint != "" {
			m.learn(hint) // a leader we did not know: the next round asks it
		}
		errs = append(errs, r.err)
	}
	return "", nil, errors.Join(errs...)
}

// leaderHint returns the leader address a forwarding meta server put in its reply, if any.
func leaderHint(resp *idl.QueryCfgResponse) string {
	if resp == nil || len(resp.Partitions) == 0 || resp.Err != "ERR_FORWARD_TO_OTHERS" {
		return ""
	}
	if p := resp.Partitions[0]; !p.Primary.IsZero() {
		return p.Primary.String()
	}
	return ""
}

// setLeader makes addr the leader, adding it to the list if it is new.
func (m *metaSession) setLeader(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.Index(m.mu.addrs, addr)
	if i < 0 {
		m.mu.addrs = append(m.mu.addrs, addr)
		i = len(m.mu.addrs) - 1
	}
	m.mu.leader = i
}

func (m *metaSession) learn(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.mu.addrs, addr) {
		m.mu.addrs = append(m.mu.addrs, addr)
	}
}
