package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(t.Context(), []string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "gopegasus "+Version) {
		t.Fatalf("output %q", out.String())
	}
}

func TestUnknownAndUnbuiltCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(t.Context(), []string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
	errOut.Reset()
	if code := Main(t.Context(), []string{"shell"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), ErrNotImplemented.Error()) {
		t.Fatalf("unbuilt command: exit %d, %q", code, errOut.String())
	}
	if err := commands()["bench"].run(t.Context(), nil, &out, &errOut); !errors.Is(err, ErrNotImplemented) {
		t.Fatalf("bench: %v", err)
	}
}
