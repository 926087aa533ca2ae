package rocksdb

import (
	"bytes"
	"container/heap"
	"fmt"
	"slices"
)

// MergedIterator yields the live records of several tables of one column family, the way
// RocksDB reads them: user keys ascending, for each key its newest entry (highest sequence
// number) decides, a deletion or single deletion hides the key, and a range tombstone hides
// every key in [start, end) with a lower sequence number than its own, in any of the tables.
// A merge operand fails the iteration with an [UnsupportedError] (Pegasus never writes
// merges), and so do blob indexes and wide-column entities. Puts with a preferred sequence
// number yield the value without it.
//
// When two tables hold the same user key with the same sequence number (files ingested
// without their global sequence number, see [Options].GlobalSeqNum), the table listed first
// wins: list newer tables first, as RocksDB orders level 0 (newest first) and then the
// levels 1, 2, ...
//
// All range tombstones of the tables are held in memory; of the point data, one block per
// table and index level.
type MergedIterator struct {
	tables []*Table
	its    []*Iterator
	heap   []int // indexes of its with a current entry, ordered by (user key, seq desc, index)
	frags  []fragment
	fi     int
	key    []byte
	val    []byte

	started, done bool
	err           error
}

// NewMergedIterator returns an iterator over the live records of tables, positioned before
// the first. Each table gets its own [Iterator]; the tables must outlive the iterator.
func NewMergedIterator(tables ...*Table) *MergedIterator {
	return &MergedIterator{tables: tables}
}

func (m *MergedIterator) start() bool {
	m.started = true
	var all []RangeTombstone
	for i, t := range m.tables {
		p := t.Properties()
		if !isBytewise(p.Comparator) {
			return m.fail(t.unsupported(0, "comparator %q (only bytewise-ordered tables can be merged)", p.Comparator))
		}
		if i > 0 && p.ColumnFamilyName != m.tables[0].props.ColumnFamilyName {
			return m.fail(fmt.Errorf("rocksdb: tables %s and %s belong to different column families (%q, %q)",
				m.tables[0].name, t.name, m.tables[0].props.ColumnFamilyName, p.ColumnFamilyName))
		}
		ts, err := t.RangeTombstones()
		if err != nil {
			return m.fail(err)
		}
		all = append(all, ts...)
	}
	m.frags = fragmentTombstones(all)
	m.its = make([]*Iterator, len(m.tables))
	for i, t := range m.tables {
		it := t.NewIterator()
		m.its[i] = it
		if it.Next() {
			m.heap = append(m.heap, i)
		} else if err := it.Err(); err != nil {
			return m.fail(err)
		}
	}
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return true
}

// Next advances to the next live record and reports whether there is one; false at the end
// or on an error (see Err).
func (m *MergedIterator) Next() bool {
	if m.done {
		return false
	}
	if !m.started && !m.start() {
		return false
	}
	for len(m.heap) > 0 {
		src := m.its[m.heap[0]]
		k := src.Key()
		m.key = append(m.key[:0], k.UserKey...)
		seq, kind := k.SeqNum, k.Kind
		var kindErr error
		switch kind {
		case KindPut:
			m.val = append(m.val[:0], src.Value()...)
		case KindPutPreferredSeqNum:
			v := src.Value()
			if len(v) < 8 {
				kindErr = src.t.corrupt(src.data.off, "put with preferred seqno for key %q: value of %d bytes", m.key, len(v))
				break
			}
			m.val = append(m.val[:0], v[:len(v)-8]...)
			kind = KindPut
		case KindDelete, KindSingleDelete, KindDeleteWithTimestamp:
		case KindMerge:
			kindErr = src.t.unsupported(src.data.off, "merge operand for key %q (Pegasus never writes merges)", m.key)
		default:
			kindErr = src.t.unsupported(src.data.off, "entry kind %s for key %q", kind, m.key)
		}
		if kindErr != nil {
			return m.fail(kindErr)
		}
		// Drop every older entry of this user key, in all tables.
		for len(m.heap) > 0 {
			top := m.its[m.heap[0]]
			if !bytes.Equal(top.Key().UserKey, m.key) {
				break
			}
			if top.Next() {
				m.down(0)
				continue
			}
			if err := top.Err(); err != nil {
				return m.fail(err)
			}
			m.pop()
		}
		if kind == KindPut && !m.covered(seq) {
			return true
		}
	}
	m.done = true
	return false
}

// covered reports whether a range tombstone newer than seq covers the current key. Keys
// ascend, so the fragment cursor only moves forward.
func (m *MergedIterator) covered(seq uint64) bool {
	for m.fi < len(m.frags) && bytes.Compare(m.frags[m.fi].end, m.key) <= 0 {
		m.fi++
	}
	return m.fi < len(m.frags) && bytes.Compare(m.frags[m.fi].start, m.key) <= 0 && seq < m.frags[m.fi].seq
}

func (m *MergedIterator) fail(err error) bool {
	m.err, m.done = err, true
	return false
}

// Key returns the current record's user key, valid until the next call to Next.
func (m *MergedIterator) Key() []byte { return m.key }

// Value returns the current record's value, valid until the next call to Next.
func (m *MergedIterator) Value() []byte { return m.val }

// Err returns the error that ended the iteration, if any.
func (m *MergedIterator) Err() error { return m.err }

func (m *MergedIterator) less(a, b int) bool {
	ka, kb := m.its[a].Key(), m.its[b].Key()
	if c := bytes.Compare(ka.UserKey, kb.UserKey); c != 0 {
		return c < 0
	}
	if ka.SeqNum != kb.SeqNum {
		return ka.SeqNum > kb.SeqNum
	}
	return a < b
}

func (m *MergedIterator) down(i int) {
	h := m.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && m.less(h[r], h[l]) {
			c = r
		}
		if !m.less(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

func (m *MergedIterator) pop() {
	n := len(m.heap) - 1
	m.heap[0] = m.heap[n]
	m.heap = m.heap[:n]
	m.down(0)
}

// fragment is a piece of the key space, [start, end), with the highest sequence number of
// the range tombstones covering it.
type fragment struct {
	start, end []byte
	seq        uint64
}

// fragmentTombstones cuts possibly overlapping tombstones into sorted, disjoint fragments.
func fragmentTombstones(ts []RangeTombstone) []fragment {
	if len(ts) == 0 {
		return nil
	}
	bounds := make([][]byte, 0, 2*len(ts))
	for _, t := range ts {
		bounds = append(bounds, t.Start, t.End)
	}
	slices.SortFunc(bounds, bytes.Compare)
	bounds = slices.CompactFunc(bounds, bytes.Equal)
	sorted := slices.Clone(ts)
	slices.SortFunc(sorted, func(a, b RangeTombstone) int { return bytes.Compare(a.Start, b.Start) })
	var active tombHeap
	var out []fragment
	j := 0
	for i := 0; i+1 < len(bounds); i++ {
		b := bounds[i]
		for j < len(sorted) && bytes.Compare(sorted[j].Start, b) <= 0 {
			heap.Push(&active, sorted[j])
			j++
		}
		// The newest tombstone that has not ended covers the whole piece: ends are bounds.
		for active.Len() > 0 && bytes.Compare(active[0].End, b) <= 0 {
			heap.Pop(&active)
		}
		if active.Len() == 0 {
			continue
		}
		seq := active[0].SeqNum
		if n := len(out); n > 0 && out[n-1].seq == seq && bytes.Equal(out[n-1].end, b) {
			out[n-1].end = bounds[i+1]
			continue
		}
		out = append(out, fragment{start: b, end: bounds[i+1], seq: seq})
	}
	return out
}

// tombHeap is a max-heap of tombstones by sequence number.
type tombHeap []RangeTombstone

func (h tombHeap) Len() int           { return len(h) }
func (h tombHeap) Less(i, j int) bool { return h[i].SeqNum > h[j].SeqNum }
func (h tombHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *tombHeap) Push(x any)        { *h = append(*h, x.(RangeTombstone)) }
func (h *tombHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
