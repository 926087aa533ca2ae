package idl

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/golden"
)

const (
	frameHeaderLen         = 48
	strictCallFirst uint32 = 0x80010001 // strict message header, type CALL
)

type vector struct {
	name string // file name
	body []byte // the frame without its 48-byte header
}

// loadVectors returns the captured frames.
func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	var vs []vector
	for _, v := range golden.All(tb, golden.Dir(tb)) {
		frame := v.Frame
		if len(frame) < frameHeaderLen || string(frame[:4]) != "THFT" {
			tb.Fatalf("%s: not a v0 frame", v.Name)
		}
		body := frame[frameHeaderLen:]
		if n := binary.BigEndian.Uint32(frame[16:20]); int(n) != len(body) {
			tb.Fatalf("%s: header body_length %d, body has %d bytes", v.Name, n, len(body))
		}
		vs = append(vs, vector{v.Name, body})
	}
	return vs
}

// decodedVector is a vector body decoded with the package's codecs.
type decodedVector struct {
	rpc   *RPC
	seqID int32
	args  Value
	start int // offset of the args value in the body
	end   int // offset just after it
}

func decodeVector(t *testing.T, v vector) decodedVector {
	t.Helper()
	d := NewDecoder(v.body)
	if h := uint32(d.I32()); h != strictCallFirst {
		t.Fatalf("message header %#x, want %#x", h, strictCallFirst)
	}
	name := d.String()
	seq := d.I32()
	rpc, ok := LookupRPC(name)
	if !ok {
		t.Fatalf("unknown RPC %q", name)
	}
	if !strings.Contains(v.name, name) {
		t.Fatalf("file %s carries RPC %s", v.name, name)
	}
	ft, id := d.FieldBegin()
	if id != 1 || ft != rpc.ArgsType {
		t.Fatalf("args field: id %d type %d, want id 1 type %d", id, ft, rpc.ArgsType)
	}
	start := d.Offset()
	args := rpc.NewRequest()
	args.Decode(d)
	end := d.Offset()
	if ft, _ := d.FieldBegin(); ft != TypeStop {
		t.Fatalf("args: type %d after field 1, want STOP", ft)
	}
	if err := d.Err(); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if n := len(d.Remaining()); n != 0 {
		t.Fatalf("%d bytes after the args struct", n)
	}
	return decodedVector{rpc, seq, args, start, end}
}

// TestGoldenVectors decodes every captured go-client request and re-encodes it: the bytes
// must be identical, optional-field presence included.
func TestGoldenVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			dv := decodeVector(t, v)
			var e Encoder
			first := strictCallFirst
			e.I32(int32(first))
			e.String(dv.rpc.Name)
			e.I32(dv.seqID)
			e.FieldBegin(dv.args.ThriftType(), 1)
			dv.args.Encode(&e)
			e.FieldStop()
			if !bytes.Equal(e.Buf, v.body) {
				t.Fatalf("re-encoded body differs\n got % x\nwant % x", e.Buf, v.body)
			}
		})
	}
}

// TestGoldenVectorContents spot-checks decoded values against the vectors' README.
func TestGoldenVectorContents(t *testing.T) {
	got := map[string]Value{}
	for _, v := range loadVectors(t) {
		got[v.name[:2]] = decodeVector(t, v).args
	}
	check := func(file string, want Value) {
		t.Helper()
		g, ok := got[file]
		if !ok {
			t.Fatalf("vector %s missing", file)
		}
		if !valuesEqual(g, want) {
			t.Fatalf("vector %s:\n got %+v\nwant %+v", file, g, want)
		}
	}
	key := func(h, s string) []byte { return append([]byte{0, byte(len(h))}, h+s...) }
	check("01", &QueryCfgRequest{AppName: "temp", PartitionIndices: []int32{}})
	check("02", new(Blob(key("h1", "s1"))))
	check("03", &UpdateRequest{Key: key("h1", "s1"), Value: []byte("v1")})
	check("04", &UpdateRequest{Key: key("h1", "s2"), Value: []byte("v2"), ExpireTSSeconds: 343758831})
	check("07", &MultiGetRequest{HashKey: []byte("h1"), SortKeys: [][]byte{}, MaxKVCount: 4,
		MaxKVSize: 100000, NoValue: true, StartSortKey: []byte{}, StopSortKey: []byte{},
		StartInclusive: true, SortKeyFilterType: FilterMatchPrefix, SortKeyFilterPattern: []byte("s"),
		Reverse: true})
	check("11", &MultiPutRequest{HashKey: []byte("h1"), KVs: []KeyValue{
		{Key: []byte("s1"), Value: []byte("v1")}, {Key: []byte("s2"), Value: []byte("v2")}},
		ExpireTSSeconds: 343758831})
	check("12", &MultiRemoveRequest{HashKey: []byte("h1"), SortKeys: [][]byte{[]byte("s1"), []byte("s2")}})
	check("13", &GetScannerRequest{StartKey: key("h1", "s1"), StopKey: key("h1", "s3"), StartInclusive: true,
		BatchSize: 1000, NoValue: true, ValidatePartitionHash: Some(false)})
	check("14", &ScanRequest{ContextID: 1})
	check("20", &GetScannerRequest{StartKey: []byte{0, 0}, StopKey: []byte{0xff, 0xff}, StartInclusive: true,
		BatchSize: 1000, ValidatePartitionHash: Some(true)})
	check("21", new(ContextID(3)))
	check("25", &CheckAndSetRequest{HashKey: []byte("h1"), CheckSortKey: []byte("s1"), CheckType: CheckValueIntLess,
		CheckOperand: []byte("10"), SetDiffSortKey: true, SetSortKey: []byte("s2"), SetValue: []byte("v2"),
		SetExpireTSSeconds: 343758852})
	check("26", new(Blob("h1")))
	check("27", &IncrRequest{Key: key("h1", "s1"), Increment: 1})
	check("30", &CreateAppRequest{AppName: "t1", Options: CreateAppOptions{PartitionCount: 8, ReplicaCount: 3,
		SuccessIfExist: true, AppType: "pegasus", IsStateful: true, Envs: map[string]string{}}})
	check("32", &DropAppRequest{AppName: "t1", Options: DropAppOptions{SuccessIfNotExist: true, ReserveSeconds: Some(int64(0))}})
	check("33", &ListAppsRequest{Status: AppStatusAvailable})
	check("34", &ListNodesRequest{Status: NodeStatusAlive})
}
