package durable

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileAndSyncDir(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := WriteFile(name, strings.NewReader("first, longer content")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(name, strings.NewReader("second")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(name); err != nil || string(b) != "second" {
		t.Fatalf("read back %q, %v: want the second content alone", b, err)
	}
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("SyncDir of a missing directory succeeded")
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), strings.NewReader("x")); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
}

// ReplaceFile leaves the new content under the name and no temporary file behind; into a
// missing directory it fails.
func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	for _, content := range []string{"first, longer content", "second"} {
		if err := ReplaceFile(name, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(name); err != nil || string(b) != content {
			t.Fatalf("read back %q, %v: want %q", b, err, content)
		}
	}
	if _, err := os.Stat(name + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	if err := ReplaceFile(filepath.Join(dir, "missing", "f"), []byte("x")); err == nil {
		t.Fatal("ReplaceFile into a missing directory succeeded")
	}
}
