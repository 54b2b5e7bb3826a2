package gossip

import (
	"github.com/hashicorp/memberlist"
)

// broadcast is one queued gossip message. Its name makes a newer message
// for the same key replace an older one still queued: a node's heartbeat
// ("h/node"), a page of its catalog ("c/node/page"). Observation deltas
// are named by their version ("o/node/epoch/seq"), since every change is
// needed to keep a view complete.
type broadcast struct {
	name string
	msg  []byte
	done chan struct{} // if set, closed when the queue is done with it
}

var _ memberlist.NamedBroadcast = &broadcast{}

func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	nb, ok := other.(memberlist.NamedBroadcast)
	return ok && nb.Name() == b.name
}

func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }

func (b *broadcast) Finished() {
	if b.done != nil {
		close(b.done)
	}
}
