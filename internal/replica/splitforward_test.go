package replica

import "testing"

func TestDescends(t *testing.T) {
	for _, c := range []struct {
		d, p int32
		want bool
	}{
		{0, 0, true}, {5, 0, true}, {7, 0, true}, // a table of one partition: everything
		{4, 0, true}, {6, 2, true}, {5, 1, true}, {13, 5, true}, {13, 1, true}, // 4 -> 8 -> 16
		{6, 0, true}, {3, 1, true}, {2, 1, false}, {6, 4, false}, {12, 5, false}, {9, 5, false},
		{3, 2, false}, {7, 3, true}, {11, 3, true}, {15, 7, true}, {14, 7, false},
	} {
		if got := descends(c.d, c.p); got != c.want {
			t.Errorf("descends(%d, %d) = %v, want %v", c.d, c.p, got, c.want)
		}
	}
}
