package storage

import (
	"errors"
	"testing"

	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// timetagOf returns the timetag stored at h/s.
func timetagOf(t *testing.T, d *testDB, h, s string) uint64 {
	t.Helper()
	want := key.Encode([]byte(h), []byte(s))
	var tt uint64
	found := false
	if err := d.Export(func(r Record) error {
		if string(r.Key) == string(want) {
			tt, found = r.Timetag, true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("%s/%s not exported", h, s)
	}
	return tt
}

func dupPut(h, s, v string, timetag uint64, verify bool) DuplicatedWrite {
	return DuplicatedWrite{Mutation: Mutation{Put: &PutRequest{Key: key.Encode([]byte(h), []byte(s)), Value: []byte(v)}},
		Timetag: timetag, VerifyTimetag: verify}
}

func TestDuplicatedWritesKeepTheirTimetag(t *testing.T) {
	d := openTest(t, nil)
	const remote = 500<<8 | 2<<1
	r := d.apply(0, Mutation{Duplicate: &DuplicateRequest{Writes: []DuplicatedWrite{
		dupPut("h", "a", "1", remote, false),
		{Mutation: Mutation{MultiPut: &MultiPutRequest{HashKey: []byte("h"), KVs: []KeyValue{{Key: []byte("b"), Value: []byte("2")}}}}, Timetag: remote + 256},
	}}})
	if r[0].Error != wire.StatusOK {
		t.Fatalf("code %v", r[0].Error)
	}
	if got := timetagOf(t, d, "h", "a"); got != remote {
		t.Fatalf("timetag %x, want %x", got, remote)
	}
	if got := timetagOf(t, d, "h", "b"); got != remote+256 {
		t.Fatalf("timetag %x, want %x", got, remote+256)
	}
	if v, _ := d.get("h", "b"); v != "2" {
		t.Fatalf("h/b = %q", v)
	}
}

func TestVerifyTimetagLastWriterWins(t *testing.T) {
	d := openTest(t, nil)
	d.put("h", "s", "local", 0) // timetag: the fake clock's time, cluster 1
	local := timetagOf(t, d, "h", "s")
	older, newer := local-(1<<8), local+(1<<8)|3<<1

	d.apply(0, Mutation{Duplicate: &DuplicateRequest{Writes: []DuplicatedWrite{dupPut("h", "s", "old", older, true)}}})
	if v, _ := d.get("h", "s"); v != "local" {
		t.Fatalf("an older write replaced the value: %q", v)
	}
	// Without verification the older write wins anyway (one-way duplication keeps order).
	d.apply(0, Mutation{Duplicate: &DuplicateRequest{Writes: []DuplicatedWrite{dupPut("h", "s", "unchecked", older, false)}}})
	if v, _ := d.get("h", "s"); v != "unchecked" {
		t.Fatalf("value %q", v)
	}
	d.apply(0, Mutation{Duplicate: &DuplicateRequest{Writes: []DuplicatedWrite{
		dupPut("h", "s", "new", newer, true),
		dupPut("h", "s", "same", newer, true), // equal timetags: the stored one stays
	}}})
	if v, _ := d.get("h", "s"); v != "new" {
		t.Fatalf("value %q, want new", v)
	}
	// An expired value is older than anything.
	d.apply(0, Mutation{Put: &PutRequest{Key: key.Encode([]byte("h"), []byte("e")), Value: []byte("x"), ExpireTS: d.clock.epoch() + 1}})
	d.clock.Advance(5e9)
	d.apply(0, Mutation{Duplicate: &DuplicateRequest{Writes: []DuplicatedWrite{dupPut("h", "e", "y", 1<<8|2<<1, true)}}})
	if v, _ := d.get("h", "e"); v != "y" {
		t.Fatalf("value over an expired one: %q", v)
	}
	// Removes are not verified.
	d.apply(0, Mutation{Duplicate: &DuplicateRequest{Writes: []DuplicatedWrite{{
		Mutation: Mutation{Remove: &RemoveRequest{Key: key.Encode([]byte("h"), []byte("s"))}}, Timetag: 1, VerifyTimetag: true}}}})
	if _, code := d.get("h", "s"); code != wire.StatusNotFound {
		t.Fatalf("remove not applied: %v", code)
	}
}

func TestDuplicateRefusesNonIdempotentWrites(t *testing.T) {
	d := openTest(t, nil)
	r := d.apply(0, Mutation{Duplicate: &DuplicateRequest{Writes: []DuplicatedWrite{
		{Mutation: Mutation{Incr: &IncrRequest{Key: key.Encode([]byte("h"), []byte("n")), Increment: 1}}},
		dupPut("h", "p", "v", 9<<8|2<<1, false),
	}}})
	if r[0].Error != wire.StatusInvalidArgument {
		t.Fatalf("code %v", r[0].Error)
	}
	if _, code := d.get("h", "n"); code != wire.StatusNotFound {
		t.Fatal("incr applied")
	}
	if v, _ := d.get("h", "p"); v != "v" {
		t.Fatalf("the put after it: %q", v)
	}
}

func TestExport(t *testing.T) {
	d := openTest(t, nil)
	d.put("b", "1", "x", 0)
	d.put("a", "2", "y", d.clock.epoch()+100)
	d.put("a", "1", "gone", d.clock.epoch()+1)
	d.clock.Advance(2e9)
	var keys []string
	if err := d.Export(func(r Record) error {
		h, s, _ := key.Decode(r.Key)
		keys = append(keys, string(h)+"/"+string(s)+"="+string(r.Value))
		if r.Timetag == 0 {
			t.Errorf("%s: no timetag", r.Key)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "a/2=y" || keys[1] != "b/1=x" {
		t.Fatalf("exported %v", keys)
	}
	stop := errors.New("stop")
	n := 0
	if err := d.Export(func(Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err %v after %d records", err, n)
	}
}
