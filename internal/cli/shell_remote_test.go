package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// remote_command runs the servers' commands; the ones that change the metas' group run only
// when the shell holds the cluster's secret.
func TestShellRemoteCommandAndSecret(t *testing.T) {
	key := rpc.GenerateSecret()
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	secret, err := rpc.NewSecret(key)
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, testcluster.Options{Metas: 3, Replicas: 1, Secret: secret})
	leader := c.MetaLeader(t)
	metas := strings.Join(c.MetaAddrs(), ",")

	out, errOut, err := shellRun(t, "", "--metas", metas, "-c", "remote_command meta-list")
	if err != nil || strings.Count(out, "leader "+leader) != 3 {
		t.Fatalf("meta-list on every meta: %v\n%s%s", err, out, errOut)
	}
	out, _, _ = shellRun(t, "", "--metas", metas, "-c", "remote_command -l "+leader+" meta-add 127.0.0.1:9")
	if !strings.Contains(out, "refused") {
		t.Fatalf("meta-add without the secret:\n%s", out)
	}
	for _, cmd := range []string{"meta-add", "meta-remove"} {
		out, errOut, err = shellRun(t, "", "--metas", metas, "--cluster-secret-file", secretFile, "-c", "remote_command -l "+leader+" "+cmd+" 127.0.0.1:9")
		if err != nil || !strings.Contains(out, "127.0.0.1:9") || strings.Contains(out, "error") {
			t.Fatalf("%s with the secret: %v\n%s%s", cmd, err, out, errOut)
		}
	}
	var other bytes.Buffer
	other.Write(rpc.GenerateSecret())
	otherFile := filepath.Join(t.TempDir(), "other")
	if err := os.WriteFile(otherFile, other.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = shellRun(t, "", "--metas", metas, "--cluster-secret-file", otherFile, "-c", "remote_command -l "+leader+" meta-add 127.0.0.1:9")
	if err == nil || !strings.Contains(out, "peer authentication failed") {
		t.Fatalf("meta-add with another cluster's secret: %v\n%s", err, out)
	}
}
