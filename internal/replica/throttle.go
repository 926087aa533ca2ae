package replica

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metric"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/throttle"
	"github.com/gopegasus/pegasus/internal/wire"
)

// denyHold bounds how long a request refused by replica.deny_client_request = timeout*...
// is held when its header carries no client timeout: Pegasus never answers it, we answer
// ERR_TIMEOUT once the client has given up.
const denyHold = 10 * time.Second

// throttleCounters count the requests the throttling envs delayed or rejected, and those
// replica.deny_client_request refused, on this server.
type throttleCounters struct {
	readDelayed, readRejected, writeDelayed, writeRejected, denied atomic.Int64
}

// throttleState is a partition's throttling controllers, made from its table's envs and
// remade only when an env's value or the partition count changes (the window counts and the
// token bucket carry on across config syncs).
type throttleState struct {
	// cur is what requests read without a lock: the set made for a table info.
	cur  atomic.Pointer[throttleCache]
	mu   sync.Mutex
	info *tableInfo
	set  *throttleSet // never changed once published: a new one replaces it
	keys [5]string
}

type throttleCache struct {
	info *tableInfo
	set  *throttleSet
}

type throttleSet struct {
	write, writeSize, read *throttle.Controller
	readSize               *throttle.Bucket
	deny                   throttle.Deny
	any                    bool
}

// throttles returns the partition's controllers for its current table info.
func (p *partition) throttles() *throttleSet {
	ti := p.table()
	st := &p.throttle
	if c := st.cur.Load(); c != nil && c.info == ti {
		return c.set
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if ti == nil || st.info == ti {
		if st.set == nil {
			return &throttleSet{}
		}
		return st.set
	}
	st.info = ti
	count := int(ti.partitionCount)
	key := func(i int, env string) (string, bool) {
		v, ok := ti.envs[env]
		k := v
		if ok {
			k = v + "\x00" + strconv.Itoa(count)
		}
		changed := k != st.keys[i]
		st.keys[i] = k
		return v, ok && changed
	}
	controller := func(i int, env string, old *throttle.Controller) *throttle.Controller {
		v, changed := key(i, env)
		if _, ok := ti.envs[env]; !ok {
			return nil
		}
		if !changed {
			return old
		}
		sp, err := throttle.Parse(v)
		if err != nil {
			p.lg.Warn("ignoring throttling env", "env", env, "value", v, "err", err)
			return nil
		}
		return throttle.NewController(sp, count)
	}
	s := &throttleSet{}
	if st.set != nil {
		*s = *st.set
	}
	s.write = controller(0, throttle.EnvWrite, s.write)
	s.writeSize = controller(1, throttle.EnvWriteBySize, s.writeSize)
	s.read = controller(2, throttle.EnvRead, s.read)
	if v, changed := key(3, throttle.EnvReadBySize); changed {
		s.readSize = nil
		if rate, err := throttle.ParseBucket(v); err == nil {
			s.readSize = throttle.NewBucket(rate, count)
		} else {
			p.lg.Warn("ignoring throttling env", "env", throttle.EnvReadBySize, "value", v, "err", err)
		}
	} else if _, ok := ti.envs[throttle.EnvReadBySize]; !ok {
		s.readSize = nil
	}
	s.deny = throttle.Deny{}
	if v, ok := ti.envs[throttle.EnvDeny]; ok {
		if d, err := throttle.ParseDeny(v); err == nil {
			s.deny = d
		}
	}
	s.any = s.write != nil || s.writeSize != nil || s.read != nil || s.readSize != nil
	st.set = s
	st.cur.Store(&throttleCache{info: ti, set: s})
	return s
}

// denying applies replica.deny_client_request to the requests of a client operation as
// they arrive, before they could be forwarded to another replica (ERR_INVALID_STATE must
// reach the client, for it to refresh its routing, as Pegasus's reconfig form intends).
func (s *Server) denying(name string, serve rpc.HandlerFunc) rpc.HandlerFunc {
	return s.atPartition(name, serve, func(ctx context.Context, req *rpc.Request, p *partition, isWrite bool) (idl.Value, wire.Code) {
		d := p.throttles().deny
		if !(isWrite && d.Writes) && !(!isWrite && d.Reads) {
			return serve(ctx, req)
		}
		s.throttleStats.denied.Add(1)
		if !d.Timeout {
			return nil, wire.ErrInvalidState
		}
		timeout := time.Duration(req.Header.ClientTimeout) * time.Millisecond
		if timeout <= 0 {
			timeout = denyHold
		}
		hold(ctx, timeout)
		return nil, wire.ErrTimeout
	})
}

// atPartition wraps serve, the handler of client operation name, with check, which gets
// each request with the partition it is for and whether the operation writes; requests for
// no partition hosted here go to serve at once, and other RPCs are served as they are.
func (s *Server) atPartition(name string, serve rpc.HandlerFunc,
	check func(ctx context.Context, req *rpc.Request, p *partition, isWrite bool) (idl.Value, wire.Code)) rpc.HandlerFunc {
	o, ok := opOf(name)
	if !ok {
		return serve
	}
	isWrite := o.isWrite()
	return func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		p := s.partition(idl.GPID{AppID: req.Header.AppID, PartitionIndex: req.Header.PartitionIndex})
		if p == nil {
			return serve(ctx, req)
		}
		return check(ctx, req, p, isWrite)
	}
}

// throttled applies the table's throttling envs to the requests of a client operation,
// before serve runs them: at the replica that serves them (a forwarded request at the
// leader).
func (s *Server) throttled(name string, serve rpc.HandlerFunc) rpc.HandlerFunc {
	return s.atPartition(name, serve, func(ctx context.Context, req *rpc.Request, p *partition, isWrite bool) (idl.Value, wire.Code) {
		set := p.throttles()
		if !set.any {
			return serve(ctx, req)
		}
		timeout := time.Duration(req.Header.ClientTimeout) * time.Millisecond
		now := time.Now()
		act, wait := throttle.Pass, time.Duration(0)
		apply := func(c *throttle.Controller, units int64) {
			if c == nil || act == throttle.Reject {
				return
			}
			a, d := c.Control(now, timeout, units)
			if a > act || (a == act && d > wait) {
				act, wait = a, d
			}
		}
		if isWrite {
			apply(set.write, 1)
			apply(set.writeSize, int64(req.BodySize))
		} else {
			if set.readSize != nil && !set.readSize.Allow(now) {
				s.throttleStats.readRejected.Add(1)
				return nil, wire.ErrBusy
			}
			apply(set.read, 1)
		}
		switch act {
		case throttle.Reject:
			if isWrite {
				s.throttleStats.writeRejected.Add(1)
			} else {
				s.throttleStats.readRejected.Add(1)
			}
			hold(ctx, wait)
			return nil, wire.ErrBusy
		case throttle.Delay:
			if isWrite {
				s.throttleStats.writeDelayed.Add(1)
			} else {
				s.throttleStats.readDelayed.Add(1)
			}
			if !hold(ctx, wait) {
				return nil, wire.ErrTimeout
			}
		}
		reply, code := serve(ctx, req)
		if !isWrite && set.readSize != nil && code == wire.OK {
			set.readSize.Take(time.Now(), replyBytes(reply))
		}
		return reply, code
	})
}

// hold waits d, or until ctx ends (false).
func hold(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// overloadMetrics are the server's throttling counters and its connection bounds' counters.
func (s *Server) overloadMetrics() []metric.Metric {
	t := &s.throttleStats
	rm := s.rpc.Metrics()
	return []metric.Metric{
		metric.CounterOf("read_throttling_delay_count", "Requests", "The reads replica.read_throttling held before serving them", t.readDelayed.Load()),
		metric.CounterOf("read_throttling_reject_count", "Requests", "The reads refused with ERR_BUSY by replica.read_throttling or replica.read_throttling_by_size", t.readRejected.Load()),
		metric.CounterOf("write_throttling_delay_count", "Requests", "The writes replica.write_throttling or replica.write_throttling_by_size held before serving them", t.writeDelayed.Load()),
		metric.CounterOf("write_throttling_reject_count", "Requests", "The writes refused with ERR_BUSY by replica.write_throttling or replica.write_throttling_by_size", t.writeRejected.Load()),
		metric.CounterOf("scanner_contexts_evicted_per_connection", "Contexts", "The scanner contexts cleared for max_scanner_contexts_per_connection", s.scanOwners.evicted.Load()),
		metric.CounterOf("denied_client_requests", "Requests", "The requests refused by replica.deny_client_request", t.denied.Load()),
		metric.CounterOf("rpc_rejected_connections", "Sessions", "The connections closed at accept for max_connections or max_connections_per_host", rm.RejectedConnections),
		metric.CounterOf("rpc_frame_timeouts", "Sessions", "The connections closed for a request not received within frame_read_timeout_ms", rm.FrameTimeouts),
		metric.CounterOf("rpc_buffer_waits", "Requests", "The times a connection was not read for its full max_connection_buffered_bytes", rm.BufferWaits),
		metric.GaugeOf("rpc_buffered_bytes", "Bytes", "The bytes of request bodies the server holds", rm.BufferedBytes),
		metric.CounterOf("rpc_shed_requests", "Requests", "The requests answered ERR_BUSY unread because their bodies did not fit in max_server_buffered_bytes", rm.ShedRequests),
	}
}
