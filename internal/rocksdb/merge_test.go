package rocksdb

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"testing/quick"
)

// coveringSeq is the dumb reference: the highest sequence number of the tombstones that
// cover key.
func coveringSeq(ts []RangeTombstone, key []byte) uint64 {
	var max uint64
	for _, t := range ts {
		if bytes.Compare(t.Start, key) <= 0 && bytes.Compare(key, t.End) < 0 && t.SeqNum > max {
			max = t.SeqNum
		}
	}
	return max
}

// TestFragmentTombstones checks fragmentTombstones and the merged iterator's forward cursor
// over them against the reference, on random overlapping tombstones over a small key space.
func TestFragmentTombstones(t *testing.T) {
	key := func(i int) []byte { return []byte{byte('a' + i/4), byte('0' + i%4)} }
	check := func(seed uint64) bool {
		r := rand.New(rand.NewPCG(seed, 1))
		var ts []RangeTombstone
		for n := r.IntN(8); n > 0; n-- {
			a, b := r.IntN(40), r.IntN(40)
			if a > b {
				a, b = b, a
			}
			if a == b {
				b++
			}
			ts = append(ts, RangeTombstone{Start: key(a), End: key(b), SeqNum: uint64(1 + r.IntN(5))})
		}
		frags := fragmentTombstones(ts)
		for i := 1; i < len(frags); i++ {
			if bytes.Compare(frags[i-1].end, frags[i].start) > 0 || bytes.Compare(frags[i].start, frags[i].end) >= 0 {
				t.Logf("fragments overlap or are empty: %v", frags)
				return false
			}
		}
		m := &MergedIterator{frags: frags}
		for i := 0; i < 41; i++ {
			m.key = key(i)
			want := coveringSeq(ts, m.key)
			for seq := uint64(0); seq <= 6; seq++ {
				if got := m.covered(seq); got != (seq < want) {
					t.Logf("tombstones %v: key %q seq %d covered %v, reference says max seq %d", ts, m.key, seq, got, want)
					return false
				}
			}
		}
		return true
	}
	if err := quick.Check(check, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}
