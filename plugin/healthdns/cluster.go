package healthdns

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
	"github.com/healthdns/healthdns/plugin/healthdns/health"
	"github.com/healthdns/healthdns/plugin/healthdns/observer"
	"github.com/healthdns/healthdns/plugin/healthdns/probe"
	"github.com/healthdns/healthdns/plugin/healthdns/records"

	"github.com/prometheus/client_golang/prometheus"
)

// clusterConfig is the cluster block: this server's place in the gossip
// cluster of servers and agents.
type clusterConfig struct {
	gossip gossip.Config
	// stale, when set, replaces the per-target freshness rule: another
	// observer's view not dated within stale is unknown.
	stale       time.Duration
	syncTimeout time.Duration // cold start: how long to wait for a peer
	probe       bool          // this server is an observer too
	// servers is the number of voters (servers and witnesses) a majority
	// is counted of; 0: the voters heard within forgetAfter.
	servers     int
	forgetAfter time.Duration
	// clients is the address of the edge client port ("" for none), and
	// maxClients the most connections it holds at once.
	clients    string
	maxClients int
	// insecure: the operator asked for gossip without a key file.
	insecure bool
}

const (
	defaultSyncTimeout = 5 * time.Second
	// defaultForgetAfter bounds how long a voter that vanished without
	// leaving is still counted: long enough that a datacenter down for a
	// day is still counted by the others, short enough that renamed or
	// replaced servers do not raise the majority for long.
	defaultForgetAfter = 24 * time.Hour
	maxServers         = 64
)

// member is this process's gossip node, shared by every server block that
// names the same bind address and kept across reloads the way the probe
// pool is: a reload acquires before the old instance releases.
type member struct {
	node      *gossip.Node
	collector *gossip.Collector
	cfg       clusterConfig
	synced    bool

	mu         sync.Mutex
	seen       map[string]gossip.MemberState // for logMembers
	recordSync context.CancelFunc
	catalogs   map[*HealthDNS][]gossip.CatalogTarget
	observed   map[*HealthDNS]map[gossip.TargetID]observer.Probed
	// roster is the voters heard within forget-after: the voter count
	// without a servers option, and with one, who the others are.
	roster     *roster
	overSeen   int // most voters heard over servers, warned about
	saveFailed bool
}

var members registry[string, *member]

func memberKey(cc *clusterConfig) string {
	return net.JoinHostPort(cc.gossip.BindAddr, strconv.Itoa(cc.gossip.BindPort))
}

// acquireMember returns the gossip node for cc, starting and joining it if
// it is new. A new node waits up to the sync timeout for a full state
// exchange with a peer (cold start) before the server answers. dataDir,
// if not "", keeps the voters it has heard (see roster).
func acquireMember(cc *clusterConfig, dataDir string) (*member, error) {
	return members.acquire(memberKey(cc), func() (*member, error) { return startMember(cc, dataDir) }, func(m *member, opened bool) {
		if opened {
			return
		}
		if m.cfg.gossip.Name != cc.gossip.Name || m.cfg.gossip.KeyFile != cc.gossip.KeyFile || m.cfg.gossip.Label != cc.gossip.Label {
			log.Warningf("cluster: name, keyfile and label changes take effect on restart, not reload")
		}
		if m.cfg.clients != cc.clients || m.cfg.maxClients != cc.maxClients {
			log.Warningf("cluster: clients and max-clients changes take effect on restart, not reload")
		}
	})
}

// startMember starts and joins the gossip node of cc (under the
// registry's lock, as acquireMember holds it).
func startMember(cc *clusterConfig, dataDir string) (*member, error) {
	k := memberKey(cc)
	cfg := cc.gossip
	cfg.LogOutput = memberlistLog{}
	cfg.DurableRecords = dataDir != ""
	if cc.insecure {
		log.Warningf("cluster: INSECURE: gossip on %s is neither encrypted nor authenticated (Corefile says insecure): anyone who can reach it can create and delete any owner's records and observations", k)
	}
	n, err := gossip.New(cfg)
	if err != nil {
		return nil, err
	}
	if cc.clients != "" {
		addr, err := n.ServeEdge(cc.clients, cc.maxClients)
		if err != nil {
			n.Shutdown()
			return nil, err
		}
		log.Infof("cluster: edge clients (agents and sidecars with -connect) connect to %s", addr)
	}
	collector := gossip.NewCollector(n)
	if err := prometheus.DefaultRegisterer.Register(collector); err != nil {
		log.Warningf("cluster: gossip metrics not registered: %v", err)
	}
	m := &member{node: n, collector: collector, cfg: *cc, catalogs: map[*HealthDNS][]gossip.CatalogTarget{}, observed: map[*HealthDNS]map[gossip.TargetID]observer.Probed{}}
	r, err := loadRoster(dataDir, n.Name(), cc.forgetAfter)
	if err != nil {
		log.Warningf("cluster: %v", err)
	}
	m.roster = r
	m.coldStart()
	m.logRule()
	return m, nil
}

// logRule says once at start how the voters a majority is counted of are
// known, and what that means.
func (m *member) logRule() {
	if m.cfg.servers > 0 {
		log.Infof("cluster: %d voters (servers %d: servers and witnesses); this server acts while it hears %d of them, itself included, and keeps its last verdicts otherwise",
			m.cfg.servers, m.cfg.servers, health.MajorityOf(m.cfg.servers))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.roster
	m.updateRoster(time.Now(), m.node.Voters())
	where := "not kept across restarts (no data directory): a restarted server counts only the voters it hears again"
	if r.path != "" {
		where = "kept in " + r.path
	}
	log.Infof("cluster: no servers option: counting the voters heard within %s, itself included (%d now: %s), %s; set servers to the number of servers and witnesses to make the majority fixed",
		r.forgetAfter, r.count(), strings.Join(append([]string{m.node.Name()}, r.names()...), " "), where)
}

// coldStart joins the cluster; Join returns after a full state exchange
// with a peer, so once it succeeds this server knows what its peers know.
func (m *member) coldStart() {
	if len(m.cfg.gossip.Join) == 0 {
		log.Infof("cluster: node %s started with no one to join; answering from its own probes", m.node.Name())
		return
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.node.Join()
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil && len(m.node.Members()) > 1 {
			m.synced = true
			// The records the peer has and this node lacks come directly
			// after the join; wait for them too, a while.
			if !m.node.WaitRecords(m.cfg.syncTimeout) {
				log.Warningf("cluster: cold start: records from peers not all in after %s; answering with what is here", m.cfg.syncTimeout)
			}
			log.Infof("cluster: cold-start sync done: node %s has the state of %d members", m.node.Name(), len(m.node.Members())-1)
			return
		}
		why := "no peer in the join list answered"
		if err != nil {
			why = err.Error()
		}
		log.Warningf("cluster: cold start: %s; answering from own probes until a peer does", why)
	case <-time.After(m.cfg.syncTimeout):
		log.Warningf("cluster: cold start: no peer answered within %s; answering from own probes until one does", m.cfg.syncTimeout)
	}
}

// syncRecords runs the node's record replication into st, once per node.
func (m *member) syncRecords(st *records.Store) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recordSync != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.recordSync = cancel
	go func() {
		if err := m.node.SyncRecords(ctx, st); err != nil && ctx.Err() == nil {
			log.Errorf("cluster: record replication: %v", err)
		}
	}()
}

func (m *member) release(h *HealthDNS) {
	m.mu.Lock()
	delete(m.catalogs, h)
	delete(m.observed, h)
	m.mu.Unlock()
	last := false
	members.release(memberKey(&m.cfg), func(_ *member, l bool) { last = l })
	if last { // leaving takes seconds: not under the registry's lock
		m.mu.Lock()
		if m.recordSync != nil {
			m.recordSync()
		}
		m.mu.Unlock()
		prometheus.DefaultRegisterer.Unregister(m.collector)
		m.node.Leave(2 * time.Second)
		m.node.Shutdown()
		return
	}
	m.publishCatalog()
}

// setCatalog records an instance's targets and publishes the union.
func (m *member) setCatalog(h *HealthDNS, ts []probe.Target, probing bool) {
	m.setCatalogOf(h, catalogOf(ts), probing)
}

// catalog is a server's targets as it publishes them, with what its own
// probes of them are.
type catalog struct {
	targets []gossip.CatalogTarget
	ids     map[gossip.TargetID]observer.Probed
}

// catalogOf describes ts for the catalog. Built before the join, it also
// spares the join's state: its decoder knows these targets' IDs.
func catalogOf(ts []probe.Target) catalog {
	c := catalog{ids: make(map[gossip.TargetID]observer.Probed, len(ts))}
	for _, t := range ts {
		ct, err := gossip.NewCatalogTarget(t)
		if err != nil {
			log.Errorf("cluster: target %s not published: %v", t.Addr, err)
			continue
		}
		c.targets = append(c.targets, ct)
		c.ids[ct.ID] = observer.Probed{Key: t.Key(), Late: t.Interval + t.Timeout}
	}
	return c
}

func (m *member) setCatalogOf(h *HealthDNS, c catalog, probing bool) {
	cat, ids := c.targets, c.ids
	m.mu.Lock()
	m.catalogs[h] = cat
	if probing {
		m.observed[h] = ids
	}
	m.mu.Unlock()
	m.publishCatalog()
}

func (m *member) publishCatalog() {
	m.mu.Lock()
	seen := map[gossip.TargetID]bool{}
	var all []gossip.CatalogTarget
	for _, cat := range m.catalogs {
		for _, ct := range cat {
			if !seen[ct.ID] {
				seen[ct.ID] = true
				all = append(all, ct)
			}
		}
	}
	m.mu.Unlock()
	if err := m.node.PublishCatalog(all); err != nil {
		log.Errorf("cluster: catalog not published: %v", err)
	}
}

// publishObservations sends this server's own probe results (package
// observer, as an agent does).
func (m *member) publishObservations(p *probe.Pool) {
	m.mu.Lock()
	all := map[gossip.TargetID]observer.Probed{}
	for _, ids := range m.observed {
		for id, pt := range ids {
			all[id] = pt
		}
	}
	m.mu.Unlock()
	observer.Publish(m.node, p, all)
}

// voterState is one voter as this server counts it, for status and
// metrics.
type voterState struct {
	name, role string
	state      string // self, heard, silent, dead, left or remembered
	heard      time.Time
}

// voters returns the cluster's voters for the judge, and as this server
// counts them, for status. The voter count is the servers option, or the
// roster, which this call brings up to date.
func (m *member) voters(now time.Time) (health.Voters, []voterState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	views := m.node.Voters()
	hv := health.Voters{Known: m.cfg.servers}
	list := []voterState{{name: m.node.Name(), role: gossip.RoleServer.String(), state: "self", heard: now}}
	heard := 1
	listed := map[string]bool{}
	for _, v := range views {
		until := v.Until()
		hv.Others = append(hv.Others, health.Voter{Heard: v.Heard, Until: until})
		vs := voterState{name: v.Node, role: v.Role.String(), heard: v.Heard}
		switch {
		case v.Leaving || v.State == gossip.MemberLeft:
			vs.state = "left"
		case v.State == gossip.MemberDead:
			vs.state = "dead"
		case until.IsZero() || now.After(until):
			vs.state = "silent"
		default:
			vs.state = "heard"
			heard++
		}
		if vs.state == "left" && m.cfg.servers == 0 {
			continue // no longer counted: not listed either
		}
		listed[v.Node] = true
		list = append(list, vs)
	}
	m.updateRoster(now, views)
	for _, name := range m.roster.names() {
		if !listed[name] {
			v := m.roster.voters[name]
			list = append(list, voterState{name: name, role: v.Role, state: "remembered", heard: v.Seen})
		}
	}
	if m.cfg.servers == 0 {
		hv.Known = m.roster.count()
	} else if heard > m.cfg.servers && heard > m.overSeen {
		m.overSeen = heard
		log.Warningf("cluster: hearing %d voters but servers is %d: set servers to the number of servers and witnesses, or two sides of a split may both act", heard, m.cfg.servers)
	}
	slices.SortFunc(list[1:], func(a, b voterState) int { return strings.Compare(a.name, b.name) })
	return hv, list
}

// updateRoster brings the roster up to date with the voters the node
// knows of, forgets those gone past forget-after and writes it when due.
// m.mu must be held.
func (m *member) updateRoster(now time.Time, views []gossip.VoterView) {
	r := m.roster
	for _, v := range views {
		switch {
		case v.Leaving || v.State == gossip.MemberLeft:
			r.left(v.Node)
		case !v.Heard.IsZero() && now.Sub(v.Heard) <= r.forgetAfter:
			r.heard(v.Node, v.Role, v.Heard)
		}
	}
	for _, name := range r.forget(now) {
		log.Infof("cluster: voter %s not heard for %s: no longer counted (forget-after)", name, r.forgetAfter)
	}
	if !r.due(now) {
		return
	}
	if err := r.save(now); err != nil {
		if !m.saveFailed {
			log.Warningf("cluster: %v (the voters are still counted; they are not kept for a restart)", err)
		}
		m.saveFailed = true
		return
	}
	m.saveFailed = false
}

// memberlistLog sends memberlist's and the gossip package's log lines
// through CoreDNS's logger at their own level; debug lines stay at debug.
type memberlistLog struct{}

func (memberlistLog) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	// Lines come as "2026/11/26 02:00:00 [LEVEL] text": drop the date.
	if i := strings.Index(line, "["); i >= 0 {
		line = line[i:]
	}
	level, rest, _ := strings.Cut(line, " ")
	switch level {
	case "[ERR]":
		log.Error(rest)
	case "[WARN]":
		log.Warning(rest)
	case "[INFO]":
		log.Info(rest)
	default:
		log.Debug(line)
	}
	return len(b), nil
}

// logMembers logs each member's change of state once: joined, left,
// failed, back.
func (m *member) logMembers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]gossip.MemberState{}
	}
	for _, mb := range m.node.Members() {
		if mb.Name == m.node.Name() {
			continue
		}
		was, known := m.seen[mb.Name]
		if known && was == mb.State {
			continue
		}
		m.seen[mb.Name] = mb.State
		who := fmt.Sprintf("%s %s (observer %q, %s)", mb.Role, mb.Name, mb.Observer, mb.Addr)
		switch {
		case mb.State == gossip.MemberAlive && !known:
			log.Infof("cluster: %s joined", who)
		case mb.State == gossip.MemberAlive:
			log.Infof("cluster: %s is back (was %s)", who, was)
		case mb.State == gossip.MemberLeft:
			log.Infof("cluster: %s left", who)
		default:
			log.Warningf("cluster: %s is %s", who, mb.State)
		}
	}
}
