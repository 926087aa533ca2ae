package raftlog

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// seedRecords are records of every kind, as the log writes them.
func seedRecords(t testing.TB, seq uint64) [][]byte {
	pid := idl.GPID{AppID: 2, PartitionIndex: 7}
	ents := []raftpb.Entry{
		{Index: 5, Term: 2, Data: []byte("hello")},
		{Index: 6, Term: 3, Type: raftpb.EntryConfChangeV2},
		{Index: 7, Term: 3, Data: bytes.Repeat([]byte{0xff}, 300)},
	}
	snap, err := appendSnapshot(nil, raftpb.SnapshotMetadata{Index: 9, Term: 3, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}},
		raftpb.HardState{Term: 3, Vote: 1, Commit: 9})
	if err != nil {
		t.Fatal(err)
	}
	trunc, err := appendSnapMeta(nil, raftpb.SnapshotMetadata{Index: 4, Term: 1, ConfState: raftpb.ConfState{Voters: []uint64{1}}})
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{
		appendRecord(nil, seq, kindEntries, pid, appendEntries(nil, ents)),
		appendRecord(nil, seq, kindHardState, pid, appendHardState(nil, raftpb.HardState{Term: 3, Vote: 2, Commit: 6})),
		appendRecord(nil, seq, kindTruncate, pid, trunc),
		appendRecord(nil, seq, kindSnapshot, pid, snap),
		appendRecord(nil, seq, kindRemove, pid, nil),
		appendRecord(nil, seq, kindSeal, idl.GPID{}, nil),
	}
}

// decodePayload decodes a record's payload by its kind, as replay and Load do.
func decodePayload(rec record) (any, error) {
	switch rec.kind {
	case kindEntries:
		return decodeEntries(nil, rec.payload, 0, ^uint64(0))
	case kindHardState:
		hs, rest, err := decodeHardState(rec.payload)
		if err == nil && len(rest) > 0 {
			err = ErrCorrupt
		}
		return hs, err
	case kindTruncate:
		return decodeSnapMeta(rec.payload)
	case kindSnapshot:
		m, hs, err := decodeSnapshot(rec.payload)
		return [2]any{m, hs}, err
	}
	return nil, nil
}

// encodePayload is decodePayload's inverse.
func encodePayload(kind byte, v any) []byte {
	switch kind {
	case kindEntries:
		return appendEntries(nil, v.([]raftpb.Entry))
	case kindHardState:
		return appendHardState(nil, v.(raftpb.HardState))
	case kindTruncate:
		b, _ := appendSnapMeta(nil, v.(raftpb.SnapshotMetadata))
		return b
	case kindSnapshot:
		p := v.([2]any)
		b, _ := appendSnapshot(nil, p[0].(raftpb.SnapshotMetadata), p[1].(raftpb.HardState))
		return b
	}
	return nil
}

// The record decoder never panics on any input; what it accepts, and the payloads it
// decodes, encode back to what decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	const seq = 42
	for _, r := range seedRecords(f, seq) {
		f.Add(r)
		f.Add(r[:len(r)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeRecord(b, seq)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && err != errShort && err != errZero {
				t.Fatalf("error %v is none of the decoder's", err)
			}
			return
		}
		again := appendRecord(nil, seq, rec.kind, rec.pid, rec.payload)
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("record re-encodes to %x, want %x", again, b[:n])
		}
		v, err := decodePayload(rec)
		if err != nil || v == nil {
			return
		}
		v2, err := decodePayload(record{kind: rec.kind, payload: encodePayload(rec.kind, v)})
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("payload round trip: err=%v\n got %+v\nwant %+v", err, v2, v)
		}
	})
}

// A segment of any records at all (valid checksums, arbitrary kinds and payloads) opens or
// fails with an error, and its groups load or fail with an error: never a panic. The fuzzer
// gives the records as kind byte, payload length byte, payload.
func FuzzReplay(f *testing.F) {
	var seed []byte
	for _, r := range seedRecords(f, 1) {
		rec, _, _ := decodeRecord(r, 1)
		if len(rec.payload) < 256 && rec.kind != kindSeal {
			seed = append(seed, rec.kind, byte(len(rec.payload)))
			seed = append(seed, rec.payload...)
		}
	}
	f.Add(seed)
	f.Add([]byte{kindEntries, 13, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		dir := t.TempDir()
		seg := appendSegmentHeader(nil, 1)
		pid := idl.GPID{AppID: 1, PartitionIndex: 1}
		for len(in) >= 2 {
			kind, n := in[0], int(in[1])
			in = in[2:]
			n = min(n, len(in))
			seg = appendRecord(seg, 1, kind, pid, in[:n])
			in = in[n:]
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := OpenOptions(dir, slog.New(slog.DiscardHandler), Options{})
		if err != nil {
			return
		}
		defer l.Close()
		_, _, _ = l.Group(pid).Load()
	})
}
