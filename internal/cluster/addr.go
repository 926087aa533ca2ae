package cluster

import (
	"fmt"
	"net/netip"
)

// CheckAdvertise checks an address a server advertises to clients and to the other servers:
// an IPv4 ip:port (the rpc_address Pegasus clients dial is IPv4), not a wildcard (others must
// be able to reach it), and with a port.
func CheckAdvertise(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	switch {
	case err == nil && ap.Addr().IsUnspecified():
		return fmt.Errorf("advertised address %q is a wildcard: advertise an address others can reach (--advertise)", addr)
	case err != nil || !ap.Addr().Is4():
		return fmt.Errorf("advertised address %q: want an IPv4 ip:port (Pegasus clients dial IPv4 addresses)", addr)
	case ap.Port() == 0:
		return fmt.Errorf("advertised address %q: port 0", addr)
	}
	return nil
}
