package throttle

import (
	"errors"
	"testing"
	"time"
)

func TestParseForms(t *testing.T) {
	good := map[string]Spec{
		"100*reject*200":                {RejectUnits: 100, RejectDelay: 200 * time.Millisecond},
		"20K*delay*100,100K*reject*200": {DelayUnits: 20000, Delay: 100 * time.Millisecond, RejectUnits: 100000, RejectDelay: 200 * time.Millisecond},
		"1M*delay*0":                    {DelayUnits: 1000000},
		" 5*delay*10 , 9*reject*20 ":    {DelayUnits: 5, Delay: 10 * time.Millisecond, RejectUnits: 9, RejectDelay: 20 * time.Millisecond},
		"100*reject*200,":               {RejectUnits: 100, RejectDelay: 200 * time.Millisecond},
	}
	for v, want := range good {
		got, err := Parse(v)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", v, got, err, want)
		}
	}
	for _, v := range []string{"", ",", "100", "100*reject", "100*reject*200*1", "x*reject*200", "-1*reject*200",
		"100*reject*-5", "100*drop*200", "1*delay*1,2*delay*2", "1*reject*1,2*reject*2", "100G*reject*1", "100*reject*1.5"} {
		if _, err := Parse(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q): %v, want ErrInvalid", v, err)
		}
	}
	for v, want := range map[string]int64{"200K": 200000, "5M": 5000000, "300": 300, "1K*reject*100": 1000} {
		if got, err := ParseBucket(v); err != nil || got != want {
			t.Errorf("ParseBucket(%q) = %d, %v", v, got, err)
		}
	}
	for _, v := range []string{"", "abc", "1K*delay*100", "1K*delay*1,2K*reject*1"} {
		if _, err := ParseBucket(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseBucket(%q): %v", v, err)
		}
	}
	for v, want := range map[string]Deny{"timeout*read": {Reads: true, Timeout: true}, "reconfig*write": {Writes: true},
		"reconfig*all": {Reads: true, Writes: true}, "timeout*all": {Reads: true, Writes: true, Timeout: true}} {
		if got, err := ParseDeny(v); err != nil || got != want {
			t.Errorf("ParseDeny(%q) = %+v, %v", v, got, err)
		}
	}
	for _, v := range []string{"", "timeout", "read", "timeout*both", "drop*read", "timeout*read*1"} {
		if _, err := ParseDeny(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseDeny(%q): %v", v, err)
		}
	}
	if err := Validate("replica.other_env", "anything"); err != nil {
		t.Fatal(err)
	}
	if err := Validate(EnvWrite, "100*rejekt*200"); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

// TestControllerWindow: per partition N/partition_count + 1 units pass in a second, the
// delay term holds, a rejected request is not counted, and the window restarts each second.
func TestControllerWindow(t *testing.T) {
	sp, _ := Parse("10*delay*50,20*reject*200")
	c := NewController(sp, 2) // per partition: delay past 6, reject past 11
	now := time.Unix(1000, 0)
	var pass, delay, reject int
	for range 30 {
		a, d := c.Control(now, time.Second, 1)
		switch a {
		case Pass:
			pass++
		case Delay:
			delay++
			if d != 50*time.Millisecond {
				t.Fatalf("delay %v", d)
			}
		case Reject:
			reject++
			if d != 200*time.Millisecond {
				t.Fatalf("reject delay %v", d)
			}
		}
	}
	if pass != 6 || delay != 5 || reject != 19 {
		t.Fatalf("pass %d delay %d reject %d", pass, delay, reject)
	}
	if a, d := c.Control(now, 100*time.Millisecond, 1); a != Reject || d != 50*time.Millisecond {
		t.Fatalf("hold bounded by half the client timeout: %v %v", a, d)
	}
	if a, _ := c.Control(now.Add(time.Second), time.Second, 1); a != Pass {
		t.Fatalf("new window: %v", a)
	}
}

func TestBucket(t *testing.T) {
	b := NewBucket(999, 1) // 1000 bytes per second
	now := time.Unix(1000, 0)
	if !b.Allow(now) {
		t.Fatal("full bucket refused")
	}
	b.Take(now, 3000)
	if b.Allow(now.Add(time.Second)) {
		t.Fatal("bucket 2000 bytes short allowed a read after 1 s")
	}
	if !b.Allow(now.Add(2100 * time.Millisecond)) {
		t.Fatal("bucket refilled but refused")
	}
}
