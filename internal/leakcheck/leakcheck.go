// Package leakcheck finds the goroutines a test leaves running: take a [Snapshot] before
// starting something, stop it, then [Snapshot.Check] fails the test if a goroutine started
// since the snapshot is still running.
//
//	snap := leakcheck.Take()
//	srv := start(t)
//	srv.Close()
//	snap.Check(t)
//
// Goroutines are told apart by their ids, which the runtime never reuses, so goroutines that
// ran before the snapshot (the test framework's, those of earlier tests winding down) are
// never reported. Tests that use it must not run in parallel with others.
package leakcheck

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/poll"
)

// Snapshot is the set of goroutines running when it was taken.
type Snapshot map[uint64]bool

// Take records the goroutines running now.
func Take() Snapshot {
	s := Snapshot{}
	for _, g := range goroutines() {
		s[g.id] = true
	}
	return s
}

// Check fails t with the stacks of the goroutines started since s was taken that are still
// running after [poll.Bound]. It waits because a server's Close joins its goroutines, but
// some of the standard library's end just after the connection they serve is closed
// (net/http's per-connection readers and writers).
func (s Snapshot) Check(t testing.TB) {
	t.Helper()
	var left []string
	if err := poll.Wait(t.Context(), func(context.Context) (bool, error) {
		left = s.started()
		return len(left) == 0, nil
	}); err != nil {
		t.Fatalf("leakcheck: %d goroutines left running:\n\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

// started returns the stacks of the goroutines that are not in s.
func (s Snapshot) started() []string {
	var out []string
	for _, g := range goroutines() {
		if !s[g.id] && !processWide(g.stack) {
			out = append(out, g.stack)
		}
	}
	return out
}

// Find returns the stacks of the running goroutines whose stack mentions fn, a function name
// as stacks spell it ("replica.(*Server).streamSnapshot"). It does not wait.
func Find(fn string) []string {
	var out []string
	for _, g := range goroutines() {
		if strings.Contains(g.stack, fn) {
			out = append(out, g.stack)
		}
	}
	return out
}

// processWide reports the goroutines the runtime and standard library start once per process,
// on first use, and keep: not leaks of the code under test.
func processWide(stack string) bool {
	for _, fn := range []string{
		"os/signal.loop",     // started by the first signal.Notify
		"runtime.ensureSigM", // likewise
	} {
		if strings.Contains(stack, fn) {
			return true
		}
	}
	return false
}

type goroutine struct {
	id    uint64
	stack string
}

// goroutines returns every goroutine but the caller's.
func goroutines() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for i, rec := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // the calling goroutine comes first
		}
		// "goroutine 42 [chan receive]:"
		head, _, _ := bytes.Cut(rec, []byte("\n"))
		f := bytes.Fields(head)
		if len(f) < 2 || string(f[0]) != "goroutine" {
			continue
		}
		id, err := strconv.ParseUint(string(f[1]), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, goroutine{id: id, stack: string(rec)})
	}
	return out
}
