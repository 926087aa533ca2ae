package raftgroup

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

func TestWaiters(t *testing.T) {
	ws := NewWaiters[string]()
	a, b, c := ws.NextID(), ws.NextID(), ws.NextID()
	if a&(1<<32-1) != 1 || b != a+1 || c != b+1 {
		t.Fatalf("ids %#x %#x %#x: want consecutive from a multiple of 2^32", a, b, c)
	}
	ws.Add(a, "a")
	ws.Add(b, "b")
	ws.Add(c, "c")
	if w, ok := ws.Take(b); !ok || w != "b" {
		t.Fatalf("Take(b) = %q %v", w, ok)
	}
	if _, ok := ws.Take(b); ok {
		t.Fatal("b taken twice")
	}
	if _, ok := ws.Take(c + 1); ok {
		t.Fatal("took an id never added")
	}
	var failed []string
	ws.FailAll(func(w string) { failed = append(failed, w) })
	slices.Sort(failed)
	if !slices.Equal(failed, []string{"a", "c"}) {
		t.Fatalf("failed %q, want a and c", failed)
	}
	if _, ok := ws.Take(a); ok {
		t.Fatal("a still waits after FailAll")
	}
	ws.FailAll(func(w string) { t.Fatalf("%q failed twice", w) })
}

// confEntry is a membership change as raft's log holds it.
func confEntry(t *testing.T, index uint64, typ raftpb.ConfChangeType, id uint64) raftpb.Entry {
	t.Helper()
	data, err := (&raftpb.ConfChange{Type: typ, NodeID: id}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raftpb.Entry{Index: index, Type: raftpb.EntryConfChange, Data: data}
}

func TestConfLog(t *testing.T) {
	st := raft.NewMemoryStorage()
	rn, err := raft.NewRawNode(NewConfig(1, st, 0, slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	var c ConfLog
	c.Reset(raftpb.ConfState{Voters: []uint64{1}})
	apply := func(e raftpb.Entry) {
		t.Helper()
		cc, err := c.Apply(rn, &e)
		if err != nil || cc == nil {
			t.Fatalf("Apply(%d) = %v, %v", e.Index, cc, err)
		}
	}
	apply(confEntry(t, 5, raftpb.ConfChangeAddNode, 1))
	apply(confEntry(t, 10, raftpb.ConfChangeAddNode, 2))
	apply(confEntry(t, 20, raftpb.ConfChangeAddLearnerNode, 3))
	apply(confEntry(t, 30, raftpb.ConfChangeAddNode, 3))
	want := raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	if cur := c.Current(); !slices.Equal(cur.Voters, want.Voters) || len(cur.Learners) != 0 {
		t.Fatalf("Current = %+v, want %+v", cur, want)
	}
	for _, tc := range []struct {
		at               uint64
		voters, learners []uint64
	}{
		{4, []uint64{1}, nil},     // before any change: the starting point's
		{12, []uint64{1, 2}, nil}, // the change at 10 is in
		{12, []uint64{1, 2}, nil}, // again: the history before 12 is gone, its result kept
		{25, []uint64{1, 2}, []uint64{3}},
		{30, []uint64{1, 2, 3}, nil},
		{40, []uint64{1, 2, 3}, nil},
	} {
		got := c.Truncate(tc.at)
		if !slices.Equal(got.Voters, tc.voters) || !slices.Equal(got.Learners, tc.learners) {
			t.Errorf("Truncate(%d) = %+v, want voters %v learners %v", tc.at, got, tc.voters, tc.learners)
		}
	}

	// A snapshot replaces the history: changes before it no longer count.
	apply(confEntry(t, 50, raftpb.ConfChangeRemoveNode, 3))
	c.Reset(raftpb.ConfState{Voters: []uint64{1, 2, 4}})
	if got := c.Truncate(60); !slices.Equal(got.Voters, []uint64{1, 2, 4}) {
		t.Errorf("after Reset, Truncate(60) = %+v, want the snapshot's voters", got)
	}

	v2, err := (&raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddNode, NodeID: 5}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if cc, err := c.Apply(rn, &raftpb.Entry{Index: 70, Type: raftpb.EntryConfChangeV2, Data: v2}); err != nil || cc != nil {
		t.Errorf("Apply(v2) = %v, %v; want nil, nil", cc, err)
	}
	if got := c.Current(); !slices.Contains(got.Voters, 5) {
		t.Errorf("after a v2 change adding 5, Current = %+v", got)
	}
	if _, err := c.Apply(rn, &raftpb.Entry{Index: 71, Type: raftpb.EntryConfChange, Data: []byte{0xff}}); err == nil {
		t.Error("Apply of an undecodable entry succeeded")
	}
	if _, err := c.Apply(rn, &raftpb.Entry{Index: 72, Type: raftpb.EntryNormal}); err == nil {
		t.Error("Apply of a normal entry succeeded")
	}
}

func TestSubmit(t *testing.T) {
	errStopped, errAbandoned := errors.New("stopped"), errors.New("abandoned")
	type req struct{ answer chan int }
	newReq := func() req { return req{answer: make(chan int, 1)} }
	// loop runs the raft loop's side of a case, joined when the case ends.
	loop := func(t *testing.T, f func()) {
		var wg sync.WaitGroup
		wg.Go(f)
		t.Cleanup(wg.Wait)
	}
	t.Run("answered", func(t *testing.T) {
		in, done := make(chan req), make(chan struct{})
		loop(t, func() {
			r := <-in
			r.answer <- 7
		})
		r := newReq()
		if a, err := Submit(t.Context(), in, r, r.answer, done, errStopped, errAbandoned); a != 7 || err != nil {
			t.Fatalf("Submit = %d, %v", a, err)
		}
	})
	t.Run("not taken, ctx done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		r := newReq()
		if _, err := Submit(ctx, make(chan req), r, r.answer, make(chan struct{}), errStopped, errAbandoned); !errors.Is(err, context.Canceled) {
			t.Fatalf("Submit = %v, want context.Canceled", err)
		}
	})
	t.Run("not taken, loop stopped", func(t *testing.T) {
		done := make(chan struct{})
		close(done)
		r := newReq()
		if _, err := Submit(t.Context(), make(chan req), r, r.answer, done, errStopped, errAbandoned); err != errStopped {
			t.Fatalf("Submit = %v, want %v", err, errStopped)
		}
	})
	t.Run("taken, loop stopped", func(t *testing.T) {
		in, done := make(chan req), make(chan struct{})
		loop(t, func() {
			<-in
			close(done)
		})
		r := newReq()
		if _, err := Submit(t.Context(), in, r, r.answer, done, errStopped, errAbandoned); err != errAbandoned {
			t.Fatalf("Submit = %v, want %v", err, errAbandoned)
		}
	})
	t.Run("taken, ctx done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		in := make(chan req)
		loop(t, func() {
			<-in
			cancel()
		})
		r := newReq()
		if _, err := Submit(ctx, in, r, r.answer, make(chan struct{}), errStopped, errAbandoned); !errors.Is(err, context.Canceled) {
			t.Fatalf("Submit = %v, want context.Canceled", err)
		}
	})
}
