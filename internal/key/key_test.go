package key

import (
	"bytes"
	"fmt"
	"testing"
)

func TestHashCheckValues(t *testing.T) {
	if got := Hash([]byte("123456789")); got != 0xae8b14860a799888 {
		t.Fatalf("Hash(123456789) = %#x", got)
	}
	if got := Hash(nil); got != 0 {
		t.Fatalf("Hash(empty) = %#x", got)
	}
	if table[1] != 0x7f6ef0c830358979 {
		t.Fatalf("table[1] = %#x", table[1])
	}
}

// The worked examples of protocol.md §4.4.
func TestPartitionExamples(t *testing.T) {
	for _, tc := range []struct {
		encoded  []byte
		hash     uint64
		of8, of6 int
	}{
		{Encode([]byte("a"), nil), 0x8c2f8445b4cbfc3c, 4, 12},
		{Encode([]byte("hello"), []byte("x")), 0x3377857006524257, 7, 7},
		{Encode([]byte("h1"), nil), 0xaae1fd17e635e4da, 2, 10},
		{Encode([]byte("key_1"), []byte("s")), 0x477a120ff8e7cbf4, 4, 4},
		{[]byte{0, 0, 'a', 'b', 'c'}, 0x05e5cabb3fc1faeb, 3, 11},
	} {
		t.Run(fmt.Sprintf("%x", tc.encoded), func(t *testing.T) {
			h, err := HashEncoded(tc.encoded)
			if err != nil {
				t.Fatal(err)
			}
			if h != tc.hash {
				t.Errorf("HashEncoded(%x) = %#x, want %#x", tc.encoded, h, tc.hash)
			}
			if p := Partition(h, 8); p != tc.of8 {
				t.Errorf("%x: partition of 8 = %d, want %d", tc.encoded, p, tc.of8)
			}
			if p := Partition(h, 16); p != tc.of6 {
				t.Errorf("%x: partition of 16 = %d, want %d", tc.encoded, p, tc.of6)
			}
		})
	}
}

func TestEncodeDecode(t *testing.T) {
	k := Encode([]byte("a"), []byte("b"))
	if !bytes.Equal(k, []byte{0, 1, 'a', 'b'}) {
		t.Fatalf("Encode = %x", k)
	}
	h, s, err := Decode(k)
	if err != nil || string(h) != "a" || string(s) != "b" {
		t.Fatalf("Decode = %q %q %v", h, s, err)
	}
	for _, bad := range [][]byte{nil, {0}, {0, 2, 'a'}} {
		if _, _, err := Decode(bad); err != ErrMalformed {
			t.Errorf("Decode(%x) err = %v", bad, err)
		}
	}
}

func TestSuccessor(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{[]byte{0, 0}, []byte{0, 1}},
		{[]byte{0, 2, 'h', 0xFF}, []byte{0, 2, 'i'}},
		{[]byte{0xFF, 0xFF}, nil},
		{nil, nil},
	} {
		t.Run(fmt.Sprintf("%x", tc.in), func(t *testing.T) {
			if got := Successor(tc.in); !bytes.Equal(got, tc.want) {
				t.Errorf("Successor(%x) = %x, want %x", tc.in, got, tc.want)
			}
		})
	}
	if got := HashKeyEnd(nil); !bytes.Equal(got, []byte{0, 1}) {
		t.Errorf("HashKeyEnd(empty) = %x", got)
	}
	if got := PrefixEnd([]byte("h"), []byte("ab")); !bytes.Equal(got, []byte{0, 1, 'h', 'a', 'c'}) {
		t.Errorf("PrefixEnd = %x", got)
	}
}

func TestFirstCount(t *testing.T) {
	for pidx, want := range map[int32]int32{0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 7: 8, 8: 16, 12: 16, 65535: 65536} {
		if got := FirstCount(pidx); got != want {
			t.Errorf("FirstCount(%d) = %d, want %d", pidx, got, want)
		}
	}
}
