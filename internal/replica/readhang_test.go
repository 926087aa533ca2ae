package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/gopegasus/pegasus/internal/raftgroup"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// The chaos kill run's hung read, replayed: the placement's first member restarts behind its
// group, which hands it the leadership back (the preferred-primary restoration) as soon as it
// has caught up; the member that handed it over is stopped right after. Reads at the new
// leader must be served (or at worst fail within their timeout), never hang.
func TestRestoredPrimaryServesReadsAfterHandoverMemberStops(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			g, addrs := newGroup(t, 3)
			b := addrs[0]
			g.setMembers(addrs...)
			if l := g.leader(addrs...); l != b {
				poll.Until(t, "the preferred member to lead", func() bool { return g.leader(addrs...) == b })
			}
			n := 0
			for ; n < 30; n++ {
				g.put(addrs, n)
			}
			g.stops[b]()
			others := addrs[1:]
			for ; n < 80; n++ {
				g.put(others, n)
			}
			old := g.leader(others...)
			g.run(g.dirs[b], b)
			poll.Until(t, "the restarted member to lead again", func() bool {
				p := g.servers[b].partition(replPID)
				return p != nil && p.isLeader.Load()
			})
			g.stops[old]()
			conn := rpc.NewConn(b, rpc.ConnConfig{})
			defer conn.Close()
			for i := range n {
				blob := idl.Blob(key.Encode([]byte(fmt.Sprintf("k%04d", i)), nil))
				var resp idl.ReadResponse
				var err error
				ok := poll.Wait(t.Context(), func(ctx context.Context) (bool, error) {
					cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					defer cancel()
					resp = idl.ReadResponse{}
					err = conn.Call(cctx, wire.Header{AppID: replApp, ClientTimeout: 5000}, idl.RPCGet, &blob, &resp)
					if err != nil && cctx.Err() != nil {
						return false, fmt.Errorf("read of k%04d at the restored leader hung: %w", i, err)
					}
					return err == nil && resp.Error == 0, nil
				})
				if ok != nil {
					t.Fatal(ok)
				}
				if string(resp.Value) != fmt.Sprint(i) {
					t.Fatalf("k%04d: %q", i, resp.Value)
				}
			}
		})
	}
}

// A read waiting in the loop past its deadline fails with errReadExpired (ERR_INVALID_STATE
// for the client, which refreshes its configuration and retries), wherever it waits: held
// while the lease is suspended, at raft's read index, or for the store to apply its index.
// A read not yet due stays where it is.
func TestExpiredReadsFail(t *testing.T) {
	ms := raft.NewMemoryStorage()
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, Storage: ms, ElectionTick: 10, HeartbeatTick: 1,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}})
	if err != nil {
		t.Fatal(err)
	}
	p := &partition{id: 1, lg: slog.New(slog.DiscardHandler)}
	l := &loop{p: p, rn: rn, ms: ms, reads: raftgroup.NewWaiters[[]*readWait]()}
	now := time.Now()
	wait := func(due bool) *readWait {
		rw := &readWait{done: make(chan error, 1), deadline: now.Add(time.Second)}
		if due {
			rw.deadline = now.Add(-time.Millisecond)
		}
		return rw
	}
	var due, pending []*readWait
	for range 3 {
		due = append(due, wait(true))
		pending = append(pending, wait(false))
	}
	l.heldReads = []*readWait{due[0], pending[0]}
	l.readyAt = []readBatch{{index: 7, waits: []*readWait{pending[1], due[1]}}, {index: 8, waits: []*readWait{wait(true)}}}
	due = append(due, l.readyAt[1].waits[0])
	id := l.reads.NextID()
	l.reads.Add(id, []*readWait{due[2], pending[2]})
	l.readIDs = []uint64{id, l.reads.NextID()} // the second: answered already
	gone := wait(true)
	dueAlone := l.reads.NextID()
	l.reads.Add(dueAlone, []*readWait{gone})
	l.readIDs = append(l.readIDs, dueAlone)
	due = append(due, gone)

	l.expireReads(now)
	for i, rw := range due {
		select {
		case err := <-rw.done:
			if !errors.Is(err, errReadExpired) || codeOf(err) != wire.ErrInvalidState {
				t.Fatalf("due read %d: %v (%v), want %v answered as ERR_INVALID_STATE", i, err, codeOf(err), errReadExpired)
			}
		default:
			t.Fatalf("due read %d still waits", i)
		}
	}
	for i, rw := range pending {
		select {
		case err := <-rw.done:
			t.Fatalf("read %d, not due, answered %v", i, err)
		default:
		}
	}
	if len(l.heldReads) != 1 || l.heldReads[0] != pending[0] {
		t.Fatalf("held reads left: %v", l.heldReads)
	}
	if len(l.readyAt) != 1 || l.readyAt[0].index != 7 || len(l.readyAt[0].waits) != 1 || l.readyAt[0].waits[0] != pending[1] {
		t.Fatalf("reads waiting for their apply left: %+v", l.readyAt)
	}
	if ws, ok := l.reads.Take(id); !ok || len(ws) != 1 || ws[0] != pending[2] || l.reads.Has(dueAlone) {
		t.Fatalf("reads at raft's read index left: %v %v, the due one's batch kept: %v", ws, ok, l.reads.Has(dueAlone))
	}
	if len(l.readIDs) != 1 || l.readIDs[0] != id {
		t.Fatalf("read index contexts left: %v", l.readIDs)
	}
	if n := p.readsExpired.Load(); n != int64(len(due)) {
		t.Fatalf("%d reads counted as expired, want %d", n, len(due))
	}
}

// A read handed to a loop that never answers it (the loop stuck, or answering nothing)
// still ends, with errReadExpired, once its timeout and the loop's tick of grace have
// passed: the barrier does not rely on the loop to end the wait.
func TestReadBarrierEndsWithoutTheLoop(t *testing.T) {
	p := &partition{s: &Server{cfg: Config{TickInterval: 10 * time.Millisecond}}, lg: slog.New(slog.DiscardHandler),
		readC: make(chan *readWait, 1), done: make(chan struct{})}
	p.isLeader.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.readBarrier(ctx, 50*time.Millisecond); !errors.Is(err, errReadExpired) {
		t.Fatalf("read at a loop that never answers: %v, want %v", err, errReadExpired)
	}
	if rw := <-p.readC; rw.deadline.IsZero() {
		t.Fatal("the read handed to the loop has no deadline")
	}
}
