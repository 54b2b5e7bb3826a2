// Package status renders the health state of a healthdns server or agent
// for people and tools: the JSON of the status API, the HTML status page,
// the CHAOS TXT health matrix that dig shows, and the terminal table of
// `healthdns-agent status`.
//
// It decides nothing. The server (or agent) fills a Document with what it
// already decided (verdicts, answers, name states, observations and their
// errors, partition) and this package only formats it (counting and
// ordering for the page's summary at most), so every view says exactly the
// same thing. It
// must not import the packages that decide (health, policy, snapshot,
// gossip): data flows into it, never back out.
//
// The Document is a stable, documented contract: field names and JSON
// keys are listed in README.md and only ever added to.
package status

import "time"

// Roles of a Document and a Member.
const (
	RoleServer  = "server"
	RoleAgent   = "agent"
	RoleWitness = "witness" // an agent that votes
)

// States of a Voter.
const (
	VoterSelf       = "self"       // this server
	VoterHeard      = "heard"      // news arrived within its silence window
	VoterSilent     = "silent"     // no news within its silence window
	VoterDead       = "dead"       // memberlist's failure detector says so
	VoterLeft       = "left"       // it left on purpose
	VoterRemembered = "remembered" // counted from the data directory, no news since the start
)

// States of a verdict, an observation and a catalog entry.
const (
	StateUp      = "up"
	StateDown    = "down"
	StateUnknown = "unknown"
)

// Outcomes of a name's answer.
const (
	OutcomeHealthy  = "healthy"  // answered with healthy targets
	OutcomeFallback = "fallback" // nothing healthy: answered the fallback
	OutcomeNone     = "none"     // nothing healthy and nothing to fall back to: NODATA
)

// States of a name, from best to worst: what an operator looks at first.
// A name answers in the first three; the last two are an outage.
const (
	NameHealthy  = "healthy"  // its preferred targets answer and none is down
	NameDegraded = "degraded" // its preferred targets answer, but targets are down
	NameStandby  = "standby"  // it answers, but not from its preferred targets (a priority failover, only weight-0 targets)
	NameFallback = "fallback" // nothing healthy: the fallback answers
	NameNone     = "none"     // nothing healthy and nothing to fall back to: NODATA
)

// Severity ranks a name state for sorting, worst first: 0 for NameNone,
// 4 for NameHealthy, 5 for anything else (a document that did not say).
func Severity(state string) int {
	switch state {
	case NameNone:
		return 0
	case NameFallback:
		return 1
	case NameStandby:
		return 2
	case NameDegraded:
		return 3
	case NameHealthy:
		return 4
	}
	return 5
}

// Document is everything one node says about its state at one moment.
type Document struct {
	// Node is this node's name in the gossip cluster ("self" for a
	// server without a cluster block).
	Node string `json:"node"`
	// Role is RoleServer or RoleAgent.
	Role string `json:"role"`
	// Observer is this node's location label (the observer name its
	// probes are published under).
	Observer string `json:"observer"`
	// Time is when the document was made. Every age in it (and every
	// "12s ago" a renderer shows) is relative to Time, so a reader on
	// another machine is not misled by clock skew.
	Time time.Time `json:"time"`
	// Cluster is how this node gossips; absent without a cluster.
	Cluster *Cluster `json:"cluster,omitempty"`
	// Partition is the server's partition state; nil (absent) on agents.
	Partition *Partition `json:"partition,omitempty"`
	// Members are the gossip cluster's members as this node knows them,
	// itself included; empty without a cluster.
	Members []Member `json:"members"`
	// Views are the observers' views this node holds (its own included),
	// sorted by node: who it hears, and how much.
	Views []View `json:"views"`
	// Names are the health-aware names this server answers, sorted by
	// name; empty on agents.
	Names []Name `json:"names"`
	// Owners are the owners (clusters) that wrote records through the
	// webhook, sorted by name; empty without a webhook.
	Owners []Owner `json:"owners"`
	// Store is the record store of a server with a data directory: where,
	// and why it is not open if it is not (the records served then are
	// those peers sent, and the webhook answers 503).
	Store *Store `json:"store,omitempty"`
	// Catalog is the targets this node probes itself, with its own state
	// for each (before any quorum): what an agent does. A server that
	// probes may fill it too.
	Catalog []CatalogEntry `json:"catalog"`
	// Build is which healthdns this node runs; absent if the node did
	// not say.
	Build *Build `json:"build,omitempty"`
	// Overrides are the operators' overrides this server holds (drain,
	// forced down or up), in force or not, by selector; empty on agents.
	Overrides []Override `json:"overrides"`
}

// States of an Override.
const (
	OverrideDrain = "drain" // answered only when no other target may be
	OverrideDown  = "down"  // treated as down whatever the probes say
	OverrideUp    = "up"    // treated as up whatever the probes say
	OverrideNone  = "none"  // cleared
)

// Override is an operator's override of verdicts, set through a server's
// control API (healthdns-agent drain) and replicated to every server.
type Override struct {
	// Selector is the targets it applies to, canonical: comma-separated
	// addr=GLOB, name=GLOB, owner=NAME, region=NAME terms.
	Selector string `json:"selector"`
	// State is OverrideDrain, OverrideDown, OverrideUp or OverrideNone.
	State string `json:"state"`
	// Reason is why, as the operator said it.
	Reason string `json:"reason,omitempty"`
	// Who set it, as the operator said it.
	Who string `json:"who,omitempty"`
	// Node is the server whose control API took it.
	Node string `json:"node"`
	// Set is when it was set (its version: the newest wins).
	Set time.Time `json:"set"`
	// Until is when it ends by itself (absent: never).
	Until time.Time `json:"until,omitzero"`
	// Active is true while it is in force.
	Active bool `json:"active"`
}

// Cluster is how a node gossips.
type Cluster struct {
	// Insecure is true when the operator turned the gossip key off
	// (Corefile insecure, agent -insecure): gossip is in the clear and
	// anyone who reaches the gossip port can change state.
	Insecure bool `json:"insecure"`
	// Label is the cluster label; nodes with another one are refused.
	Label string `json:"label"`
}

// Build is a node's build information, as its -version prints it.
type Build struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	CoreDNS string `json:"coredns"`
	Go      string `json:"go"`
}

// Partition says whether a server may act: whether it hears a majority
// of the cluster's voters (servers and witnesses).
type Partition struct {
	// Partitioned is true while the server hears fewer voters than
	// VotersNeeded and keeps its last verdicts.
	Partitioned bool `json:"partitioned"`
	// Heard is how many observers are alive and not silent (this
	// server's own probes included). It does not decide the partition.
	Heard int `json:"heard"`
	// Known is how many observers the server knows that did not leave on
	// purpose.
	Known int `json:"known"`
	// Since is when Partitioned last changed (absent if never).
	Since time.Time `json:"since,omitzero"`
	// VotersHeard is how many voters the server hears now, itself
	// included.
	VotersHeard int `json:"voters_heard"`
	// VotersKnown is how many voters the cluster has as the server
	// counts them (see VotersRule).
	VotersKnown int `json:"voters_known"`
	// VotersNeeded is a majority of VotersKnown: the server acts while
	// VotersHeard reaches it.
	VotersNeeded int `json:"voters_needed"`
	// VotersRule says where VotersKnown comes from: "servers" (the
	// Corefile's servers option), "remembered" (the voters heard within
	// forget-after) or "alone" (no cluster).
	VotersRule string `json:"voters_rule"`
	// Voters are the voters the server counts, itself first, then by
	// name; the witness is among them with role "witness".
	Voters []Voter `json:"voters"`
	// Pending is how many verdict changes wait until a majority of voters
	// is heard after them.
	Pending int `json:"pending"`
}

// Voter is one voter (a server or a witness) as a server counts it.
type Voter struct {
	// Name is its node name.
	Name string `json:"name"`
	// Role is RoleServer or RoleWitness.
	Role string `json:"role"`
	// State is VoterSelf, VoterHeard, VoterSilent, VoterDead, VoterLeft
	// or VoterRemembered.
	State string `json:"state"`
	// LastHeard is when news of it last arrived (absent if never).
	LastHeard time.Time `json:"last_heard,omitzero"`
}

// Member is one node of the gossip cluster.
type Member struct {
	// Name is the node's name, unique in the cluster.
	Name string `json:"name"`
	// Addr is its gossip address, host:port.
	Addr string `json:"addr"`
	// Role is RoleServer or RoleAgent.
	Role string `json:"role"`
	// Observer is its location label.
	Observer string `json:"observer"`
	// State is its liveness: "alive", "suspect", "dead", "left" or
	// "unknown".
	State string `json:"state"`
	// Since is when this node saw it join, leave or die (absent if
	// unknown).
	Since time.Time `json:"since,omitzero"`
}

// View is one observer's view as this node holds it: how fresh it is and
// how many targets it reports up and down. It tells whether this node
// hears an observer, whatever names the targets belong to.
type View struct {
	// Node is the observer's node name.
	Node string `json:"node"`
	// Location is its location label.
	Location string `json:"location"`
	// Role is RoleServer or RoleAgent.
	Role string `json:"role"`
	// State is its member state, as in Member.
	State string `json:"state"`
	// LastHeard is when news of it (an update or a heartbeat) last
	// arrived (absent if never).
	LastHeard time.Time `json:"last_heard,omitzero"`
	// Synced is false while this node knows it missed some of the
	// observer's changes, until the next full sync repairs it.
	Synced bool `json:"synced"`
	// Up is how many targets it reports up.
	Up int `json:"up"`
	// Down is how many targets it reports down.
	Down int `json:"down"`
}

// Name is one health-aware name and what it answers now.
type Name struct {
	// Name is the fully qualified name, lower case with the final dot:
	// "app.gslb.example.com.".
	Name string `json:"name"`
	// Policy is "roundrobin", "weighted" or "priority".
	Policy string `json:"policy"`
	// Quorum is the rule that combines observers: "any", "majority",
	// "all" or a count such as "2".
	Quorum string `json:"quorum"`
	// TTL is the TTL of the name's answers, in seconds.
	TTL uint32 `json:"ttl"`
	// Fallback is what answers when nothing is healthy: "all",
	// "last-good", "none", or the fixed addresses separated by spaces.
	Fallback string `json:"fallback"`
	// MinHealthy is the priority policy's min-healthy (absent if 0).
	MinHealthy int `json:"min_healthy,omitempty"`
	// MaxAnswers is the name's max-answers (absent if 0: no limit).
	MaxAnswers int `json:"max_answers,omitempty"`
	// AnswerA is the IPv4 addresses an A query gets now, in answer
	// order (rotation aside).
	AnswerA []string `json:"answer_a"`
	// AnswerAAAA is the IPv6 addresses an AAAA query gets now.
	AnswerAAAA []string `json:"answer_aaaa"`
	// Outcome is where the answer comes from: OutcomeHealthy,
	// OutcomeFallback or OutcomeNone. With both families, the worse of
	// the two (none is worse than fallback, fallback than healthy).
	Outcome string `json:"outcome"`
	// State is how the answer stands against the one the name gives with
	// every target up: NameHealthy, NameDegraded, NameStandby,
	// NameFallback or NameNone (see their comments). Outcome says where
	// the answer comes from; State also says whether targets are down or
	// the preferred ones are not answering.
	State string `json:"state"`
	// Targets are the name's targets from every source (Corefile and
	// webhook owners), in configuration order.
	Targets []Target `json:"targets"`
}

// Target is one address of a name, its verdict and what each observer
// sees of it.
type Target struct {
	// ID is the target's gossip ID, 16 hex digits (absent if the server
	// has none), the key that ties it to agents' catalogs.
	ID string `json:"id,omitempty"`
	// Address is the IPv4 or IPv6 address answered.
	Address string `json:"address"`
	// Owner is the webhook owner (cluster) that wrote it, "" for a
	// Corefile target.
	Owner string `json:"owner"`
	// Tier is its priority tier (lower is preferred).
	Tier int `json:"tier"`
	// Weight is its weight for the weighted policy.
	Weight int `json:"weight"`
	// Region is its region for the geo policy (absent if none).
	Region string `json:"region,omitempty"`
	// Checks are its health checks in canonical form, e.g.
	// "tcp 192.0.2.10:443", "http://192.0.2.10/healthz status 200,204" or
	// "grpc 192.0.2.10:50051 service app.v1.Orders tls".
	Checks []string `json:"checks"`
	// Verdict is the server's verdict: StateUp, StateDown or
	// StateUnknown.
	Verdict string `json:"verdict"`
	// Since is when the verdict last changed (absent if never decided).
	Since time.Time `json:"since,omitzero"`
	// Reason says which observers said what and the rule that decided,
	// e.g. "agent1=down dns1=up dns2=down by quorum majority".
	Reason string `json:"reason"`
	// Pending is the verdict the evidence wants that waits until a
	// majority of voters is heard after PendingSince (absent if none).
	Pending string `json:"pending,omitempty"`
	// PendingSince is when Pending was first wanted.
	PendingSince time.Time `json:"pending_since,omitzero"`
	// Observations are each observer's view of the target, sorted by
	// observer.
	Observations []Observation `json:"observations"`
	// History is the target's recent verdict changes, oldest first; the
	// server bounds its length.
	History []Change `json:"history"`
	// Override is the operator's override in force for the target
	// (absent if none): the newest of those whose selector picks it.
	// Verdict stays what the probes say; the answers follow Override.
	Override *Override `json:"override,omitempty"`
}

// Observation is what one observer says of one target.
type Observation struct {
	// Observer is the observer's node name ("self" for a server without
	// a cluster).
	Observer string `json:"observer"`
	// Location is the observer's location label.
	Location string `json:"location"`
	// State is what it says: StateUp, StateDown or StateUnknown.
	State string `json:"state"`
	// LastHeard is when news of the observer last arrived (absent if
	// never).
	LastHeard time.Time `json:"last_heard,omitzero"`
	// AgeSeconds is Document.Time minus LastHeard, in seconds.
	AgeSeconds float64 `json:"age_seconds"`
	// Stale is true when the observation no longer counts (the observer
	// is gone or silent, or its view is older than the target's check
	// timing allows): it counts as unknown whatever State says.
	Stale bool `json:"stale"`
	// Error is why the observer's probe fails: the failing check and its
	// error, e.g. "http://192.0.2.10/healthz: status 503". This server's
	// own probes give it in full whenever the last check failed; other
	// observers send it (at most 120 bytes) for the targets they report
	// down. "" otherwise.
	Error string `json:"error"`
}

// Change is one verdict change of a target.
type Change struct {
	// Time is when the verdict changed.
	Time time.Time `json:"time"`
	// From is the verdict before.
	From string `json:"from"`
	// To is the verdict after.
	To string `json:"to"`
	// Reason is the Target.Reason of the new verdict; for an override,
	// the operator's reason.
	Reason string `json:"reason"`
	// Kind is "" for a verdict change and "override" for a change of the
	// override in force, whose From and To are override states
	// (OverrideNone when there is none).
	Kind string `json:"kind,omitempty"`
	// Who and Until are those of the override (absent otherwise).
	Who   string    `json:"who,omitempty"`
	Until time.Time `json:"until,omitzero"`
	// Selector is the override's selector.
	Selector string `json:"selector,omitempty"`
}

// Owner is one webhook owner (an ExternalDNS instance, usually a cluster).
type Owner struct {
	// Name is the owner ID.
	Name string `json:"name"`
	// Records is how many records it owns.
	Records int `json:"records"`
}

// Store is a server's record store.
type Store struct {
	// Dir is the data directory.
	Dir string `json:"dir"`
	// Error says why the store is not open ("" when it is): a damaged
	// data directory (with the file, offset and how to recover), a full
	// disk. The server tries again until it opens.
	Error string `json:"error,omitempty"`
}

// CatalogEntry is one target this node probes, with its own state.
type CatalogEntry struct {
	// ID is the target's gossip ID, 16 hex digits.
	ID string `json:"id"`
	// Address is the target's address.
	Address string `json:"address"`
	// Checks are its checks in canonical form.
	Checks []string `json:"checks"`
	// Interval is the check interval as a Go duration, e.g. "1s".
	Interval string `json:"interval"`
	// State is this node's own state of it after rise/fall: StateUp,
	// StateDown or StateUnknown.
	State string `json:"state"`
	// Since is when State last changed (absent if never probed).
	Since time.Time `json:"since,omitzero"`
	// Checked is when the last probe round finished (absent if none).
	Checked time.Time `json:"checked,omitzero"`
	// Error is why the last failing check failed ("" when passing).
	Error string `json:"error"`
}
