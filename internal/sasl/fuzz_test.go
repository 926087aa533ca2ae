package sasl

import (
	"net"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gopegasus/pegasus/internal/idl"
)

// FuzzServerSteps feeds a server negotiation whatever a client may send, in the order it
// is allowed to come: it must answer (never panic), and never succeed without a ticket.
func FuzzServerSteps(f *testing.F) {
	kt := keytab.New()
	if err := kt.AddEntry("pegasus/127.0.0.1", "FUZZ.TEST", "password", time.Now(), 1, 18); err != nil {
		f.Fatal(err)
	}
	s, err := NewServer(ServerConfig{Keytab: kt, Principal: "pegasus/127.0.0.1@FUZZ.TEST"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x60, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01, 0x00}, []byte{})
	f.Add([]byte{0x60, 0x80, 0x06}, []byte{0x05, 0x04, 0x00, 0xff, 0, 12, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, initiate, resp []byte) {
		n := s.NewNegotiation(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
		steps := []idl.NegotiationRequest{
			{Status: idl.NegotiationSASLListMechanisms},
			{Status: idl.NegotiationSASLSelectMechanisms, Msg: []byte(Mechanism)},
			{Status: idl.NegotiationSASLInitiate, Msg: initiate},
			{Status: idl.NegotiationSASLChallengeResp, Msg: resp},
			{Status: idl.NegotiationSASLChallengeResp, Msg: resp},
		}
		for _, st := range steps {
			r, user := n.Step(&st)
			if r == nil {
				t.Fatal("no answer")
			}
			if r.Status == idl.NegotiationSASLSucc || user != "" {
				t.Fatalf("authenticated %q without a ticket", user)
			}
			if r.Status == idl.NegotiationSASLAuthFail {
				return
			}
		}
	})
}
