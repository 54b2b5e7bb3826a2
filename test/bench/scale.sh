#!/usr/bin/env bash
# Replication at scale: 10,000 targets, 10 agents, 5 servers over real
# memberlist gossip on 127.0.0.51-55 and 127.0.0.71-80. About 2-4 minutes.
# Progress is read with DNS queries (see test/bench/scale/main.go).
#   bash test/bench/scale.sh -targets 50000 -burst 5000     # ~5 minutes
#   bash test/bench/scale.sh -targets 100000 -burst 10000   # ~10 minutes, ~4 GB
#   ... -cpuprofile /tmp/cpu.pb.gz -memprofile /tmp/heap.pb.gz   # dns1: CPU over the burst, heap at steady state
#   ... -convprofile /tmp/conv.pb.gz     # the new server's CPU over its convergence
#   ... -gomemlimit 540MiB               # the servers' Go memory limit, as a 600 MiB container gets
# Times are when a sample of the names answered as wanted (a change of all
# of them lands in one rebuild), then when every name was confirmed. The
# last line has the figures:
#   scale targets=10000 convergence=1.30s(all 1.35s) burst=1000:0.40s(all 0.46s) rss=126MB gossip=0.129Mbit/s
set -euo pipefail
cd "$(dirname "$0")/../.."
exec timeout 2400 go run ./test/bench/scale "$@"
