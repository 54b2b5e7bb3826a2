#!/usr/bin/env bash
# Failover time of a healthdns cluster, 1 s checks with fall 2.
#   bash test/bench/failover.sh            # 3 servers and 2 agents on 127.0.0.41-45:
#                                          # the preferred backend killed ROUNDS times (default 20), about 2 minutes
#   MODE=datacenter bash test/bench/failover.sh
#                                          # 3 servers and 3 agents on 127.0.0.151-156: east's backend, server
#                                          # and two agents killed at once, ROUNDS times (default 10), about 2 minutes
#   ROUNDS=5 bash test/bench/failover.sh
# Prints every round, then p50/p95/max; the last line is the figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${MODE:-backend}
default=20
[ "$mode" = datacenter ] && default=10
exec timeout 1200 go run ./test/bench/failover -mode "$mode" -rounds "${ROUNDS:-$default}"
