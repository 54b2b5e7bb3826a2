package status

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestMatrixTXT(t *testing.T) {
	d := fixture()
	got := MatrixTXT(d.Names[0], d.Partition, d.Time)
	want := []string{
		"app.gslb.example.com. policy=priority quorum=majority ttl=10 fallback=all outcome=healthy state=standby answer=198.51.100.10,2001:db8:1::10",
		"voters partitioned=no heard=2 known=3 need=2 rule=servers pending=0 dns1=self dns2=dead witness:w1=heard",
		"target 192.0.2.10 tier=1 weight=1 owner=- verdict=down since=2026-11-26T02:01:02Z (12s)",
		// the reason as recorded then, labelled so
		"192.0.2.10 reason at 02:01:02: agent1=down agent2=stale dns1=down by quorum majority",
		"192.0.2.10 observer=agent1 location=eu-west state=down age=0.4s error=tcp 127.0.0.1:9001: timeout",
		"192.0.2.10 observer=agent2 location=us-east state=stale age=31.2s",
		"192.0.2.10 observer=dns1 location=eu-west state=down age=0.0s error=tcp 127.0.0.1:9001: dial tcp 127.0.0.1:9001: connect: connection refused",
		"target 2001:db8::10 tier=1 weight=1 owner=- verdict=down since=2026-11-26T02:01:02Z (12s)",
		"2001:db8::10 reason at 02:01:02: agent1=down dns1=down by quorum majority",
		"2001:db8::10 observer=agent1 location=eu-west state=down age=0.4s",
		"2001:db8::10 observer=dns1 location=eu-west state=down age=0.0s",
		"target 198.51.100.10 tier=2 weight=1 owner=west verdict=up since=2026-11-25T22:57:14Z (3h04m)",
		// recorded on another day: the date too
		"198.51.100.10 reason at 2026-11-25T22:57:14Z: agent1=up agent2=stale dns1=up by quorum majority",
		"198.51.100.10 observer=agent1 location=eu-west state=up age=0.4s",
		"198.51.100.10 observer=agent2 location=us-east state=stale age=31.2s",
		"198.51.100.10 observer=dns1 location=eu-west state=up age=0.0s",
		"target 2001:db8:1::10 tier=2 weight=1 owner=west verdict=up since=2026-11-25T22:57:14Z (3h04m)",
		"2001:db8:1::10 observer=dns1 location=eu-west state=up age=0.0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("matrix:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	got = MatrixTXT(d.Names[1], nil, d.Time)
	want = []string{
		"www.gslb.example.com. policy=roundrobin quorum=2 ttl=30 fallback=none outcome=none state=none answer=-",
		"target 203.0.113.10 tier=0 weight=1 owner=- verdict=unknown since=-",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("matrix:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Cut off with a change waiting: the voters string and the target
	// say so.
	part := *d.Partition
	part.Partitioned, part.VotersHeard, part.Pending = true, 1, 1
	part.Voters = []Voter{part.Voters[0], part.Voters[1], {Name: "w1", Role: RoleWitness, State: VoterSilent}}
	n := d.Names[0]
	n.Targets = []Target{n.Targets[2]}
	n.Targets[0].Pending, n.Targets[0].Observations = StateDown, nil
	got = MatrixTXT(n, &part, d.Time)
	want = []string{
		"app.gslb.example.com. policy=priority quorum=majority ttl=10 fallback=all outcome=healthy state=standby answer=198.51.100.10,2001:db8:1::10",
		"voters partitioned=yes heard=1 known=3 need=2 rule=servers pending=1 dns1=self dns2=dead witness:w1=silent",
		"target 198.51.100.10 tier=2 weight=1 owner=west verdict=up pending=down since=2026-11-25T22:57:14Z (3h04m)",
		"198.51.100.10 reason at 2026-11-25T22:57:14Z: agent1=up agent2=stale dns1=up by quorum majority",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("matrix:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMatrixTXTLimits feeds values that cannot fit in one TXT string: every
// string stays within 255 bytes, the answer continues in answer+= strings
// and loses no address, and values stay one word.
func TestMatrixTXTLimits(t *testing.T) {
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".gslb.example.com."
	n := Name{
		Name: long, Policy: "roundrobin", Quorum: "majority", TTL: 30, Fallback: "192.0.2.1 192.0.2.2", Outcome: OutcomeFallback,
	}
	for i := range 20 {
		n.AnswerAAAA = append(n.AnswerAAAA, "2001:db8:ffff:ffff:ffff:ffff:ffff:"+strings.Repeat("f", 3)+string(rune('a'+i)))
	}
	n.Targets = []Target{{
		Address: "2001:db8::1", Owner: "cluster with spaces " + strings.Repeat("é", 200), Verdict: StateUp, Since: at,
		Observations: []Observation{{Observer: strings.Repeat("o", 300), Location: "eu west", State: StateUp, AgeSeconds: 1.25, LastHeard: at}},
	}}
	lines := MatrixTXT(n, nil, at)
	var answered []string
	for _, l := range lines {
		if len(l) > MaxTXT {
			t.Errorf("%d bytes: %q", len(l), l)
		}
		if !utf8.ValidString(l) {
			t.Errorf("cut inside a character: %q", l)
		}
		for _, p := range []string{"answer=", "answer+="} {
			if i := strings.Index(l, p); i >= 0 && (i == 0 || l[i-1] == ' ') {
				if rest := l[i+len(p):]; rest != "" {
					answered = append(answered, strings.Split(rest, ",")...)
				}
			}
		}
	}
	if strings.Join(answered, ",") != strings.Join(n.AnswerAAAA, ",") {
		t.Errorf("answer over several strings: got %q, want %q", answered, n.AnswerAAAA)
	}
	if !strings.HasPrefix(lines[0], long+" policy=roundrobin quorum=majority ttl=30") || !strings.HasPrefix(lines[1], "fallback=192.0.2.1,192.0.2.2 outcome=fallback answer=2001:db8:") {
		t.Errorf("summary: %q", lines[:2])
	}
	if !strings.Contains(strings.Join(lines, "\n"), "owner=cluster_with_spaces_é") {
		t.Errorf("owner is not one word:\n%s", strings.Join(lines, "\n"))
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "2001:db8::1 observer=ooo") || !strings.HasSuffix(last, "...") {
		t.Errorf("observer line: %q", last)
	}
}

func TestSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                  "0s",
		400 * time.Millisecond:        "0s",
		12 * time.Second:              "12s",
		3*time.Minute + 4*time.Second: "3m04s",
		2*time.Hour + 5*time.Minute:   "2h05m",
		50 * time.Hour:                "2d02h",
	} {
		if got := span(d); got != want {
			t.Errorf("span(%v) = %q, want %q", d, got, want)
		}
	}
}
