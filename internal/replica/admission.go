package replica

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/metric"
)

// Write admission under overload. Past what its disk and peers can take, a server would
// otherwise take every write it is sent and answer each after its client gave up: goodput
// falls to nothing while memory grows with the queue (measured with bench/overload: 4× the
// saturation rate of 64 KiB writes held 12,000 writes and 4.9 GiB, and acknowledged none in
// time). Two bounds shed the excess instead, with ERR_BUSY, which the clients report at
// once:
//
//   - max_pending_write_bytes: the bytes of writes the server's primaries hold, from their
//     arrival at propose to their answer. A write past it is refused before anything is
//     done for it; one write alone is always taken.
//   - write_queue_timeout_ms: while the oldest write a primary proposed and has not answered
//     was handed to its loop longer ago than this, the partition is backlogged: its queue
//     would make a new write wait longer than its client does, so new writes are refused
//     at once, and the queue drains to what the partition serves within the bound (as
//     CoDel keeps a queue's standing delay down). A write that itself waited that long for
//     the loop to take it (the loop is behind) is refused instead of proposed.
//
// Every write these refuse was never proposed, so the refusal is exact: it did not happen.
// They bound what writes make a server hold; they do not yet keep goodput at the
// saturation rate under overload (see the README's "Overload" for bench/overload's figures).

// errBusy is the error of a write refused by the admission bounds (ERR_BUSY).
var errBusy = errors.New("replica: overloaded: write refused")

// admission counts what the bounds hold and what they refused.
type admission struct {
	pending                      atomic.Int64 // bytes of writes between propose's start and its answer
	refused, expired, backlogged atomic.Int64
	pastDeadline                 atomic.Int64
}

// admitWrite takes a write of n bytes in, or reports false when the partition is backlogged
// or the server holds its maximum.
func (p *partition) admitWrite(n int) bool {
	s := p.s
	if since := p.backlogSince.Load(); since != 0 {
		if timeout := s.writeQueueTimeout(); timeout > 0 && time.Since(epoch)-time.Duration(since) > timeout {
			s.admission.backlogged.Add(1)
			return false
		}
	}
	limit := int64(s.settings.MaxPendingWriteBytes.Get())
	now := s.admission.pending.Add(int64(n))
	if limit > 0 && now > limit && now > int64(n) {
		s.admission.pending.Add(-int64(n))
		s.admission.refused.Add(1)
		return false
	}
	return true
}

// inflightBatch is a batch of writes proposed and not yet answered.
type inflightBatch struct {
	id     uint64
	queued time.Time // when its oldest write was handed to the loop
}

func oldestQueued(batch []*write) time.Time {
	t := batch[0].queued
	for _, w := range batch[1:] {
		if w.queued.Before(t) {
			t = w.queued
		}
	}
	return t
}

// publishBacklog publishes when the oldest write still waiting for its answer was handed to
// the loop, for admitWrite (loop only, once an iteration).
func (l *loop) publishBacklog() {
	n := 0
	for n < len(l.inflight) && !l.waiters.Has(l.inflight[n].id) {
		n++ // answered, or failed
	}
	if n > 0 {
		l.inflight = l.inflight[:copy(l.inflight, l.inflight[n:])]
	}
	if len(l.inflight) == 0 {
		l.p.backlogSince.Store(0)
		return
	}
	l.p.backlogSince.Store(int64(l.inflight[0].queued.Sub(epoch)))
}

// releaseWrite gives back what admitWrite took.
func (s *Server) releaseWrite(n int) { s.admission.pending.Add(-int64(n)) }

// writeQueueTimeout is write_queue_timeout_ms, 0 for none.
func (s *Server) writeQueueTimeout() time.Duration {
	return time.Duration(s.settings.WriteQueueTimeoutMS.Get()) * time.Millisecond
}

// shedExpired answers the writes of batch that waited longer than the queue timeout, or
// whose client's deadline passed, with errBusy, and returns the others (reusing batch).
// Neither is proposed: the first would make the queue stand, the second is work for a
// client that no longer waits.
func (l *loop) shedExpired(batch []*write, now time.Time) []*write {
	timeout := l.p.s.writeQueueTimeout()
	kept := batch[:0]
	for _, w := range batch {
		switch {
		case timeout > 0 && now.Sub(w.queued) > timeout:
			l.p.s.admission.expired.Add(1)
		case !w.deadline.IsZero() && now.After(w.deadline):
			l.p.s.admission.pastDeadline.Add(1)
		default:
			kept = append(kept, w)
			continue
		}
		w.done <- writeResult{err: errBusy}
	}
	return kept
}

func (s *Server) admissionMetrics() []metric.Metric {
	a := &s.admission
	return []metric.Metric{
		metric.GaugeOf("pending_write_bytes", "Bytes", "The bytes of writes the server's primaries hold, from their arrival to their answer (bounded by max_pending_write_bytes)", a.pending.Load()),
		metric.CounterOf("write_admission_reject_count", "Requests", "The writes refused with ERR_BUSY because the server held max_pending_write_bytes of writes", a.refused.Load()),
		metric.CounterOf("write_backlog_reject_count", "Requests", "The writes refused with ERR_BUSY because their partition's oldest write in progress had waited write_queue_timeout_ms", a.backlogged.Load()),
		metric.CounterOf("write_queue_timeout_count", "Requests", "The writes refused with ERR_BUSY because they waited write_queue_timeout_ms for their partition's loop", a.expired.Load()),
		metric.CounterOf("write_deadline_expired_count", "Requests", "The writes not proposed because their client's timeout had passed when their partition's loop took them (answered ERR_BUSY)", a.pastDeadline.Load()),
	}
}
