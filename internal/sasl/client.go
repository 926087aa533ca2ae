package sasl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// DefaultServiceName is the service part of the servers' principals, as Pegasus names it.
const DefaultServiceName = "pegasus"

// ErrAuthFailed is wrapped by the error of a negotiation the server refused
// (SASL_AUTH_FAIL), or whose answers did not prove the server holds its key.
var ErrAuthFailed = errors.New("sasl: authentication failed")

// ClientConfig is how a client authenticates with Kerberos: who it is (a principal with a
// keytab, or a credential cache made by kinit) and how to reach the KDC.
type ClientConfig struct {
	// Principal is the client's principal, "user@REALM" or "user" (the realm then is
	// krb5.conf's default_realm). With CCache it may be empty: the cache's principal.
	Principal string
	// Keytab is the file holding the principal's keys. Either Keytab or CCache is needed.
	Keytab string
	// CCache is a credential cache file holding a ticket-granting ticket ("kinit").
	CCache string
	// Krb5Config is the krb5.conf naming the realms' KDCs (default: $KRB5_CONFIG, else
	// /etc/krb5.conf).
	Krb5Config string
	// ServiceName and ServiceHost make the servers' principal, ServiceName/ServiceHost
	// (default "pegasus" and the host part of the address each connection dials, so each
	// server has its own; set ServiceHost to use one principal for the whole cluster, as
	// Pegasus's service_fqdn does).
	ServiceName, ServiceHost string
}

// Client authenticates connections with Kerberos: it is the client side of
// RPC_NEGOTIATION (an [rpc.ClientAuthenticator]). It logs in to the KDC once, and asks a
// service ticket for each server principal once (they are cached until they expire). Safe
// for concurrent use; Close it when done.
type Client struct {
	cfg ClientConfig
	krb *client.Client

	mu     sync.Mutex
	closed bool
}

var _ rpc.ClientAuthenticator = (*Client)(nil)

// NewClient logs in to the KDC with cfg's credentials.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.ServiceName == "" {
		cfg.ServiceName = DefaultServiceName
	}
	path := cfg.Krb5Config
	if path == "" {
		path = os.Getenv("KRB5_CONFIG")
	}
	if path == "" {
		path = "/etc/krb5.conf"
	}
	kc, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("sasl: krb5 config %s: %w", path, err)
	}
	var cl *client.Client
	switch {
	case cfg.Keytab != "":
		kt, err := keytab.Load(cfg.Keytab)
		if err != nil {
			return nil, fmt.Errorf("sasl: keytab %s: %w", cfg.Keytab, err)
		}
		user, realm, _ := strings.Cut(cfg.Principal, "@")
		if realm == "" {
			realm = kc.LibDefaults.DefaultRealm
		}
		if user == "" || realm == "" {
			return nil, fmt.Errorf("sasl: principal %q: want user@REALM (or a default_realm in %s)", cfg.Principal, path)
		}
		cl = client.NewWithKeytab(user, realm, kt, kc, client.DisablePAFXFAST(true))
		if err := cl.Login(); err != nil {
			cl.Destroy()
			return nil, fmt.Errorf("sasl: log in as %s@%s: %w", user, realm, err)
		}
	case cfg.CCache != "":
		cc, err := credentials.LoadCCache(cfg.CCache)
		if err != nil {
			return nil, fmt.Errorf("sasl: credential cache %s: %w", cfg.CCache, err)
		}
		if cl, err = client.NewFromCCache(cc, kc, client.DisablePAFXFAST(true)); err != nil {
			return nil, fmt.Errorf("sasl: credential cache %s: %w", cfg.CCache, err)
		}
	default:
		return nil, errors.New("sasl: Kerberos needs a keytab or a credential cache")
	}
	return &Client{cfg: cfg, krb: cl}, nil
}

// Close ends the client's Kerberos session (and its ticket renewal). Idempotent.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.krb.Destroy()
	}
}

// Principal returns the client's principal, "user@REALM".
func (c *Client) Principal() string {
	return c.krb.Credentials.CName().PrincipalNameString() + "@" + c.krb.Credentials.Domain()
}

// Negotiate implements [rpc.ClientAuthenticator]: the SASL GSSAPI exchange with the server
// at addr. A server with authentication off (SASL_AUTH_DISABLE) leaves the connection
// unauthenticated, as the Java client does.
func (c *Client) Negotiate(ctx context.Context, addr string, exchange rpc.Exchange) error {
	step := func(st idl.NegotiationStatus, msg []byte, want ...idl.NegotiationStatus) (*idl.NegotiationResponse, error) {
		resp, err := exchange(ctx, &idl.NegotiationRequest{Status: st, Msg: msg})
		if err != nil {
			return nil, err
		}
		for _, w := range want {
			if resp.Status == w {
				return resp, nil
			}
		}
		if resp.Status == idl.NegotiationSASLAuthFail {
			return nil, fmt.Errorf("%w: %s refused %s", ErrAuthFailed, addr, st)
		}
		return nil, fmt.Errorf("%w: %s answered %s to %s", ErrAuthFailed, addr, resp.Status, st)
	}
	resp, err := step(idl.NegotiationSASLListMechanisms, []byte{}, idl.NegotiationSASLListMechanismsResp, idl.NegotiationSASLAuthDisable)
	if err != nil {
		return err
	}
	if resp.Status == idl.NegotiationSASLAuthDisable {
		return nil
	}
	if !strings.Contains(","+string(resp.Msg)+",", ","+Mechanism+",") {
		return fmt.Errorf("%w: %s offers %q, not %s", ErrAuthFailed, addr, resp.Msg, Mechanism)
	}
	if _, err := step(idl.NegotiationSASLSelectMechanisms, []byte(Mechanism), idl.NegotiationSASLSelectMechanismsResp); err != nil {
		return err
	}
	host := c.cfg.ServiceHost
	if host == "" {
		if host, _, err = net.SplitHostPort(addr); err != nil {
			host = addr
		}
	}
	spn := c.cfg.ServiceName + "/" + host
	tkt, key, err := c.krb.GetServiceTicket(spn)
	if err != nil {
		return fmt.Errorf("sasl: service ticket for %s: %w", spn, err)
	}
	auth, err := types.NewAuthenticator(c.krb.Credentials.Domain(), c.krb.Credentials.CName())
	if err != nil {
		return fmt.Errorf("sasl: %w", err)
	}
	auth.Cksum = types.Checksum{CksumType: gssChecksumType, Checksum: gssChecksum(gssFlagMutual | gssFlagInteg)}
	req, err := messages.NewAPReq(tkt, key, auth)
	if err != nil {
		return fmt.Errorf("sasl: AP-REQ: %w", err)
	}
	types.SetFlag(&req.APOptions, flags.APOptionMutualRequired)
	rb, err := req.Marshal()
	if err != nil {
		return fmt.Errorf("sasl: AP-REQ: %w", err)
	}
	tok, err := contextToken(tokAPReq, rb)
	if err != nil {
		return err
	}
	resp, err = step(idl.NegotiationSASLInitiate, tok, idl.NegotiationSASLChallenge)
	if err != nil {
		return err
	}
	// The AP-REP: the server could read the authenticator, so it holds its key.
	wrapKey, acceptorSubkey := key, false
	id, body, err := parseContextToken(resp.Msg)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAuthFailed, err)
	}
	if id != tokAPRep {
		return fmt.Errorf("%w: %s answered context token %x, not an AP-REP", ErrAuthFailed, addr, id)
	}
	var rep messages.APRep
	if err := rep.Unmarshal(body); err != nil {
		return fmt.Errorf("%w: AP-REP: %v", ErrAuthFailed, err)
	}
	plain, err := crypto.DecryptEncPart(rep.EncPart, key, keyusage.AP_REP_ENCPART)
	if err != nil {
		return fmt.Errorf("%w: AP-REP from %s: %v", ErrAuthFailed, addr, err)
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		return fmt.Errorf("%w: AP-REP: %v", ErrAuthFailed, err)
	}
	if part.CTime.Unix() != auth.CTime.Unix() || part.Cusec != auth.Cusec {
		return fmt.Errorf("%w: AP-REP from %s does not answer this authenticator", ErrAuthFailed, addr)
	}
	if part.Subkey.KeyType != 0 && len(part.Subkey.KeyValue) > 0 {
		wrapKey, acceptorSubkey = part.Subkey, true
	}
	if resp, err = step(idl.NegotiationSASLChallengeResp, []byte{}, idl.NegotiationSASLChallenge); err != nil {
		return err
	}
	offer, err := unwrap(resp.Msg, wrapKey, true)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAuthFailed, err)
	}
	if len(offer) < 4 || offer[0]&layerNone == 0 {
		return fmt.Errorf("%w: %s does not offer the security layer none", ErrAuthFailed, addr)
	}
	choice, err := wrap(layerMessage(layerNone, ""), wrapKey, false, acceptorSubkey, uint64(auth.SeqNumber))
	if err != nil {
		return err
	}
	_, err = step(idl.NegotiationSASLChallengeResp, choice, idl.NegotiationSASLSucc)
	return err
}
