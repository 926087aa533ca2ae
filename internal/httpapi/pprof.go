package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// profiler is the busy flag heap, growth and profile share: one profile at a time.
type profiler struct{ busy atomic.Bool }

// DefaultCPUProfileSeconds is the length of /pprof/profile without seconds=N.
const DefaultCPUProfileSeconds = 60

func (b *builtins) addPprof(m *Mux) {
	m.Handle("/pprof/heap", "[seconds=<heap_profile_seconds>]",
		"Gets a heap profile (Go's pprof format): live objects and allocations with their stacks; with seconds, taken that many seconds later.", b.pprofHeap)
	m.Handle("/pprof/profile", "[seconds=<cpu_profile_seconds>]",
		"Gets a CPU profile (Go's pprof format) taken over that many seconds, 60 if not given.", b.pprofProfile)
	m.Handle("/pprof/growth", "",
		"Gets the stacks of every allocation since the server started (Go's allocs profile, the nearest Go has to heap growth stacks).", b.pprofGrowth)
	m.Handle("/pprof/symbol", "[symbol_address]",
		"With GET, the number of symbols (1: symbols are available); with POST, the symbols of the '+'-joined hex addresses in the body.", b.pprofSymbol)
	m.Handle("/pprof/cmdline", "", "Gets the process's command line, one argument per line.", b.pprofCmdline)
	m.Handle("/pprof/goroutine", "", "Gets the stacks of every goroutine (Go's pprof format).", b.pprofGoroutine)
}

// seconds reads seconds=N from the raw query (Pegasus reads it undecoded).
func rawSeconds(r *Request) (int, bool) {
	for _, piece := range strings.Split(r.URL.RawQuery, "&") {
		if v, ok := strings.CutPrefix(piece, "seconds="); ok {
			n, err := strconv.Atoi(v)
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}

func (b *builtins) busy(w http.ResponseWriter) bool {
	if !b.profiler.busy.CompareAndSwap(false, true) {
		Reply(w, http.StatusInternalServerError, "")
		return true
	}
	return false
}

// wait sleeps for d or until the request is cancelled, and reports whether it slept fully.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *builtins) pprofHeap(w http.ResponseWriter, r *Request) {
	if b.busy(w) {
		return
	}
	defer b.profiler.busy.Store(false)
	if n, ok := rawSeconds(r); ok && n > 0 {
		// Go's heap profile is always on: after the period, the profile's allocation counts
		// include the period's (compare with an earlier one using pprof -base).
		if !wait(r.Context(), time.Duration(n)*time.Second) {
			return
		}
	}
	runtime.GC()
	replyProfile(w, "heap")
}

func (b *builtins) pprofGrowth(w http.ResponseWriter, _ *Request) {
	if b.busy(w) {
		return
	}
	defer b.profiler.busy.Store(false)
	replyProfile(w, "allocs")
}

// replyProfile answers with the named runtime profile (pprof.Lookup's names).
func replyProfile(w http.ResponseWriter, name string) {
	var buf bytes.Buffer
	if err := pprof.Lookup(name).WriteTo(&buf, 0); err != nil {
		Reply(w, http.StatusInternalServerError, err.Error())
		return
	}
	Reply(w, http.StatusOK, buf.String())
}

func (b *builtins) pprofProfile(w http.ResponseWriter, r *Request) {
	if b.busy(w) {
		return
	}
	defer b.profiler.busy.Store(false)
	n, ok := rawSeconds(r)
	if !ok || n == 0 {
		n = DefaultCPUProfileSeconds
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		// Someone else in the process is profiling (a test with -cpuprofile, say).
		Reply(w, http.StatusInternalServerError, "")
		return
	}
	wait(r.Context(), time.Duration(n)*time.Second)
	pprof.StopCPUProfile()
	Reply(w, http.StatusOK, buf.String())
}

func (b *builtins) pprofGoroutine(w http.ResponseWriter, _ *Request) {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 0)
	Reply(w, http.StatusOK, buf.String())
}

func (b *builtins) pprofCmdline(w http.ResponseWriter, _ *Request) {
	Reply(w, http.StatusOK, strings.Join(os.Args, "\n")+"\n")
}

// pprofSymbol speaks the pprof tool's symbolization protocol.
func (b *builtins) pprofSymbol(w http.ResponseWriter, r *Request) {
	if r.Method != http.MethodPost {
		Reply(w, http.StatusOK, "num_symbols: 1\n")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		Reply(w, http.StatusBadRequest, "")
		return
	}
	s := strings.TrimPrefix(strings.TrimSpace(string(body)), "'")
	var out strings.Builder
	for _, word := range strings.Split(s, "+") {
		word = strings.TrimSpace(word)
		if word == "" {
			continue
		}
		pc, err := strconv.ParseUint(strings.TrimPrefix(word, "0x"), 16, 64)
		if err != nil {
			continue
		}
		if f := runtime.FuncForPC(uintptr(pc)); f != nil {
			fmt.Fprintf(&out, "%#x\t%s\n", pc, f.Name())
		} else {
			fmt.Fprintf(&out, "%#x\n", pc)
		}
	}
	Reply(w, http.StatusOK, out.String())
}
