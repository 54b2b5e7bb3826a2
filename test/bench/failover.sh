#!/usr/bin/env bash
# Failover time of a healthdns cluster: 3 servers and 2 agents on 127.0.0.41-45,
# 1 s checks with fall 2, the preferred backend killed ROUNDS times (default 20).
# Prints every round, then p50/p95/max; the last line is the figure.
#   bash test/bench/failover.sh            # about 2 minutes
#   ROUNDS=5 bash test/bench/failover.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
exec timeout 900 go run ./test/bench/failover -rounds "${ROUNDS:-20}"
