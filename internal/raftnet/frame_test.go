package raftnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// sampleFrame is a frame of the kinds of messages both owners send.
func sampleFrame() frame {
	return frame{from: "10.0.0.1:34801", msgs: []envelope{
		{group: idl.GPID{AppID: 2, PartitionIndex: 7}, msg: *appMsg(3, 41, 20)},
		{group: idl.GPID{}, msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 9, Commit: 40, Context: []byte("ctx")}},
		{group: idl.GPID{AppID: -1, PartitionIndex: 1 << 30}, msg: raftpb.Message{Type: raftpb.MsgVote, From: 5, To: 6, Term: 10, LogTerm: 9, Index: 100}},
		{group: idl.GPID{AppID: 1}, msg: raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2, Term: 3,
			Snapshot: &raftpb.Snapshot{Data: []byte("map"), Metadata: raftpb.SnapshotMetadata{Index: 5, Term: 3, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}}}}}},
	}}
}

func encode(t testing.TB, f *frame) []byte {
	t.Helper()
	b, err := f.appendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrameRoundTrip(t *testing.T) {
	f := sampleFrame()
	b := encode(t, &f)
	got, err := decodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.from != f.from || len(got.msgs) != len(f.msgs) {
		t.Fatalf("got %+v\nwant %+v", got, f)
	}
	for i := range f.msgs {
		if got.msgs[i].group != f.msgs[i].group || !equalMessages(&got.msgs[i].msg, &f.msgs[i].msg) {
			t.Fatalf("message %d: got %+v\nwant %+v", i, got.msgs[i], f.msgs[i])
		}
	}
	// The layout doc.go gives: version, 2-byte address length, address, then records.
	if b[0] != frameVersion || int(binary.BigEndian.Uint16(b[1:])) != len(f.from) || string(b[3:3+len(f.from)]) != f.from {
		t.Fatalf("frame header % x", b[:3+len(f.from)])
	}
	rec := b[3+len(f.from):]
	if binary.BigEndian.Uint32(rec) != 2 || binary.BigEndian.Uint32(rec[4:]) != 7 ||
		int(binary.BigEndian.Uint32(rec[8:])) != f.msgs[0].msg.Size() {
		t.Fatalf("first record header % x", rec[:12])
	}
}

// TestMalformedFrames hands Receive frames that are not well formed: each is rejected with
// an error wrapping ErrBadFrame, and none of its messages reaches the handler.
func TestMalformedFrames(t *testing.T) {
	f := sampleFrame()
	good := encode(t, &f)
	header := 3 + len(f.from)
	firstLen := int(binary.BigEndian.Uint32(good[header+8:]))
	mutate := func(fn func(b []byte) []byte) []byte { return fn(bytes.Clone(good)) }
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"empty", nil},
		{"version only", []byte{frameVersion}},
		{"other version", mutate(func(b []byte) []byte { b[0] = 2; return b })},
		{"address longer than the frame", mutate(func(b []byte) []byte { binary.BigEndian.PutUint16(b[1:], 0xffff); return b })},
		{"no message", good[:header]},
		{"record header truncated", good[:header+5]},
		{"message longer than the frame", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[header+8:], 1<<31)
			return b
		})},
		{"last message truncated", good[:len(good)-1]},
		{"message that does not decode", mutate(func(b []byte) []byte {
			for i := range firstLen {
				b[header+12+i] = 0xff
			}
			return b
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handed := 0
			tr := newTransport(t, "127.0.0.1:1", Config{}, func(string, idl.GPID, raftpb.Message) { handed++ })
			err := tr.Receive(tc.frame)
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("Receive = %v, want ErrBadFrame", err)
			}
			if handed != 0 {
				t.Fatalf("%d messages of a malformed frame handed on", handed)
			}
			if m := tr.Metrics(); m.FramesRejected != 1 || m.FramesReceived != 0 {
				t.Fatalf("%+v", m)
			}
		})
	}
}

// FuzzDecodeFrame: decoding never panics, and what decodes encodes back to a frame that
// decodes the same.
func FuzzDecodeFrame(f *testing.F) {
	sample := sampleFrame()
	f.Add(encode(f, &sample))
	one := frame{from: "127.0.0.1:1", msgs: sample.msgs[1:2]}
	f.Add(encode(f, &one))
	f.Add([]byte{frameVersion, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		again, err := decodeFrame(encode(t, &got))
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, got)
		}
	})
}
