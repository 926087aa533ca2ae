package replica

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// TestPendingWriteBytesBound: with max_pending_write_bytes of 256 KiB, 64 concurrent writes
// of 64 KiB get ERR_BUSY for those past the bound, and the outcome is exact: every write
// acknowledged is read back, and none refused is there.
func TestPendingWriteBytesBound(t *testing.T) {
	s, c := oneTable(t, map[string]string{"max_pending_write_bytes": "262144"}, nil)
	v := strings.Repeat("v", 64<<10)
	const writes = 64
	errs := make([]error, writes)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writes {
		wg.Go(func() {
			<-start
			var resp idl.UpdateResponse
			h := fmt.Sprintf("h%d", i)
			errs[i] = c.conn.Call(t.Context(), c.header([]byte(h)), idl.RPCPut,
				&idl.UpdateRequest{Key: key.Encode([]byte(h), []byte("s")), Value: []byte(v)}, &resp)
		})
	}
	close(start)
	wg.Wait()
	acked, busy := 0, 0
	for i, err := range errs {
		got, code := c.get(t, fmt.Sprintf("h%d", i), "s")
		switch {
		case err == nil:
			acked++
			if code != 0 || got != v {
				t.Fatalf("write %d acknowledged, read back code %d, %d bytes", i, code, len(got))
			}
		case errors.Is(err, wire.ErrBusy):
			busy++
			if code == 0 {
				t.Fatalf("write %d refused with ERR_BUSY, but it is there", i)
			}
		default:
			t.Fatalf("write %d: %v", i, err)
		}
	}
	t.Logf("%d writes of 64 KiB at once: %d acknowledged, %d ERR_BUSY (counted %d)", writes, acked, busy, s.admission.refused.Load())
	if busy == 0 || acked == 0 || int64(busy) != s.admission.refused.Load() {
		t.Fatalf("%d acknowledged, %d ERR_BUSY, %d counted: want both kinds, every refusal counted", acked, busy, s.admission.refused.Load())
	}
	if n := s.admission.pending.Load(); n != 0 {
		t.Fatalf("%d bytes still counted as pending after every write was answered", n)
	}
}

// A backlogged partition (its oldest write in progress older than write_queue_timeout_ms)
// refuses new writes at once; one whose backlog is recent, or none, takes them.
func TestBacklogRefusesWrites(t *testing.T) {
	s, c := oneTable(t, nil, nil)
	p := s.partition(idl.GPID{AppID: testApp})
	c.put(t, "h", "s", "before")
	p.backlogSince.Store(int64(time.Since(epoch) - 2*DefaultWriteQueueTimeout))
	if p.admitWrite(10) {
		t.Fatal("a write was admitted to a partition backlogged for twice the queue timeout")
	}
	if n := s.admission.backlogged.Load(); n != 1 {
		t.Fatalf("backlog refusals counted %d, want 1", n)
	}
	p.backlogSince.Store(int64(time.Since(epoch)))
	if !p.admitWrite(10) {
		t.Fatal("a write was refused by a backlog that just began")
	}
	s.releaseWrite(10)
	p.backlogSince.Store(0)
	c.put(t, "h", "s", "after")
	if got, _ := c.get(t, "h", "s"); got != "after" {
		t.Fatalf("read %q after the backlog ended", got)
	}
}

// shedExpired refuses the writes that waited longer than the queue timeout and keeps the
// others, in order.
func TestShedExpired(t *testing.T) {
	s, _ := oneTable(t, nil, nil)
	l := &loop{p: s.partition(idl.GPID{AppID: testApp})}
	now := time.Now()
	mk := func(age time.Duration) *write {
		return &write{done: make(chan writeResult, 1), queued: now.Add(-age)}
	}
	old, fresh1, fresh2 := mk(2*DefaultWriteQueueTimeout), mk(time.Millisecond), mk(0)
	kept := l.shedExpired([]*write{fresh1, old, fresh2}, now)
	if len(kept) != 2 || kept[0] != fresh1 || kept[1] != fresh2 {
		t.Fatalf("kept %d writes", len(kept))
	}
	if r := <-old.done; !errors.Is(r.err, errBusy) || codeOf(r.err) != wire.ErrBusy {
		t.Fatalf("expired write answered %v", r.err)
	}
	// A write whose client's deadline passed is refused however briefly it waited; one
	// whose deadline is ahead, or that has none, is kept.
	late, ahead := mk(0), mk(0)
	late.deadline, ahead.deadline = now.Add(-time.Millisecond), now.Add(time.Second)
	kept = l.shedExpired([]*write{late, ahead, mk(0)}, now)
	if len(kept) != 2 || kept[0] != ahead {
		t.Fatalf("kept %d writes", len(kept))
	}
	if r := <-late.done; !errors.Is(r.err, errBusy) || s.admission.pastDeadline.Load() != 1 {
		t.Fatalf("write past its deadline answered %v, counted %d", r.err, s.admission.pastDeadline.Load())
	}
}

func entries(from uint64, sizes ...int) []raftpb.Entry {
	var out []raftpb.Entry
	for i, n := range sizes {
		out = append(out, raftpb.Entry{Index: from + uint64(i), Data: make([]byte, n)})
	}
	return out
}

func TestRetainedLog(t *testing.T) {
	var r retainedLog
	r.append(entries(1, 10, 20, 30, 40)) // 1..4
	if r.bytes != 100 {
		t.Fatalf("bytes %d, want 100", r.bytes)
	}
	r.append(entries(3, 5, 5, 5)) // replaces 3 and 4, adds 5
	if r.bytes != 45 || len(r.sizes) != 5 {
		t.Fatalf("after an overlapping append: %d bytes in %d entries, want 45 in 5", r.bytes, len(r.sizes))
	}
	// Up to applied 4 (10, 20, 5, 5): keeping 12 bytes truncates at 2 (leaving 3 and 4).
	if at := r.keeping(4, 12); at != 2 {
		t.Fatalf("keeping 12 bytes up to 4: at %d, want 2", at)
	}
	if at := r.keeping(4, 1000); at != 0 {
		t.Fatalf("keeping more than there is: at %d, want 0", at)
	}
	r.compact(2)
	if r.bytes != 15 || len(r.sizes) != 3 || r.sizes[0].index != 3 {
		t.Fatalf("after compact(2): %d bytes, %d entries from %d", r.bytes, len(r.sizes), r.sizes[0].index)
	}
	r.reset()
	if r.bytes != 0 || len(r.sizes) != 0 {
		t.Fatal("reset left entries")
	}
}

// With raft_log_keep_bytes of 1 MiB, a partition written 64 KiB values truncates its raft
// log long before raft_log_compact_every entries: what it keeps in memory is bounded by
// bytes.
func TestLogTruncatedByBytes(t *testing.T) {
	s, c := oneTable(t, map[string]string{"raft_log_keep_bytes": "1048576"}, nil)
	p := s.partition(idl.GPID{AppID: testApp})
	bigValues(t, c, "big", 100) // 6.4 MiB in 100 entries, far fewer than raft_log_compact_every
	if start := p.raftStats.logStart.Load(); start < 50 {
		t.Fatalf("raft log starts at %d after 100 writes of 64 KiB: not truncated by bytes", start)
	}
}
