package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/golden"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
)

// protocol.md §1.7 (a): the go-client's query_cfg for table "temp", seqid 1.
const goldenQueryCfg = `54484654 00000000 00000030 00000000 0000004a 00000000 00000000 00000000
00000000 00000000 0000000000000000
80 01 00 01 00 00 00 26 "RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX" 00 00 00 01
0c 00 01 0b 00 01 00 00 00 04 "temp" 0f 00 02 08 00 00 00 00 00 00`

// protocol.md §1.7 (b): GET hash key "a", sort key "b", gpid (2,4), 1000 ms, seqid 7.
const goldenGet = `54 48 46 54 00 00 00 00 00 00 00 30 00 00 00 00
00 00 00 29 00 00 00 00 00 00 00 02 00 00 00 04
00 00 03 e8 00 00 3d e2 8c 2f 84 45 b4 cb fc 3c
80 01 00 01 00 00 00 11 "RPC_RRDB_RRDB_GET" 00 00 00 07
0c 00 01 00 00 00 04 00 01 61 62
00`

// protocol.md §1.4: the same GET as the Java client sends it, header version 1.
const goldenGetV1 = `54484654 00000001 00000025 00000029
08 0001 00000002 08 0002 00000004 08 0003 000003e8 0a 0004 8c2f8445b4cbfc3c 02 0005 00 00
80 01 00 01 00 00 00 11 "RPC_RRDB_RRDB_GET" 00 00 00 07
0c 00 01 00 00 00 04 00 01 61 62
00`

// protocol.md §1.7 (c): the reply to (b) with value "v1".
const goldenGetReply = `00 00 00 64 00 00 00 06 "ERR_OK"
80 01 00 02 00 00 00 15 "RPC_RRDB_RRDB_GET_ACK" 00 00 00 07
0c 00 00
08 00 01 00 00 00 00
0c 00 02 00 00 00 02 "v1"
08 00 03 00 00 00 02
08 00 04 00 00 00 04
0b 00 06 00 00 00 0b "host1:34801"
00
00`

// protocol.md §1.7 (d): an error reply.
const goldenErrorReply = `0000003a 00000011 "ERR_INVALID_STATE" 80010002 00000015
"RPC_RRDB_RRDB_GET_ACK" 00000008`

func getHeader(version int) Header {
	return Header{
		Version:        version,
		AppID:          2,
		PartitionIndex: 4,
		ClientTimeout:  1000,
		ThreadHash:     ThreadHash(2, 4),
		PartitionHash:  key.Hash([]byte("a")),
	}
}

func TestGoldenRequests(t *testing.T) {
	getArgs := idl.Blob(key.Encode([]byte("a"), []byte("b")))
	for _, tc := range []struct {
		name   string
		golden string
		h      Header
		rpc    string
		seq    int32
		args   idl.Value
	}{
		{"query_cfg v0", goldenQueryCfg, Header{}, idl.RPCQueryConfig, 1,
			&idl.QueryCfgRequest{AppName: "temp", PartitionIndices: []int32{}}},
		{"get v0", goldenGet, getHeader(0), idl.RPCGet, 7, &getArgs},
		{"get v1", goldenGetV1, getHeader(1), idl.RPCGet, 7, &getArgs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := golden.Unhex(t, tc.golden)
			got := AppendRequest(nil, &tc.h, tc.rpc, tc.seq, tc.args)
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			// And decode it back.
			hlen, err := HeaderLen(want)
			if err != nil {
				t.Fatal(err)
			}
			h, blen, err := DecodeHeader(want[:hlen])
			if err != nil {
				t.Fatal(err)
			}
			if h != tc.h {
				t.Fatalf("header: got %+v want %+v", h, tc.h)
			}
			if hlen+blen != len(want) {
				t.Fatalf("header %d + body %d != frame %d", hlen, blen, len(want))
			}
			name, seq, args, err := ParseRequestBody(want[hlen:])
			if err != nil || string(name) != tc.rpc || seq != tc.seq {
				t.Fatalf("body: %q %d %v", name, seq, err)
			}
			r, _ := idl.LookupRPC(tc.rpc)
			v := r.NewRequest()
			if err := DecodeArgs(args, v); err != nil {
				t.Fatal(err)
			}
			if again := AppendRequest(nil, &tc.h, tc.rpc, tc.seq, v); !bytes.Equal(again, want) {
				t.Fatalf("decode→encode:\n got %x\nwant %x", again, want)
			}
		})
	}
}

func goldenReadResponse() *idl.ReadResponse {
	return &idl.ReadResponse{Error: 0, Value: []byte("v1"), AppID: 2, PartitionIndex: 4, Server: "host1:34801"}
}

func TestGoldenReplies(t *testing.T) {
	want := golden.Unhex(t, goldenGetReply)
	if len(want) != 100 {
		t.Fatalf("golden reply is %d bytes", len(want))
	}
	got := AppendReply(nil, idl.RPCGet+"_ACK", 7, OK, goldenReadResponse())
	if !bytes.Equal(got, want) {
		t.Fatalf("encode:\n got %x\nwant %x", got, want)
	}
	r, err := DecodeReply(want)
	if err != nil || r.Err != nil || r.SeqID != 7 || string(r.Name) != "RPC_RRDB_RRDB_GET_ACK" {
		t.Fatalf("decode: %+v %v", r, err)
	}
	var rr idl.ReadResponse
	if err := DecodeResult(r.Body, &rr); err != nil {
		t.Fatal(err)
	}
	if string(rr.Value) != "v1" || rr.AppID != 2 || rr.PartitionIndex != 4 || rr.Server != "host1:34801" {
		t.Fatalf("decoded %+v", rr)
	}

	wantErr := golden.Unhex(t, goldenErrorReply)
	if len(wantErr) != 58 {
		t.Fatalf("golden error reply is %d bytes", len(wantErr))
	}
	// The body is never written for an error, even if a value is passed.
	got = AppendReply(nil, "RPC_RRDB_RRDB_GET_ACK", 8, ErrInvalidState, goldenReadResponse())
	if !bytes.Equal(got, wantErr) {
		t.Fatalf("encode error reply:\n got %x\nwant %x", got, wantErr)
	}
	r, err = DecodeReply(wantErr)
	if err != nil || !errors.Is(r.Err, ErrInvalidState) || r.SeqID != 8 || len(r.Body) != 0 {
		t.Fatalf("decode error reply: %+v %v", r, err)
	}
}

func TestDecodeReplyUnknownName(t *testing.T) {
	var e idl.Encoder
	e.I32(0)
	e.String("ERR_SOMETHING_NEW")
	appendMessageBegin(&e, "RPC_X_ACK", MessageReply, 3)
	b := e.Buf
	b[3] = byte(len(b))
	r, err := DecodeReply(b)
	if err != nil {
		t.Fatal(err)
	}
	var u UnknownCodeError
	if !errors.As(r.Err, &u) || u.Name != "ERR_SOMETHING_NEW" || r.SeqID != 3 {
		t.Fatalf("got %+v", r)
	}
}

func TestNonStrictMessageHeader(t *testing.T) {
	var e idl.Encoder
	e.String("RPC_RRDB_RRDB_GET") // old form: name length first
	e.Byte(MessageCall)
	e.I32(9)
	e.FieldBlob(1, []byte{0, 1, 'a'})
	e.FieldStop()
	name, seq, args, err := ParseRequestBody(e.Buf)
	if err != nil || string(name) != "RPC_RRDB_RRDB_GET" || seq != 9 {
		t.Fatalf("%q %d %v", name, seq, err)
	}
	var b idl.Blob
	if err := DecodeArgs(args, &b); err != nil || string(b) != "\x00\x01a" {
		t.Fatalf("%q %v", b, err)
	}
}

func TestBadHeaders(t *testing.T) {
	good := golden.Unhex(t, goldenGet)
	for _, tc := range []struct {
		name   string
		mutate func(b []byte) []byte
		want   error
	}{
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrBadMagic},
		{"version", func(b []byte) []byte { b[7] = 2; return b }, ErrBadVersion},
		{"v0 header length", func(b []byte) []byte { b[11] = 47; return b }, ErrBadHeaderLength},
		{"v1 meta too long", func(b []byte) []byte { b[7] = 1; b[8] = 0x10; return b }, ErrBadHeaderLength},
		{"short", func(b []byte) []byte { return b[:10] }, ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(good))
			if _, err := HeaderLen(b); !errors.Is(err, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			}
		})
	}
	// Message types other than CALL/ONEWAY are refused.
	body := bytes.Clone(good[48:])
	body[3] = MessageReply
	if _, _, _, err := ParseRequestBody(body); !errors.Is(err, ErrBadMessageHeader) {
		t.Errorf("reply as request: %v", err)
	}
}

func TestCodes(t *testing.T) {
	if n := int(firstNotForClients); n != 73 {
		t.Fatalf("the go-client knows 73 names, we mark %d", n)
	}
	seen := map[string]bool{}
	for c := Code(0); c < numCodes; c++ {
		n := c.Name()
		if !strings.HasPrefix(n, "ERR_") || seen[n] {
			t.Fatalf("bad or duplicate name %q", n)
		}
		seen[n] = true
		if got, ok := ParseCode(n); !ok || got != c {
			t.Fatalf("ParseCode(%q) = %v %v", n, got, ok)
		}
	}
	if OK.Err() != nil || ErrBusy.Err() != ErrBusy {
		t.Fatal("Code.Err")
	}
	if CodeError("ERR_OK") != nil || !errors.Is(CodeError("ERR_OBJECT_NOT_FOUND"), ErrObjectNotFound) {
		t.Fatal("CodeError")
	}
	if _, ok := CodeError("NOPE").(UnknownCodeError); !ok {
		t.Fatal("unknown name")
	}
	if ErrSessionReset.ForClients() || !ErrDiskInsufficient.ForClients() {
		t.Fatal("ForClients")
	}
	wrapped := errors.Join(errors.New("x"), ErrInvalidState)
	if c, ok := AsCode(wrapped); !ok || c != ErrInvalidState {
		t.Fatal("AsCode")
	}
}

// Every frame the official go-client sends decodes, and re-encodes to the same bytes but
// for client_timeout (which depends on the clock).
func TestVectorsRoundTrip(t *testing.T) {
	for _, v := range golden.All(t, golden.Dir(t)) {
		name, frame := v.Name, v.Frame
		t.Run(name, func(t *testing.T) {
			hlen, err := HeaderLen(frame)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			h, blen, err := DecodeHeader(frame[:hlen])
			if err != nil || hlen+blen != len(frame) {
				t.Fatalf("%s: header %+v body %d err %v", name, h, blen, err)
			}
			if h.ThreadHash != ThreadHash(h.AppID, h.PartitionIndex) && h.AppID != 0 {
				t.Errorf("%s: thread hash %d", name, h.ThreadHash)
			}
			rpcName, seq, args, err := ParseRequestBody(frame[hlen:])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !strings.Contains(name, string(rpcName)) {
				t.Fatalf("%s: rpc name %q", name, rpcName)
			}
			r, ok := idl.LookupRPC(string(rpcName))
			if !ok {
				t.Fatalf("%s: %q not in registry", name, rpcName)
			}
			v := r.NewRequest()
			if err := DecodeArgs(args, v); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			again := AppendRequest(nil, &h, r.Name, seq, v)
			if !bytes.Equal(again, frame) {
				t.Fatalf("%s: re-encode differs:\n got %x\nwant %x", name, again, frame)
			}
		})
	}
}
