package replica

import "go.etcd.io/raft/v3/raftpb"

// retainedLog counts the bytes of the entries raft's MemoryStorage holds for a partition,
// by index, so that the log is truncated by bytes as well as by count: raft_log_keep
// entries of 64 KiB writes are 64 MiB a partition, which a server of many partitions cannot
// hold. Owned by the loop.
type retainedLog struct {
	sizes []indexSize // ascending by index
	bytes int64
}

type indexSize struct {
	index uint64
	size  int64
}

// append counts entries that MemoryStorage.Append took: they replace any it held from the
// first one's index on.
func (r *retainedLog) append(ents []raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	first := ents[0].Index
	n := len(r.sizes)
	for n > 0 && r.sizes[n-1].index >= first {
		n--
		r.bytes -= r.sizes[n].size
	}
	r.sizes = r.sizes[:n]
	for i := range ents {
		s := int64(len(ents[i].Data))
		r.sizes = append(r.sizes, indexSize{index: ents[i].Index, size: s})
		r.bytes += s
	}
}

// compact forgets the entries up to at, which the log no longer holds.
func (r *retainedLog) compact(at uint64) {
	i := 0
	for i < len(r.sizes) && r.sizes[i].index <= at {
		r.bytes -= r.sizes[i].size
		i++
	}
	// Copied down rather than resliced, so the array does not grow without bound.
	r.sizes = r.sizes[:copy(r.sizes, r.sizes[i:])]
}

// reset forgets everything (a snapshot replaced the log).
func (r *retainedLog) reset() {
	r.sizes = r.sizes[:0]
	r.bytes = 0
}

// keeping returns the truncation point that leaves at most keep bytes of entries up to
// applied (and whatever follows applied), or 0 when those entries hold no more than keep.
func (r *retainedLog) keeping(applied uint64, keep int64) uint64 {
	var sum int64
	for i := len(r.sizes) - 1; i >= 0; i-- {
		e := r.sizes[i]
		if e.index > applied {
			continue
		}
		if sum += e.size; sum > keep {
			return e.index
		}
	}
	return 0
}
