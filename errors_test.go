package pegasus

import "testing"

func TestStatusErrorText(t *testing.T) {
	for s, want := range map[StatusError]string{
		StatusInvalidArgument: "pegasus: storage status InvalidArgument (4)",
		StatusTryAgain:        "pegasus: storage status TryAgain (13)",
		StatusError(14):       "pegasus: storage status Unknown (14)",
	} {
		if got := s.Error(); got != want {
			t.Errorf("StatusError(%d).Error() = %q, want %q", int32(s), got, want)
		}
	}
}
