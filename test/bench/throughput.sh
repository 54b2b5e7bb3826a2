#!/usr/bin/env bash
# Throughput benchmark: the same 1,000-name zone served by one healthdns binary
# (CoreDNS v1.15.0 build) several ways, measured with dnsperf over UDP on loopback.
#
#   file            CoreDNS's file plugin, 1,000 names with one A and one AAAA each
#   healthdns       the same names as health-aware names (one IPv4 + one IPv6
#                   target each, all healthy; the zone file has SOA/NS/glue only)
#   healthdns+cache cache 30 in front of healthdns
#   whoami          CoreDNS's whoami plugin (the ceiling of any plugin)
#   ecs             the names of geo and sticky below with policy roundrobin and
#                   max-answers 1, asked with an EDNS Client Subnet option
#                   (10.1.2.0/24): the baseline of geo and sticky
#   geo             the names with policy geo, two IPv4 and two IPv6 targets in two
#                   regions each (topology 10.0.0.0/8 eu, 192.168.0.0/16 us), asked
#                   with ECS 10.1.2.0/24: eu's target answers, scope echoed
#   sticky          the names with policy sticky over the same targets, asked with
#                   ECS: one of each name's targets by rendezvous hashing
#
# Usage (from the repository root):
#   bash test/bench/throughput.sh
#
# Environment (defaults in brackets):
#   ROUNDS [3]          rounds; every round measures every configuration once,
#                       the starting configuration rotates from round to round
#   DURATION [10]       seconds of each measured dnsperf run (dnsperf -l)
#   WARMUP [2]          seconds of an unmeasured dnsperf run per server at start
#   CLIENTS [10]        dnsperf -c
#   OUTSTANDING [200]   dnsperf -q
#   SERVER_CPU [0]      CPU the servers are pinned to (taskset -c)
#   PERF_CPU [1]        CPU dnsperf is pinned to
#   BASE_PORT [15300]   servers listen on BASE_PORT+1..+7 (UDP/TCP), their health
#                       endpoints on BASE_PORT+11..+17
#   BIND [127.0.0.1]    the loopback address servers listen on and dnsperf asks
#   CONFIGS [all]       the configurations to measure, e.g. "healthdns ecs geo sticky"
#   PROFILE [auto]      1: after the rounds, take a CPU profile of healthdns under
#                       load (pprof plugin) and print go tool pprof -top;
#                       0: never; auto: only if a target below is missed
#   PROFILE_SECONDS [10] length of the profile
#   PPROF_ADDR [127.0.0.1:BASE_PORT+20]  the pprof plugin's address when profiling
#   PROFILE_OUT []      also copy the CPU profile to this file
#   PROFILE_TOP [30]    entries of the flat profile to print
#   NICE [0]            run servers and dnsperf under nice -n NICE (e.g. -10 as root, to
#                       win the CPUs from other work on a shared machine)
#   QUIET_MAX [5]       a run during which other processes use >= QUIET_MAX% of a CPU is
#                       disturbed: it is done again once (after waiting for quiet)
#   QUIET_BUDGET [60]   seconds in all the script may spend waiting for quiet and
#                       redoing disturbed runs (keeps the whole run bounded)
#   KEEP_TMP [0]        1: keep the temporary directory (Corefiles, zones, logs)
#
# Progress, per-run figures and the profile go to stderr; the summary table and
# the ratios to stdout. The last line is "healthdns/file QPS ratio: X.XX".
# Figures are medians over the runs that other processes on the machine did not
# disturb (see QUIET_MAX); "server us/q" (the server's CPU time per answer) is
# the figure least affected by a busy machine.
# Targets: healthdns/file >= 1.3, healthdns/whoami >= 0.85, geo/ecs and sticky/ecs
# >= 0.95 (reported, not enforced).
# The script fails (exit 1) if a configuration answers wrongly or if NOERROR +
# NXDOMAIN are not ~100% of the responses of a run.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CLIENTS=${CLIENTS:-10}
OUTSTANDING=${OUTSTANDING:-200}
SERVER_CPU=${SERVER_CPU:-0}
PERF_CPU=${PERF_CPU:-1}
BASE_PORT=${BASE_PORT:-15300}
PROFILE=${PROFILE:-auto}
PROFILE_SECONDS=${PROFILE_SECONDS:-10}
BIND=${BIND:-127.0.0.1}
PPROF_ADDR=${PPROF_ADDR:-$BIND:$((BASE_PORT + 20))}
NICE=${NICE:-0}
QUIET_MAX=${QUIET_MAX:-5}
QUIET_BUDGET=${QUIET_BUDGET:-60}
KEEP_TMP=${KEEP_TMP:-0}

NAMES=1000
NX=30           # nonexistent names, each queried A and AAAA: 60 of 2,060 queries (2.9%)
ZONE=bench.test.
TTL=30

ALL_CONFIGS=(file healthdns healthdns+cache whoami ecs geo sticky)
read -r -a CONFIGS <<<"${CONFIGS:-${ALL_CONFIGS[*]}}"
for c in "${CONFIGS[@]}"; do
	[[ " ${ALL_CONFIGS[*]} " == *" $c "* ]] || { printf 'throughput.sh: CONFIGS: unknown configuration %s\n' "$c" >&2; exit 1; }
done
has() { [[ " ${CONFIGS[*]} " == *" $1 "* ]]; }
# ECS 10.1.2.0/24 (RFC 7871: family 1, source /24, scope 0, 3 address octets)
# as dnsperf's -E CODE:HEX and dig's +subnet
ECS_DNSPERF=8:000118000a0102
ECS_DIG=+subnet=10.1.2.0/24

log() { printf '%s\n' "$*" >&2; }
die() { log "throughput.sh: $*"; exit 1; }

for v in ROUNDS DURATION WARMUP CLIENTS OUTSTANDING BASE_PORT PROFILE_SECONDS; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v=${!v}: want a positive whole number"
done
for v in SERVER_CPU PERF_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v}: want a CPU number"
done
[[ $QUIET_BUDGET =~ ^[0-9]+$ ]] || die "QUIET_BUDGET=$QUIET_BUDGET: want a whole number of seconds"
[[ $QUIET_MAX =~ ^[0-9]+$ ]] || die "QUIET_MAX=$QUIET_MAX: want a whole number (% of a CPU)"
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE=$NICE: want a niceness like -10"

# --- tools -------------------------------------------------------------------

as_root() {
	if [[ $(id -u) -eq 0 ]]; then "$@"
	elif command -v sudo >/dev/null; then sudo "$@"
	else die "need root to run: $*"
	fi
}

missing=()
command -v dnsperf >/dev/null || missing+=(dnsperf)
command -v dig >/dev/null || missing+=(bind9-dnsutils)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
	log "installing ${missing[*]} ..."
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
command -v go >/dev/null || die "go is not installed (see README.md: Go 1.26)"
[[ -f go.mod ]] && grep -q '^module github.com/healthdns/healthdns$' go.mod ||
	die "run from the repository root: bash test/bench/throughput.sh"

ncpu=$(nproc)
if ((ncpu < 2)) || ((SERVER_CPU >= ncpu)) || ((PERF_CPU >= ncpu)); then
	log "warning: $ncpu CPU(s): cannot pin servers to CPU $SERVER_CPU and dnsperf to CPU $PERF_CPU; not pinning"
	pin_server=()
	pin_perf=()
else
	pin_server=(taskset -c "$SERVER_CPU")
	pin_perf=(taskset -c "$PERF_CPU")
fi

NICE_CMD=()
if [[ $NICE != 0 ]]; then
	NICE_CMD=(nice -n "$NICE")
fi

# --- temp dir, cleanup ----------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/healthdns-bench.XXXXXX")
declare -A PID=()
cleanup() {
	local p
	for p in "${PID[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PID[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [[ $KEEP_TMP == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build ----------------------------------------------------------------------

log "building ./cmd/healthdns ..."
go build -o "$TMP/healthdns" ./cmd/healthdns
BIN=$TMP/healthdns

# --- zones, Corefiles, queries ----------------------------------------------------

# h0000 .. h0999 -> 10.0.0.1 .. 10.0.3.250 and fd00::1 .. fd00::3e8
awk -v n=$NAMES -v nx=$NX -v zone=$ZONE -v ttl=$TTL -v dir="$TMP" '
function v4(i) { return sprintf("10.0.%d.%d", int(i / 250), i % 250 + 1) }
function v6(i) { return sprintf("fd00::%x", i + 1) }
function v4b(i) { return sprintf("192.168.%d.%d", int(i / 250), i % 250 + 1) }
function v6b(i) { return sprintf("fd00:1::%x", i + 1) }
BEGIN {
	head = sprintf("$ORIGIN %s\n$TTL %d\n@ IN SOA ns1.%s hostmaster.%s 1 3600 600 604800 %d\n@ IN NS ns1.%s\nns1 IN A 127.0.0.1\n", zone, ttl, zone, zone, ttl, zone)
	printf "%s", head > dir "/file.zone"
	printf "%s", head > dir "/healthdns.zone"
	for (i = 0; i < n; i++) {
		h = sprintf("h%04d", i)
		printf "%s IN A %s\n%s IN AAAA %s\n", h, v4(i), h, v6(i) > dir "/file.zone"
		printf "        name %s {\n            fallback none\n            target %s check tcp 127.0.0.1:HEALTHPORT\n            target %s check tcp 127.0.0.1:HEALTHPORT\n        }\n", h, v4(i), v6(i) > dir "/names.inc"
		printf "        name %s {\n            policy POLICY\n            fallback none\n", h > dir "/names.two.inc"
		printf "            target %s region eu check tcp HEALTHADDR\n            target %s region us check tcp HEALTHADDR\n", v4(i), v4b(i) > dir "/names.two.inc"
		printf "            target %s region eu check tcp HEALTHADDR\n            target %s region us check tcp HEALTHADDR\n        }\n", v6(i), v6b(i) > dir "/names.two.inc"
		printf "%s%s A\n%s%s AAAA\n", h, "." zone, h, "." zone > dir "/queries.ok"
		printf "%s\n%s\n", v4(i), v6(i) > dir "/expected.ok"
		printf "^(%s|%s)$\n^(%s|%s)$\n", v4(i), v4b(i), v6(i), v6b(i) > dir "/expected.sticky"
	}
	for (i = 0; i < nx; i++) {
		printf "nx%04d.%s A\nnx%04d.%s AAAA\n", i, zone, i, zone > dir "/queries.nx"
	}
}'
# dnsperf input: every line once per pass, in a fixed shuffled order
cat "$TMP/queries.ok" "$TMP/queries.nx" | shuf --random-source=<(yes) >"$TMP/queries"
nq=$(wc -l <"$TMP/queries")
nnx=$(wc -l <"$TMP/queries.nx")
nx_pct=$(awk -v a="$nnx" -v b="$nq" 'BEGIN { printf "%.2f", 100 * a / b }')

port_of() {
	case $1 in
	file) echo $((BASE_PORT + 1)) ;;
	healthdns) echo $((BASE_PORT + 2)) ;;
	healthdns+cache) echo $((BASE_PORT + 3)) ;;
	whoami) echo $((BASE_PORT + 4)) ;;
	ecs) echo $((BASE_PORT + 5)) ;;
	geo) echo $((BASE_PORT + 6)) ;;
	sticky) echo $((BASE_PORT + 7)) ;;
	esac
}

# ecs_of CONFIG: whether its queries carry ECS
ecs_of() { [[ $1 == ecs || $1 == geo || $1 == sticky ]]; }

# corefile CONFIG [EXTRA_DIRECTIVE] -> path. Every server block has the same
# frame (bind, health); only the answering plugin(s) differ. No log, errors or
# prometheus: they would be measured too.
corefile() {
	local c=$1 extra=${2:-} port hport f
	port=$(port_of "$c")
	hport=$((port + 10))
	f=$TMP/Corefile.$c${extra:+.extra}
	{
		echo "$ZONE:$port {"
		echo "    bind $BIND"
		echo "    health $BIND:$hport"
		[[ -n $extra ]] && echo "    $extra"
		case $c in
		file)
			echo "    file $TMP/file.zone"
			;;
		healthdns | healthdns+cache)
			[[ $c == healthdns+cache ]] && echo "    cache $TTL"
			echo "    healthdns {"
			echo "        zonefile $TMP/healthdns.zone"
			echo "        interval 1h"      # the maximum: one probe round at start, then idle
			echo "        timeout 10s"      # generous: 2,000 connects at once at start-up
			echo "        ttl $TTL"
			sed "s/127.0.0.1:HEALTHPORT/$BIND:$hport/" "$TMP/names.inc"
			echo "    }"
			;;
		ecs | geo | sticky)
			echo "    healthdns {"
			echo "        zonefile $TMP/healthdns.zone"
			echo "        interval 1h"
			echo "        timeout 10s"
			echo "        ttl $TTL"
			echo "        topology {"
			echo "            10.0.0.0/8 eu"
			echo "            192.168.0.0/16 us"
			echo "        }"
			policy=$c
			# the baseline: the same names and targets, one address per answer
			[[ $c == ecs ]] && policy='roundrobin\n            max-answers 1'
			sed -e "s/HEALTHADDR/$BIND:$hport/" -e "s/POLICY/$policy/" "$TMP/names.two.inc"
			echo "    }"
			;;
		whoami)
			echo "    whoami"
			;;
		esac
		echo "}"
	} >"$f"
	echo "$f"
}

# q PORT DIG_ARGS...: one dig to a server, no retries
q() { dig +norec +time=1 +tries=1 @"$BIND" -p "$1" "${@:2}"; }

start_server() { # NAME COREFILE
	local c=$1 f=$2 port i
	port=$(port_of "$c")
	"${NICE_CMD[@]}" "${pin_server[@]}" "$BIN" -conf "$f" -quiet >"$TMP/$c.log" 2>&1 &
	PID[$c]=$!
	for ((i = 0; i < 300; i++)); do
		kill -0 "${PID[$c]}" 2>/dev/null || { cat "$TMP/$c.log" >&2; die "$c: server exited"; }
		if q "$port" "$ZONE" SOA +noall +comments 2>/dev/null | grep -q 'status: NOERROR'; then
			return 0
		fi
		sleep 0.1
	done
	cat "$TMP/$c.log" >&2
	die "$c: no answer on $BIND:$port after 30s"
}

stop_server() {
	local c=$1
	[[ -n ${PID[$c]:-} ]] || return 0
	kill "${PID[$c]}" 2>/dev/null || true
	wait "${PID[$c]}" 2>/dev/null || true
	unset "PID[$c]"
}

# verify CONFIG: one dig per kind of answer, then every name's answer, so a
# broken configuration (REFUSED, SERVFAIL, NODATA from unhealthy targets, wrong
# addresses) cannot produce a figure.
verify() {
	local c=$1 port out sub=()
	port=$(port_of "$c")
	ecs_of "$c" && sub=("$ECS_DIG")
	out=$(q "$port" "${sub[@]}" h0000.$ZONE A)
	if [[ $c == whoami ]]; then
		grep -q 'status: NOERROR' <<<"$out" && grep -Eq '^h0000\.bench\.test\.[[:space:]].*IN[[:space:]]+A[[:space:]]+127\.' <<<"$out" ||
			{ echo "$out" >&2; die "$c: h0000.$ZONE A: want NOERROR with the client's 127.x address in ADDITIONAL"; }
		log "  $c: h0000.$ZONE A -> NOERROR, whoami's address (ADDITIONAL)"
		return 0
	fi
	grep -q 'status: NOERROR' <<<"$out" && grep -q 'flags: qr aa' <<<"$out" &&
		grep -Eq "^h0000\.bench\.test\.[[:space:]]+$TTL[[:space:]]+IN[[:space:]]+A[[:space:]]+10\.0\.0\.1$" <<<"$out" ||
		{ [[ $c == sticky || $c == ecs ]] && grep -Eq "IN[[:space:]]+A[[:space:]]+192\.168\.0\.1$" <<<"$out"; } ||
		{ echo "$out" >&2; die "$c: h0000.$ZONE A: want NOERROR, aa, 10.0.0.1 TTL $TTL"; }
	if ecs_of "$c"; then
		scope=0
		[[ $c == geo ]] && scope=8
		[[ $c == sticky ]] && scope=24
		grep -q "CLIENT-SUBNET: 10.1.2.0/24/$scope\$" <<<"$out" ||
			{ echo "$out" >&2; die "$c: h0000.$ZONE A: want ECS 10.1.2.0/24 echoed with scope $scope"; }
	fi
	out=$(q "$port" nx0000.$ZONE A)
	grep -q 'status: NXDOMAIN' <<<"$out" && grep -q 'IN[[:space:]]*SOA' <<<"$out" ||
		{ echo "$out" >&2; die "$c: nx0000.$ZONE A: want NXDOMAIN with the SOA"; }
	# every name, A and AAAA, exactly its one address
	sed "s|\$| +short ${sub[*]}|" "$TMP/queries.ok" >"$TMP/batch"
	q "$port" -f "$TMP/batch" >"$TMP/verify.$c" 2>&1 || true
	if [[ $c == sticky || $c == ecs ]]; then
		# one of each name's targets, and not all of them the same one
		paste "$TMP/expected.sticky" "$TMP/verify.$c" | awk -F'\t' '$2 !~ $1 { bad++ } END { exit bad > 0 || NR != '"$((2 * NAMES))"' }' ||
			die "$c: an answer is not one of its name's targets"
		[[ $c == ecs ]] || [[ $(grep -c '^192\.168\.' "$TMP/verify.$c") -gt $((NAMES / 4)) && $(grep -c '^10\.0\.' "$TMP/verify.$c") -gt $((NAMES / 4)) ]] ||
			die "$c: the names' answers are not spread over their targets"
		log "  $c: all $((2 * NAMES)) A/AAAA answers one of their name's targets"
		return 0
	fi
	if ! cmp -s "$TMP/verify.$c" "$TMP/expected.ok"; then
		diff "$TMP/expected.ok" "$TMP/verify.$c" | head -20 >&2
		die "$c: the answers for the $NAMES names are not their addresses"
	fi
	log "  $c: h0000 A -> 10.0.0.1 (aa, TTL $TTL), nx0000 -> NXDOMAIN, all $((2 * NAMES)) A/AAAA answers correct"
}

cpu_ticks() { # PID -> utime+stime in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

child_cpu() { # FILE with the output of times -> user+sys CPU seconds of waited-for children
	awk 'NR == 2 {
		s = 0
		for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] }
		printf "%.3f", s
	}' "$1"
}

HZ=$(getconf CLK_TCK)

busy_ticks() { # -> user+nice+system ticks of all CPUs (irq, softirq, steal not included)
	awk '$1 == "cpu" { print $2 + $3 + $4; exit }' /proc/stat
}

core_ticks() { # CPU -> "idle total" ticks of that CPU (idle includes iowait)
	awk -v cpu="cpu$1" '$1 == cpu { t = 0; for (i = 2; i <= 9; i++) t += $i; print $5 + $6, t; exit }' /proc/stat
}

# perf CONFIG SECONDS OUT -> runs dnsperf once and prints
#   "qps latency_ms server_us_per_query server_core_busy% dnsperf_core_busy% other_cpu%"
# server_us_per_query is the server process's user+sys CPU time per answered
# query (the cost of an answer, little affected by other load); the core busy
# figures are how busy the server's and dnsperf's CPUs were (user, sys, softirq:
# all of it). The server is the bottleneck when its core is ~100% busy and
# dnsperf's is not. other_cpu% is the CPU every other process used (% of one
# CPU; should be ~0).
perf() {
	local c=$1 secs=$2 out=$3 port t0 t1 c0 c1 b0 b1 w0 w1 k0 k1 s0 s1 rc=0
	port=$(port_of "$c")
	w0=$(date +%s.%N)
	b0=$(busy_ticks)
	k0=$(core_ticks "$PERF_CPU")
	s0=$(core_ticks "$SERVER_CPU")
	t0=$(cpu_ticks "${PID[$c]}")
	times >"$TMP/times0" # in this shell: $(...) would fork and see no children
	local opt=()
	ecs_of "$c" && opt=(-E "$ECS_DNSPERF")
	"${NICE_CMD[@]}" "${pin_perf[@]}" dnsperf -s "$BIND" -p "$port" -d "$TMP/queries" "${opt[@]}" \
		-l "$secs" -c "$CLIENTS" -q "$OUTSTANDING" -t 2 >"$out" 2>&1 || rc=$?
	if ((rc > 128)); then
		log "  dnsperf was killed by signal $((rc - 128)) (by something else on the machine?)"
		return 3
	elif ((rc)); then
		cat "$out" >&2
		die "$c: dnsperf failed (exit status $rc)"
	fi
	times >"$TMP/times1"
	t1=$(cpu_ticks "${PID[$c]}")
	k1=$(core_ticks "$PERF_CPU")
	s1=$(core_ticks "$SERVER_CPU")
	b1=$(busy_ticks)
	w1=$(date +%s.%N)
	c0=$(child_cpu "$TMP/times0")
	c1=$(child_cpu "$TMP/times1")
	kill -0 "${PID[$c]}" 2>/dev/null || { cat "$TMP/$c.log" >&2; die "$c: server died during the run"; }
	# a warm-up is not judged: a server just started (or starved by a busy
	# machine) may lose some of its first queries
	[[ ${WARMING:-0} == 1 ]] || check_run "$c" "$out"
	awk -v c="$c" -v hz="$HZ" -v t="$((t1 - t0))" -v c0="$c0" -v c1="$c1" -v b="$((b1 - b0))" \
		-v w0="$w0" -v w1="$w1" -v k0="$k0" -v k1="$k1" -v s0="$s0" -v s1="$s1" '
		/Queries completed:/ { done = $3 }
		/Queries per second:/ { qps = $4 }
		/Average Latency \(s\):/ { lat = $4 }
		END {
			wall = w1 - w0
			if (qps == "" || lat == "" || done == 0 || wall <= 0) { print "no figures from dnsperf for " c > "/dev/stderr"; exit 1 }
			srv = t / hz; perf = c1 - c0; other = b / hz - srv - perf
			if (other < 0) other = 0
			printf "%s %s %.2f %.0f %.0f %.0f\n", qps, lat * 1000, 1e6 * srv / done, busy(s0, s1), busy(k0, k1), 100 * other / wall
		}
		function busy(x, y,   a, z) {
			split(x, a, " "); split(y, z, " ")
			return (z[2] > a[2]) ? 100 - 100 * (z[1] - a[1]) / (z[2] - a[2]) : 0
		}' "$out"
}

# check_run CONFIG DNSPERF_OUTPUT: NOERROR + NXDOMAIN ~100% of responses, few
# lost queries, and NXDOMAIN in the share the query file has (whoami: none).
check_run() {
	local c=$1 out=$2
	awk -v c="$c" -v nxpct="$nx_pct" '
		/Queries sent:/ { sent = $3 }
		/Queries completed:/ { done = $3 }
		/Response codes:/ {
			sub(/.*Response codes:[[:space:]]*/, "")
			n = split($0, parts, /,[[:space:]]*/)
			for (i = 1; i <= n; i++) { split(parts[i], f, " "); code[f[1]] = f[2]; total += f[2] }
		}
		END {
			bad = ""
			if (sent == 0 || done == 0) bad = "no queries completed"
			else if (done < 0.99 * sent) bad = sprintf("%.2f%% of queries lost", 100 * (sent - done) / sent)
			else if (total == 0) bad = "no response codes in the output"
			else {
				good = (code["NOERROR"] + code["NXDOMAIN"]) / total
				nx = 100 * code["NXDOMAIN"] / total
				if (good < 0.999) bad = sprintf("NOERROR+NXDOMAIN are %.3f%% of responses", 100 * good)
				else if (c == "whoami" && nx > 0) bad = "whoami answered NXDOMAIN"
				else if (c != "whoami" && (nx < nxpct - 1 || nx > nxpct + 1)) bad = sprintf("NXDOMAIN %.2f%% of responses, the query file has %.2f%%", nx, nxpct)
			}
			if (bad != "") { print c ": " bad > "/dev/stderr"; exit 1 }
		}' "$out" || { cat "$out" >&2; die "$c: bad run (see the dnsperf output above)"; }
}

# wait_quiet: wait (within QUIET_BUDGET seconds over the whole run) until other
# processes use less than QUIET_MAX% of a CPU, so that a run is not measured
# while the machine is busy with something else.
wait_quiet() {
	local b0 b1 o0 o1 p other waited=0
	while :; do
		b0=$(busy_ticks)
		o0=0
		for p in "${PID[@]}"; do o0=$((o0 + $(cpu_ticks "$p"))); done
		sleep 1
		b1=$(busy_ticks)
		o1=0
		for p in "${PID[@]}"; do o1=$((o1 + $(cpu_ticks "$p"))); done
		other=$(((b1 - b0 - (o1 - o0)) * 100 / HZ))
		((other < QUIET_MAX)) && return 0
		if ((quiet_spent >= QUIET_BUDGET)); then
			return 0
		fi
		((waited == 0)) && log "  waiting for other processes to quieten (they use ${other}% of a CPU; ${quiet_spent}s of ${QUIET_BUDGET}s spent) ..."
		waited=1
		quiet_spent=$((quiet_spent + 1))
	done
}

median() { # values on stdin -> median
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --- run --------------------------------------------------------------------------

log "$(dnsperf -h 2>&1 | grep -m1 Version); $("$BIN" -version | head -1); $(go version | cut -d' ' -f3)"
log "zone $ZONE: $NAMES names (A+AAAA each); queries: $nq per pass ($nnx NXDOMAIN, $nx_pct%)"
log "servers on CPU ${pin_server[2]:-any}, dnsperf on CPU ${pin_perf[2]:-any}; dnsperf -l $DURATION -c $CLIENTS -q $OUTSTANDING; $ROUNDS round(s)"

log "starting and verifying servers ..."
for c in "${CONFIGS[@]}"; do
	start_server "$c" "$(corefile "$c")"
	verify "$c"
done
log "servers' CPU affinity: $(awk '/^Cpus_allowed_list/ { print $2 }' "/proc/${PID[${CONFIGS[0]}]}/status");" \
	"$(grep -m1 -o 'GOMAXPROCS=[0-9]*' "$TMP/healthdns.log" || echo "GOMAXPROCS follows it")"

log "warm-up ($WARMUP s each) ..."
WARMING=1
for c in "${CONFIGS[@]}"; do
	perf "$c" "$WARMUP" "$TMP/warmup.$c" >/dev/null || perf "$c" "$WARMUP" "$TMP/warmup.$c" >/dev/null
done
WARMING=0

declare -A RES=() CLEAN=()
n=${#CONFIGS[@]}
noisy=0
quiet_spent=0
for ((r = 1; r <= ROUNDS; r++)); do
	for ((k = 0; k < n; k++)); do
		c=${CONFIGS[$(((r - 1 + k) % n))]}
		for attempt in 1 2; do
			wait_quiet
			t_run=$SECONDS
			rc=0
			res=$(perf "$c" "$DURATION" "$TMP/run.$r.$c") || rc=$?
			if ((rc == 3 && attempt == 1)); then
				continue
			elif ((rc)); then
				die "$c: no figures from round $r"
			fi
			read -r qps lat usq score pcore other <<<"$res"
			log "$(printf 'round %d/%d  %-16s %8.0f qps %7.3f ms  %6.2f us/query  CPU busy: server %3d%% dnsperf %3d%% other %3d%%' \
				"$r" "$ROUNDS" "$c" "$qps" "$lat" "$usq" "$score" "$pcore" "$other")"
			log "  $(awk '/Response codes:/ { sub(/^[[:space:]]*/, ""); codes = $0 } /Queries lost:/ { lost = $3 " " $4 }
				END { print codes "; lost " lost }' "$TMP/run.$r.$c")"
			if ((pcore >= 97 && score < 95)); then
				log "  warning: dnsperf's CPU was busier than the server's: dnsperf may be the bottleneck"
			fi
			((other >= QUIET_MAX)) || { CLEAN[$c]+="$res"$'\n'; break; }
			if ((attempt == 1 && quiet_spent + SECONDS - t_run <= QUIET_BUDGET)); then
				quiet_spent=$((quiet_spent + SECONDS - t_run))
				log "  other processes used ${other}% of a CPU: run disturbed, doing it again"
			else
				log "  warning: other processes used ${other}% of a CPU during this run; its QPS is disturbed"
				noisy=$((noisy + 1))
				break
			fi
		done
		RES[$c]+="$res"$'\n'
	done
done

# medians over the undisturbed runs of a configuration, or over all its runs
# if none was undisturbed
declare -A QPS=() LAT=() USQ=() SCORE=() PCORE=() OTHER=() USED=()
for c in "${CONFIGS[@]}"; do
	set_ok=${CLEAN[$c]:-}
	if [[ -n $set_ok ]]; then
		USED[$c]="$(grep -c . <<<"$set_ok")/$ROUNDS"
	else
		set_ok=${RES[$c]}
		USED[$c]="all $ROUNDS (none quiet)"
	fi
	QPS[$c]=$(awk 'NF { print $1 }' <<<"$set_ok" | median)
	LAT[$c]=$(awk 'NF { print $2 }' <<<"$set_ok" | median)
	USQ[$c]=$(awk 'NF { print $3 }' <<<"$set_ok" | median)
	SCORE[$c]=$(awk 'NF { print $4 }' <<<"$set_ok" | median)
	PCORE[$c]=$(awk 'NF { print $5 }' <<<"$set_ok" | median)
	OTHER[$c]=$(awk 'NF { print $6 }' <<<"$set_ok" | median)
done
# ratio A B: A/B to two places, "n/a" when a configuration was not measured
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
r_file=$(ratio "${QPS[healthdns]:-}" "${QPS[file]:-}")
r_whoami=$(ratio "${QPS[healthdns]:-}" "${QPS[whoami]:-}")
r_cache=$(ratio "${QPS[healthdns+cache]:-}" "${QPS[file]:-}")

# --- profile ------------------------------------------------------------------------

miss=$(awk -v a="$r_file" -v b="$r_whoami" 'BEGIN { print (a != "n/a" && a < 1.3 || b != "n/a" && b < 0.85) ? 1 : 0 }')
if has healthdns && [[ $PROFILE == 1 || ($PROFILE == auto && $miss == 1) ]]; then
	log ""
	log "profiling healthdns (pprof $PPROF_ADDR, ${PROFILE_SECONDS}s under dnsperf load) ..."
	stop_server healthdns
	start_server healthdns "$(corefile healthdns "pprof $PPROF_ADDR")"
	verify healthdns
	"${NICE_CMD[@]}" "${pin_perf[@]}" dnsperf -s "$BIND" -p "$(port_of healthdns)" -d "$TMP/queries" \
		-l $((PROFILE_SECONDS + 3)) -c "$CLIENTS" -q "$OUTSTANDING" -t 2 >"$TMP/profile.dnsperf" 2>&1 &
	PID[dnsperf]=$!
	sleep 1
	# go tool pprof fetches the profile itself (no curl needed)
	if PPROF_TMPDIR=$TMP go tool pprof -proto -output "$TMP/cpu.pprof" -seconds "$PROFILE_SECONDS" \
		"http://$PPROF_ADDR/debug/pprof/profile" >"$TMP/pprof.log" 2>&1; then
		wait "${PID[dnsperf]}" || true
		unset "PID[dnsperf]"
		check_run healthdns "$TMP/profile.dnsperf"
		log "$(awk '/Queries per second:/ { printf "(%s qps during the profile)", $4 }' "$TMP/profile.dnsperf")"
		log "flat profile (go tool pprof -top):"
		go tool pprof -top -nodecount="${PROFILE_TOP:-30}" "$BIN" "$TMP/cpu.pprof" 2>/dev/null | sed 's/^/  /' >&2
		log "cumulative, the query path (go tool pprof -top -cum, filtered):"
		go tool pprof -top -cum -nodecount=400 "$BIN" "$TMP/cpu.pprof" 2>/dev/null |
			grep -E 'plugin/healthdns|healthdns\.|snapshot\.|ServeDNS|request\.|WriteMsg|\(\*Msg\)\.(Pack|Unpack|SetReply)|serveUDP|prometheus|metrics\.|runtime\.(mallocgc|gcBgMarkWorker)|syscall\.Syscall|internal/poll' |
			head -"${PROFILE_CUM:-40}" | sed 's/^/  /' >&2
		log "what healthdns's ServeDNS spends its time on (go tool pprof -peek):"
		go tool pprof -peek 'healthdns\.\(\*HealthDNS\)\.ServeDNS$|snapshot\.\(\*Snapshot\)\.Answer$' "$BIN" "$TMP/cpu.pprof" 2>/dev/null |
			sed -n '/^-----/,$p' | sed 's/^/  /' >&2
		if [[ -n ${PROFILE_OUT:-} ]]; then
			cp "$TMP/cpu.pprof" "$PROFILE_OUT" && log "profile saved to $PROFILE_OUT (binary: rebuild, or KEEP_TMP=1 keeps $BIN)"
		fi
	else
		cat "$TMP/pprof.log" >&2
		log "could not fetch the profile from http://$PPROF_ADDR"
		kill "${PID[dnsperf]}" 2>/dev/null || true
	fi
fi

# --- table --------------------------------------------------------------------------

echo
echo "healthdns throughput: $NAMES names A+AAAA, ${nx_pct}% NXDOMAIN, UDP $BIND, server on 1 CPU"
echo "dnsperf -l $DURATION -c $CLIENTS -q $OUTSTANDING; median of $ROUNDS round(s)"
printf '%-16s %8s %10s %11s %11s %12s %6s  %s\n' configuration QPS "latency ms" "server us/q" "server core" "dnsperf core" other "runs used"
for c in "${CONFIGS[@]}"; do
	printf '%-16s %8.0f %10.3f %11.2f %10.0f%% %11.0f%% %5.0f%%  %s\n' \
		"$c" "${QPS[$c]}" "${LAT[$c]}" "${USQ[$c]}" "${SCORE[$c]}" "${PCORE[$c]}" "${OTHER[$c]}" "${USED[$c]}"
done
echo "QPS and latency (average) from dnsperf; server us/q: the server process's CPU time per answer;"
echo "server/dnsperf core: how busy their CPUs were (server-bound: ~100% and less); other: CPU of all"
echo "other processes, % of one CPU."
echo "Medians over the runs in which other processes used < ${QUIET_MAX}% of a CPU (runs used)."
if ((noisy)); then
	echo "warning: $noisy run(s) disturbed by other processes (>= ${QUIET_MAX}% of a CPU); rerun on a quiet machine"
fi
echo
echo "geo/ecs QPS ratio: $(ratio "${QPS[geo]:-}" "${QPS[ecs]:-}") (target >= 0.95); CPU per answer: $(ratio "${USQ[geo]:-}" "${USQ[ecs]:-}")"
echo "sticky/ecs QPS ratio: $(ratio "${QPS[sticky]:-}" "${QPS[ecs]:-}") (target >= 0.95); CPU per answer: $(ratio "${USQ[sticky]:-}" "${USQ[ecs]:-}")"
echo "ecs/healthdns QPS ratio: $(ratio "${QPS[ecs]:-}" "${QPS[healthdns]:-}") (ECS read and echoed, two targets a family)"
echo "geo/file QPS ratio: $(ratio "${QPS[geo]:-}" "${QPS[file]:-}")"
echo "healthdns/file CPU per answer ratio: $(ratio "${USQ[healthdns]:-}" "${USQ[file]:-}") (lower is better)"
echo "healthdns/whoami CPU per answer ratio: $(ratio "${USQ[healthdns]:-}" "${USQ[whoami]:-}") (lower is better)"
echo "healthdns/whoami QPS ratio: $r_whoami (target >= 0.85)"
echo "(healthdns+cache)/file QPS ratio: $r_cache"
echo "healthdns/file latency ratio: $(ratio "${LAT[healthdns]:-}" "${LAT[file]:-}")"
echo "healthdns/file QPS ratio: $r_file"
