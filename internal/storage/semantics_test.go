package storage

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"12", 12, true},
		{"-12", -12, true},
		{"+12", 12, true},
		{"0x10", 16, true},
		{"0X1f", 31, true},
		{"-0x10", -16, true},
		{"010", 8, true},
		{"-010", -8, true},
		{"09", 0, false},
		{"0x", 0, false},
		{"0xg", 0, false},
		{" 7", 7, true},
		{"\t\n\v\f\r-7", -7, true},
		{"7 ", 0, false},
		{"7\x00", 0, false},
		{"1\x002", 0, false},
		{"", 0, false},
		{" ", 0, false},
		{"+", 0, false},
		{"-", 0, false},
		{"- 1", 0, false},
		{"--1", 0, false},
		{"abc", 0, false},
		{"1_000", 0, false},
		{"0b1", 0, false},
		{"0o7", 0, false},
		{"9223372036854775807", math.MaxInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775808", math.MinInt64, true},
		{"-9223372036854775809", 0, false},
		{"0x7fffffffffffffff", math.MaxInt64, true},
		{"0x8000000000000000", 0, false},
		{"-0x8000000000000000", math.MinInt64, true},
		{"0777777777777777777777", math.MaxInt64, true},
		{"01000000000000000000000", 0, false},
		{"99999999999999999999999", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseInt([]byte(tc.in))
			if ok != tc.ok || got != tc.want {
				t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
			if rg, rok := refStrtoll(tc.in); rok != tc.ok || rg != tc.want {
				t.Errorf("model refStrtoll(%q) = %d, %v; want %d, %v", tc.in, rg, rok, tc.want, tc.ok)
			}
		})
	}
}

func incrKey() []byte { return key.Encode([]byte("h"), []byte("n")) }

func TestIncr(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stored   *string // nil: absent
		inc      int64
		wantCode wire.Status
		wantNew  int64
		wantVal  string // stored afterwards ("" with stored==nil and code!=0 means absent)
	}{
		{"absent", nil, 5, 0, 5, "5"},
		{"empty value is 0", ptr(""), 3, 0, 3, "3"},
		{"decimal", ptr("10"), -3, 0, 7, "7"},
		{"leading spaces", ptr("  4"), 1, 0, 5, "5"},
		{"hex", ptr("0x10"), 1, 0, 17, "17"},
		{"negative hex", ptr("-0x10"), 1, 0, -15, "-15"},
		{"octal", ptr("010"), 0, 0, 8, "8"},
		{"bad octal", ptr("09"), 1, 4, 0, "09"},
		{"trailing space", ptr("5 "), 1, 4, 0, "5 "},
		{"embedded NUL", ptr("5\x00"), 1, 4, 0, "5\x00"},
		{"not a number", ptr("abc"), 1, 4, 0, "abc"},
		{"overflow up", ptr("9223372036854775807"), 1, 4, math.MaxInt64, "9223372036854775807"},
		{"overflow down", ptr("-9223372036854775808"), -1, 4, math.MinInt64, "-9223372036854775808"},
		{"to max", ptr("9223372036854775806"), 1, 0, math.MaxInt64, "9223372036854775807"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := openTest(t, nil)
			if tc.stored != nil {
				d.put("h", "n", *tc.stored, 0)
			}
			r := d.apply(0, Mutation{Incr: &IncrRequest{Key: incrKey(), Increment: tc.inc}})[0]
			if r.Error != tc.wantCode || r.NewValue != tc.wantNew {
				t.Fatalf("incr = code %d new %d; want %d %d", r.Error, r.NewValue, tc.wantCode, tc.wantNew)
			}
			v, c := d.get("h", "n")
			if c != wire.StatusOK || v != tc.wantVal {
				t.Fatalf("stored afterwards %q (%d), want %q", v, c, tc.wantVal)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestIncrTTL(t *testing.T) {
	d := openTest(t, nil)
	now := d.clock.epoch()
	ttlOf := func() int32 {
		ttl, c, _ := d.TTL(incrKey())
		if c != wire.StatusOK {
			t.Fatalf("ttl code %d", c)
		}
		return ttl
	}
	incr := func(expire, dttl int32) WriteResult {
		return d.apply(dttl, Mutation{Incr: &IncrRequest{Key: incrKey(), Increment: 1, ExpireTS: expire}})[0]
	}
	// Absent key with request expire > 0 takes it.
	incr(now+50, 0)
	if got := ttlOf(); got != 50 {
		t.Fatalf("ttl %d, want 50", got)
	}
	// Request 0 keeps the current TTL.
	incr(0, 0)
	if got := ttlOf(); got != 50 {
		t.Fatalf("ttl after keep %d, want 50", got)
	}
	// Request < 0 removes it.
	incr(-1, 0)
	if got := ttlOf(); got != -1 {
		t.Fatalf("ttl after remove %d, want -1", got)
	}
	// > 0 sets a new one.
	incr(now+20, 0)
	if got := ttlOf(); got != 20 {
		t.Fatalf("ttl after set %d, want 20", got)
	}
	// With a default TTL, removing the TTL sets now + default_ttl.
	incr(-1, 7)
	if got := ttlOf(); got != 7 {
		t.Fatalf("ttl after remove with default %d, want 7", got)
	}
	// An expired record counts as absent: the value restarts from 0 and the old TTL is gone.
	d.clock.Advance(7 * time.Second)
	if r := incr(0, 0); r.Error != 0 || r.NewValue != 1 {
		t.Fatalf("incr on expired = %+v, want new value 1", r)
	}
	if got := ttlOf(); got != -1 {
		t.Fatalf("ttl after incr on expired %d, want -1", got)
	}
	// Absent key with request expire < 0: no TTL.
	d.apply(0, Mutation{Remove: &RemoveRequest{Key: incrKey()}})
	incr(-1, 0)
	if got := ttlOf(); got != -1 {
		t.Fatalf("ttl %d, want -1", got)
	}
}

func TestCheckTypes(t *testing.T) {
	absent := (*string)(nil)
	for _, tc := range []struct {
		ct      idl.CASCheckType
		stored  *string
		operand string
		want    wire.Status
	}{
		{idl.CheckNone, absent, "", 0},
		{idl.CheckNone, ptr("x"), "", 0},
		{idl.CheckValueNotExist, absent, "", 0},
		{idl.CheckValueNotExist, ptr(""), "", 13},
		{idl.CheckValueNotExistOrEmpty, absent, "", 0},
		{idl.CheckValueNotExistOrEmpty, ptr(""), "", 0},
		{idl.CheckValueNotExistOrEmpty, ptr("x"), "", 13},
		{idl.CheckValueExist, absent, "", 13},
		{idl.CheckValueExist, ptr(""), "", 0},
		{idl.CheckValueNotEmpty, absent, "", 13},
		{idl.CheckValueNotEmpty, ptr(""), "", 13},
		{idl.CheckValueNotEmpty, ptr("x"), "", 0},
		{idl.CheckValueMatchAnywhere, absent, "", 13},
		{idl.CheckValueMatchAnywhere, ptr("abc"), "", 0},
		{idl.CheckValueMatchAnywhere, ptr("abc"), "b", 0},
		{idl.CheckValueMatchAnywhere, ptr("abc"), "d", 13},
		{idl.CheckValueMatchPrefix, ptr("abc"), "ab", 0},
		{idl.CheckValueMatchPrefix, ptr("abc"), "bc", 13},
		{idl.CheckValueMatchPrefix, absent, "", 13},
		{idl.CheckValueMatchPostfix, ptr("abc"), "bc", 0},
		{idl.CheckValueMatchPostfix, ptr("abc"), "ab", 13},
		{idl.CheckValueBytesLess, ptr("ab"), "abc", 0},
		{idl.CheckValueBytesLess, ptr("abc"), "abc", 13},
		{idl.CheckValueBytesLess, absent, "abc", 13},
		{idl.CheckValueBytesLessOrEqual, ptr("abc"), "abc", 0},
		{idl.CheckValueBytesLessOrEqual, ptr("abd"), "abc", 13},
		{idl.CheckValueBytesEqual, ptr("abc"), "abc", 0},
		{idl.CheckValueBytesEqual, ptr(""), "", 0},
		{idl.CheckValueBytesEqual, absent, "", 13},
		{idl.CheckValueBytesGreaterOrEqual, ptr("abc"), "abc", 0},
		{idl.CheckValueBytesGreaterOrEqual, ptr("ab"), "abc", 13},
		{idl.CheckValueBytesGreater, ptr("b"), "abc", 0},
		{idl.CheckValueBytesGreater, ptr("abc"), "abc", 13},
		{idl.CheckValueIntLess, ptr("5"), "6", 0},
		{idl.CheckValueIntLess, ptr("6"), "6", 13},
		{idl.CheckValueIntLess, absent, "junk", 13},
		{idl.CheckValueIntLess, ptr(""), "6", 4},
		{idl.CheckValueIntLess, ptr("x"), "6", 4},
		{idl.CheckValueIntLess, ptr("5"), "x", 4},
		{idl.CheckValueIntLessOrEqual, ptr("0x10"), "16", 0},
		{idl.CheckValueIntLessOrEqual, ptr("17"), "16", 13},
		{idl.CheckValueIntEqual, ptr("010"), "8", 0},
		{idl.CheckValueIntEqual, ptr("-1"), " -1", 0},
		{idl.CheckValueIntEqual, ptr("1"), "2", 13},
		{idl.CheckValueIntGreaterOrEqual, ptr("2"), "2", 0},
		{idl.CheckValueIntGreaterOrEqual, ptr("1"), "2", 13},
		{idl.CheckValueIntGreater, ptr("3"), "2", 0},
		{idl.CheckValueIntGreater, ptr("-3"), "2", 13},
		{idl.CASCheckType(18), ptr("x"), "", 4},
		{idl.CASCheckType(-1), ptr("x"), "", 4},
	} {
		name := fmt.Sprintf("type%d/stored=%v/op=%q", tc.ct, tc.stored != nil, tc.operand)
		t.Run(name, func(t *testing.T) {
			d := openTest(t, nil)
			if tc.stored != nil {
				d.put("h", "c", *tc.stored, 0)
			}
			r := d.apply(0, Mutation{CheckAndSet: &CheckAndSetRequest{
				HashKey: []byte("h"), CheckSortKey: []byte("c"), CheckType: tc.ct,
				CheckOperand: []byte(tc.operand), SetDiffSortKey: true, SetSortKey: []byte("s"),
				SetValue: []byte("new"), ReturnCheckValue: true,
			}})[0]
			if r.Error != tc.want {
				t.Fatalf("code %d, want %d", r.Error, tc.want)
			}
			invalidType := tc.ct < 0 || tc.ct > 17
			if r.CheckValueReturned == invalidType {
				t.Fatalf("check_value_returned %v", r.CheckValueReturned)
			}
			if !invalidType && (r.CheckValueExist != (tc.stored != nil) ||
				(tc.stored != nil && string(r.CheckValue) != *tc.stored)) {
				t.Fatalf("check value %v %q", r.CheckValueExist, r.CheckValue)
			}
			_, c := d.get("h", "s")
			if (c == wire.StatusOK) != (tc.want == 0) {
				t.Fatalf("set key present=%v after code %d", c == wire.StatusOK, tc.want)
			}
			// check_and_mutate decides the same way.
			r = d.apply(0, Mutation{CheckAndMutate: &CheckAndMutateRequest{
				HashKey: []byte("h"), CheckSortKey: []byte("c"), CheckType: tc.ct,
				CheckOperand: []byte(tc.operand), Mutates: []Mutate{{Op: idl.MutateDelete, SortKey: []byte("s")}},
			}})[0]
			if r.Error != tc.want || r.CheckValueReturned {
				t.Fatalf("check_and_mutate %+v, want code %d without check value", r, tc.want)
			}
		})
	}
}

func TestCheckAndSetDetails(t *testing.T) {
	d := openTest(t, nil)
	now := d.clock.epoch()
	cas := func(req CheckAndSetRequest, dttl int32) WriteResult {
		req.HashKey = []byte("h")
		return d.apply(dttl, Mutation{CheckAndSet: &req})[0]
	}
	// Without return_check_value nothing is filled, even on failure.
	d.put("h", "c", "old", 0)
	r := cas(CheckAndSetRequest{CheckSortKey: []byte("c"), CheckType: idl.CheckValueNotExist}, 0)
	if r.Error != 13 || r.CheckValueReturned || r.CheckValueExist || r.CheckValue != nil {
		t.Fatalf("%+v", r)
	}
	// set_diff_sort_key false writes the check key; TTL is absolute.
	r = cas(CheckAndSetRequest{CheckSortKey: []byte("c"), CheckType: idl.CheckValueExist, SetSortKey: []byte("ignored"),
		SetValue: []byte("new"), SetExpireTS: now + 30}, 0)
	if r.Error != 0 {
		t.Fatalf("%+v", r)
	}
	if v, _ := d.get("h", "c"); v != "new" {
		t.Fatalf("check key holds %q", v)
	}
	if _, c := d.get("h", "ignored"); c != wire.StatusNotFound {
		t.Fatal("set_sort_key used although set_diff_sort_key is false")
	}
	if ttl, _, _ := d.TTL(key.Encode([]byte("h"), []byte("c"))); ttl != 30 {
		t.Fatalf("ttl %d", ttl)
	}
	// The default TTL applies to the set value when its expire is 0.
	cas(CheckAndSetRequest{CheckSortKey: []byte("c"), CheckType: idl.CheckNone, SetValue: []byte("x")}, 9)
	if ttl, _, _ := d.TTL(key.Encode([]byte("h"), []byte("c"))); ttl != 9 {
		t.Fatalf("ttl with default %d", ttl)
	}
	// An expired check record counts as absent.
	d.clock.Advance(9 * time.Second)
	r = cas(CheckAndSetRequest{CheckSortKey: []byte("c"), CheckType: idl.CheckValueNotExist, ReturnCheckValue: true,
		SetValue: []byte("again")}, 0)
	if r.Error != 0 || !r.CheckValueReturned || r.CheckValueExist {
		t.Fatalf("%+v", r)
	}
}

func TestCheckAndMutateValidation(t *testing.T) {
	d := openTest(t, nil)
	d.put("h", "c", "v", 0)
	for name, req := range map[string]CheckAndMutateRequest{
		"empty list":   {CheckType: idl.CheckNone},
		"bad op":       {CheckType: idl.CheckNone, Mutates: []Mutate{{Op: idl.MutatePut, SortKey: []byte("a")}, {Op: 2}}},
		"bad check":    {CheckType: 40, Mutates: []Mutate{{Op: idl.MutatePut}}},
		"negative op":  {CheckType: idl.CheckNone, Mutates: []Mutate{{Op: -1}}},
		"bad int both": {CheckType: idl.CheckValueIntEqual, CheckOperand: []byte("x"), Mutates: []Mutate{{Op: idl.MutatePut, SortKey: []byte("a")}}},
	} {
		req.HashKey, req.CheckSortKey, req.ReturnCheckValue = []byte("h"), []byte("c"), true
		r := d.apply(0, Mutation{CheckAndMutate: &req})[0]
		if r.Error != wire.StatusInvalidArgument {
			t.Errorf("%s: code %d", name, r.Error)
		}
		if name != "bad int both" && r.CheckValueReturned {
			t.Errorf("%s: check value filled on validation failure", name)
		}
		if _, c := d.get("h", "a"); c != wire.StatusNotFound {
			t.Errorf("%s: wrote data", name)
		}
	}
	// Passing check: all mutates in order, atomically, with their own TTLs.
	now := d.clock.epoch()
	r := d.apply(0, Mutation{CheckAndMutate: &CheckAndMutateRequest{HashKey: []byte("h"), CheckSortKey: []byte("c"),
		CheckType: idl.CheckValueBytesEqual, CheckOperand: []byte("v"), Mutates: []Mutate{
			{Op: idl.MutatePut, SortKey: []byte("a"), Value: []byte("1"), ExpireTS: now + 5},
			{Op: idl.MutatePut, SortKey: []byte("b"), Value: []byte("2")},
			{Op: idl.MutateDelete, SortKey: []byte("b")},
			{Op: idl.MutateDelete, SortKey: []byte("c")},
		}}})[0]
	if r.Error != 0 {
		t.Fatalf("%+v", r)
	}
	if v, c := d.get("h", "a"); v != "1" || c != 0 {
		t.Fatal("a missing")
	}
	for _, s := range []string{"b", "c"} {
		if _, c := d.get("h", s); c != wire.StatusNotFound {
			t.Fatalf("%s still present", s)
		}
	}
}

func TestBatchSeesEarlierMutations(t *testing.T) {
	d := openTest(t, nil)
	k := incrKey()
	res := d.apply(0,
		Mutation{Put: &PutRequest{Key: k, Value: []byte("10")}},
		Mutation{Incr: &IncrRequest{Key: k, Increment: 5}},
		Mutation{CheckAndSet: &CheckAndSetRequest{HashKey: []byte("h"), CheckSortKey: []byte("n"),
			CheckType: idl.CheckValueIntEqual, CheckOperand: []byte("15"), SetValue: []byte("ok"), ReturnCheckValue: true}},
		Mutation{Incr: &IncrRequest{Key: k, Increment: 1}},
	)
	if res[1].NewValue != 15 || res[2].Error != 0 || string(res[2].CheckValue) != "15" || res[3].Error != 4 {
		t.Fatalf("%s", fmtWrite(res))
	}
}

func TestMultiPutRemove(t *testing.T) {
	d := openTest(t, nil)
	r := d.apply(0, Mutation{MultiPut: &MultiPutRequest{HashKey: []byte("h"), KVs: []KeyValue{
		{Key: []byte("a"), Value: []byte("1"), ExpireTS: 5}, {Key: []byte("b"), Value: []byte("2")},
		{Key: []byte("a"), Value: []byte("3")}}}})[0]
	if r.Error != 0 {
		t.Fatal(r)
	}
	if v, _ := d.get("h", "a"); v != "3" {
		t.Fatalf("duplicate: %q, last should win", v)
	}
	if ttl, _, _ := d.TTL(key.Encode([]byte("h"), []byte("a"))); ttl != -1 {
		t.Fatalf("per-kv expire was not ignored: ttl %d", ttl)
	}
	r = d.apply(0, Mutation{MultiRemove: &MultiRemoveRequest{HashKey: []byte("h"),
		SortKeys: [][]byte{[]byte("a"), []byte("a"), []byte("zz")}}})[0]
	if r.Error != 0 || r.Count != 3 {
		t.Fatalf("multi_remove %+v, want count 3", r)
	}
	if n, _, _ := d.SortKeyCount([]byte("h")); n != 1 {
		t.Fatalf("count %d", n)
	}
}

// multiGetFixture stores h/a..h/e plus, optionally, a record under a later hash key.
func multiGetFixture(t *testing.T, withNext bool) *testDB {
	d := openTest(t, nil)
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		d.put("h", s, "v"+s, 0)
	}
	if withNext {
		d.put("i", "x", "other", 0)
	}
	return d
}

func mg(t *testing.T, d *testDB, req MultiGetRequest) string {
	t.Helper()
	if req.HashKey == nil {
		req.HashKey = []byte("h")
	}
	res, err := d.MultiGet(&req)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d:", res.Error)
	for _, kv := range res.KVs {
		fmt.Fprintf(&b, " %s=%s", kv.Key, kv.Value)
	}
	return b.String()
}

func TestMultiGetRange(t *testing.T) {
	s := func(v string) []byte { return []byte(v) }
	for _, tc := range []struct {
		name     string
		withNext bool
		req      MultiGetRequest
		want     string
	}{
		{"all", false, MultiGetRequest{StartInclusive: true}, "0: a=va b=vb c=vc d=vd e=ve"},
		{"no value", false, MultiGetRequest{NoValue: true, StartInclusive: true, MaxKVCount: 2}, "7: a= b="},
		{"exclusive start skips exact match only", false, MultiGetRequest{StartSortKey: s("b"), StopSortKey: s("d")}, "0: c=vc"},
		{"exclusive start between keys", false, MultiGetRequest{StartSortKey: s("bb"), StopSortKey: s("d"), StopInclusive: true}, "0: c=vc d=vd"},
		{"empty range", false, MultiGetRequest{StartSortKey: s("d"), StopSortKey: s("b"), StartInclusive: true}, "0:"},
		{"start equals stop, both inclusive", false, MultiGetRequest{StartSortKey: s("c"), StopSortKey: s("c"), StartInclusive: true, StopInclusive: true}, "0: c=vc"},
		{"start equals stop, one exclusive", false, MultiGetRequest{StartSortKey: s("c"), StopSortKey: s("c"), StartInclusive: true}, "0:"},
		{"reverse returns ascending tail", false, MultiGetRequest{StartInclusive: true, Reverse: true, MaxKVCount: 2}, "7: d=vd e=ve"},
		{"reverse exclusive stop", false, MultiGetRequest{StartInclusive: true, StopSortKey: s("d"), Reverse: true}, "0: a=va b=vb c=vc"},
		{"count limit, more follow", false, MultiGetRequest{StartInclusive: true, MaxKVCount: 2}, "7: a=va b=vb"},
		{"size limit returns the crossing record", false, MultiGetRequest{StartInclusive: true, MaxKVSize: 4}, "7: a=va b=vb"},
		{"count limit at last record, partition ends", false, MultiGetRequest{StartInclusive: true, MaxKVCount: 5}, "0: a=va b=vb c=vc d=vd e=ve"},
		{"count limit at last record, another hash key follows", true, MultiGetRequest{StartInclusive: true, MaxKVCount: 5}, "7: a=va b=vb c=vc d=vd e=ve"},
		{"limit at exclusive stop's predecessor, key follows", false, MultiGetRequest{StartInclusive: true, StopSortKey: s("c"), MaxKVCount: 2}, "7: a=va b=vb"},
		{"limit at inclusive stop key", true, MultiGetRequest{StartInclusive: true, StopSortKey: s("b"), StopInclusive: true, MaxKVCount: 2}, "0: a=va b=vb"},
		{"reverse limit at inclusive start key", true, MultiGetRequest{StartInclusive: true, Reverse: true, MaxKVCount: 5}, "0: a=va b=vb c=vc d=vd e=ve"},
		{"reverse limit, nothing before", false, MultiGetRequest{StartSortKey: s("0"), StartInclusive: true, Reverse: true, MaxKVCount: 5}, "0: a=va b=vb c=vc d=vd e=ve"},
		{"max count 3000 and above mean 3000", false, MultiGetRequest{StartInclusive: true, MaxKVCount: 5000}, "0: a=va b=vb c=vc d=vd e=ve"},
		{"filter anywhere", false, MultiGetRequest{StartInclusive: true, SortKeyFilterType: idl.FilterMatchAnywhere, SortKeyFilter: s("c")}, "0: c=vc"},
		{"filter postfix", false, MultiGetRequest{StartInclusive: true, SortKeyFilterType: idl.FilterMatchPostfix, SortKeyFilter: s("e")}, "0: e=ve"},
		{"filter none ignores pattern", false, MultiGetRequest{StartInclusive: true, SortKeyFilterType: idl.FilterNone, SortKeyFilter: s("zzz")}, "0: a=va b=vb c=vc d=vd e=ve"},
		{"empty pattern passes", false, MultiGetRequest{StartInclusive: true, SortKeyFilterType: idl.FilterMatchPostfix}, "0: a=va b=vb c=vc d=vd e=ve"},
		{"prefix narrows range", true, MultiGetRequest{SortKeyFilterType: idl.FilterMatchPrefix, SortKeyFilter: s("b"), MaxKVCount: 1}, "7: b=vb"},
		{"prefix narrows range, reverse", true, MultiGetRequest{SortKeyFilterType: idl.FilterMatchPrefix, SortKeyFilter: s("b"), Reverse: true}, "0: b=vb"},
		{"filtered records are examined, not counted", false, MultiGetRequest{StartInclusive: true, MaxKVCount: 1, SortKeyFilterType: idl.FilterMatchAnywhere, SortKeyFilter: s("d")}, "7: d=vd"},
		{"bad filter type", false, MultiGetRequest{StartInclusive: true, SortKeyFilterType: 4}, "4:"},
		{"bad filter type in point mode", false, MultiGetRequest{SortKeys: [][]byte{s("a")}, SortKeyFilterType: -1}, "4:"},
		{"point mode keeps order and duplicates", false, MultiGetRequest{SortKeys: [][]byte{s("c"), s("zz"), s("a"), s("c")}}, "0: c=vc a=va c=vc"},
		{"point mode ignores range, filter, reverse", false, MultiGetRequest{SortKeys: [][]byte{s("e"), s("a")}, StartSortKey: s("b"), StopSortKey: s("c"), SortKeyFilterType: idl.FilterMatchPrefix, SortKeyFilter: s("q"), Reverse: true}, "0: e=ve a=va"},
		{"point mode count limit", false, MultiGetRequest{SortKeys: [][]byte{s("a"), s("b"), s("c")}, MaxKVCount: 2}, "7: a=va b=vb"},
		{"point mode limit, missing rest is complete", false, MultiGetRequest{SortKeys: [][]byte{s("a"), s("b"), s("x")}, MaxKVCount: 2}, "0: a=va b=vb"},
		{"point mode size limit", false, MultiGetRequest{SortKeys: [][]byte{s("a"), s("b"), s("c")}, MaxKVSize: 4}, "7: a=va b=vb"},
		{"point mode size reached exactly", false, MultiGetRequest{SortKeys: [][]byte{s("a"), s("b"), s("c")}, MaxKVSize: 3}, "7: a=va"},
		{"point mode no value", false, MultiGetRequest{SortKeys: [][]byte{s("b")}, NoValue: true}, "0: b="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := multiGetFixture(t, tc.withNext)
			if got := mg(t, d, tc.req); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMultiGetExaminedLimit(t *testing.T) {
	d := openTest(t, nil)
	now := d.clock.epoch()
	// 3000 expired records, then one live one: the examined limit stops the iteration first.
	d.putMany("h", "a%05d", 3000, now+1)
	d.put("h", "b", "live", 0)
	d.clock.Advance(time.Second)
	if got := mg(t, d, MultiGetRequest{StartInclusive: true}); got != "7:" {
		t.Fatalf("got %q, want incomplete and empty", got)
	}
	// Reversed, b is examined first, then 2999 expired records; a00000 is still left.
	if got := mg(t, d, MultiGetRequest{StartInclusive: true, Reverse: true}); got != "7: b=live" {
		t.Fatalf("reverse got %q", got[:min(len(got), 40)])
	}
	if n, _, _ := d.SortKeyCount([]byte("h")); n != 1 {
		t.Fatalf("count %d", n)
	}
}

func TestMultiGetIterationTimeLimit(t *testing.T) {
	clock := newFakeClock()
	calls := 0
	d := openTest(t, func(o *Options) {
		o.Now = func() time.Time {
			calls++
			return clock.Now().Add(time.Duration(calls) * time.Second)
		}
	})
	var kvs []KeyValue
	for i := range 700 {
		kvs = append(kvs, KeyValue{Key: fmt.Appendf(nil, "%04d", i), Value: []byte("x")})
	}
	d.apply(0, Mutation{MultiPut: &MultiPutRequest{HashKey: []byte("h"), KVs: kvs}})
	d.SetEnv(Env{IterationTimeLimit: 1500 * time.Millisecond})
	res, err := d.MultiGet(&MultiGetRequest{HashKey: []byte("h"), StartInclusive: true})
	if err != nil || res.Error != wire.StatusIncomplete || len(res.KVs) != 600 {
		t.Fatalf("code %d, %d kvs; want 7 after two time checks (600 records)", res.Error, len(res.KVs))
	}
	if n, c, _ := d.SortKeyCount([]byte("h")); n != -1 || c != 0 {
		t.Fatalf("sortkey_count %d %d, want -1 0", n, c)
	}
	d.SetEnv(Env{IterationTimeLimit: -1})
	if n, _, _ := d.SortKeyCount([]byte("h")); n != 700 {
		t.Fatalf("unlimited count %d", n)
	}
}

func TestBatchGet(t *testing.T) {
	d := openTest(t, nil)
	d.put("h", "a", "1", 0)
	d.put("", "b", "2", 0)
	d.put("h", "x", "3", d.clock.epoch())
	data, code, err := d.BatchGet([]FullKey{{HashKey: []byte("h"), SortKey: []byte("a")}, {HashKey: []byte("h"), SortKey: []byte("x")},
		{SortKey: []byte("b")}, {HashKey: []byte("h"), SortKey: []byte("a")}, {HashKey: []byte("zz")}})
	if err != nil || code != 0 || len(data) != 3 || string(data[1].Value) != "2" || string(data[2].SortKey) != "a" {
		t.Fatalf("%d %+v %v", code, data, err)
	}
	if _, code, _ := d.BatchGet(nil); code != wire.StatusInvalidArgument {
		t.Fatalf("empty batch_get code %d", code)
	}
	if _, code, _ := d.BatchGet([]FullKey{{HashKey: make([]byte, 65535)}}); code != wire.StatusInvalidArgument {
		t.Fatalf("long hash key code %d", code)
	}
	if _, code, _ := d.SortKeyCount(make([]byte, 65535)); code != wire.StatusInvalidArgument {
		t.Fatalf("sortkey_count long hash key code %d", code)
	}
	if r, _ := d.MultiGet(&MultiGetRequest{HashKey: make([]byte, 65535)}); r.Error != wire.StatusInvalidArgument {
		t.Fatalf("multi_get long hash key code %d", r.Error)
	}
	// 65534 bytes is the longest valid hash key.
	long := bytes.Repeat([]byte{0xFF}, 65534)
	d.apply(0, Mutation{MultiPut: &MultiPutRequest{HashKey: long, KVs: []KeyValue{{Key: []byte("s"), Value: []byte("v")}}}})
	if n, c, _ := d.SortKeyCount(long); n != 1 || c != 0 {
		t.Fatalf("long hash key count %d %d", n, c)
	}
}

func TestDataVersion0(t *testing.T) {
	// A database recorded as version 0 stores u32 expire || value.
	dir := t.TempDir()
	d := openTest(t, func(o *Options) { o.Dir = dir })
	_ = d.Close()
	p, err := openPebbleForTest(dir)
	if err != nil {
		t.Fatal(err)
	}
	k := key.Encode([]byte("h"), []byte("s"))
	_ = p.Set(metaVersionKey, []byte{0, 0, 0, 0}, nil)
	_ = p.Set(k, []byte{0, 0, 0, 0, 'o', 'l', 'd'}, nil)
	_ = p.Close()
	d = openTest(t, func(o *Options) { o.Dir = dir })
	if d.DataVersion() != 0 {
		t.Fatalf("data version %d", d.DataVersion())
	}
	if v, c := d.get("h", "s"); v != "old" || c != 0 {
		t.Fatalf("v0 get %q %d", v, c)
	}
	d.index = d.LastAppliedIndex()
	d.put("h", "t", "new", 5)
	raw, closer, err := d.pdb.Get(key.Encode([]byte("h"), []byte("t")))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if !bytes.Equal(raw, []byte{0, 0, 0, 5, 'n', 'e', 'w'}) {
		t.Fatalf("v0 write stored %x", raw)
	}
}
