#!/usr/bin/env bash
# demo.sh - three heartbeatd nodes on loopback heartbeat each other while
# clients saturate node a's worker pool with CPU-heavy jobs; then the same
# load with pool_mode=inline (jobs on the loop thread), to show what the pool
# protects: inline, a's heartbeats stop and its peers report it down.
#
# Each job spins for a fixed time (spin ms=1500), not a fixed amount of work,
# so inline every job blocks a's loop for 1.5 s, five times the 300 ms peer
# timeout, however fast or busy the machine is.
#
#   bench/demo.sh [--build DIR] [--duration SECONDS]
#
# --duration is the length of each of the two phases (default 15). Ctrl-C
# stops everything; no process is left behind.
set -u
# job control: every background job gets its own process group, so stopping
# a job also stops what it started (heartbeatctl, tail and its reader)
set -m

build=$(cd "$(dirname "$0")/.." && pwd)/build
duration=15
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	-h|--help) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $duration in ''|*[!0-9]*) echo "demo.sh: --duration takes seconds" >&2; exit 2 ;; esac
daemon=$build/src/heartbeatd
ctl=$build/src/heartbeatctl
[ -x "$daemon" ] && [ -x "$ctl" ] || { echo "demo.sh: build first (no $daemon)" >&2; exit 2; }

nodes="a b c"
interval=100
threads=2
job_ms=1500	# each job's run time: inline, how long it blocks a's loop
tmp=$(mktemp -d "${TMPDIR:-/tmp}/heartbeatd-demo.XXXXXX")
declare -A pid work peer
loaders=()
if [ -t 1 ]; then bold=$'\e[1m'; red=$'\e[31m'; green=$'\e[32m'; dim=$'\e[2m'; off=$'\e[0m'
else bold= red= green= dim= off=; fi

# Stop the background jobs in loaders[], whole process groups.
stop_jobs() {
	local p
	[ ${#loaders[@]} -eq 0 ] && return
	for p in "${loaders[@]}"; do kill -- -"$p" 2>/dev/null; done
	wait "${loaders[@]}" 2>/dev/null	# (a bare wait would wait for the daemons too)
	loaders=()
}

cleanup() {
	trap - INT TERM EXIT
	stop_jobs
	for n in $nodes; do [ -n "${pid[$n]:-}" ] && kill "${pid[$n]}" 2>/dev/null; done
	wait 2>/dev/null	# the daemons drain and exit
	rm -rf "$tmp"
}
trap cleanup EXIT
# The message goes to stderr: with stdout piped (demo.sh | cat), Ctrl-C also
# stops the reader, and a write to the dead pipe must not kill the script
# before cleanup. Likewise a reader that goes away (demo.sh | head) ends the
# demo through the exit trap, not by SIGPIPE past it.
trap 'trap "" PIPE; printf "\ndemo: interrupted\n" >&2; exit 130' INT TERM
trap 'exit 141' PIPE

# wait_for FILE PATTERN SECONDS: until a line of FILE matches.
wait_for() {
	local deadline=$((SECONDS + $3))
	until grep -q -- "$2" "$1" 2>/dev/null; do
		[ $SECONDS -ge $deadline ] && { echo "demo: timed out waiting for $2 in $1" >&2; return 1; }
		sleep 0.05
	done
}

# Show a node's events as compact labelled lines, each as soon as it is
# logged. This is the per-line path, so it is plain bash: read takes one line
# at a time from the pipe and printf writes each line at once, where an awk
# (mawk, Debian's default) would read and write whole blocks when its input
# and output are pipes or files: lines would arrive in a lump at the end of
# a phase, or be lost when the phase's jobs are stopped.
show() {
	local node=$1 line
	# f KEY: the value of KEY in $line (quotes kept), or "?"
	f() { [[ $line =~ \ $1=(\"[^\"]*\"|[^ ]*) ]] && v=${BASH_REMATCH[1]} || v='?'; }
	# ms KEY: KEY's value in microseconds, as milliseconds
	ms() { f "$1"; [[ $v =~ ^[0-9]+$ ]] || v=0; printf -v v '%.2f' "${v}e-3"; }
	local v seq lag max up peers busy threads queued done
	while IFS= read -r line; do
		case $line in
		*" msg=heartbeat "*)
			f seq; seq=$v; ms lag_us; lag=$v; ms lag_max_us; max=$v
			f peers_up; up=$v; f peers; peers=$v; f busy; busy=$v
			f threads; threads=$v; f queued; queued=$v; f done; done=$v
			printf '%s[%s]%s seq=%-5s lag=%6sms max=%7sms peers_up=%s/%s busy=%s/%s queued=%-3s done=%s\n' \
			    "$dim" "$node" "$off" "$seq" "$lag" "$max" "$up" "$peers" \
			    "$busy" "$threads" "$queued" "$done" ;;
		*" msg=peer-down "*)
			f peer; up=$v; f reason
			printf '%s[%s] PEER DOWN %s (%s)%s\n' "$red" "$node" "$up" "$v" "$off" ;;
		*" msg=peer-up "*)
			f peer; up=$v; f rtt_us
			printf '%s[%s] peer up %s rtt=%sus%s\n' "$green" "$node" "$up" "$v" "$off" ;;
		*" msg=local-stall "*)
			f lag_us
			printf '%s[%s] local stall of %sus: not blaming peers%s\n' "$red" "$node" "$v" "$off" ;;
		esac
	done
}

# start NODE MODE [PEER_PORT]: run a node; its log is $tmp/NODE.log
# (node a's inline run gets its own, $tmp/a-inline.log).
start() {
	local n=$1 mode=$2 log=$tmp/$1.log
	[ "$mode" = inline ] && log=$tmp/$1-inline.log
	logf[$n]=$log
	: >"$log"
	"$daemon" -c "$tmp/$n.conf" -s node_name="$n" -s work_listen=127.0.0.1:0 \
	    -s peer_listen="127.0.0.1:${3:-0}" -s http_listen= -s threads=$threads \
	    -s heartbeat_interval_ms=$interval -s heartbeat_log_ms=500 \
	    -s pool_mode="$mode" 2>"$log" &
	pid[$n]=$!
	wait_for "$log" "msg=ready" 10 || exit 1
	work[$n]=$(sed -n 's/.*msg=listening service=work addr=\([^ ]*\).*/\1/p' "$log" | head -1)
	peer[$n]=$(sed -n 's/.*msg=listening service=peer addr=\([^ ]*\).*/\1/p' "$log" | head -1)
}

# Give every node the others as peers, through a config reload.
wire() {
	local n m
	for n in $nodes; do
		: >"$tmp/$n.conf"
		for m in $nodes; do
			[ "$m" != "$n" ] && echo "peer = $m@${peer[$m]}" >>"$tmp/$n.conf"
		done
		kill -HUP "${pid[$n]}"
	done
}

# Keep node a's pool saturated: threads + 2 clients, one job each at a time.
# A job is sized by time, not work: spin burns the CPU for job_ms whatever
# the machine's speed or load, so inline it stalls the loop that long.
load() {
	local end=$((SECONDS + duration)) i
	for i in $(seq 1 $((threads + 2))); do
		(
			while [ $SECONDS -lt $end ]; do
				"$ctl" -H "${work[a]}" submit spin ms=$job_ms --wait \
				    >/dev/null 2>&1
			done
		) &
		loaders+=($!)
	done
}

# phase MODE: stream every node's events while a's pool is loaded; the
# phase's lines of each log are copied to $tmp/NODE.MODE for the summary.
phase() {
	local mode=$1 n
	declare -A from
	echo "${bold}== pool_mode=$mode on node a: $((threads + 2)) clients keep CPU-heavy jobs (spin ms=$job_ms) coming for ${duration}s ==${off}"
	for n in $nodes; do
		from[$n]=$(($(wc -l <"${logf[$n]}") + 1))
		tail -n +"${from[$n]}" -f "${logf[$n]}" | show "$n" &
		loaders+=($!)
	done
	load
	# sleep in the background and wait for it: with job control on, a
	# foreground sleep would be the terminal's foreground process group, so
	# Ctrl-C would stop only the sleep and the demo would go on; the wait
	# builtin returns at once for the INT trap
	sleep "$duration" &
	loaders+=($!)
	wait $!
	stop_jobs
	for n in $nodes; do tail -n +"${from[$n]}" "${logf[$n]}" >"$tmp/$n.$mode"; done
}

declare -A logf
for n in $nodes; do : >"$tmp/$n.conf"; start "$n" threads; done
echo "${bold}heartbeatd demo${off}: nodes a b c on 127.0.0.1, heartbeat every ${interval} ms, $threads worker threads each"
wire
for n in $nodes; do
	for m in $nodes; do
		[ "$m" != "$n" ] && { wait_for "${logf[$n]}" "msg=peer-up peer=$m " 10 || exit 1; }
	done
done
echo "all peers up"
phase threads

# Restart a with jobs on its loop thread, on the same peer port, and wait
# until b and c have it up again.
mark_b=$(wc -l <"${logf[b]}"); mark_c=$(wc -l <"${logf[c]}")
kill "${pid[a]}"; wait "${pid[a]}" 2>/dev/null
start a inline "${peer[a]##*:}"
tail -n +$((mark_b + 1)) -f "${logf[b]}" >"$tmp/b.after" & loaders+=($!)
tail -n +$((mark_c + 1)) -f "${logf[c]}" >"$tmp/c.after" & loaders+=($!)
wait_for "$tmp/b.after" "msg=peer-up peer=a " 15 && wait_for "$tmp/c.after" "msg=peer-up peer=a " 15 || exit 1
stop_jobs
phase inline

# Summary: per phase and node, jobs done, worst lateness, peer-down events.
summary() {
	awk '
	/msg=heartbeat / { if (match($0, / lag_max_us=[0-9]+/)) { v = substr($0, RSTART + 12, RLENGTH - 12) + 0; if (v > worst) worst = v }
	                   if (match($0, / done=[0-9]+/)) done = substr($0, RSTART + 6, RLENGTH - 6) }
	/msg=peer-down/ { down++ }
	END { printf "%-10s %12.2f %15d\n", done == "" ? "-" : done, worst / 1000, down }' "$1"
}
echo
echo "${bold}summary${off} (jobs_done: node's total so far; worst_lag_ms: worst heartbeat lateness in the phase)"
printf "%-8s %-5s %-10s %12s %15s\n" mode node jobs_done worst_lag_ms peer_down_seen
for mode in threads inline; do
	for n in $nodes; do
		printf "%-8s %-5s %s\n" "$mode" "$n" "$(summary "$tmp/$n.$mode")"
	done
done
echo
echo "threads: a's loop only hands jobs to the pool, so its heartbeats stay on time under full load."
echo "inline:  each job blocks a's loop for ${job_ms} ms; its heartbeats stop, and b and c report it down."
