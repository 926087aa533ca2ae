package wire

import (
	"bytes"
	"testing"

	"github.com/gopegasus/pegasus/internal/golden"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
)

func addFrameSeeds(f *testing.F) {
	for _, g := range []string{goldenQueryCfg, goldenGet, goldenGetV1} {
		f.Add(golden.Unhex(f, g))
	}
	for _, v := range golden.All(f, golden.Dir(f)) {
		f.Add(v.Frame)
	}
}

// FuzzDecodeHeader: header decoding never panics, and what decodes re-encodes to a header
// that decodes the same.
func FuzzDecodeHeader(f *testing.F) {
	addFrameSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		hlen, err := HeaderLen(b)
		if err != nil || hlen > len(b) {
			return
		}
		h, _, err := DecodeHeader(b[:hlen])
		if err != nil {
			return
		}
		if h.Version == 1 {
			h.ThreadHash = ThreadHash(h.AppID, h.PartitionIndex)
		}
		enc := AppendRequest(nil, &h, "X", 1, &idl.QueryCfgRequest{})
		n2, err := HeaderLen(enc)
		if err != nil {
			t.Fatal(err)
		}
		h2, _, err := DecodeHeader(enc[:n2])
		if err != nil || h2 != h {
			t.Fatalf("round trip: %+v vs %+v (%v)", h2, h, err)
		}
	})
}

// FuzzDecodeRequest: a whole request frame — header, message header and args, decoded with
// the registry's type for the name — never panics; what decodes re-encodes to bytes that
// decode to the same value.
func FuzzDecodeRequest(f *testing.F) {
	addFrameSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		hlen, err := HeaderLen(b)
		if err != nil || hlen > len(b) {
			return
		}
		h, blen, err := DecodeHeader(b[:hlen])
		if err != nil || blen > len(b)-hlen {
			return
		}
		name, seq, args, err := ParseRequestBody(b[hlen : hlen+blen])
		if err != nil {
			return
		}
		r, ok := idl.LookupRPC(string(name))
		if !ok {
			return
		}
		v := r.NewRequest()
		if err := DecodeArgs(args, v); err != nil {
			return
		}
		enc := AppendRequest(nil, &h, r.Name, seq, v)
		n2, _ := HeaderLen(enc)
		_, name2, _, args2, err := parseAll(enc, n2)
		if err != nil || name2 != r.Name {
			t.Fatalf("re-decode: %v %q", err, name2)
		}
		v2 := r.NewRequest()
		if err := DecodeArgs(args2, v2); err != nil {
			t.Fatalf("re-decode args: %v", err)
		}
		if !bytes.Equal(idl.Marshal(v), idl.Marshal(v2)) {
			t.Fatalf("args differ after round trip")
		}
	})
}

func parseAll(frame []byte, hlen int) (Header, string, int32, []byte, error) {
	h, _, err := DecodeHeader(frame[:hlen])
	if err != nil {
		return h, "", 0, nil, err
	}
	name, seq, args, err := ParseRequestBody(frame[hlen:])
	return h, string(name), seq, args, err
}

// FuzzDecodeReply: reply decoding never panics, for any result type of the registry.
func FuzzDecodeReply(f *testing.F) {
	f.Add(golden.Unhex(f, goldenGetReply), uint8(0))
	f.Add(golden.Unhex(f, goldenErrorReply), uint8(0))
	f.Add(AppendReply(nil, "RPC_RRDB_RRDB_MULTI_GET_ACK", 3, OK, &idl.MultiGetResponse{
		KVs: []idl.KeyValue{{Key: []byte("s"), Value: []byte("v")}}}), uint8(5))
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		r, err := DecodeReply(b)
		if err != nil || r.Err != nil {
			return
		}
		rpcs := idl.RPCs()
		rpc := rpcs[int(which)%len(rpcs)]
		if rpc.NewReply == nil {
			return
		}
		v := rpc.NewReply()
		if err := DecodeResult(r.Body, v); err != nil {
			return
		}
		enc := AppendReply(nil, rpc.AckName, r.SeqID, OK, v)
		r2, err := DecodeReply(enc)
		if err != nil || r2.Err != nil || r2.SeqID != r.SeqID {
			t.Fatalf("re-decode: %+v %v", r2, err)
		}
	})
}

func BenchmarkEncodeGetRequest(b *testing.B) {
	h := getHeader(0)
	args := idl.Blob(key.Encode([]byte("hash-key-0001"), []byte("sort-key-0001")))
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRequest(buf[:0], &h, idl.RPCGet, 7, &args)
	}
}

func BenchmarkDecodeGetReply(b *testing.B) {
	frame := AppendReply(nil, idl.RPCGet+"_ACK", 7, OK, &idl.ReadResponse{
		Value: bytes.Repeat([]byte("v"), 1000), AppID: 2, PartitionIndex: 4, Server: "127.0.0.1:34801"})
	b.ReportAllocs()
	for b.Loop() {
		r, err := DecodeReply(frame)
		if err != nil {
			b.Fatal(err)
		}
		var rr idl.ReadResponse
		if err := DecodeResult(r.Body, &rr); err != nil || len(rr.Value) != 1000 {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeGetRequest(b *testing.B) {
	h := getHeader(0)
	args := idl.Blob(key.Encode([]byte("hash-key-0001"), []byte("sort-key-0001")))
	frame := AppendRequest(nil, &h, idl.RPCGet, 7, &args)
	b.ReportAllocs()
	for b.Loop() {
		hlen, _ := HeaderLen(frame)
		if _, _, err := DecodeHeader(frame[:hlen]); err != nil {
			b.Fatal(err)
		}
		_, _, a, err := ParseRequestBody(frame[hlen:])
		if err != nil {
			b.Fatal(err)
		}
		var k idl.Blob
		if err := DecodeArgs(a, &k); err != nil {
			b.Fatal(err)
		}
	}
}
