package idl

import "testing"

func benchReadResponse() ReadResponse {
	return ReadResponse{Value: make([]byte, 100), AppID: 2, PartitionIndex: 4, Server: "host1:34801"}
}

func BenchmarkEncodeReadResponse(b *testing.B) {
	r := benchReadResponse()
	var e Encoder
	b.ReportAllocs()
	for b.Loop() {
		e.Buf = e.Buf[:0]
		r.Encode(&e)
	}
	b.SetBytes(int64(len(e.Buf)))
}

func BenchmarkDecodeReadResponse(b *testing.B) {
	in := benchReadResponse()
	buf := Marshal(&in)
	var r ReadResponse
	d := NewDecoder(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset(buf)
		r.Decode(d)
	}
	if d.Err() != nil {
		b.Fatal(d.Err())
	}
}

func BenchmarkMultiGetRequest(b *testing.B) {
	req := MultiGetRequest{HashKey: []byte("user:12345"), MaxKVCount: 100, MaxKVSize: 100000,
		StartInclusive: true, StartSortKey: []byte{}, StopSortKey: []byte{}}
	for _, s := range []string{"name", "email", "phone", "address", "created"} {
		req.SortKeys = append(req.SortKeys, []byte(s))
	}
	var e Encoder
	var got MultiGetRequest
	d := NewDecoder(nil)
	b.ReportAllocs()
	for b.Loop() {
		e.Buf = e.Buf[:0]
		req.Encode(&e)
		d.Reset(e.Buf)
		got.Decode(d)
	}
	if d.Err() != nil || len(got.SortKeys) != 5 {
		b.Fatalf("decode: %v", d.Err())
	}
}
