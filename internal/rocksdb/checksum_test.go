package rocksdb

import "testing"

// The published reference values of the hashes (xxHash's own test vectors); the RocksDB
// tests check every length class against the checksums RocksDB stored.
func TestHashVectors(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint32
	}{
		{"", 0x02CC5D05},
		{"a", 0x550D7456},
		{"abc", 0x32D153FF},
	} {
		t.Run(c.in, func(t *testing.T) {
			if got := xxh32([]byte(c.in)); got != c.want {
				t.Errorf("XXH32(%q) = %#08x, want %#08x", c.in, got, c.want)
			}
		})
	}
	if got := xxh3(nil); got != 0x2D06800538D394C2 {
		t.Errorf("XXH3_64bits(\"\") = %#016x, want 0x2d06800538d394c2", got)
	}
}
