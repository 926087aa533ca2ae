package cluster

import "testing"

// Member ids are persisted in raft logs and snapshots: the mapping (64-bit FNV-1a of the
// address, 0 mapped to 1) must never change.
func TestMemberIDStable(t *testing.T) {
	for addr, want := range map[string]uint64{
		"127.0.0.1:34801": 0x4ca7e4f26d3bf18e,
		"10.0.0.1:34601":  0xe45847bb7cd645bf,
		"":                0xcbf29ce484222325, // the FNV-64 offset basis
	} {
		if got := MemberID(addr); got != want {
			t.Errorf("MemberID(%q) = %#x, want %#x", addr, got, want)
		}
	}
}
