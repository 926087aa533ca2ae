package rpc

import "sync"

// Pool shares one [Conn] per server address among its users: every table of a client
// talks to a replica server over the same pipelined connection. It is safe for concurrent
// use.
type Pool struct {
	cfg ConnConfig
	mu  struct {
		sync.Mutex
		closed bool
		conns  map[string]*Conn
	}
}

// NewPool returns an empty pool whose connections use cfg.
func NewPool(cfg ConnConfig) *Pool {
	p := &Pool{cfg: cfg}
	p.mu.conns = make(map[string]*Conn)
	return p
}

// Get returns the connection to addr, creating it (without dialling) on first use. It
// returns [ErrClosed] once the pool is closed.
func (p *Pool) Get(addr string) (*Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return nil, ErrClosed
	}
	c := p.mu.conns[addr]
	if c == nil {
		c = NewConn(addr, p.cfg)
		p.mu.conns[addr] = c
	}
	return c, nil
}

// Close closes every connection of the pool and waits for their goroutines; later Gets
// fail. Closing twice is harmless.
func (p *Pool) Close() error {
	p.mu.Lock()
	conns := p.mu.conns
	p.mu.conns = nil
	p.mu.closed = true
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}
