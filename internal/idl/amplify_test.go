package idl

import (
	"errors"
	"testing"
	"unsafe"
)

// TestListDecodingAmplification: a multi_put of empty key_value structs (one wire byte
// each) is refused before its list is allocated, while one of real kvs decodes; what a
// request's lists make the decoder allocate stays under MaxDecodeAmplification × its size.
func TestListDecodingAmplification(t *testing.T) {
	const n = 1 << 20
	e := &Encoder{}
	e.FieldBegin(TypeStruct, 1)
	e.Binary([]byte("h"))
	e.FieldBegin(TypeList, 2)
	e.ListBegin(TypeStruct, n)
	for range n {
		e.FieldStop() // an empty key_value
	}
	e.FieldStop()
	hostile := e.Buf
	var r MultiPutRequest
	d := NewDecoder(hostile)
	r.Decode(d)
	if !errors.Is(d.Err(), ErrAmplified) {
		t.Fatalf("%d empty structs in %d bytes: err %v", n, len(hostile), d.Err())
	}

	kvs := make([]KeyValue, 50000)
	for i := range kvs {
		kvs[i] = KeyValue{Key: []byte{byte(i)}, Value: []byte{byte(i >> 8)}}
	}
	e = &Encoder{}
	(&MultiPutRequest{HashKey: []byte("h"), KVs: kvs}).Encode(e)
	legit := e.Buf
	d = NewDecoder(legit)
	r.Decode(d)
	if d.Err() != nil || len(r.KVs) != len(kvs) {
		t.Fatalf("legit multi_put of %d one-byte kvs: %v, %d kvs", len(kvs), d.Err(), len(r.KVs))
	}
	goBytes := len(r.KVs) * int(unsafe.Sizeof(KeyValue{}))
	t.Logf("legit: %d wire bytes → %d bytes of kv structs (%.1f×)", len(legit), goBytes, float64(goBytes)/float64(len(legit)))
	if goBytes > MaxDecodeAmplification*len(legit) {
		t.Fatalf("legit request amplified %d → %d", len(legit), goBytes)
	}
}
