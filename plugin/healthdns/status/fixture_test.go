package status

import "time"

// at is a fixed moment for the fixture: the document's time.
var at = time.Date(2026, 11, 26, 2, 1, 14, 0, time.UTC)

func before(d time.Duration) time.Time { return at.Add(-d) }

// fixture is a server's document: app has failed over from east (tier 1,
// seen down by agent1) to west (tier 2, a webhook target of owner west);
// agent2 has gone silent; www has nothing healthy and falls back to none.
func fixture() *Document {
	return &Document{
		Node: "dns1", Role: RoleServer, Observer: "eu-west", Time: at,
		Partition: &Partition{
			Heard: 2, Known: 3, Since: before(time.Hour),
			VotersHeard: 2, VotersKnown: 3, VotersNeeded: 2, VotersRule: "servers",
			Voters: []Voter{
				{Name: "dns1", Role: RoleServer, State: VoterSelf, LastHeard: at},
				{Name: "dns2", Role: RoleServer, State: VoterDead, LastHeard: before(31 * time.Second)},
				{Name: "w1", Role: RoleWitness, State: VoterHeard, LastHeard: before(300 * time.Millisecond)},
			},
		},
		Members: []Member{
			{Name: "agent1", Addr: "127.0.0.14:7946", Role: RoleAgent, Observer: "eu-west", State: "alive", Since: before(2 * time.Hour)},
			{Name: "agent2", Addr: "127.0.0.15:7946", Role: RoleAgent, Observer: "us-east", State: "dead", Since: before(31 * time.Second)},
			{Name: "dns1", Addr: "127.0.0.11:7946", Role: RoleServer, Observer: "eu-west", State: "alive", Since: before(2 * time.Hour)},
		},
		Views: []View{
			{Node: "agent1", Location: "eu-west", Role: RoleAgent, State: "alive", LastHeard: before(400 * time.Millisecond), Synced: true, Up: 2, Down: 2},
			{Node: "agent2", Location: "us-east", Role: RoleAgent, State: "dead", LastHeard: before(31200 * time.Millisecond), Synced: false, Up: 2},
			{Node: "dns1", Location: "eu-west", Role: RoleServer, State: "alive", LastHeard: at, Synced: true, Up: 3, Down: 2},
		},
		Names: []Name{
			{
				Name: "app.gslb.example.com.", Policy: "priority", Quorum: "majority", TTL: 10, Fallback: "all", MinHealthy: 1,
				AnswerA: []string{"198.51.100.10"}, AnswerAAAA: []string{"2001:db8:1::10"}, Outcome: OutcomeHealthy, State: NameStandby,
				Targets: []Target{
					{
						ID: "0123456789abcdef", Address: "192.0.2.10", Tier: 1, Weight: 1, Checks: []string{"tcp 127.0.0.1:9001"},
						Verdict: StateDown, Since: before(12 * time.Second), Reason: "agent1=down agent2=stale dns1=down by quorum majority",
						Observations: []Observation{
							{Observer: "agent1", Location: "eu-west", State: StateDown, LastHeard: before(400 * time.Millisecond), AgeSeconds: 0.4, Error: "tcp 127.0.0.1:9001: timeout"},
							{Observer: "agent2", Location: "us-east", State: StateUp, LastHeard: before(31200 * time.Millisecond), AgeSeconds: 31.2, Stale: true},
							{Observer: "dns1", Location: "eu-west", State: StateDown, LastHeard: at, Error: "tcp 127.0.0.1:9001: dial tcp 127.0.0.1:9001: connect: connection refused"},
						},
						History: []Change{
							{Time: before(10 * time.Minute), From: StateUnknown, To: StateUp, Reason: "agent1=up agent2=up dns1=up by quorum majority"},
							{Time: before(12 * time.Second), From: StateUp, To: StateDown, Reason: "agent1=down agent2=stale dns1=down by quorum majority"},
						},
					},
					{
						Address: "2001:db8::10", Tier: 1, Weight: 1, Checks: []string{"tcp 127.0.0.1:9001"},
						Verdict: StateDown, Since: before(12 * time.Second), Reason: "agent1=down dns1=down by quorum majority",
						Observations: []Observation{
							{Observer: "agent1", Location: "eu-west", State: StateDown, LastHeard: before(400 * time.Millisecond), AgeSeconds: 0.4},
							{Observer: "dns1", Location: "eu-west", State: StateDown, LastHeard: at},
						},
					},
					{
						Address: "198.51.100.10", Owner: "west", Tier: 2, Weight: 1, Checks: []string{"http://127.0.0.1:8080/health"},
						Verdict: StateUp, Since: before(3*time.Hour + 4*time.Minute), Reason: "agent1=up agent2=stale dns1=up by quorum majority",
						Observations: []Observation{
							{Observer: "agent1", Location: "eu-west", State: StateUp, LastHeard: before(400 * time.Millisecond), AgeSeconds: 0.4},
							{Observer: "agent2", Location: "us-east", State: StateUp, LastHeard: before(31200 * time.Millisecond), AgeSeconds: 31.2, Stale: true},
							{Observer: "dns1", Location: "eu-west", State: StateUp, LastHeard: at},
						},
					},
					{
						Address: "2001:db8:1::10", Owner: "west", Tier: 2, Weight: 1, Checks: []string{"http://127.0.0.1:8080/health"},
						Verdict: StateUp, Since: before(3*time.Hour + 4*time.Minute),
						Observations: []Observation{
							{Observer: "dns1", Location: "eu-west", State: StateUp, LastHeard: at},
						},
					},
				},
			},
			{
				Name: "www.gslb.example.com.", Policy: "roundrobin", Quorum: "2", TTL: 30, Fallback: "none", Outcome: OutcomeNone, State: NameNone,
				Targets: []Target{{Address: "203.0.113.10", Weight: 1, Checks: []string{"tcp 203.0.113.10:443"}, Verdict: StateUnknown}},
			},
		},
		Owners: []Owner{{Name: "west", Records: 2}},
	}
}

// agentFixture is an agent's document: no names, its own catalog.
func agentFixture() *Document {
	return &Document{
		Node: "agent1", Role: RoleAgent, Observer: "eu-west", Time: at,
		Members: []Member{
			{Name: "agent1", Addr: "127.0.0.14:7946", Role: RoleAgent, Observer: "eu-west", State: "alive", Since: before(2 * time.Hour)},
			{Name: "dns1", Addr: "127.0.0.11:7946", Role: RoleServer, Observer: "eu-west", State: "alive", Since: before(2 * time.Hour)},
		},
		Views: []View{
			{Node: "agent1", Location: "eu-west", Role: RoleAgent, State: "alive", LastHeard: at, Synced: true, Up: 1, Down: 1},
		},
		Catalog: []CatalogEntry{
			{ID: "0123456789abcdef", Address: "192.0.2.10", Checks: []string{"tcp 127.0.0.1:9001"}, Interval: "1s", State: StateDown,
				Since: before(12 * time.Second), Checked: before(300 * time.Millisecond), Error: "tcp 127.0.0.1:9001: dial tcp 127.0.0.1:9001: connect: connection refused"},
			{ID: "fedcba9876543210", Address: "198.51.100.10", Checks: []string{"http://127.0.0.1:8080/health", "tcp 127.0.0.1:8080"}, Interval: "1s", State: StateUp,
				Since: before(3 * time.Hour), Checked: before(700 * time.Millisecond)},
			{ID: "00000000000000ff", Address: "2001:db8::10", Checks: []string{"tcp [2001:db8::10]:443"}, Interval: "5s"},
		},
	}
}
