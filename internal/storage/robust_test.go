package storage

import (
	"errors"
	"github.com/gopegasus/pegasus/internal/wire"
	"testing"
)

func TestNilRequests(t *testing.T) {
	d := openTest(t, nil)
	if _, err := d.Apply(nil); err == nil {
		t.Fatal("nil batch accepted")
	}
	if r, err := d.MultiGet(nil); err != nil || r.Error != wire.StatusInvalidArgument {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := d.GetScanner(nil); err != nil || r.Error != wire.StatusInvalidArgument {
		t.Fatalf("%+v %v", r, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Get([]byte{0, 0}); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	if _, err := d.Apply(&Batch{Index: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("apply after close: %v", err)
	}
}
