package raftgroup

import (
	"context"
	"math/rand/v2"
)

// Waiters holds, by proposal id, what waits for this member's proposals: from the proposal
// until its entry is applied here, or until the wait is failed (etcd's pkg/wait, without the
// lock: the raft loop owns it).
type Waiters[W any] struct {
	next uint64
	m    map[uint64]W
}

// NewWaiters returns an empty set whose ids start at a random multiple of 2^32: entries
// replayed from the log after a restart carry ids of an earlier run, which must not be
// taken for this run's proposals.
func NewWaiters[W any]() *Waiters[W] {
	return &Waiters[W]{next: rand.Uint64() &^ (1<<32 - 1), m: make(map[uint64]W)}
}

// NextID returns a proposal id not handed out before.
func (ws *Waiters[W]) NextID() uint64 {
	ws.next++
	return ws.next
}

// Add registers w as waiting for proposal id.
func (ws *Waiters[W]) Add(id uint64, w W) { ws.m[id] = w }

// Has reports whether something waits for proposal id.
func (ws *Waiters[W]) Has(id uint64) bool {
	_, ok := ws.m[id]
	return ok
}

// Take removes and returns what waits for proposal id. ok is false when nothing does: the
// entry is another member's proposal, an earlier run's, or its wait was failed.
func (ws *Waiters[W]) Take(id uint64) (w W, ok bool) {
	w, ok = ws.m[id]
	delete(ws.m, id)
	return w, ok
}

// FailAll removes every waiter, handing each to fail: when the member loses its leadership
// or stops, the outcome of its pending proposals is no longer known here.
func (ws *Waiters[W]) FailAll(fail func(W)) {
	for id, w := range ws.m {
		delete(ws.m, id)
		fail(w)
	}
}

// Submit hands req to a raft loop on in and waits for the loop's answer on answer; done is
// closed when the loop exits. It returns the answer, or ctx's error when ctx ends first, or
// stopped when the loop exits before taking req, or abandoned when it exits after taking it
// and before answering (req may then have taken effect). Callers give answer a buffer of one,
// so the loop never blocks on a caller that stopped waiting.
func Submit[R, A any](ctx context.Context, in chan<- R, req R, answer <-chan A, done <-chan struct{},
	stopped, abandoned error) (A, error) {
	var zero A
	select {
	case in <- req:
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-done:
		return zero, stopped
	}
	select {
	case a := <-answer:
		return a, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-done:
		return zero, abandoned
	}
}
