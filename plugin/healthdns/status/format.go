package status

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// stamp is a time as every view shows it: RFC 3339 in UTC to the second,
// "-" when unknown.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// ago is how long before now t was, compact and rounded down to the
// second: "12s", "3m04s", "2h05m", "3d04h"; "-" when t is unknown.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return span(now.Sub(t))
}

func span(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	switch {
	case s < 60:
		return strconv.FormatInt(s, 10) + "s"
	case s < 3600:
		return strconv.FormatInt(s/60, 10) + "m" + pad2(s%60) + "s"
	case s < 48*3600:
		return strconv.FormatInt(s/3600, 10) + "h" + pad2(s%3600/60) + "m"
	}
	return strconv.FormatInt(s/86400, 10) + "d" + pad2(s%86400/3600) + "h"
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// seconds is an observation's age: "0.4s", "12.0s".
func seconds(f float64) string {
	return strconv.FormatFloat(max(f, 0), 'f', 1, 64) + "s"
}

// shown is the state an observation is shown with: "stale" when it no
// longer counts, whatever it said.
func (o Observation) shown() string {
	if o.Stale {
		return "stale"
	}
	return orUnknown(o.State)
}

func orUnknown(s string) string {
	if s == "" {
		return StateUnknown
	}
	return s
}

// column is an observer as a column of the matrix.
type column struct {
	Observer, Location string
}

// columns are the observers of a name's matrix: every observer that
// reports on any of its targets, sorted by node name.
func columns(n Name) []column {
	seen := map[string]bool{}
	var cs []column
	for _, t := range n.Targets {
		for _, o := range t.Observations {
			if !seen[o.Observer] {
				seen[o.Observer] = true
				cs = append(cs, column{o.Observer, o.Location})
			}
		}
	}
	slices.SortFunc(cs, func(a, b column) int { return strings.Compare(a.Observer, b.Observer) })
	return cs
}

// observation is what observer says of t, and whether it says anything.
func (t Target) observation(observer string) (Observation, bool) {
	for _, o := range t.Observations {
		if o.Observer == observer {
			return o, true
		}
	}
	return Observation{}, false
}

// answer is a name's answer set, A then AAAA.
func (n Name) answer() []string {
	return append(slices.Clip(n.AnswerA), n.AnswerAAAA...)
}

// answered says whether t's address is in the name's current answer.
func (n Name) answered(t Target) bool {
	return slices.Contains(n.AnswerA, t.Address) || slices.Contains(n.AnswerAAAA, t.Address)
}

// canonical is a name as Document.Names holds it: lower case, final dot.
func canonical(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// now is the moment a document's ages are relative to.
func (d *Document) now() time.Time {
	if d.Time.IsZero() {
		return time.Now()
	}
	return d.Time
}

// standing says in words where a server stands among the voters:
// "hearing 3 of 3 voters (need 2, servers): dns1 self, dns2 heard,
// w1 witness heard; 5 of 5 observers". Documents from before voters were
// reported show the observers alone.
func (p *Partition) standing() string {
	obs := fmt.Sprintf("%d of %d observers", p.Heard, p.Known)
	if p.VotersKnown == 0 {
		return "hearing " + obs
	}
	var vs []string
	for _, v := range p.Voters {
		w := v.Name
		if v.Role == RoleWitness {
			w += " witness"
		}
		vs = append(vs, w+" "+dash(v.State))
	}
	s := fmt.Sprintf("hearing %d of %d voters (need %d, %s)", p.VotersHeard, p.VotersKnown, p.VotersNeeded, dash(p.VotersRule))
	if len(vs) > 0 {
		s += ": " + strings.Join(vs, ", ")
	}
	s += "; " + obs
	if p.Pending > 0 {
		s += fmt.Sprintf("; %d verdict changes wait for a majority", p.Pending)
	}
	return s
}

// recorded labels a verdict's reason with when it was recorded (the
// verdict's since), so that it does not read as what observers say now:
// "at 03:05:55: agent1=down dns1=down by quorum majority". The time is
// UTC, to the second, the date added when it is not the day of now. ""
// stays "".
func recorded(reason string, at, now time.Time) string {
	if reason == "" {
		return ""
	}
	if at.IsZero() {
		return reason
	}
	at, now = at.UTC(), now.UTC()
	when := at.Format("15:04:05")
	if at.Format(time.DateOnly) != now.Format(time.DateOnly) {
		when = at.Format(time.RFC3339)
	}
	return "at " + when + ": " + reason
}

// state is the state a name is shown with: its State, or for a document
// that does not say, its Outcome.
func (n Name) state() string {
	if n.State != "" {
		return n.State
	}
	return n.Outcome
}

// bySeverity returns the names worst first, then by name.
func bySeverity(ns []Name) []Name {
	out := slices.Clone(ns)
	slices.SortStableFunc(out, func(a, b Name) int {
		if c := Severity(a.state()) - Severity(b.state()); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// summary says at a glance what is wrong: "2 targets down, 1 name on
// standby", worst first; "all 3 names healthy" when nothing is. A target
// of several names counts once. worst is the state of the worst name.
func summary(ns []Name) (text, worst string) {
	down := map[string]bool{}
	count := map[string]int{}
	worst = NameHealthy
	for _, n := range ns {
		st := n.state()
		count[st]++
		if Severity(st) < Severity(worst) {
			worst = st
		}
		for _, t := range n.Targets {
			if t.Verdict == StateDown {
				down[t.Address+" "+strings.Join(t.Checks, ";")] = true
			}
		}
	}
	var parts []string
	if len(down) > 0 {
		parts = append(parts, plural(len(down), "target")+" down")
	}
	for _, st := range []struct{ state, words string }{
		{NameNone, "answering nothing (NODATA)"},
		{NameFallback, "on fallback"},
		{NameStandby, "on standby"},
		{NameDegraded, "degraded"},
	} {
		if c := count[st.state]; c > 0 {
			parts = append(parts, plural(c, "name")+" "+st.words)
		}
	}
	switch {
	case len(ns) == 0:
		return "no health-aware names", NameHealthy
	case len(parts) == 0:
		if len(ns) == 1 {
			return "1 name, healthy", NameHealthy
		}
		return fmt.Sprintf("all %d names healthy", len(ns)), NameHealthy
	}
	return strings.Join(parts, ", "), worst
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// maxDraw is the most addresses the weighted policy draws per query.
const maxDraw = 16

// perQuery says how a query's answer differs from the answer set when it
// does not get all of it: "1 of these 2 IPv4 addresses per query, drawn
// by weight". The weighted policy draws max-answers (1 by default) per
// query while it answers healthy targets; the others rotate and give
// max-answers. "" when every query gets the whole set.
func (n Name) perQuery() string {
	var parts []string
	for _, fam := range []struct {
		addrs []string
		what  string
	}{{n.AnswerA, "IPv4"}, {n.AnswerAAAA, "IPv6"}} {
		total := len(fam.addrs)
		k, how := n.MaxAnswers, "rotated"
		if n.Policy == "weighted" && n.Outcome == OutcomeHealthy {
			k, how = min(max(n.MaxAnswers, 1), maxDraw), "drawn by weight"
		}
		if k <= 0 || k >= total {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d of these %d %s addresses", k, total, fam.what))
		if len(parts) == 1 {
			parts[0] += " per query, " + how
		}
	}
	if len(parts) == 2 {
		// "1 of these 2 IPv4 addresses per query, drawn by weight; 1 of these 3 IPv6 addresses"
		return parts[0] + "; " + parts[1]
	}
	return strings.Join(parts, "")
}

// meaning is a name's state in words, for the page: "" when healthy.
func (n Name) meaning() string {
	down := 0
	for _, t := range n.Targets {
		if t.Verdict == StateDown {
			down++
		}
	}
	switch n.state() {
	case NameDegraded:
		return "answering its preferred targets, " + plural(down, "target") + " down"
	case NameStandby:
		return "answering its standby targets: the preferred ones are down"
	case NameFallback:
		return "nothing healthy: answering the fallback (" + dash(n.Fallback) + ")"
	case NameNone:
		return "nothing healthy and no fallback: NODATA"
	}
	return ""
}
