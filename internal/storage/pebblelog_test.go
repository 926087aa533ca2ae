package storage

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestPebbleLogger(t *testing.T) {
	var buf bytes.Buffer
	lg := PebbleLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	lg.Infof("flushed %d", 1)
	lg.Errorf("background error %s", "x")
	func() {
		defer func() {
			if r, ok := recover().(*PebbleFatalError); !ok || r.Error() != "pebble: corrupt sstable 7" {
				t.Errorf("Fatalf panicked with %v (%v)", r, ok)
			}
		}()
		lg.Fatalf("corrupt sstable %d", 7)
	}()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{`level=DEBUG msg=pebble msg="flushed 1"`, `level=ERROR msg=pebble msg="background error x"`,
		`level=ERROR msg="pebble fatal" msg="corrupt sstable 7"`}
	if len(lines) != len(want) {
		t.Fatalf("logged %q", lines)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
		}
	}
}
