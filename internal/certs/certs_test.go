package certs

import (
	"bytes"
	"crypto/tls"
	"os"
	"testing"
)

// EnsureFiles makes the files once and keeps them; what it makes loads as a server's and
// a client's configuration whose certificates chain to the CA.
func TestEnsureFilesOnceAndLoadable(t *testing.T) {
	dir := t.TempDir()
	f, made, err := EnsureFiles(dir, "127.0.0.1")
	if err != nil || !made {
		t.Fatalf("first EnsureFiles: made %v, %v", made, err)
	}
	ca, _ := os.ReadFile(f.CA)
	again, made, err := EnsureFiles(dir, "127.0.0.1")
	if err != nil || made || again != f {
		t.Fatalf("second EnsureFiles: %+v made %v, %v", again, made, err)
	}
	if b, _ := os.ReadFile(f.CA); !bytes.Equal(b, ca) {
		t.Fatal("the CA changed on the second call")
	}
	for _, key := range []string{f.ServerKey, f.ClientKey} {
		if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v", key, st, err)
		}
	}
	srv, err := ServerConfig(f.ServerCert, f.ServerKey, f.CA, true)
	if err != nil || srv.ClientAuth != tls.RequireAndVerifyClientCert || srv.ClientCAs == nil {
		t.Fatalf("ServerConfig: %+v, %v", srv, err)
	}
	if _, err := ServerConfig(f.ServerCert, f.ServerKey, "", true); err == nil {
		t.Fatal("client-cert-auth without a CA was accepted")
	}
	cli, err := ClientConfig(f.CA, f.ClientCert, f.ClientKey)
	if err != nil || len(cli.Certificates) != 1 || cli.RootCAs == nil {
		t.Fatalf("ClientConfig: %v", err)
	}
	if _, err := ClientConfig(f.CA, f.ClientCert, ""); err == nil {
		t.Fatal("a client certificate without its key was accepted")
	}
	if _, err := ClientConfig(f.ServerKey, "", ""); err == nil {
		t.Fatal("a key file taken as a CA")
	}
}
