package gossip

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/memberlist"
)

// ErrNameTaken is Join's error when a live member of the cluster already
// has this node's name. memberlist keeps the member it knew and ignores the
// newcomer, which would otherwise think it had joined.
var ErrNameTaken = errors.New("gossip: node name taken")

// conflict is memberlist's ConflictDelegate: it hears of a live member
// with a name already held by another address. memberlist keeps the one it
// knew; conflict says so, once per address, and lets Join refuse a node
// that finds its own name taken.
type conflict struct {
	n *Node

	mu     sync.Mutex
	logged map[string]bool // "name addr" pairs reported
	ours   uint64          // conflicts over this node's own name
	other  string          // the address of the latest one
}

var _ memberlist.ConflictDelegate = &conflict{}

func newConflict(n *Node) *conflict { return &conflict{n: n, logged: map[string]bool{}} }

// NotifyConflict is called from memberlist's packet handling: it only
// records and logs.
func (c *conflict) NotifyConflict(existing, other *memberlist.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if existing.Name == c.n.cfg.Name {
		c.ours++
		c.other = other.Address()
	}
	key := existing.Name + " " + other.Address()
	if c.logged[key] {
		return
	}
	c.logged[key] = true
	if existing.Name == c.n.cfg.Name {
		c.n.logger.Printf("[ERR] healthdns gossip: the member at %s is also named %s; names must be unique in a cluster, and the one that joined last is ignored", other.Address(), existing.Name)
		return
	}
	c.n.logger.Printf("[ERR] healthdns gossip: two members are named %s (at %s and %s); the one at %s is ignored: give each node a unique name", existing.Name, existing.Address(), other.Address(), other.Address())
}

// mark returns the count of conflicts over this node's name so far.
func (c *conflict) mark() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ours
}

// since returns ErrNameTaken, with the other member's address, if a
// conflict over this node's name came after mark returned m.
func (c *conflict) since(m uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ours == m {
		return nil
	}
	return fmt.Errorf("%w: a live member at %s is already named %s; start this node with another name", ErrNameTaken, c.other, c.n.cfg.Name)
}
