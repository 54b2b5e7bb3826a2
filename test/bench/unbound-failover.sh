#!/usr/bin/env bash
# Failover time as a client of a caching resolver sees it: two healthdns
# servers (1 s checks, fall 2, TTL 5) behind unbound on 127.0.0.241-249, the
# east backend killed ROUNDS times (default 10). Prints every round, then
# p50/p95/max; needs unbound (apt-get install unbound).
#   bash test/bench/unbound-failover.sh       # about 3 minutes
#   ROUNDS=20 bash test/bench/unbound-failover.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
HEALTHDNS_UNBOUND_ROUNDS="${ROUNDS:-10}" timeout 1200 \
	go test -count=1 -timeout 20m -run '^TestUnboundFailover$' -v ./test/ |
	grep -E 'round [0-9]+:|over [0-9]+ rounds|SKIP|FAIL|^ok'
