package chaos

import "net"

type netTCPAddr = net.TCPAddr

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
