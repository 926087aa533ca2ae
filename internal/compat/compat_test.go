package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGoClient2018 runs compat/gocli2018's tests with the go command that runs this test. (Not
// go vet: its copy of go-ycsb's binding is kept as upstream wrote it, bar one line.)
func TestGoClient2018(t *testing.T) {
	if testing.Short() {
		t.Skip("runs another module's tests: skipped under -short")
	}
	goBin := filepath.Join(runtimeGOROOT(t), "bin", "go")
	dir, err := filepath.Abs(filepath.Join("..", "..", "compat", "gocli2018"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"test", "-count=1", "./..."}} {
		cmd := exec.CommandContext(t.Context(), goBin, args...)
		cmd.Dir = dir
		// The parent's flags (-race, -count, coverage) are for this module's tests.
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %v in %s: %v\n%s", args, dir, err, out)
		}
		t.Logf("go %v:\n%s", args, out)
	}
}

// runtimeGOROOT returns the GOROOT of the go command running the tests.
func runtimeGOROOT(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return string(out[:len(out)-1])
}
