package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// A record is the unit of the log (see doc.go for the layout):
//
//	crc    uint32  CRC-32C of the segment's sequence number (8 bytes) and bytes 4..end
//	length uint32  of the payload
//	kind   uint8
//	app id int32, partition index int32: the group
//	payload
//
// Integers are little-endian. Mixing the sequence number into the CRC makes the records a
// recycled segment file held under its old number fail their check, so that stale data past
// the end of a segment's records is never taken for records.
const recordHeaderSize = 17

// Record kinds.
const (
	// kindEntries holds raft entries with consecutive indexes; it also drops every entry of
	// the group at or after its first (a new leader overwriting an uncommitted tail).
	kindEntries byte = 1
	// kindHardState holds the group's hard state, which replaces any earlier one.
	kindHardState byte = 2
	// kindTruncate holds a truncation point (snapshot metadata): entries up to its index
	// are dropped.
	kindTruncate byte = 3
	// kindSnapshot holds the metadata of a snapshot installed from the leader: the log
	// restarts after it, every entry is dropped.
	kindSnapshot byte = 4
	// kindRemove drops everything of the group.
	kindRemove byte = 5
	// kindSeal ends a segment: a segment that is not the last one always ends with it, and
	// so does the last one after a clean close.
	kindSeal byte = 6
)

// maxRecordSize bounds a record's payload: the decoder refuses longer ones before
// allocating, and Stage refuses entries that would need one.
const maxRecordSize = 256 << 20

// splitRecordSize is where Stage starts a new entries record: a batch of entries becomes
// records of about this size, so reading one entry never means reading a huge record.
const splitRecordSize = 1 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned (wrapped, with the segment and offset) for a record that fails its
// check where the log must hold valid records: in a segment before the last one, or when a
// record the index points to is read back.
var ErrCorrupt = errors.New("raftlog: corrupt record")

// recordCRC is the checksum of a record of segment seq: b is the record from its length
// field (byte 4) to the end of its payload.
func recordCRC(seq uint64, b []byte) uint32 {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	return crc32.Update(crc32.Update(0, crcTable, s[:]), crcTable, b)
}

// beginRecord appends the header of a record of kind for pid to buf, with the length and
// CRC left to finishRecord, and returns buf and where the record starts.
func beginRecord(buf []byte, kind byte, pid idl.GPID) ([]byte, int) {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(pid.AppID))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(pid.PartitionIndex))
	return buf, start
}

// finishRecord fills in the length and CRC of the record of segment seq starting at start,
// whose payload is the rest of buf.
func finishRecord(buf []byte, start int, seq uint64) {
	rec := buf[start:]
	binary.LittleEndian.PutUint32(rec[4:], uint32(len(rec)-recordHeaderSize))
	binary.LittleEndian.PutUint32(rec[0:], recordCRC(seq, rec[4:]))
}

// appendRecord appends a whole record of segment seq to buf.
func appendRecord(buf []byte, seq uint64, kind byte, pid idl.GPID, payload []byte) []byte {
	buf, start := beginRecord(buf, kind, pid)
	buf = append(buf, payload...)
	finishRecord(buf, start, seq)
	return buf
}

// record is a decoded record; payload aliases the decoded bytes.
type record struct {
	kind    byte
	pid     idl.GPID
	payload []byte
}

// errShort is a record cut off by the end of the data: at the end of the last segment, a
// write that did not complete.
var errShort = errors.New("raftlog: record cut off")

// errZero is a record header of zeros: the preallocated, never written part of a segment.
var errZero = errors.New("raftlog: zeroed space")

// recordLength reads the payload length from a record header, checking it is plausible.
func recordLength(hdr []byte) (int, error) {
	n := binary.LittleEndian.Uint32(hdr[4:])
	if n > maxRecordSize {
		return 0, fmt.Errorf("%w: length %d", ErrCorrupt, n)
	}
	return int(n), nil
}

// decodeRecord decodes the record of segment seq at the start of b and returns it and its
// size. It fails with errShort when b ends within the record, errZero when the header is
// all zeros, and ErrCorrupt when the record fails its checks.
func decodeRecord(b []byte, seq uint64) (record, int, error) {
	if len(b) < recordHeaderSize {
		if allZero(b) {
			return record{}, 0, errZero
		}
		return record{}, 0, errShort
	}
	if allZero(b[:recordHeaderSize]) {
		return record{}, 0, errZero
	}
	n, err := recordLength(b)
	if err != nil {
		return record{}, 0, err
	}
	if len(b) < recordHeaderSize+n {
		return record{}, 0, errShort
	}
	rec := b[:recordHeaderSize+n]
	if binary.LittleEndian.Uint32(rec) != recordCRC(seq, rec[4:]) {
		return record{}, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r := record{
		kind: rec[8],
		pid: idl.GPID{AppID: int32(binary.LittleEndian.Uint32(rec[9:])),
			PartitionIndex: int32(binary.LittleEndian.Uint32(rec[13:]))},
		payload: rec[recordHeaderSize:],
	}
	if r.kind < kindEntries || r.kind > kindSeal {
		return record{}, 0, fmt.Errorf("%w: unknown kind %d", ErrCorrupt, r.kind)
	}
	return r, len(rec), nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Entries payload: the index of the first entry (8 bytes), the count (4 bytes), then each
// entry as its type (1 byte), term (uvarint), data length (uvarint) and data. Indexes follow
// from the first.
const entriesHeaderSize = 12

// entriesSize is the payload size of ents.
func entriesSize(ents []raftpb.Entry) int {
	n := entriesHeaderSize
	for i := range ents {
		n += entrySize(&ents[i])
	}
	return n
}

func entrySize(e *raftpb.Entry) int {
	return 1 + uvarintLen(e.Term) + uvarintLen(uint64(len(e.Data))) + len(e.Data)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// appendEntries appends the payload of ents, which have consecutive indexes.
func appendEntries(buf []byte, ents []raftpb.Entry) []byte {
	buf = binary.LittleEndian.AppendUint64(buf, ents[0].Index)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(ents)))
	for i := range ents {
		e := &ents[i]
		buf = append(buf, byte(e.Type))
		buf = binary.AppendUvarint(buf, e.Term)
		buf = binary.AppendUvarint(buf, uint64(len(e.Data)))
		buf = append(buf, e.Data...)
	}
	return buf
}

// entriesRange reads the first index and the count of an entries payload.
func entriesRange(p []byte) (first uint64, count int, err error) {
	if len(p) < entriesHeaderSize {
		return 0, 0, fmt.Errorf("%w: entries payload of %d bytes", ErrCorrupt, len(p))
	}
	first = binary.LittleEndian.Uint64(p)
	count = int(binary.LittleEndian.Uint32(p[8:]))
	// Every entry takes at least 3 bytes; this also bounds what decodeEntries allocates.
	if count == 0 || count > (len(p)-entriesHeaderSize)/3 || first == 0 || first+uint64(count) < first {
		return 0, 0, fmt.Errorf("%w: %d entries from %d in %d bytes", ErrCorrupt, count, first, len(p))
	}
	return first, count, nil
}

// decodeEntries decodes an entries payload, appending the entries with indexes in [lo, hi]
// to out. Their Data alias p.
func decodeEntries(out []raftpb.Entry, p []byte, lo, hi uint64) ([]raftpb.Entry, error) {
	first, count, err := entriesRange(p)
	if err != nil {
		return out, err
	}
	b := p[entriesHeaderSize:]
	for i := range count {
		if len(b) < 1 {
			return out, fmt.Errorf("%w: entry %d cut off", ErrCorrupt, i)
		}
		typ := raftpb.EntryType(b[0])
		if _, ok := raftpb.EntryType_name[int32(typ)]; !ok {
			return out, fmt.Errorf("%w: entry type %d", ErrCorrupt, typ)
		}
		b = b[1:]
		term, n := binary.Uvarint(b)
		if n <= 0 {
			return out, fmt.Errorf("%w: entry %d term", ErrCorrupt, i)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return out, fmt.Errorf("%w: entry %d data length", ErrCorrupt, i)
		}
		b = b[n:]
		index := first + uint64(i)
		if index >= lo && index <= hi {
			e := raftpb.Entry{Index: index, Term: term, Type: typ}
			if size > 0 {
				e.Data = b[:size:size]
			}
			out = append(out, e)
		}
		b = b[size:]
	}
	if len(b) != 0 {
		return out, fmt.Errorf("%w: %d bytes after the entries", ErrCorrupt, len(b))
	}
	return out, nil
}

// uvarints reads n uvarints from the start of p and returns them and the rest of p.
func uvarints(p []byte, n int, what string) ([]uint64, []byte, error) {
	v := make([]uint64, n)
	for i := range v {
		x, k := binary.Uvarint(p)
		if k <= 0 {
			return nil, nil, fmt.Errorf("%w: %s", ErrCorrupt, what)
		}
		v[i], p = x, p[k:]
	}
	return v, p, nil
}

// Hard state payload: term, vote and commit as uvarints.
func appendHardState(buf []byte, hs raftpb.HardState) []byte {
	buf = binary.AppendUvarint(buf, hs.Term)
	buf = binary.AppendUvarint(buf, hs.Vote)
	return binary.AppendUvarint(buf, hs.Commit)
}

func decodeHardState(p []byte) (raftpb.HardState, []byte, error) {
	v, rest, err := uvarints(p, 3, "hard state")
	if err != nil {
		return raftpb.HardState{}, nil, err
	}
	return raftpb.HardState{Term: v[0], Vote: v[1], Commit: v[2]}, rest, nil
}

// Truncation point payload: index and term as uvarints, then the ConfState in raft's
// protobuf encoding. A snapshot's payload is a hard state (all zeros: none), then the same:
// one record, so that a replay never finds the snapshot without the hard state that came
// with it (a commit index below the snapshot's would stop raft).
func appendSnapMeta(buf []byte, m raftpb.SnapshotMetadata) ([]byte, error) {
	buf = binary.AppendUvarint(buf, m.Index)
	buf = binary.AppendUvarint(buf, m.Term)
	cs, err := m.ConfState.Marshal()
	if err != nil {
		return buf, err
	}
	return append(buf, cs...), nil
}

func decodeSnapMeta(p []byte) (raftpb.SnapshotMetadata, error) {
	var m raftpb.SnapshotMetadata
	v, rest, err := uvarints(p, 2, "truncation point")
	if err != nil {
		return m, err
	}
	m.Index, m.Term = v[0], v[1]
	if err := m.ConfState.Unmarshal(rest); err != nil {
		return m, fmt.Errorf("%w: conf state: %v", ErrCorrupt, err)
	}
	return m, nil
}

func appendSnapshot(buf []byte, m raftpb.SnapshotMetadata, hs raftpb.HardState) ([]byte, error) {
	return appendSnapMeta(appendHardState(buf, hs), m)
}

func decodeSnapshot(p []byte) (raftpb.SnapshotMetadata, raftpb.HardState, error) {
	hs, rest, err := decodeHardState(p)
	if err != nil {
		return raftpb.SnapshotMetadata{}, hs, err
	}
	m, err := decodeSnapMeta(rest)
	return m, hs, err
}
