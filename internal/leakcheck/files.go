package leakcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OpenFilesUnder counts the files this process holds open at dir or below it, leaving out
// those below any of except (directories under dir). It skips the test where the process's
// open files cannot be listed (no /proc/self/fd).
func OpenFilesUnder(t testing.TB, dir string, except ...string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	under := func(path, d string) bool { return path == d || strings.HasPrefix(path, d+string(filepath.Separator)) }
	n := 0
next:
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !under(target, dir) {
			continue
		}
		for _, x := range except {
			if under(target, x) {
				continue next
			}
		}
		n++
	}
	return n
}
