package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func newTestRegistry() (*Registry, *Value[uint64], *Value[bool], *Value[string], *Value[float64], *Value[int32]) {
	r := NewRegistry()
	u := Define(r, Spec[uint64]{Section: "pegasus.server", Name: "threshold_ns", Default: 100, Mutable: true,
		Description: "a threshold", Validate: func(v uint64) error {
			if v > 1000 {
				return errors.New("too big")
			}
			return nil
		}})
	b := Define(r, Spec[bool]{Section: "replication", Name: "flag", Default: false, Mutable: true})
	s := Define(r, Spec[string]{Section: "network", Name: "listen", Default: "127.0.0.1:1"})
	d := Define(r, Spec[float64]{Section: "core", Name: "ratio", Default: 0.5, Mutable: true})
	i := Define(r, Spec[int32]{Section: "core", Name: "count", Default: 3})
	return r, u, b, s, d, i
}

func TestUpdate(t *testing.T) {
	r, u, b, _, d, _ := newTestRegistry()
	for _, tc := range []struct {
		name, value string
		want        error
	}{
		{"nope", "1", ErrNotFound},
		{"count", "1", ErrNotMutable},
		{"threshold_ns", "-1", ErrInvalid},
		{"threshold_ns", "abc", ErrInvalid},
		{"threshold_ns", "2000", ErrValidation},
		{"ratio", "inf", ErrInvalid},
		{"flag", "maybe", ErrInvalid},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			if err := r.Update(tc.name, tc.value); !errors.Is(err, tc.want) {
				t.Errorf("Update(%s, %s) = %v, want %v", tc.name, tc.value, err, tc.want)
			}
		})
	}
	if u.Get() != 100 {
		t.Fatalf("refused updates changed the value: %d", u.Get())
	}
	for _, v := range []struct {
		in   string
		want uint64
	}{{"0x10", 16}, {"010", 8}, {"7", 7}} {
		t.Run(v.in, func(t *testing.T) {
			if err := r.Update("threshold_ns", v.in); err != nil || u.Get() != v.want {
				t.Fatalf("Update(threshold_ns, %s): err %v, value %d, want %d", v.in, err, u.Get(), v.want)
			}
		})
	}
	if err := r.Update("flag", "TRUE"); err != nil || !b.Get() {
		t.Fatalf("bool update: %v %v", err, b.Get())
	}
	if err := r.Update("ratio", "0.25"); err != nil || d.Get() != 0.25 {
		t.Fatalf("double update: %v %v", err, d.Get())
	}
	if in, _ := r.Lookup("ratio"); in.Value != "0.25" || in.Type.String() != "FV_DOUBLE" {
		t.Fatalf("ratio info %+v", in)
	}
}

func TestStringNotMutable(t *testing.T) {
	r := NewRegistry()
	Define(r, Spec[string]{Section: "s", Name: "x", Mutable: true})
	if err := r.Update("x", "y"); !errors.Is(err, ErrStringNotMutable) {
		t.Fatalf("got %v", err)
	}
}

func TestGroupValidatorRestores(t *testing.T) {
	r, u, _, _, _, _ := newTestRegistry()
	r.AddGroupValidator("even", func() error {
		if u.Get()%2 != 0 {
			return fmt.Errorf("odd %d", u.Get())
		}
		return nil
	})
	var ge *GroupError
	if err := r.Update("threshold_ns", "5"); !errors.As(err, &ge) || ge.Error() != `group validator "even" failed: "odd 5"` {
		t.Fatalf("got %v", err)
	}
	if u.Get() != 100 {
		t.Fatalf("value not restored: %d", u.Get())
	}
}

func TestLoad(t *testing.T) {
	r, u, b, s, _, i := newTestRegistry()
	file := `
; comment
# another
[pegasus.server]
threshold_ns = 500
[replication]
flag = true
[network]
listen = 10.0.0.1:34801
[core]
count = 9
`
	if err := r.Load(strings.NewReader(file), "test.ini"); err != nil {
		t.Fatal(err)
	}
	if u.Get() != 500 || !b.Get() || s.Get() != "10.0.0.1:34801" || i.Get() != 9 {
		t.Fatalf("values %d %v %q %d", u.Get(), b.Get(), s.Get(), i.Get())
	}
	for _, bad := range []string{
		"[core]\nnope = 1\n",
		"[network]\nthreshold_ns = 1\n",
		"[pegasus.server]\nthreshold_ns = 5000\n",
		"[core\n",
		"[core]\ncount\n",
	} {
		t.Run(bad, func(t *testing.T) {
			if err := r.Load(strings.NewReader(bad), "bad.ini"); err == nil {
				t.Errorf("Load(%q) succeeded", bad)
			}
		})
	}
}

func TestDefineTwicePanics(t *testing.T) {
	r := NewRegistry()
	Define(r, Spec[bool]{Name: "x"})
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	Define(r, Spec[int64]{Name: "x"})
}

func TestSections(t *testing.T) {
	r, u, _, _, _, _ := newTestRegistry()
	DefineSections(r, "block_service.")
	file := `
[pegasus.server]
threshold_ns = 200
[block_service.bak]
type = local_service
args = /mnt/backup
[block_service.s3]
type = s3
args = https://s3.example.com:9000 bucket
access_key = AK
access_key = AK2
[block_service.empty]
`
	if err := r.Load(strings.NewReader(file), "test.ini"); err != nil {
		t.Fatal(err)
	}
	if u.Get() != 200 {
		t.Fatalf("setting beside sections not loaded: %d", u.Get())
	}
	got := r.Sections("block_service.")
	want := map[string]map[string]string{
		"bak":   {"type": "local_service", "args": "/mnt/backup"},
		"s3":    {"type": "s3", "args": "https://s3.example.com:9000 bucket", "access_key": "AK2"},
		"empty": {},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Sections = %v, want %v", got, want)
	}
	got["bak"]["type"] = "changed"
	if r.Sections("block_service.")["bak"]["type"] != "local_service" {
		t.Fatal("Sections returned the registry's own maps")
	}
	if len(r.Sections("nope.")) != 0 {
		t.Fatal("an undefined family has sections")
	}
	for _, bad := range []string{
		"[block_service.]\ntype = s3\n",                  // no name
		"[block_service.x]\n= v\n",                       // empty key
		"[block_service.x]\ntype\n",                      // no '='
		"[block_servicex]\ntype = s3\n",                  // not the family: strict checking
		"[pegasus.server]\ntype = s3\n",                  // strict checking elsewhere
		"[block_service.x]\ntype = s3\n[core]\nnope = 1", // still strict after a raw section
	} {
		if err := r.Load(strings.NewReader(bad), "bad.ini"); err == nil {
			t.Errorf("Load(%q) succeeded", bad)
		}
	}
}

func TestDefineSectionsConflicts(t *testing.T) {
	for name, fn := range map[string]func(){
		"no dot":        func() { DefineSections(NewRegistry(), "block_service") },
		"overlap":       func() { r := NewRegistry(); DefineSections(r, "a."); DefineSections(r, "a.b.") },
		"holds setting": func() { r, _, _, _, _, _ := newTestRegistry(); DefineSections(r, "pegasus.") },
		"setting in family": func() {
			r := NewRegistry()
			DefineSections(r, "block_service.")
			Define(r, Spec[bool]{Section: "block_service.x", Name: "y"})
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}

func TestLoadRawSection(t *testing.T) {
	r, u, _, _, _, _ := newTestRegistry()
	clusters := DefineSection(r, "pegasus.clusters", "the remote clusters")
	file := `
[pegasus.clusters]
onebox2 = 127.0.0.1:35601,127.0.0.1:35602
c3=10.0.0.1:34601
[pegasus.server]
threshold_ns = 7
`
	if err := r.Load(strings.NewReader(file), "test.ini"); err != nil {
		t.Fatal(err)
	}
	got := clusters.Get()
	if len(got) != 2 || got["onebox2"] != "127.0.0.1:35601,127.0.0.1:35602" || got["c3"] != "10.0.0.1:34601" || u.Get() != 7 {
		t.Fatalf("section %v, threshold %d", got, u.Get())
	}
	got["c3"] = "changed"
	if clusters.Get()["c3"] != "10.0.0.1:34601" {
		t.Fatal("Get returned the section's own map")
	}
	// A setting's name inside a raw section is just a key of it.
	if err := r.Load(strings.NewReader("[pegasus.clusters]\nthreshold_ns = 1\n"), "x.ini"); err != nil || u.Get() != 7 {
		t.Fatalf("err %v, threshold %d", err, u.Get())
	}
	if err := r.Load(strings.NewReader("[pegasus.clusters]\n = x\n"), "bad.ini"); err == nil {
		t.Fatal("an empty key was accepted")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("defining a section twice did not panic")
		}
	}()
	DefineSection(r, "pegasus.clusters", "again")
}
