// floor-bridge is the least a `gostash connect` can do: copy bytes between
// its stdin/stdout (the go command) and the daemon's plugin socket, both
// ways, and nothing else (no auth line, no hello, no replay after a
// hang-up, no fallback). scripts/bench/daemon.ts runs it against the same
// daemon as `gostash connect`, to show what the extra process alone costs
// a round trip on this machine: the bound under which no bridge can go.
// Not a bridge to use.
//
//	floor-bridge 127.0.0.1:PORT | /path/to/daemon.sock
package main

import (
	"io"
	"net"
	"os"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		os.Stderr.WriteString("usage: floor-bridge HOST:PORT|SOCKET-PATH\n")
		os.Exit(2)
	}
	addr, network := os.Args[1], "tcp"
	if strings.Contains(addr, "/") {
		network = "unix"
	}
	c, err := net.Dial(network, addr)
	if err != nil {
		os.Stderr.WriteString("floor-bridge: " + err.Error() + "\n")
		os.Exit(1)
	}
	done := make(chan struct{})
	go func() {
		io.Copy(os.Stdout, c)
		os.Stdout.Close() // the go command waits for this
		close(done)
	}()
	io.Copy(c, os.Stdin)
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite() // the daemon answers what is pending, then hangs up
	}
	<-done
}
