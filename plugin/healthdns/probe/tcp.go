package probe

import (
	"context"
	"fmt"
	"net"
)

// tcp HOST:PORT: the target accepts a TCP connection.
var tcpKind = kindSpec{
	name: "tcp",
	word: true,
	validate: func(c *Check, addr string) error {
		if _, _, err := splitHostPort(addr); err != nil {
			return fmt.Errorf("tcp check %q: %v", c.Addr, err)
		}
		return nil
	},
	newProber: func(c Check) prober { return tcpProber{addr: c.Addr} },
}

type tcpProber struct{ addr string }

func (p tcpProber) probe(ctx context.Context) error {
	conn, err := dial(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// dial is how every check connects; tests count bytes through it.
var dial = (&net.Dialer{}).DialContext
