package replica

import "testing"

func TestTruncationPoint(t *testing.T) {
	cases := []struct {
		name                                string
		applied, last, truncAt, every, keep uint64
		at                                  uint64
		ok                                  bool
	}{
		{"too few applied", 100, 100, 0, 100, 10, 0, false},
		{"keeps keep entries", 110, 110, 0, 100, 10, 100, true},
		{"after an earlier truncation", 300, 300, 100, 100, 10, 290, true},
		// A checkpoint installed as a snapshot at 50 holds writes up to 400: the log has
		// nothing after 50 yet, so there is nothing to truncate (raft's storage has no term
		// for an index past its last entry).
		{"store ahead of an empty log", 400, 50, 50, 20, 5, 0, false},
		{"store ahead of the log", 400, 60, 50, 20, 5, 60, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at, ok := truncationPoint(c.applied, c.last, c.truncAt, c.every, c.keep)
			if at != c.at || ok != c.ok {
				t.Fatalf("truncationPoint(%d, %d, %d, %d, %d) = %d, %v; want %d, %v",
					c.applied, c.last, c.truncAt, c.every, c.keep, at, ok, c.at, c.ok)
			}
		})
	}
}
