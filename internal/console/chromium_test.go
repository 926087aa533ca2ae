package console_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/poll"
)

// A headless Chromium driven over the Chrome DevTools Protocol, spoken on the pipe that
// --remote-debugging-pipe opens (file descriptors 3 and 4, messages ended by a NUL byte):
// no port, no websocket, no dependency.

// findChromium returns Chromium's path, or skips the test when it is absent, unless CI is
// set, where its absence is a failure.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found; .ci/run installs Debian's chromium package when CI=true")
	}
	t.Skip("chromium not found: install Debian's chromium package (apt-get install chromium) to run the browser test; CI runs it")
	return ""
}

// cdpMessage is any message on the pipe: a reply (ID set) or an event (Method set).
type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// browser is one Chromium process.
type browser struct {
	cmd  *exec.Cmd
	in   io.WriteCloser // Chromium's fd 3
	out  io.ReadCloser  // Chromium's fd 4
	done chan struct{}  // closed when the reader goroutine exits

	wmu sync.Mutex // serializes writes to the pipe; never held with mu

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMessage
	tabs    map[string]*tab // by session id
	readErr error
}

// startBrowser starts Chromium with a fresh profile; it is stopped when the test ends.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := findChromium(t)
	toChrome, toChromeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromChromeR, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4
	stderr, err := os.Create(filepath.Join(t.TempDir(), "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	_ = toChrome.Close()
	_ = fromChrome.Close()
	b := &browser{cmd: cmd, in: toChromeW, out: fromChromeR, done: make(chan struct{}),
		pending: map[int64]chan cdpMessage{}, tabs: map[string]*tab{}}
	go b.read()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.call(ctx, "", "Browser.close", nil, nil)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = b.in.Close()
		_ = b.out.Close()
		<-b.done
		_ = stderr.Close()
	})
	return b
}

// read delivers replies to their callers and events to their tabs until the pipe closes.
func (b *browser) read() {
	defer close(b.done)
	r := bufio.NewReaderSize(b.out, 1<<20)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.readErr = err
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch := b.pending[m.ID]; ch != nil {
				delete(b.pending, m.ID)
				ch <- m
			}
		} else if tb := b.tabs[m.SessionID]; tb != nil {
			tb.event(m.Method, m.Params)
		}
		b.mu.Unlock()
	}
}

// call sends a command (to the browser, or to a tab's session) and decodes its result.
func (b *browser) call(ctx context.Context, session, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	if b.readErr != nil {
		b.mu.Unlock()
		return fmt.Errorf("%s: browser gone: %w", method, b.readErr)
	}
	b.nextID++
	id := b.nextID
	b.pending[id] = ch
	b.mu.Unlock()
	msg, err := json.Marshal(cdpMessage{ID: id, Method: method, Params: p, SessionID: session})
	if err == nil {
		b.wmu.Lock()
		_, err = b.in.Write(append(msg, 0))
		b.wmu.Unlock()
	}
	if err != nil {
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		switch {
		case !ok:
			return fmt.Errorf("%s: browser gone", method)
		case m.Error != nil:
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		case result != nil:
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// tab is one page of the browser, with what it logged and loaded.
type tab struct {
	b       *browser
	session string

	// Guarded by b.mu (events arrive under it).
	errors   []string
	loads    int // load events
	loaded   chan struct{}
	bytes    int64 // encoded bytes of the finished requests
	started  int   // requests sent
	finished int   // requests finished or failed
}

// newTab opens a page on about:blank the size of a laptop screen, with the console,
// the log and the network watched.
func (b *browser) newTab(ctx context.Context) (*tab, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return nil, err
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		return nil, err
	}
	tb := &tab{b: b, session: att.SessionID, loaded: make(chan struct{}, 16)}
	b.mu.Lock()
	b.tabs[att.SessionID] = tb
	b.mu.Unlock()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		if err := tb.call(ctx, m, nil, nil); err != nil {
			return nil, err
		}
	}
	if err := tb.call(ctx, "Network.setCacheDisabled", map[string]any{"cacheDisabled": true}, nil); err != nil {
		return nil, err
	}
	return tb, tb.setSize(ctx, 1366, 900)
}

func (tb *tab) call(ctx context.Context, method string, params, result any) error {
	return tb.b.call(ctx, tb.session, method, params, result)
}

func (tb *tab) setSize(ctx context.Context, w, h int) error {
	return tb.call(ctx, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": w, "height": h, "deviceScaleFactor": 1, "mobile": false}, nil)
}

// event records what the tests look at; called with b.mu held.
func (tb *tab) event(method string, params json.RawMessage) {
	switch method {
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		if json.Unmarshal(params, &p) == nil && (p.Type == "error" || p.Type == "assert") {
			var parts []string
			for _, a := range p.Args {
				parts = append(parts, fmt.Sprint(a.Value, a.Description))
			}
			tb.errors = append(tb.errors, "console."+p.Type+": "+strings.Join(parts, " "))
		}
	case "Runtime.exceptionThrown":
		var p struct {
			Details struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		_ = json.Unmarshal(params, &p)
		tb.errors = append(tb.errors, "exception: "+p.Details.Text+" "+p.Details.Exception.Description)
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level, Source, Text, URL string
			} `json:"entry"`
		}
		if json.Unmarshal(params, &p) == nil && p.Entry.Level == "error" {
			tb.errors = append(tb.errors, "log ("+p.Entry.Source+"): "+p.Entry.Text+" "+p.Entry.URL)
		}
	case "Network.requestWillBeSent":
		tb.started++
	case "Network.loadingFinished":
		var p struct {
			EncodedDataLength float64 `json:"encodedDataLength"`
		}
		_ = json.Unmarshal(params, &p)
		tb.bytes += int64(p.EncodedDataLength)
		tb.finished++
	case "Network.loadingFailed":
		var p struct {
			ErrorText string `json:"errorText"`
			Canceled  bool   `json:"canceled"`
		}
		_ = json.Unmarshal(params, &p)
		tb.finished++
		if !p.Canceled {
			tb.errors = append(tb.errors, "request failed: "+p.ErrorText)
		}
	case "Page.loadEventFired":
		tb.loads++
		select {
		case tb.loaded <- struct{}{}:
		default:
		}
	}
}

// errorsSoFar returns the errors the page reported.
func (tb *tab) errorsSoFar() []string {
	tb.b.mu.Lock()
	defer tb.b.mu.Unlock()
	return append([]string(nil), tb.errors...)
}

// network returns the bytes of the finished requests and whether none is in flight.
func (tb *tab) network() (bytes int64, idle bool) {
	tb.b.mu.Lock()
	defer tb.b.mu.Unlock()
	return tb.bytes, tb.started == tb.finished
}

// resetNetwork zeroes the network counters.
func (tb *tab) resetNetwork() {
	tb.b.mu.Lock()
	defer tb.b.mu.Unlock()
	tb.bytes, tb.started, tb.finished = 0, 0, 0
}

// navigate loads url and waits for the page's load event.
func (tb *tab) navigate(ctx context.Context, url string) error {
	for len(tb.loaded) > 0 {
		<-tb.loaded
	}
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := tb.call(ctx, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return fmt.Errorf("navigate to %s: %s", url, res.ErrorText)
	}
	select {
	case <-tb.loaded:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("navigate to %s: %w", url, ctx.Err())
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value into out.
func (tb *tab) eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := tb.call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res)
	if err != nil {
		return err
	}
	if res.Exception != nil {
		return fmt.Errorf("evaluate %q: %s", expr, res.Exception.Text)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// waitFor evaluates expr until it is true, as [poll.Wait] does, until ctx ends.
func (tb *tab) waitFor(ctx context.Context, what, expr string) error {
	err := poll.Wait(ctx, func(context.Context) (bool, error) {
		var ok bool
		if err := tb.eval(ctx, "!!("+expr+")", &ok); err != nil && ctx.Err() == nil {
			return false, err
		}
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

// screenshot saves a PNG of the whole page (not only the viewport) at path.
func (tb *tab) screenshot(ctx context.Context, path string) error {
	var lm struct {
		Content struct {
			Height float64 `json:"height"`
		} `json:"cssContentSize"`
	}
	if err := tb.call(ctx, "Page.getLayoutMetrics", nil, &lm); err != nil {
		return err
	}
	h := max(900, int(lm.Content.Height+0.5))
	if err := tb.setSize(ctx, 1366, h); err != nil {
		return err
	}
	defer func() { _ = tb.setSize(ctx, 1366, 900) }()
	var shot struct {
		Data string `json:"data"`
	}
	if err := tb.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return err
	}
	if len(png) == 0 {
		return errors.New("empty screenshot")
	}
	return os.WriteFile(path, png, 0o644)
}
