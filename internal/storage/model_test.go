package storage

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

var seedFlag = flag.Uint64("seed", 0, "seed of TestModel (0: from STORAGE_MODEL_SEED or the clock)")

// The reference model: a plain map of stored records, written straight from protocol.md §5
// without any of the store's machinery. Expired records stay in the map (as they stay on disk
// until swept), because they count as examined records in multi_get and scans.

type mrec struct {
	value  string
	expire uint32
}

type model struct {
	recs       map[string]mrec
	applyClock uint32
}

func (m *model) sortedKeys() []string {
	ks := make([]string, 0, len(m.recs))
	for k := range m.recs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (m *model) live(k string, now uint32) (mrec, bool) {
	r, ok := m.recs[k]
	if !ok || (r.expire > 0 && r.expire <= now) {
		return mrec{}, false
	}
	return r, true
}

func enc(h, s []byte) string { return string(key.Encode(h, s)) }

func wellFormed(k []byte) bool {
	return len(k) >= 2 && 2+(int(k[0])<<8|int(k[1])) <= len(k)
}

// applyBatch applies a batch to the model and returns the expected results.
func (m *model) applyBatch(t time.Time, defaultTTL int32, ms []Mutation) []WriteResult {
	m.applyClock = max(m.applyClock, EpochNow(t))
	now := m.applyClock
	exp := func(e int32) uint32 {
		if e == 0 && defaultTTL > 0 {
			return now + uint32(defaultTTL)
		}
		return uint32(e)
	}
	out := make([]WriteResult, len(ms))
	for i, mu := range ms {
		r := &out[i]
		switch {
		case mu.Put != nil:
			if !wellFormed(mu.Put.Key) {
				r.Error = 4
				continue
			}
			m.recs[string(mu.Put.Key)] = mrec{string(mu.Put.Value), exp(mu.Put.ExpireTS)}
		case mu.Remove != nil:
			if !wellFormed(mu.Remove.Key) {
				r.Error = 4
				continue
			}
			delete(m.recs, string(mu.Remove.Key))
		case mu.MultiPut != nil:
			p := mu.MultiPut
			if len(p.KVs) == 0 || len(p.HashKey) >= 65535 {
				r.Error = 4
				continue
			}
			for _, kv := range p.KVs {
				m.recs[enc(p.HashKey, kv.Key)] = mrec{string(kv.Value), exp(p.ExpireTS)}
			}
		case mu.MultiRemove != nil:
			p := mu.MultiRemove
			if len(p.SortKeys) == 0 || len(p.HashKey) >= 65535 {
				r.Error = 4
				continue
			}
			for _, s := range p.SortKeys {
				delete(m.recs, enc(p.HashKey, s))
			}
			r.Count = int64(len(p.SortKeys))
		case mu.Incr != nil:
			p := mu.Incr
			if !wellFormed(p.Key) {
				r.Error = 4
				continue
			}
			old, ok := m.live(string(p.Key), now)
			var base int64
			var e uint32
			if ok {
				if old.value != "" {
					v, good := refStrtoll(old.value)
					if !good {
						r.Error = 4
						continue
					}
					base = v
				}
				e = old.expire
				if p.ExpireTS < 0 {
					e = 0
				} else if p.ExpireTS > 0 {
					e = uint32(p.ExpireTS)
				}
			} else if p.ExpireTS > 0 {
				e = uint32(p.ExpireTS)
			}
			sum, overflow := addOverflows(base, p.Increment)
			if overflow {
				r.Error, r.NewValue = 4, base
				continue
			}
			if e == 0 {
				e = exp(0)
			}
			m.recs[string(p.Key)] = mrec{strconv.FormatInt(sum, 10), e}
			r.NewValue = sum
		case mu.CheckAndSet != nil:
			p := mu.CheckAndSet
			if p.CheckType < 0 || p.CheckType > 17 || len(p.HashKey) >= 65535 {
				r.Error = 4
				continue
			}
			r.Error = m.check(p.HashKey, p.CheckSortKey, p.CheckType, p.CheckOperand, p.ReturnCheckValue, now, r)
			if r.Error != 0 {
				continue
			}
			sk := p.CheckSortKey
			if p.SetDiffSortKey {
				sk = p.SetSortKey
			}
			m.recs[enc(p.HashKey, sk)] = mrec{string(p.SetValue), exp(p.SetExpireTS)}
		case mu.CheckAndMutate != nil:
			p := mu.CheckAndMutate
			bad := len(p.Mutates) == 0 || p.CheckType < 0 || p.CheckType > 17 || len(p.HashKey) >= 65535
			for _, x := range p.Mutates {
				bad = bad || (x.Op != 0 && x.Op != 1)
			}
			if bad {
				r.Error = 4
				continue
			}
			r.Error = m.check(p.HashKey, p.CheckSortKey, p.CheckType, p.CheckOperand, p.ReturnCheckValue, now, r)
			if r.Error != 0 {
				continue
			}
			for _, x := range p.Mutates {
				if x.Op == idl.MutatePut {
					m.recs[enc(p.HashKey, x.SortKey)] = mrec{string(x.Value), exp(x.ExpireTS)}
				} else {
					delete(m.recs, enc(p.HashKey, x.SortKey))
				}
			}
		default:
			r.Error = 4
		}
	}
	return out
}

func addOverflows(a, b int64) (int64, bool) {
	s := a + b
	return s, (b > 0 && s < a) || (b < 0 && s > a)
}

func (m *model) check(h, s []byte, t idl.CASCheckType, op []byte, ret bool, now uint32, r *WriteResult) wire.Status {
	rec, exists := m.live(enc(h, s), now)
	v := rec.value
	if ret {
		r.CheckValueReturned, r.CheckValueExist = true, exists
		if exists {
			r.CheckValue = []byte(v)
		}
	}
	o := string(op)
	var pass bool
	switch t {
	case 0:
		pass = true
	case 1:
		pass = !exists
	case 2:
		pass = !exists || v == ""
	case 3:
		pass = exists
	case 4:
		pass = exists && v != ""
	case 5:
		pass = exists && strings.Contains(v, o)
	case 6:
		pass = exists && strings.HasPrefix(v, o)
	case 7:
		pass = exists && strings.HasSuffix(v, o)
	case 8:
		pass = exists && v < o
	case 9:
		pass = exists && v <= o
	case 10:
		pass = exists && v == o
	case 11:
		pass = exists && v >= o
	case 12:
		pass = exists && v > o
	default:
		if !exists {
			return 13
		}
		a, ok1 := refStrtoll(v)
		if !ok1 {
			return 4
		}
		b, ok2 := refStrtoll(o)
		if !ok2 {
			return 4
		}
		pass = [...]bool{a < b, a <= b, a == b, a >= b, a > b}[t-13]
	}
	if pass {
		return 0
	}
	return 13
}

// refStrtoll is a second, deliberately different strtoll(base 0) reading: trim, sign, pick
// the base, then hand the digits to big-number-free ParseUint with explicit base.
func refStrtoll(s string) (int64, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := 10
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if s == "" || strings.ContainsAny(s[:1], "+-_") {
		return 0, false
	}
	for _, c := range s {
		if c == '_' {
			return 0, false
		}
	}
	u, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return int64(-u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

func filterOK(t idl.FilterType, p, b string) bool {
	switch {
	case p == "" || t == 0:
		return true
	case t == 1:
		return strings.Contains(b, p)
	case t == 2:
		return strings.HasPrefix(b, p)
	default:
		return strings.HasSuffix(b, p)
	}
}

func (m *model) multiGet(req *MultiGetRequest, now uint32) *MultiGetResult {
	if req.SortKeyFilterType < 0 || req.SortKeyFilterType > 3 || len(req.HashKey) >= 65535 {
		return &MultiGetResult{Error: 4}
	}
	maxCount := int(req.MaxKVCount)
	if maxCount < 1 || maxCount > 2999 {
		maxCount = 3000
	}
	maxSize := int(req.MaxKVSize)
	res := &MultiGetResult{}
	size := 0
	if len(req.SortKeys) > 0 {
		for _, s := range req.SortKeys {
			r, ok := m.live(enc(req.HashKey, s), now)
			if !ok {
				continue
			}
			if len(res.KVs) >= maxCount || (maxSize > 0 && size >= maxSize) {
				res.Error = 7
				break
			}
			v := r.value
			if req.NoValue {
				v = ""
			}
			res.KVs = append(res.KVs, KeyValue{Key: []byte(s), Value: []byte(v)})
			size += len(s) + len(v)
		}
		return res
	}
	if maxSize <= 0 || maxSize > 30<<20 {
		maxSize = 30 << 20
	}
	h := string(req.HashKey)
	prefix := func(s string) string { return enc([]byte(h), []byte(s)) }
	start, sIncl := prefix(string(req.StartSortKey)), req.StartInclusive
	stop, eIncl := string(key.HashKeyEnd([]byte(h))), false
	if len(req.StopSortKey) > 0 {
		stop, eIncl = prefix(string(req.StopSortKey)), req.StopInclusive
	}
	if req.SortKeyFilterType == 2 && len(req.SortKeyFilter) > 0 {
		ps := prefix(string(req.SortKeyFilter))
		pe := string(key.PrefixEnd([]byte(h), req.SortKeyFilter))
		if ps > start {
			start, sIncl = ps, true
		}
		if pe < stop || (pe == stop && eIncl) {
			stop, eIncl = pe, false
		}
	}
	if start > stop || (start == stop && !(sIncl && eIncl)) {
		return res
	}
	inRange := func(k string) bool {
		return (k > start || (k == start && sIncl)) && (k < stop || (k == stop && eIncl))
	}
	keys := m.sortedKeys()
	// order: the positions visited, from the first record inside the range in iteration order.
	var order []int
	if !req.Reverse {
		i, _ := slices.BinarySearch(keys, start)
		if i < len(keys) && keys[i] == start && !sIncl {
			i++
		}
		for ; i < len(keys); i++ {
			order = append(order, i)
		}
	} else {
		i, found := slices.BinarySearch(keys, stop)
		if !found || !eIncl {
			i--
		}
		for ; i >= 0; i-- {
			order = append(order, i)
		}
	}
	examined, limited := 0, false
	last := -1
	for n, i := range order {
		k := keys[i]
		if !inRange(k) {
			break
		}
		examined++
		r := m.recs[k]
		sk := k[2+len(h):]
		if filterOK(req.SortKeyFilterType, string(req.SortKeyFilter), sk) && !(r.expire > 0 && r.expire <= now) {
			v := r.value
			if req.NoValue {
				v = ""
			}
			res.KVs = append(res.KVs, KeyValue{Key: []byte(sk), Value: []byte(v)})
			size += len(sk) + len(v)
		}
		if (!req.Reverse && k == stop) || (req.Reverse && k == start) {
			break // inclusive end bound reached
		}
		if len(res.KVs) >= maxCount || size >= maxSize || examined >= 3000 {
			limited, last = true, n
			break
		}
	}
	if limited && last+1 < len(order) {
		res.Error = 7
	}
	if req.Reverse {
		slices.Reverse(res.KVs)
	}
	return res
}

// mscan is the model of one scanner context: a frozen copy of the records and a position.
type mscan struct {
	recs             map[string]mrec
	keys             []string
	pos              int
	stop             string
	stopIncl         bool
	batch            int
	req              GetScannerRequest
	storeID, modelID int64
	lastUsed         time.Time
}

func (m *model) getScanner(req *GetScannerRequest) (*mscan, *ScanResult) {
	if req.HashKeyFilterType < 0 || req.HashKeyFilterType > 3 || req.SortKeyFilterType < 0 || req.SortKeyFilterType > 3 {
		return nil, &ScanResult{Error: 4}
	}
	start, sIncl := string(req.StartKey), req.StartInclusive
	if req.HashKeyFilterType == 2 && len(req.HashKeyFilter) > 0 {
		if ps := enc(req.HashKeyFilter, nil); ps > start {
			start, sIncl = ps, true
		}
	}
	stop := string(req.StopKey)
	if start > stop || (start == stop && !(sIncl && req.StopInclusive)) {
		return nil, &ScanResult{ContextID: -1}
	}
	sc := &mscan{recs: make(map[string]mrec, len(m.recs)), stop: stop, stopIncl: req.StopInclusive, req: *req}
	for k, r := range m.recs {
		sc.recs[k] = r
	}
	sc.keys = m.sortedKeys()
	i, _ := slices.BinarySearch(sc.keys, start)
	if i < len(sc.keys) && sc.keys[i] == start && !sIncl {
		i++
	}
	sc.pos = i
	sc.batch = int(req.BatchSize)
	if sc.batch <= 0 || sc.batch >= 1000 {
		sc.batch = 1000
	}
	return sc, nil
}

// next produces one batch; done reports that the scan is over.
func (sc *mscan) next(maxExamined int, now uint32) (res *ScanResult, done bool) {
	res = &ScanResult{}
	count, examined := 0, 0
	for count < sc.batch && examined < maxExamined && sc.pos < len(sc.keys) {
		k := sc.keys[sc.pos]
		if k > sc.stop || (k == sc.stop && !sc.stopIncl) {
			return res, true
		}
		examined++
		r := sc.recs[k]
		hk, sk, _ := key.Decode([]byte(k))
		if !(r.expire > 0 && r.expire <= now) &&
			filterOK(sc.req.HashKeyFilterType, string(sc.req.HashKeyFilter), string(hk)) &&
			filterOK(sc.req.SortKeyFilterType, string(sc.req.SortKeyFilter), string(sk)) {
			count++
			if sc.req.OnlyReturnCount {
				res.KVCount++
			} else {
				kv := KeyValue{Key: []byte(k), Value: []byte(r.value)}
				if sc.req.NoValue {
					kv.Value = nil
				}
				if sc.req.ReturnExpireTS {
					kv.ExpireTS = int32(r.expire)
				}
				res.KVs = append(res.KVs, kv)
			}
		}
		if k == sc.stop {
			return res, true
		}
		sc.pos++
	}
	return res, sc.pos >= len(sc.keys)
}

// Formatting for comparisons: both sides go through the same printer.

func fmtKVs(kvs []KeyValue) string {
	var b strings.Builder
	for _, kv := range kvs {
		fmt.Fprintf(&b, "[%q=%q@%d]", kv.Key, kv.Value, kv.ExpireTS)
	}
	return b.String()
}

func fmtWrite(rs []WriteResult) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "{err=%d count=%d new=%d ret=%v exist=%v val=%q}", r.Error, r.Count, r.NewValue,
			r.CheckValueReturned, r.CheckValueExist, r.CheckValue)
	}
	return b.String()
}

func fmtScan(r *ScanResult) string {
	ctx := "more"
	if r.ContextID == -1 {
		ctx = "done"
	} else if r.ContextID == 0 {
		ctx = "zero"
	}
	return fmt.Sprintf("err=%d ctx=%s count=%d kvs=%s", r.Error, ctx, r.KVCount, fmtKVs(r.KVs))
}

// The random workload.

type gen struct {
	r     *rand.Rand
	clock *fakeClock
}

var (
	hashKeys = []string{"", "a", "b", "ab", "ba", "h"}
	sortKeys = []string{"", "0", "1", "00", "01", "1x", "x", "xy", "y", "\xff", "\xff\xff"}
	values   = []string{"", "v", "abc", "1", "-5", "0x10", "010", "09", " 7", "7 ", "9223372036854775807", "zz"}
	patterns = []string{"", "x", "0", "1", "a", "b", "y", "\xff"}
)

func (g *gen) pick(s []string) []byte { return []byte(s[g.r.IntN(len(s))]) }

func (g *gen) expire() int32 {
	now := g.clock.epoch()
	switch g.r.IntN(6) {
	case 0, 1, 2:
		return 0
	case 3:
		return now + 1 + g.r.Int32N(5)
	case 4:
		return now - g.r.Int32N(3)
	default:
		return -1
	}
}

func (g *gen) encodedKey() []byte {
	if g.r.IntN(40) == 0 {
		return [][]byte{nil, {0}, {0, 3, 'a'}}[g.r.IntN(3)]
	}
	return key.Encode(g.pick(hashKeys), g.pick(sortKeys))
}

func (g *gen) mutation() Mutation {
	switch g.r.IntN(8) {
	case 0, 1:
		return Mutation{Put: &PutRequest{Key: g.encodedKey(), Value: g.pick(values), ExpireTS: g.expire()}}
	case 2:
		return Mutation{Remove: &RemoveRequest{Key: g.encodedKey()}}
	case 3:
		p := &MultiPutRequest{HashKey: g.pick(hashKeys), ExpireTS: g.expire()}
		for range g.r.IntN(4) {
			p.KVs = append(p.KVs, KeyValue{Key: g.pick(sortKeys), Value: g.pick(values)})
		}
		return Mutation{MultiPut: p}
	case 4:
		p := &MultiRemoveRequest{HashKey: g.pick(hashKeys)}
		for range g.r.IntN(4) {
			p.SortKeys = append(p.SortKeys, g.pick(sortKeys))
		}
		return Mutation{MultiRemove: p}
	case 5:
		inc := []int64{1, -1, 0, 100, 1 << 62, -1 << 62, 9223372036854775807}[g.r.IntN(7)]
		e := []int32{0, 0, -1, g.clock.epoch() + 3}[g.r.IntN(4)]
		return Mutation{Incr: &IncrRequest{Key: g.encodedKey(), Increment: inc, ExpireTS: e}}
	case 6:
		return Mutation{CheckAndSet: &CheckAndSetRequest{
			HashKey: g.pick(hashKeys), CheckSortKey: g.pick(sortKeys), CheckType: idl.CASCheckType(g.r.IntN(20) - 1),
			CheckOperand: g.pick(values), SetDiffSortKey: g.r.IntN(2) == 0, SetSortKey: g.pick(sortKeys),
			SetValue: g.pick(values), SetExpireTS: g.expire(), ReturnCheckValue: g.r.IntN(2) == 0,
		}}
	default:
		p := &CheckAndMutateRequest{
			HashKey: g.pick(hashKeys), CheckSortKey: g.pick(sortKeys), CheckType: idl.CASCheckType(g.r.IntN(20) - 1),
			CheckOperand: g.pick(values), ReturnCheckValue: g.r.IntN(2) == 0,
		}
		for range g.r.IntN(4) {
			p.Mutates = append(p.Mutates, Mutate{Op: idl.MutateOperation(g.r.IntN(11) / 5), SortKey: g.pick(sortKeys),
				Value: g.pick(values), ExpireTS: g.expire()})
		}
		return Mutation{CheckAndMutate: p}
	}
}

func (g *gen) multiGet() *MultiGetRequest {
	req := &MultiGetRequest{
		HashKey: g.pick(hashKeys), MaxKVCount: int32(g.r.IntN(6)) - 1, NoValue: g.r.IntN(4) == 0,
		StartInclusive: g.r.IntN(2) == 0, StopInclusive: g.r.IntN(2) == 0, Reverse: g.r.IntN(2) == 0,
		SortKeyFilterType: idl.FilterType(g.r.IntN(9) / 2), SortKeyFilter: g.pick(patterns),
	}
	if g.r.IntN(3) == 0 {
		req.MaxKVSize = int32(g.r.IntN(12))
	}
	if g.r.IntN(2) == 0 {
		req.StartSortKey = g.pick(sortKeys)
	}
	if g.r.IntN(2) == 0 {
		req.StopSortKey = g.pick(sortKeys)
	}
	if g.r.IntN(3) == 0 {
		for range 1 + g.r.IntN(5) {
			req.SortKeys = append(req.SortKeys, g.pick(sortKeys))
		}
	}
	return req
}

func (g *gen) getScanner() *GetScannerRequest {
	req := &GetScannerRequest{
		BatchSize: int32(g.r.IntN(5)) - 1, NoValue: g.r.IntN(4) == 0,
		HashKeyFilterType: idl.FilterType(g.r.IntN(9) / 2), HashKeyFilter: g.pick(patterns),
		SortKeyFilterType: idl.FilterType(g.r.IntN(9) / 2), SortKeyFilter: g.pick(patterns),
		ReturnExpireTS: g.r.IntN(2) == 0, OnlyReturnCount: g.r.IntN(6) == 0, FullScan: g.r.IntN(2) == 0,
		ValidatePartitionHash: true,
	}
	switch g.r.IntN(3) {
	case 0: // whole partition, as unordered scanners do
		req.StartKey, req.StopKey, req.StartInclusive = []byte{0, 0}, []byte{0xFF, 0xFF}, true
	case 1: // one hash key, as the go-client's GetScanner does
		h := g.pick(hashKeys)
		req.StartKey, req.StopKey = key.Encode(h, g.pick(sortKeys)), key.Encode(h, []byte{0xFF, 0xFF})
		req.StartInclusive, req.StopInclusive = g.r.IntN(2) == 0, g.r.IntN(2) == 0
	default:
		req.StartKey, req.StopKey = g.encodedKey(), g.encodedKey()
		req.StartInclusive, req.StopInclusive = g.r.IntN(2) == 0, g.r.IntN(2) == 0
	}
	return req
}

func modelSeed(t *testing.T) uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	if s := os.Getenv("STORAGE_MODEL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("STORAGE_MODEL_SEED: %v", err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

func TestModel(t *testing.T) {
	seed := modelSeed(t)
	t.Logf("seed %d (rerun with -seed=%d or STORAGE_MODEL_SEED=%d)", seed, seed, seed)
	steps := 6000
	if testing.Short() {
		steps = 1500
	}
	runModel(t, seed, steps)
}

func runModel(t *testing.T, seed uint64, steps int) {
	d := openTest(t, nil)
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clock: d.clock}
	m := &model{recs: map[string]mrec{}}
	var scans []*mscan
	fail := func(step int, what string, got, want string) {
		t.Helper()
		t.Fatalf("seed %d step %d %s:\n got %s\nwant %s", seed, step, what, got, want)
	}
	for step := range steps {
		now := d.clock.epoch()
		switch op := g.r.IntN(20); {
		case op < 8: // a batch of writes
			var ms []Mutation
			for range 1 + g.r.IntN(3) {
				ms = append(ms, g.mutation())
			}
			dttl := int32(0)
			if g.r.IntN(5) == 0 {
				dttl = 1 + g.r.Int32N(4)
			}
			want := m.applyBatch(d.clock.Now(), dttl, ms)
			got := d.apply(dttl, ms...)
			if a, b := fmtWrite(got), fmtWrite(want); a != b {
				fail(step, fmt.Sprintf("apply %s", dumpMutations(ms)), a, b)
			}
		case op < 10: // get and ttl
			k := g.encodedKey()
			v, code, err := d.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			r, ok := m.live(string(k), uint32(now))
			if !wellFormed(k) {
				ok = false
			}
			want := "code=1 v=\"\""
			if ok {
				want = fmt.Sprintf("code=0 v=%q", r.value)
			}
			if got := fmt.Sprintf("code=%d v=%q", code, v); got != want {
				fail(step, fmt.Sprintf("get %q", k), got, want)
			}
			ttl, code, _ := d.TTL(k)
			want = "code=1 ttl=0"
			if ok {
				w := int32(-1)
				if r.expire != 0 {
					w = int32(r.expire - uint32(now))
				}
				want = fmt.Sprintf("code=0 ttl=%d", w)
			}
			if got := fmt.Sprintf("code=%d ttl=%d", code, ttl); got != want {
				fail(step, fmt.Sprintf("ttl %q", k), got, want)
			}
		case op < 13:
			req := g.multiGet()
			got, err := d.MultiGet(req)
			if err != nil {
				t.Fatal(err)
			}
			want := m.multiGet(req, uint32(now))
			if a, b := fmt.Sprintf("%d %s", got.Error, fmtKVs(got.KVs)), fmt.Sprintf("%d %s", want.Error, fmtKVs(want.KVs)); a != b {
				fail(step, fmt.Sprintf("multi_get %+v", *req), a, b)
			}
		case op < 14:
			var keys []FullKey
			for range g.r.IntN(4) {
				keys = append(keys, FullKey{HashKey: g.pick(hashKeys), SortKey: g.pick(sortKeys)})
			}
			data, code, err := d.BatchGet(keys)
			if err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			wc := 0
			if len(keys) == 0 {
				wc = 4
			} else {
				for _, fk := range keys {
					if r, ok := m.live(enc(fk.HashKey, fk.SortKey), uint32(now)); ok {
						fmt.Fprintf(&want, "(%q,%q,%q)", fk.HashKey, fk.SortKey, r.value)
					}
				}
			}
			var got strings.Builder
			for _, fd := range data {
				fmt.Fprintf(&got, "(%q,%q,%q)", fd.HashKey, fd.SortKey, fd.Value)
			}
			if a, b := fmt.Sprintf("%d %s", code, got.String()), fmt.Sprintf("%d %s", wc, want.String()); a != b {
				fail(step, "batch_get", a, b)
			}
		case op < 15:
			h := g.pick(hashKeys)
			n, code, _ := d.SortKeyCount(h)
			var w int64
			for k := range m.recs {
				if hk, _, _ := key.Decode([]byte(k)); string(hk) == string(h) {
					if _, ok := m.live(k, uint32(now)); ok {
						w++
					}
				}
			}
			if code != 0 || n != w {
				fail(step, fmt.Sprintf("sortkey_count %q", h), fmt.Sprint(code, n), fmt.Sprint(0, w))
			}
		case op < 17: // start a scan
			if len(scans) >= 3 {
				break
			}
			req := g.getScanner()
			got, err := d.GetScanner(req)
			if err != nil {
				t.Fatal(err)
			}
			sc, want := m.getScanner(req)
			if sc != nil {
				var done bool
				want, done = sc.next(1000, uint32(now))
				if !done {
					want.ContextID = 1
				} else {
					want.ContextID = -1
				}
			}
			if a, b := fmtScan(got), fmtScan(want); a != b {
				fail(step, fmt.Sprintf("get_scanner %+v", *req), a, b)
			}
			if got.ContextID > 0 {
				sc.storeID, sc.lastUsed = got.ContextID, d.clock.Now()
				scans = append(scans, sc)
			}
		case op < 19: // continue a scan
			if len(scans) == 0 {
				break
			}
			i := g.r.IntN(len(scans))
			sc := scans[i]
			got, err := d.Scan(sc.storeID)
			if err != nil {
				t.Fatal(err)
			}
			var want *ScanResult
			if d.clock.Now().Sub(sc.lastUsed) >= DefaultScannerIdleTimeout {
				want = &ScanResult{Error: 1}
				scans = slices.Delete(scans, i, i+1)
			} else {
				var done bool
				want, done = sc.next(sc.batch, uint32(now))
				want.ContextID = -1
				if !done {
					want.ContextID = 1
				}
			}
			if a, b := fmtScan(got), fmtScan(want); a != b {
				fail(step, fmt.Sprintf("scan %+v", sc.req), a, b)
			}
			if want.Error == 0 {
				if got.ContextID == sc.storeID {
					t.Fatalf("context id %d reused", got.ContextID)
				}
				if got.ContextID > 0 {
					sc.storeID, sc.lastUsed = got.ContextID, d.clock.Now()
				} else {
					scans = slices.Delete(scans, i, i+1)
				}
			}
		default: // time passes
			switch g.r.IntN(10) {
			case 0:
				d.clock.Advance(DefaultScannerIdleTimeout) // expires every open scanner context
			case 1, 2, 3:
				d.clock.Advance(time.Duration(1+g.r.IntN(4)) * time.Second)
			default:
				d.clock.Advance(time.Duration(g.r.IntN(1000)) * time.Millisecond)
			}
		}
	}
	for _, sc := range scans {
		d.ClearScanner(sc.storeID)
	}
	if n := d.Metrics().ScannerContexts; n != 0 {
		t.Fatalf("%d scanner contexts left after clearing", n)
	}
}

func dumpMutations(ms []Mutation) string {
	var b bytes.Buffer
	for _, m := range ms {
		switch {
		case m.Put != nil:
			fmt.Fprintf(&b, "put%+v ", *m.Put)
		case m.Remove != nil:
			fmt.Fprintf(&b, "remove%+v ", *m.Remove)
		case m.MultiPut != nil:
			fmt.Fprintf(&b, "multi_put%+v ", *m.MultiPut)
		case m.MultiRemove != nil:
			fmt.Fprintf(&b, "multi_remove%+v ", *m.MultiRemove)
		case m.Incr != nil:
			fmt.Fprintf(&b, "incr%+v ", *m.Incr)
		case m.CheckAndSet != nil:
			fmt.Fprintf(&b, "cas%+v ", *m.CheckAndSet)
		case m.CheckAndMutate != nil:
			fmt.Fprintf(&b, "cam%+v ", *m.CheckAndMutate)
		}
	}
	return b.String()
}
