package status

import (
	"errors"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  *Document
		want string
	}{
		{"server", fixture(), `node dns1 (server, observer eu-west) at 2026-11-26T02:01:14Z
partition: no since 2026-11-26T01:01:14Z (1h00m ago); hearing 2 of 3 voters (need 2, servers): dns1 self, dns2 dead, w1 witness heard; 2 of 3 observers

MEMBER  ROLE    OBSERVER  STATE  SINCE                             ADDR
agent1  agent   eu-west   alive  2026-11-26T00:01:14Z (2h00m ago)  127.0.0.14:7946
agent2  agent   us-east   dead   2026-11-26T02:00:43Z (31s ago)    127.0.0.15:7946
dns1    server  eu-west   alive  2026-11-26T00:01:14Z (2h00m ago)  127.0.0.11:7946

VIEW OF  LOCATION  STATE  HEARD    UP  DOWN  SYNCED
agent1   eu-west   alive  0s ago   2   2     yes
agent2   us-east   dead   31s ago  2   0     no
dns1     eu-west   alive  0s ago   3   2     yes

app.gslb.example.com. policy=priority quorum=majority ttl=10 fallback=all
answer: standby 198.51.100.10 2001:db8:1::10
TARGET          TIER  WEIGHT  OWNER  VERDICT  SINCE                             agent1     agent2       dns1
192.0.2.10      1     1       -      down     2026-11-26T02:01:02Z (12s ago)    down 0.4s  stale 31.2s  down 0.0s
2001:db8::10    1     1       -      down     2026-11-26T02:01:02Z (12s ago)    down 0.4s  -            down 0.0s
198.51.100.10   2     1       west   up       2026-11-25T22:57:14Z (3h04m ago)  up 0.4s    stale 31.2s  up 0.0s
2001:db8:1::10  2     1       west   up       2026-11-25T22:57:14Z (3h04m ago)  -          -            up 0.0s
error 192.0.2.10 agent1: tcp 127.0.0.1:9001: timeout
error 192.0.2.10 dns1: tcp 127.0.0.1:9001: dial tcp 127.0.0.1:9001: connect: connection refused

www.gslb.example.com. policy=roundrobin quorum=2 ttl=30 fallback=none
answer: none (nothing: NODATA)
TARGET        TIER  WEIGHT  OWNER  VERDICT  SINCE
203.0.113.10  0     1       -      unknown  never
`},
		{"agent", agentFixture(), `node agent1 (agent, observer eu-west) at 2026-11-26T02:01:14Z

MEMBER  ROLE    OBSERVER  STATE  SINCE                             ADDR
agent1  agent   eu-west   alive  2026-11-26T00:01:14Z (2h00m ago)  127.0.0.14:7946
dns1    server  eu-west   alive  2026-11-26T00:01:14Z (2h00m ago)  127.0.0.11:7946

VIEW OF  LOCATION  STATE  HEARD   UP  DOWN  SYNCED
agent1   eu-west   alive  0s ago  1   1     yes

PROBED         STATE    SINCE                             CHECKED  CHECKS                                            ERROR
192.0.2.10     down     2026-11-26T02:01:02Z (12s ago)    0s ago   tcp 127.0.0.1:9001                                tcp 127.0.0.1:9001: dial tcp 127.0.0.1:9001: connect: connection refused
198.51.100.10  up       2026-11-25T23:01:14Z (3h00m ago)  0s ago   http://127.0.0.1:8080/health; tcp 127.0.0.1:8080  -
2001:db8::10   unknown  never                             never    tcp [2001:db8::10]:443                            -
`},
		{"alone", &Document{Node: "self", Role: RoleServer, Time: at, Partition: &Partition{Partitioned: true, Heard: 0, Known: 1}}, `node self (server, observer -) at 2026-11-26T02:01:14Z
partition: YES, keeping the last verdicts; hearing 0 of 1 observers

members: none (no cluster)
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := Table(&b, tc.doc); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestTableWriteError(t *testing.T) {
	if err := Table(failWriter{}, fixture()); err == nil || err.Error() != "disk full" {
		t.Errorf("Table to a failing writer: %v", err)
	}
}
