package gossip

import (
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemberState is a member's liveness as memberlist's failure detector sees
// it. memberlist v0.7 reports neither suspicion nor leave through its API
// (Node.State is always alive, hashicorp/memberlist#293): a node that
// announced it leaves and is then gone is MemberLeft, any other gone node
// MemberDead, and MemberSuspect is never reported yet. Consumers that
// must notice a silent node early use its heartbeats: ObserverView.Heard
// and VoterView.Until, within Node.Silence.
type MemberState uint8

const (
	// MemberUnknown: no membership news of the node (yet, or any more).
	MemberUnknown MemberState = iota
	// MemberAlive answers probes.
	MemberAlive
	// MemberSuspect missed probes and may be declared dead soon; its
	// observations still count. (Not reported by memberlist v0.7.)
	MemberSuspect
	// MemberDead stopped answering.
	MemberDead
	// MemberLeft left the cluster on purpose.
	MemberLeft
)

func (s MemberState) String() string {
	return [...]string{"unknown", "alive", "suspect", "dead", "left"}[min(int(s), 4)]
}

func memberState(s memberlist.NodeStateType) MemberState {
	switch s {
	case memberlist.StateAlive:
		return MemberAlive
	case memberlist.StateSuspect:
		return MemberSuspect
	case memberlist.StateDead:
		return MemberDead
	case memberlist.StateLeft:
		return MemberLeft
	}
	return MemberUnknown
}

// Member is one node of the cluster.
type Member struct {
	Name     string
	Addr     string // host:port
	Role     Role
	Observer string
	State    MemberState
	Since    time.Time // when this node saw it join, or leave or die
}

// events adapts Node to memberlist.EventDelegate. memberlist calls it with
// its node lock held, so it must not call back into memberlist.
type events struct{ n *Node }

var _ memberlist.EventDelegate = &events{}

func (e *events) NotifyJoin(nd *memberlist.Node)   { e.set(nd, MemberAlive) }
func (e *events) NotifyUpdate(nd *memberlist.Node) { e.set(nd, MemberAlive) }
func (e *events) NotifyLeave(nd *memberlist.Node) {
	st := MemberDead
	if memberState(nd.State) == MemberLeft { // once memberlist says so
		st = MemberLeft
	}
	e.set(nd, st)
}

func (e *events) set(nd *memberlist.Node, st MemberState) {
	n := e.n
	m, _ := decodeMeta(nd.Meta)
	n.memMu.Lock()
	cur := n.members[nd.Name]
	if cur == nil {
		cur = &Member{}
		n.members[nd.Name] = cur
	}
	since := cur.Since
	if cur.State != st {
		since = time.Now()
	}
	*cur = Member{Name: nd.Name, Addr: nd.Address(), Role: m.Role, Observer: m.Observer, State: st, Since: since}
	alive := 0
	for _, m := range n.members {
		if m.State == MemberAlive {
			alive++
		}
	}
	n.alive.Store(int64(alive))
	n.memMu.Unlock()
	if st != MemberAlive {
		n.logger.Printf("[INFO] healthdns gossip: member %s (%s) is gone (left or failed)", nd.Name, nd.Address())
	}
	n.notify()
}

// liveRole returns the role of a member as its events last said, and
// whether it is alive; memberlist's own *Node may not be read for it
// (see Members).
func (n *Node) liveRole(name string) (Role, bool) {
	n.memMu.Lock()
	defer n.memMu.Unlock()
	m := n.members[name]
	if m == nil || m.State != MemberAlive {
		return 0, false
	}
	return m.Role, true
}

// aliveAddrs returns the addresses of the live members, as the events
// said them: memberlist rewrites its nodes' under its own lock (an alive
// message does). memMu is held.
func (n *Node) aliveAddrs() map[string]bool {
	out := map[string]bool{}
	for _, m := range n.members {
		if m.State == MemberAlive {
			out[m.Addr] = true
		}
	}
	return out
}

// Members returns every member this node knows of, live or not, sorted
// by name.
func (n *Node) Members() []Member {
	live := n.ml.Members() // alive and suspect
	n.mu.Lock()
	leaving := n.st.leaving()
	n.mu.Unlock()
	n.memMu.Lock()
	defer n.memMu.Unlock()
	out := make([]Member, 0, len(n.members))
	seen := map[string]bool{}
	for _, nd := range live {
		// Only the name: memberlist writes its nodes' other fields under
		// its lock, which Members does not hold; what the events said of
		// them (under that lock) is in n.members.
		seen[nd.Name] = true
		m := Member{Name: nd.Name, State: MemberAlive}
		if cur := n.members[nd.Name]; cur != nil {
			m.Addr, m.Role, m.Observer, m.Since = cur.Addr, cur.Role, cur.Observer, cur.Since
		}
		out = append(out, m)
	}
	for name, cur := range n.members {
		if !seen[name] {
			m := *cur
			if m.State == MemberDead && leaving[name] {
				m.State = MemberLeft
			}
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// memberStates maps node names to member states.
func (n *Node) memberStates() map[string]MemberState {
	out := map[string]MemberState{}
	for _, m := range n.Members() {
		out[m.Name] = m.State
	}
	if n.left.Load() {
		out[n.cfg.Name] = MemberLeft
	} else {
		out[n.cfg.Name] = MemberAlive
	}
	return out
}
