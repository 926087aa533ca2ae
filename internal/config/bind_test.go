package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Name    string
	Peers   []string
	Tick    time.Duration
	Delay   *time.Duration
	Count   int
	ID      *uint8
	Entries int64
}

func testRegistry() (*Registry, func(c *testConfig) []Field) {
	r := NewRegistry()
	positive := func(v uint32) error {
		if v == 0 {
			return errors.New("must be positive")
		}
		return nil
	}
	name := Define(r, Spec[string]{Section: "s", Name: "name", Default: "dflt"})
	peers := Define(r, Spec[string]{Section: "s", Name: "peers", Default: "a:1, b:2,,"})
	tick := Define(r, Spec[uint32]{Section: "s", Name: "tick_ms", Default: 100, Validate: positive})
	delay := Define(r, Spec[uint32]{Section: "s", Name: "delay_us", Default: 3000})
	count := Define(r, Spec[uint32]{Section: "s", Name: "count", Default: 7, Validate: positive})
	id := Define(r, Spec[uint32]{Section: "s", Name: "id", Default: 0, Validate: func(v uint32) error {
		if v > 127 {
			return errors.New("at most 127")
		}
		return nil
	}})
	entries := Define(r, Spec[uint64]{Section: "s", Name: "entries", Default: 1 << 20})
	return r, func(c *testConfig) []Field {
		return []Field{BindString(&c.Name, name), BindList(&c.Peers, peers), BindDuration(&c.Tick, tick, time.Millisecond),
			BindOptionalDuration(&c.Delay, delay, time.Microsecond), BindCount(&c.Count, count), BindOptional(&c.ID, id),
			BindCount(&c.Entries, entries)}
	}
}

func TestBindFillsUnsetFields(t *testing.T) {
	_, fields := testRegistry()
	var c testConfig
	Fill(fields(&c)...)
	if c.Name != "dflt" || !slices.Equal(c.Peers, []string{"a:1", "b:2"}) || c.Tick != 100*time.Millisecond ||
		*c.Delay != 3*time.Millisecond || c.Count != 7 || *c.ID != 0 || c.Entries != 1<<20 {
		t.Fatalf("filled: %+v", c)
	}
}

func TestBindStoresSetFields(t *testing.T) {
	r, fields := testRegistry()
	c := testConfig{Name: "n", Peers: []string{"x:1"}, Tick: time.Second, Delay: new(time.Duration(0)), Count: 3, ID: new(uint8(0))}
	fs := fields(&c)
	if err := Check(fs...); err != nil {
		t.Fatal(err)
	}
	if err := Store(fs...); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"name": "n", "peers": "x:1", "tick_ms": "1000", "delay_us": "0", "count": "3", "id": "0", "entries": "1048576"} {
		if in, _ := r.Lookup(name); in.Value != want {
			t.Errorf("%s = %q, want %q", name, in.Value, want)
		}
	}
	// A zero the field type can tell from unset stays a value: the delay is off, not 3 ms.
	var again testConfig
	Fill(fields(&again)...)
	if *again.Delay != 0 || *again.ID != 0 || again.Count != 3 {
		t.Fatalf("refilled: %+v", again)
	}
}

func TestBindCheckNamesTheSetting(t *testing.T) {
	cases := []struct {
		name string
		c    testConfig
		want string
	}{
		{"validator refuses", testConfig{ID: new(uint8(200))}, "id: config: value validation failed: at most 127"},
		{"not whole units", testConfig{Tick: 1500 * time.Microsecond}, "tick_ms: config: invalid value"},
		{"negative duration", testConfig{Tick: -time.Second}, "tick_ms: config: invalid value"},
		{"negative count", testConfig{Count: -1}, "count: config: invalid value"},
		{"count too large", testConfig{Count: 1 << 40}, "count: config: invalid value"},
		{"optional duration not whole", testConfig{Delay: new(1500 * time.Nanosecond)}, "delay_us: config: invalid value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, fields := testRegistry()
			if err := Check(fields(&tc.c)...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v, want %q", err, tc.want)
			}
		})
	}
}
