package sasl_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/krbtest"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/sasl"
)

// The other side of the exchange played by MIT Kerberos's own GSS-API library (the one Cyrus
// SASL's GSSAPI plugin, and so Pegasus's servers and C++ clients, use), through Python's
// gssapi module: tokens go through the script's stdin and stdout, base64, one per line.
const mitScript = `
import base64, sys, gssapi
def out(b): print(base64.b64encode(b or b"").decode(), flush=True)
def inp(): return base64.b64decode(sys.stdin.readline().strip())
F = gssapi.RequirementFlag
if sys.argv[1] == "initiate":
    ctx = gssapi.SecurityContext(name=gssapi.Name(sys.argv[2], gssapi.NameType.hostbased_service), usage="initiate",
                                 flags=F.mutual_authentication | F.integrity)
    out(ctx.step())
    while not ctx.complete:
        out(ctx.step(inp()))
    offer = ctx.unwrap(inp()).message
    assert offer[0] & 1, offer
    out(ctx.wrap(bytes([1, 0, 0, 0]), False).message)
else:
    ctx = gssapi.SecurityContext(creds=gssapi.Credentials(usage="accept"), usage="accept")
    out(ctx.step(inp()))
    assert ctx.complete
    empty = inp()
    assert empty == b"", empty
    out(ctx.wrap(bytes([1, 0, 0, 0]), False).message)
    choice = ctx.unwrap(inp()).message
    assert choice[0] == 1, choice
    print("OK " + str(ctx.initiator_name), flush=True)
`

// mit runs the script in role with env, returning a line reader and writer.
type mit struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startMIT(t *testing.T, env []string, args ...string) *mit {
	t.Helper()
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} { // Debian's module is for Debian's python
		if exec.Command(p, "-c", "import gssapi").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 with the gssapi module (Debian: python3-gssapi) is needed with CI=true")
		}
		t.Skip("python3's gssapi module (Debian: python3-gssapi) not found")
	}
	script := filepath.Join(t.TempDir(), "mit.py")
	if err := os.WriteFile(script, []byte(mitScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = t.Output()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Wait()
	})
	return &mit{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

func (m *mit) send(b []byte) error {
	_, err := fmt.Fprintln(m.in, base64.StdEncoding.EncodeToString(b))
	return err
}

func (m *mit) line() (string, error) {
	l, err := m.out.ReadString('\n')
	return strings.TrimSpace(l), err
}

func (m *mit) token() ([]byte, error) {
	l, err := m.line()
	if err != nil {
		return nil, fmt.Errorf("MIT side: %w", err)
	}
	return base64.StdEncoding.DecodeString(l)
}

// mitInitiator is an rpc.ClientAuthenticator whose GSS-API tokens are MIT's.
type mitInitiator struct{ m *mit }

func (c mitInitiator) Negotiate(ctx context.Context, _ string, exchange rpc.Exchange) error {
	step := func(st idl.NegotiationStatus, msg []byte) (*idl.NegotiationResponse, error) {
		return exchange(ctx, &idl.NegotiationRequest{Status: st, Msg: msg})
	}
	if _, err := step(idl.NegotiationSASLListMechanisms, []byte{}); err != nil {
		return err
	}
	if _, err := step(idl.NegotiationSASLSelectMechanisms, []byte("GSSAPI")); err != nil {
		return err
	}
	tok, err := c.m.token()
	if err != nil {
		return err
	}
	st := idl.NegotiationSASLInitiate
	for {
		resp, err := step(st, tok)
		if err != nil {
			return err
		}
		switch resp.Status {
		case idl.NegotiationSASLSucc:
			return nil
		case idl.NegotiationSASLChallenge:
		default:
			return fmt.Errorf("server answered %v", resp.Status)
		}
		if err := c.m.send(resp.Msg); err != nil {
			return err
		}
		if tok, err = c.m.token(); err != nil {
			return err
		}
		st = idl.NegotiationSASLChallengeResp
	}
}

// TestInteropWithMITGSSAPI checks our two sides against MIT Kerberos's GSS-API: our server
// authenticates an MIT initiator, and our client authenticates to an MIT acceptor (which,
// unlike ours, sends an acceptor subkey in its AP-REP).
func TestInteropWithMITGSSAPI(t *testing.T) {
	kdc := krbtest.Start(t)
	svcKT := kdc.AddService(t, "pegasus/127.0.0.1")
	aliceKT := kdc.AddUser(t, "alice")
	env := []string{"KRB5_CONFIG=" + kdc.Krb5Conf, "KRB5RCACHETYPE=none"}

	t.Run("our server, MIT initiator", func(t *testing.T) {
		var mandatory atomic.Bool
		mandatory.Store(true)
		addr := startServer(t, svcKT, "pegasus/127.0.0.1@"+krbtest.Realm, &mandatory)
		cc := kdc.Kinit(t, "alice", aliceKT)
		m := startMIT(t, append(env, "KRB5CCNAME=FILE:"+cc), "initiate", "pegasus@127.0.0.1")
		got, err := call(t, addr, mitInitiator{m})
		if err != nil || got != "user=alice" {
			t.Fatalf("MIT initiator: %q, %v; want user=alice", got, err)
		}
	})

	t.Run("our client, MIT acceptor", func(t *testing.T) {
		m := startMIT(t, append(env, "KRB5_KTNAME=FILE:"+svcKT), "accept")
		alice, err := sasl.NewClient(sasl.ClientConfig{Principal: "alice", Keytab: aliceKT, Krb5Config: kdc.Krb5Conf})
		if err != nil {
			t.Fatal(err)
		}
		defer alice.Close()
		// The server's side of RPC_NEGOTIATION, relaying the GSS-API tokens to MIT's acceptor.
		exchange := func(_ context.Context, req *idl.NegotiationRequest) (*idl.NegotiationResponse, error) {
			switch req.Status {
			case idl.NegotiationSASLListMechanisms:
				return &idl.NegotiationResponse{Status: idl.NegotiationSASLListMechanismsResp, Msg: []byte("GSSAPI")}, nil
			case idl.NegotiationSASLSelectMechanisms:
				return &idl.NegotiationResponse{Status: idl.NegotiationSASLSelectMechanismsResp}, nil
			}
			if err := m.send(req.Msg); err != nil {
				return nil, err
			}
			l, err := m.line()
			if err != nil {
				return nil, err
			}
			if user, ok := strings.CutPrefix(l, "OK "); ok {
				if user != "alice@"+krbtest.Realm {
					return nil, fmt.Errorf("MIT acceptor authenticated %q", user)
				}
				return &idl.NegotiationResponse{Status: idl.NegotiationSASLSucc}, nil
			}
			tok, err := base64.StdEncoding.DecodeString(l)
			if err != nil {
				return nil, errors.New("MIT acceptor: " + l)
			}
			return &idl.NegotiationResponse{Status: idl.NegotiationSASLChallenge, Msg: tok}, nil
		}
		if err := alice.Negotiate(t.Context(), "127.0.0.1:34601", exchange); err != nil {
			t.Fatalf("our client with an MIT acceptor: %v", err)
		}
	})
}
