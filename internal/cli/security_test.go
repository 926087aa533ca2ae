package cli

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A server of a cluster does not start without a secret, unless told --insecure.
func TestServersRefuseToStartWithoutSecret(t *testing.T) {
	dir := t.TempDir()
	for name, run := range map[string]func() error{
		"meta": func() error {
			return runMeta(t.Context(), []string{"--data", filepath.Join(dir, "m"), "--listen", "127.0.0.1:0"}, io.Discard, io.Discard)
		},
		"replica": func() error {
			return runReplica(t.Context(), []string{"--data", filepath.Join(dir, "r"), "--listen", "127.0.0.1:0"}, io.Discard, io.Discard)
		},
	} {
		if err := run(); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--cluster-secret-file") {
			t.Errorf("%s without a secret: %v", name, err)
		}
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := runMeta(t.Context(), []string{"--data", filepath.Join(dir, "m"), "--listen", "127.0.0.1:0", "--cluster-secret-file", short}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "want at least 16") {
		t.Errorf("meta with a 3-byte secret: %v", err)
	}
	err = runMeta(t.Context(), []string{"--data", filepath.Join(dir, "m"), "--listen", "127.0.0.1:0", "--cluster-secret-file", short, "--insecure"}, io.Discard, io.Discard)
	if !errors.Is(err, errUsage) {
		t.Errorf("meta with a secret and --insecure: %v", err)
	}
}

// The onebox makes its secret once, readable by its owner only, and keeps it.
func TestOneboxSecretMadeOnceAndPrivate(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := oneboxSecret(dir, lg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, oneboxSecretFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v", st, err)
	}
	first, _ := os.ReadFile(path)
	if len(bytes.TrimSpace(first)) != 64 {
		t.Fatalf("secret %q, want 64 hex digits", first)
	}
	if _, err := oneboxSecret(dir, lg); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Fatal("the secret changed on the second start")
	}
	if logs.Len() != 0 {
		t.Fatalf("unexpected logs: %s", logs.String())
	}
}
