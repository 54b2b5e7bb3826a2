#!/usr/bin/env bash
# Three healthdns servers and two probe agents on one machine (127.0.0.11-15),
# one gossip cluster, one backend you can kill: shows with dig that all three
# servers fail over together, and come back together; then that when east
# dies whole (its backend, dns1 and agent1 at once) dns2 and dns3, two of
# three voters, fail over without it.
#
#   bash test/cluster-demo.sh          # runs the demo and stops everything
#   KEEP=1 bash test/cluster-demo.sh   # leaves the cluster running; Ctrl-C stops it
#
# Needs Go and dig (Debian: bind9-dnsutils). Traffic stays on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dig >/dev/null || { echo "dig is needed: apt-get install bind9-dnsutils" >&2; exit 1; }

dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

echo "building into $dir ..."
go build -o "$dir/healthdns" ./cmd/healthdns
go build -o "$dir/healthdns-agent" ./cmd/healthdns-agent
go build -o "$dir/backend" ./test/backend
head -c 32 /dev/urandom | base64 > "$dir/gossip.key"
mkdir -p "$dir/zones" && cp zones/gslb.example.com.zone "$dir/zones/"

servers=(127.0.0.11 127.0.0.12 127.0.0.13)
agents=(127.0.0.14 127.0.0.15)
join="127.0.0.11:7946 127.0.0.12:7946 127.0.0.13:7946"
for i in 0 1 2; do
	ip=${servers[$i]}
	cat > "$dir/Corefile.dns$((i + 1))" <<CF
gslb.example.com:1053 {
    bind $ip
    bufsize 1232
    errors
    prometheus $ip:9153
    healthdns {
        status $ip:8053
        zonefile zones/gslb.example.com.zone
        interval 1s
        timeout 500ms
        rise 2
        fall 2
        name app {
            policy priority
            ttl 5
            target 192.0.2.10     tier 1 check http://127.0.0.1:9011/
            target 198.51.100.10  tier 2 check http://127.0.0.1:9012/
        }
        cluster {
            name dns$((i + 1))
            observer site-$((i + 1))
            bind $ip:7946
            join $join
            keyfile gossip.key
            label demo
            servers 3
            gossip-interval 200ms
        }
    }
}
CF
done

"$dir/backend" 127.0.0.1:9011 >"$dir/backend-east.log" 2>&1 & east=$!; pids+=("$east")
"$dir/backend" 127.0.0.1:9012 >"$dir/backend-west.log" 2>&1 & pids+=($!)
dns=()
for i in 1 2 3; do
	(cd "$dir" && exec ./healthdns -conf "Corefile.dns$i") >"$dir/dns$i.log" 2>&1 & pids+=($!); dns+=($!)
done
agentpids=()
for i in 0 1; do
	"$dir/healthdns-agent" -name "agent$((i + 1))" -observer "probe-site-$((i + 1))" -bind "${agents[$i]}:7946" \
		-join 127.0.0.11:7946,127.0.0.12:7946 -keyfile "$dir/gossip.key" -label demo \
		-gossip-interval 200ms -status "${agents[$i]}:8054" >"$dir/agent$((i + 1)).log" 2>&1 & pids+=($!); agentpids+=($!)
done

answers() { for ip in "${servers[@]}"; do printf '%s: %s\n' "$ip" "$(dig +norec +time=1 +tries=1 @"$ip" -p 1053 app.gslb.example.com A +short | xargs)"; done; }
all_say() { # all_say ADDRESS: every server answers exactly ADDRESS
	for ip in "${servers[@]}"; do
		[ "$(dig +norec +time=1 +tries=1 @"$ip" -p 1053 app.gslb.example.com A +short)" = "$1" ] || return 1
	done
}
wait_all() { # wait_all ADDRESS: seconds until every server says ADDRESS
	local start now
	start=$(date +%s.%N)
	for _ in $(seq 1 300); do
		if all_say "$1"; then now=$(date +%s.%N); echo "$now - $start" | bc; return 0; fi
		sleep 0.05
	done
	echo "timeout"; return 1
}

echo "waiting for the cluster ..."
wait_all 192.0.2.10 >/dev/null
echo "== every server answers east (tier 1):"; answers
sleep 2
echo "== dns1's view of the cluster (its /metrics):"
curl -s http://127.0.0.11:9153/metrics | grep -E '^coredns_healthdns_(gossip_members|observers|voters_|partitioned)' | grep -v '{state="[a-z]*"} 0$' || true

kill "$east"; wait "$east" 2>/dev/null || true
echo "== killed east's backend; all three servers moved to west after $(wait_all 198.51.100.10)s:"; answers
grep -h "verdict" "$dir"/dns1.log | tail -1

"$dir/backend" 127.0.0.1:9011 >>"$dir/backend-east.log" 2>&1 & east=$!; pids+=("$east")
echo "== why, as dns2 sees it (dig CH TXT):"
dig +norec @127.0.0.12 -p 1053 CH TXT app.gslb.example.com +short
echo "== the same from its status API (healthdns-agent status -url 127.0.0.12:8053):"
"$dir/healthdns-agent" status -url 127.0.0.12:8053 -name app.gslb.example.com

echo "== restarted east's backend; all three servers back on east after $(wait_all 192.0.2.10)s:"; answers
grep -h "verdict" "$dir"/dns1.log | tail -1

sleep 2
kill -9 "$east" "${dns[0]}" "${agentpids[0]}"; wait "$east" "${dns[0]}" "${agentpids[0]}" 2>/dev/null || true
servers=(127.0.0.12 127.0.0.13)
echo "== east died whole (its backend, dns1 and agent1, kill -9); dns2 and dns3 moved to west after $(wait_all 198.51.100.10)s:"; answers
grep -h "verdict" "$dir"/dns2.log | tail -1
curl -s http://127.0.0.12:9153/metrics | grep -E '^coredns_healthdns_(voters_|partitioned)'

if [ -n "${KEEP:-}" ]; then
	echo "cluster running in $dir (dns1, agent1 and east killed): dig @127.0.0.12 -p 1053 app.gslb.example.com; Ctrl-C stops all"
	wait
fi
