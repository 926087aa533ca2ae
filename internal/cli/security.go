package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// oneboxSecretFile is the onebox's cluster secret, in its data directory.
const oneboxSecretFile = "cluster_secret"

// securityFlags are the peer authentication flags of `pegasus meta` and `pegasus replica`,
// backed by the [security] settings of a config file.
type securityFlags struct {
	secretFile *string
	insecure   *bool
	setting    *config.Value[string]
}

func newSecurityFlags(fs *flag.FlagSet, reg *config.Registry) *securityFlags {
	return &securityFlags{
		secretFile: fs.String("cluster-secret-file", "", "file holding the cluster's secret (at least 16 bytes; every server of the cluster reads the same one): "+
			"the servers authenticate each other with it, and refuse internal requests from anyone else. Make one with: head -c 32 /dev/urandom | xxd -p -c 64 > FILE; chmod 600 FILE"),
		insecure: fs.Bool("insecure", false, "run without a cluster secret: anyone who reaches the port can act as a member of the cluster (send raft messages and snapshots, register replica servers, change the metas' group)"),
		setting: config.Define(reg, config.Spec[string]{Section: "security", Name: "cluster_secret_file",
			Description: "The file holding the cluster's secret, which the servers authenticate each other with (--cluster-secret-file)."}),
	}
}

// secret returns the cluster's secret from --cluster-secret-file or the config file. Without
// one it fails, unless --insecure was given: it then warns and returns nil.
func (f *securityFlags) secret(lg *slog.Logger) (*rpc.Secret, error) {
	path := *f.secretFile
	if path == "" {
		path = f.setting.Get()
	}
	if path != "" {
		if *f.insecure {
			return nil, fmt.Errorf("%w: --insecure and a cluster secret file (%s) both given", errUsage, path)
		}
		return readSecretFile(path, lg)
	}
	if !*f.insecure {
		return nil, fmt.Errorf("%w: a cluster needs a secret its servers authenticate each other with: "+
			"give --cluster-secret-file (or [security] cluster_secret_file), the same file on every server; "+
			"or --insecure to run without one (anyone who reaches a port can then act as a member)", errUsage)
	}
	lg.Warn("running without a cluster secret (--insecure): anyone who reaches this server's port can act as a member of the cluster")
	return nil, nil
}

// readSecretFile reads a cluster secret: the file's content, surrounding whitespace
// trimmed. A file others can read is used, with a warning.
func readSecretFile(path string, lg *slog.Logger) (*rpc.Secret, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		lg.Warn("cluster secret file is readable by others; chmod 600 it", "file", path, "mode", st.Mode().Perm().String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	s, err := rpc.NewSecret(bytes.TrimSpace(b))
	if err != nil {
		return nil, fmt.Errorf("cluster secret %s: %w", path, err)
	}
	return s, nil
}

// oneboxSecret returns the onebox's secret, from its data directory, made (mode 0600) on the
// first start.
func oneboxSecret(dir string, lg *slog.Logger) (*rpc.Secret, error) {
	path := filepath.Join(dir, oneboxSecretFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		_, werr := f.Write(append(rpc.GenerateSecret(), '\n'))
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			_ = os.Remove(path)
			return nil, fmt.Errorf("cluster secret: %w", err)
		}
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	return readSecretFile(path, lg)
}
