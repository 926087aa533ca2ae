package idl

import (
	"reflect"
	"testing"
)

// fuzzTypes are the types FuzzUnmarshal decodes: every registered request and reply payload,
// in registry order (requests first), without duplicates.
func fuzzTypes() []func() Value {
	var mks []func() Value
	seen := map[reflect.Type]bool{}
	add := func(mk func() Value) {
		if mk == nil {
			return
		}
		if t := reflect.TypeOf(mk()); !seen[t] {
			seen[t] = true
			mks = append(mks, mk)
		}
	}
	for _, r := range rpcList {
		add(r.NewRequest)
	}
	for _, r := range rpcList {
		add(r.NewReply)
	}
	return mks
}

// FuzzUnmarshal feeds arbitrary bytes to the decoder of every request and reply type. The
// first input byte selects the type. Decoding must never panic; what decodes must re-encode
// deterministically and decode again to an equal value.
func FuzzUnmarshal(f *testing.F) {
	mks := fuzzTypes()
	index := map[reflect.Type]byte{}
	for i, mk := range mks {
		index[reflect.TypeOf(mk())] = byte(i)
	}
	seed := func(v Value, b []byte) {
		f.Add(append([]byte{index[reflect.TypeOf(v)]}, b...))
	}
	// The args payloads of the captured go-client frames.
	for _, v := range loadVectors(f) {
		d := NewDecoder(v.body)
		d.I32()
		r, ok := LookupRPC(d.String())
		if !ok {
			f.Fatalf("%s: unknown RPC", v.name)
		}
		d.I32()
		d.FieldBegin()
		start := d.Offset()
		args := r.NewRequest()
		args.Decode(d)
		seed(args, v.body[start:d.Offset()])
	}
	// A fully populated and a zero instance of every type.
	for _, mk := range mks {
		v := mk()
		seed(v, Marshal(v))
		n := 0
		fill(reflect.ValueOf(v).Elem(), &n)
		seed(v, Marshal(v))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		mk := mks[int(in[0])%len(mks)]
		v := mk()
		if err := Unmarshal(in[1:], v); err != nil {
			return // rejecting is fine; panicking is not
		}
		roundTrip(t, v, mk) // what it decoded re-encodes, decodes the same and re-encodes the same
	})
}
