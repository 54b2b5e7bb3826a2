#!/usr/bin/env bash
# Replication at scale: 10,000 targets, 10 agents, 5 servers over real
# memberlist gossip on 127.0.0.51-55 and 127.0.0.71-80. About 2-4 minutes.
# The last line is the figure: "scale convergence: 3.1s rss: 120MB".
set -euo pipefail
cd "$(dirname "$0")/../.."
exec timeout 1200 go run ./test/bench/scale "$@"
