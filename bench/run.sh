#!/bin/sh
# bench/run.sh - heartbeatd and its three anchors, side by side in one run.
#
#   bench/run.sh [--quick] [DAEMON...]
#   bench/run.sh burst [DAEMON...]
#   bench/run.sh scale
#
# Builds bench/hbbench.c and the C anchors of shared/anchors into a temporary
# directory, then for each daemon (heartbeatd, uv_daemon, inline_daemon,
# seed_asyncio.py; or only those named) in turn:
#  - starts it with a 10 ms heartbeat to hbbench's peer port and 2 worker
#    threads (heartbeatd also with an empty config file, HTTP and the
#    heartbeat log line off, and a 10 s peer timeout, so that a slow ACK from
#    hbbench cannot make it drop and redial the link mid-measurement);
#  - lets hbbench measure it: idle and loaded heartbeat lateness, no-op
#    jobs/s, round trip (see hbbench.c and bench/README.md);
#  - reads its peak RSS (VmHWM) and stops it with SIGTERM (SIGKILL after
#    10 s).
# During each loaded window it also runs bench/floor.c, a bare
# clock_nanosleep loop on the same schedule and timer slack, and prints each
# daemon's lateness against that floor. Then prints one table and the ratios
# of heartbeatd to each anchor. Figures only: nothing is asserted.
#
# "burst" instead measures heartbeat lateness while 10,000 clients connect at
# once and each sends PING and reads PONG (bench/burst.c), heartbeatd only
# unless daemons are named; the fd limit is raised to the hard limit for it
# and heartbeatd gets -s max_connections=20000.
#
# "scale" runs bench/scale.c against heartbeatd alone, one daemon per
# scenario: 10,000 idle work clients (RSS, bytes per connection, lateness),
# 1000 peers at a 1 s interval (time until all are up, CPU, RSS, lateness on
# every link), and 10,000 slow HTTP clients (what the daemon holds, its fds,
# whether /healthz, PING and the heartbeats get through). See bench/README.md.
#
#   --quick       shorter windows (2 s idle, 3 s loaded, 2 s jobs/s, 1000
#                 round trips) instead of 3 s, 10 s, 5 s, 2000
#   HEARTBEATD    the daemon to measure (default build/src/heartbeatd)
#   ANCHORS       where the anchors' sources are (default ../shared/anchors
#                 beside the source tree)
#   BENCH_KEEP=1  keep the temporary directory (logs, raw HB arrivals)
#   SLACK_NS      timer slack of heartbeatd's loop and of the floor (1000)
#   BURST_CLIENTS clients per burst (10000)   BURST_ROUNDS  bursts (3)
#   SCALE_ONLY    scale scenarios to run ("idle peers http")
#   SCALE_CLIENTS idle and slow HTTP clients (10000)   SCALE_PEERS  (1000)
#   SCALE_SECONDS idle and HTTP windows (5)   SCALE_PEER_SECONDS  (15)
#   SCALE_HTTP_TIMEOUT_MS  the daemon's http_timeout_ms in scale (2000)
#   SCALE_HTTP_RECONNECT_MS  a closed slow client comes back after 0.5-1.5
#                 times this (1000; 0: never)
#
# A daemon that is missing or does not come up is skipped with a note.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
idle_s=3 loaded_s=10 tput_s=5 rtt_n=2000
daemons='' mode=table
slack_ns=${SLACK_NS:-1000}
burst_n=${BURST_CLIENTS:-10000} burst_rounds=${BURST_ROUNDS:-3} burst_limit=30

say() { printf '%s\n' "bench: $*" >&2; }
die() { say "$*"; exit 1; }

# ---- durable: detached SUBMITs against beanstalkd puts --------------------
#
#   bench/run.sh durable [--quick]
#
# Durable submission, side by side in one run (bench/durable.c; the figures
# are explained in bench/README.md, "durable"):
#  1. acknowledged submissions per second: heartbeatd's detached SUBMITs
#     ("SUBMIT primes n=0 detach=1" -> "OK <id>") with -s state_dir and
#     journal_sync_ms=0 and =50, and without state_dir, against beanstalkd's
#     put ("put 0 0 60 10" -> "INSERTED <id>") with -b DIR and -f 0 and
#     -f 50; DURABLE_CONNS connections (4) each keeping DURABLE_OUTSTANDING
#     requests (128) outstanding, for the load window;
#  2. heartbeat lateness (hbbench as the peer, 10 ms interval) over the
#     middle of each heartbeatd load window;
#  3. restart time with DURABLE_RETAINED (100000) finished detached jobs in
#     the journal: filled with job_retention=DURABLE_RETAINED and
#     journal_sync_ms=50, stopped with SIGTERM, then started DURABLE_RESTARTS
#     times (3): time from exec to msg=ready, and the journal-recovered line;
#     also once with an empty state_dir, for reference.
# beanstalkd is installed with apt-get when missing and running as root (or
# with password-less sudo); otherwise its rows say SKIP. --quick: a 3 s load
# window instead of 7 s and one restart. DURABLE_ROUNDS=N repeats part 1.
# BENCH_KEEP=1 keeps the temporary directory (daemon logs, raw results).
durable_mode() {
	d_load_s=7 d_restarts=${DURABLE_RESTARTS:-3}
	d_conns=${DURABLE_CONNS:-4} d_out=${DURABLE_OUTSTANDING:-128}
	d_retained=${DURABLE_RETAINED:-100000} d_rounds=${DURABLE_ROUNDS:-1}
	while [ $# -gt 0 ]; do
		case $1 in
		--quick) d_load_s=3 d_restarts=1 ;;
		-h|--help)
			sed -n '/^# ---- durable:/,/^durable_mode/p' "$0" |
				sed '1,2d; $d; s/^# \{0,1\}//'
			exit 0 ;;
		*) die "durable: unknown argument: $1 (try --help)" ;;
		esac
		shift
	done
	# hbbench measures the middle of the load window: it starts 0.5 s after
	# the first HB and the load runs 1 s longer on each side.
	d_win_s=$((d_load_s - 2))
	heartbeatd=${HEARTBEATD:-$top/build/src/heartbeatd}
	[ -x "$heartbeatd" ] ||
		die "durable: $heartbeatd is not built (./bootstrap.sh build," \
		    "or set HEARTBEATD=PATH)"
	command -v cc >/dev/null 2>&1 || die "durable: no cc (apt-get install gcc)"

	# beanstalkd, the anchor: a Debian package, installed when possible.
	d_bs=$(command -v beanstalkd 2>/dev/null || :)
	d_bs_skip=
	if [ -z "$d_bs" ]; then
		if [ "$(id -u)" -eq 0 ]; then
			d_sudo=
		elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
			d_sudo="sudo -n"
		else
			d_sudo=no
		fi
		if [ "$d_sudo" = no ]; then
			d_bs_skip="beanstalkd not installed; run as root or: apt-get install beanstalkd"
		else
			say "installing beanstalkd"
			export DEBIAN_FRONTEND=noninteractive
			$d_sudo apt-get install -y -qq --no-install-recommends \
			    beanstalkd >/dev/null 2>&1 ||
				{ $d_sudo apt-get update -qq >/dev/null 2>&1 &&
				  $d_sudo apt-get install -y -qq \
				    --no-install-recommends beanstalkd >/dev/null 2>&1; }
			d_bs=$(command -v beanstalkd 2>/dev/null || :)
			[ -n "$d_bs" ] || d_bs_skip="apt-get install beanstalkd failed"
		fi
		# the package's own service is not ours to run
		[ -z "$d_bs" ] || [ "$d_sudo" = no ] ||
			$d_sudo systemctl stop beanstalkd >/dev/null 2>&1 || :
	fi
	[ -z "$d_bs_skip" ] || say "SKIP beanstalkd rows: $d_bs_skip"

	tmp=$(mktemp -d "${TMPDIR:-/tmp}/hbdurable.XXXXXX") || die "mktemp failed"
	d_pids=
	trap 'durable_cleanup' EXIT
	trap 'exit 130' INT TERM
	say "building hbbench and durable in $tmp"
	for p in hbbench durable; do
		cc -std=c11 -O2 -Wall -Wextra -Wshadow -Wmissing-prototypes \
			-Wstrict-prototypes -o "$tmp/$p" "$top/bench/$p.c" ||
			die "$p does not build"
	done
	: >"$tmp/empty.conf"
	res=$tmp/durable.res
	: >"$res"
	d_hb_base="$heartbeatd -c $tmp/empty.conf -s http_listen= \
		-s work_listen=127.0.0.1:0 -s peer_listen=127.0.0.1:0 -s threads=2"

	say "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average" \
	    "$(cut -d' ' -f1-3 /proc/loadavg); load window ${d_load_s}s," \
	    "lateness window ${d_win_s}s, $d_conns connections x $d_out" \
	    "outstanding; state in $tmp ($(findmnt -n -o FSTYPE -T "$tmp" \
	    2>/dev/null || echo '?'))"
	echo "env load=$(cut -d' ' -f1 /proc/loadavg) cores=$(nproc)" >>"$res"
	r=1
	while [ "$r" -le "$d_rounds" ]; do
		durable_hb "journal sync=0" -s journal_sync_ms=0
		durable_bs "binlog -f 0" 0
		durable_hb "journal sync=50" -s journal_sync_ms=50
		durable_bs "binlog -f 50" 50
		durable_hb "no state_dir" ''
		r=$((r + 1))
	done
	durable_restarts
	echo "env load_end=$(cut -d' ' -f1 /proc/loadavg)" >>"$res"
	durable_table <"$res"
}

durable_cleanup() {
	for p in $d_pids; do
		kill -KILL "$p" 2>/dev/null
	done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}

# durable_wait SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds.
durable_wait() {
	dw_n=$(($1 * 10))
	shift
	while [ "$dw_n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		dw_n=$((dw_n - 1))
	done
	return 1
}
durable_alive() { kill -0 "$1" 2>/dev/null; }
durable_dead() { ! kill -0 "$1" 2>/dev/null; }
durable_ready() { grep -q 'msg=ready' "$2" 2>/dev/null || ! durable_alive "$1"; }
durable_has() { grep -q "$2" "$1" 2>/dev/null; }

# durable_stop PID NAME: SIGTERM, SIGKILL after 30 s; 0 if it exited 0.
durable_stop() {
	kill -TERM "$1" 2>/dev/null
	durable_wait 30 durable_dead "$1" || {
		say "$2: no exit 30 s after SIGTERM; SIGKILL"
		kill -KILL "$1" 2>/dev/null
	}
	wait "$1"
	ds_status=$?
	[ "$ds_status" -eq 0 ] || say "$2: exit status $ds_status"
	return "$ds_status"
}

# durable_start LOG ARGS...: start heartbeatd, wait for ready; sets d_pid
# and d_addr, or returns 1.
durable_start() {
	dl=$1
	shift
	# shellcheck disable=SC2086
	$d_hb_base "$@" 2>"$dl" 3>&- &
	d_pid=$!
	d_pids="$d_pids $d_pid"
	durable_wait 60 durable_ready "$d_pid" "$dl"
	d_addr=$(sed -n 's/.*msg=listening service=work addr="\{0,1\}\([^ "]*\).*/\1/p' \
		"$dl" | head -n 1)
	if ! durable_alive "$d_pid" || [ -z "$d_addr" ] ||
	    ! grep -q 'msg=ready' "$dl"; then
		say "heartbeatd did not come up: $(tail -n 1 "$dl" | cut -c1-160)"
		kill -KILL "$d_pid" 2>/dev/null
		wait "$d_pid" 2>/dev/null
		return 1
	fi
	return 0
}

# durable_hb LABEL [-s KEY=VALUE | '']: one heartbeatd row, with hbbench as
# its peer measuring the middle of the load window.
durable_hb() {
	label=$1
	shift
	n=$(wc -l <"$res")
	base=$tmp/hb.$n
	echo "row daemon=heartbeatd label=\"$label\"" >>"$res"
	extra=
	if [ -n "${1:-}" ]; then
		mkdir "$base.state"
		extra="-s state_dir=$base.state $*"
	fi
	mkfifo "$base.fifo" || die "mkfifo failed"
	exec 3<>"$base.fifo"
	"$tmp/hbbench" -w - -I 10 -i "$d_win_s" -r "$base.raw" idle \
		<"$base.fifo" >"$base.hbbench" 3>&- 2>"$base.hbbench.err" &
	hpid=$!
	d_pids="$d_pids $hpid"
	if ! durable_wait 5 durable_has "$base.hbbench" '^peer_port='; then
		echo "note text=hbbench-did-not-start" >>"$res"
		exec 3>&-
		kill -KILL "$hpid" 2>/dev/null
		return
	fi
	port=$(sed -n 's/^peer_port=//p' "$base.hbbench")
	# shellcheck disable=SC2086
	if ! durable_start "$base.log" -s heartbeat_interval_ms=10 \
	    -s heartbeat_log_ms=0 -s peer_timeout_ms=10000 \
	    -s "peer=bench@127.0.0.1:$port" $extra; then
		echo "note text=did-not-start" >>"$res"
		exec 3>&-
		kill -KILL "$hpid" 2>/dev/null
		wait "$hpid" 2>/dev/null
		return
	fi
	say "heartbeatd ($label): pid $d_pid, work $d_addr"
	echo "$d_addr" >&3
	exec 3>&-
	"$tmp/durable" submit -w "$d_addr" -P hb -c "$d_conns" -o "$d_out" \
		-T "$d_load_s" >>"$res" 2>"$base.durable.err" ||
		echo "note text=submit-failed" >>"$res"
	sed 's/^/  /' "$base.durable.err" >&2
	durable_wait 30 durable_dead "$hpid" || kill -KILL "$hpid" 2>/dev/null
	wait "$hpid" || echo "note text=hbbench-failed" >>"$res"
	sed -n 's/^idle /hb /p' "$base.hbbench" >>"$res"
	if durable_alive "$d_pid"; then
		echo "rss kb=$(awk '/^VmHWM:/ { print $2 }' \
		    "/proc/$d_pid/status" 2>/dev/null)" >>"$res"
		durable_stop "$d_pid" heartbeatd ||
			echo "note text=bad-exit" >>"$res"
	else
		wait "$d_pid"
		echo "note text=died" >>"$res"
		say "heartbeatd died: $(tail -n 1 "$base.log")"
	fi
	rm -f "$base.fifo"
}

# durable_bs LABEL FSYNC_MS: one beanstalkd row (binlog in a fresh dir).
durable_bs() {
	label=$1
	n=$(wc -l <"$res")
	base=$tmp/bs.$n
	echo "row daemon=beanstalkd label=\"$label\"" >>"$res"
	if [ -n "$d_bs_skip" ]; then
		echo "note text=SKIP" >>"$res"
		return
	fi
	mkdir "$base.binlog"
	# beanstalkd cannot say which port it got: try a few.
	tries=0
	while :; do
		port=$((20000 + ($$ * 7 + n * 13 + tries * 101) % 40000))
		"$d_bs" -l 127.0.0.1 -p "$port" -b "$base.binlog" -f "$2" \
			2>"$base.log" &
		bpid=$!
		d_pids="$d_pids $bpid"
		sleep 0.3
		durable_alive "$bpid" && break
		wait "$bpid" 2>/dev/null
		tries=$((tries + 1))
		if [ "$tries" -ge 5 ]; then
			say "beanstalkd did not start: $(tail -n 1 "$base.log")"
			echo "note text=did-not-start" >>"$res"
			return
		fi
	done
	say "beanstalkd ($label): pid $bpid, port $port"
	"$tmp/durable" submit -w "127.0.0.1:$port" -P bs -c "$d_conns" \
		-o "$d_out" -T "$d_load_s" >>"$res" 2>"$base.durable.err" ||
		echo "note text=submit-failed" >>"$res"
	sed 's/^/  /' "$base.durable.err" >&2
	echo "rss kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$bpid/status" \
	    2>/dev/null)" >>"$res"
	kill -TERM "$bpid" 2>/dev/null
	durable_wait 10 durable_dead "$bpid" || kill -KILL "$bpid" 2>/dev/null
	wait "$bpid" 2>/dev/null
}

# durable_restarts: fill a state_dir with d_retained finished detached jobs,
# stop, then time the starts.
durable_restarts() {
	st=$tmp/restart.state
	mkdir "$st" "$tmp/empty.state"
	keep="-s job_retention=$d_retained -s journal_sync_ms=50"
	say "restart: filling $st with $d_retained finished detached jobs"
	# shellcheck disable=SC2086
	if ! durable_start "$tmp/fill.log" -s "state_dir=$st" $keep; then
		echo "fill note=did-not-start" >>"$res"
		return
	fi
	t0=$(date +%s.%N)
	if ! "$tmp/durable" submit -w "$d_addr" -P hb -c "$d_conns" \
	    -o "$d_out" -n "$d_retained" -F 300 >"$tmp/fill.res" \
	    2>"$tmp/fill.err"; then
		sed 's/^/  /' "$tmp/fill.err" >&2
		echo "fill note=failed" >>"$res"
	fi
	durable_stop "$d_pid" heartbeatd || echo "fill note=bad-exit" >>"$res"
	t1=$(date +%s.%N)
	echo "fill jobs=$d_retained seconds=$(echo "$t1 $t0" |
	    awk '{ printf "%.1f", $1 - $2 }') db_kb=$(du -sk "$st" |
	    cut -f1) $(sed -n 's/^submit //p' "$tmp/fill.res")" >>"$res"
	# shellcheck disable=SC2086
	"$tmp/durable" restart -t 120 -l "$tmp/restart.empty.log" -- \
		$d_hb_base -s "state_dir=$tmp/empty.state" $keep \
		>"$tmp/restart.empty" 2>&1
	sed 's/^restart /restart label=empty /' "$tmp/restart.empty" >>"$res"
	i=1
	while [ "$i" -le "$d_restarts" ]; do
		# shellcheck disable=SC2086
		"$tmp/durable" restart -t 120 -l "$tmp/restart.$i.log" -- \
			$d_hb_base -s "state_dir=$st" $keep \
			>"$tmp/restart.$i" 2>&1
		sed "s/^restart /restart label=full-$i /" "$tmp/restart.$i" >>"$res"
		grep -h 'msg=journal-recovered' "$tmp/restart.$i.log" |
			sed 's/^/  /' >&2
		i=$((i + 1))
	done
}

durable_table() {
	awk -v win="$d_win_s" -v load_s="$d_load_s" -v conns="$d_conns" \
	    -v out="$d_out" '
function t(us) {
	if (us == "" || us < 0) return "-"
	us += 0
	if (us < 1000) return sprintf("%dus", us)
	if (us < 10000) return sprintf("%.2fms", us / 1000)
	if (us < 1000000) return sprintf("%.1fms", us / 1000)
	return sprintf("%.2fs", us / 1000000)
}
function rate(r) {
	if (r == "") return "-"
	r += 0
	if (r >= 1000000) return sprintf("%.2fM", r / 1000000)
	if (r >= 1000) return sprintf("%.1fk", r / 1000)
	return sprintf("%.0f", r)
}
function get(key,    i, eq) {
	for (i = 2; i <= NF; i++) {
		eq = index($i, "=")
		if (substr($i, 1, eq - 1) == key) return substr($i, eq + 1)
	}
	return ""
}
function flush() {
	if (d == "") return
	printf "%-11s %-16s %9s %8s %8s %5s %9s %9s %9s %9s %4s %7s  %s\n",
	    d, lab, rate(v["acks_per_s"]), t(v["ack_p50_us"]),
	    t(v["ack_p99_us"]), v["errs"] == "" ? "-" : v["errs"],
	    t(v["gap_p99_us"]), t(v["gap_max_us"]), t(v["lag_p99_us"]),
	    t(v["lag_max_us"]), v["missed"] == "" ? "-" : v["missed"],
	    v["rss"] == "" ? "-" : sprintf("%.0fMB", v["rss"] / 1024), notes
	if (v["acks_per_s"] != "") { sum[d, pol] += v["acks_per_s"]; cnt[d, pol]++ }
	if (v["gap_p99_us"] != "") {
		p99[lab] = p99[lab] (p99[lab] == "" ? "" : " ") t(v["gap_p99_us"]) \
		    "/" t(v["gap_max_us"])
	}
	d = ""
}
$1 == "env" {
	if (get("load") != "") load0 = get("load")
	if (get("load_end") != "") load1 = get("load_end")
	if (get("cores") != "") cores = get("cores")
	next
}
$1 == "row" {
	flush()
	if (!hdr) {
		printf "durable submission: %d connections x %d outstanding, " \
		    "%d s load window; heartbeat lateness\n(10 ms interval) over " \
		    "the middle %d s of it; load average %s at the start, %s " \
		    "cores\n\n", conns, out, load_s, win, load0, cores
		printf "%-11s %-16s %9s %8s %8s %5s %9s %9s %9s %9s %4s %7s\n",
		    "daemon", "durability", "acks/s", "ack p50", "ack p99",
		    "errs", "peer p99", "peer max", "own p99", "own max", "mis",
		    "RSS"
		hdr = 1
	}
	d = get("daemon"); lab = $0; sub(/.*label="/, "", lab); sub(/".*/, "", lab)
	pol = lab ~ /sync=0|-f 0/ ? "0" : (lab ~ /sync=50|-f 50/ ? "50" : "none")
	delete v; notes = ""
	next
}
$1 == "note" { notes = notes (notes == "" ? "" : ", ") get("text"); next }
$1 == "submit" {
	v["acks_per_s"] = get("acks_per_s"); v["ack_p50_us"] = get("ack_p50_us")
	v["ack_p99_us"] = get("ack_p99_us"); v["errs"] = get("errs"); next
}
$1 == "hb" {
	v["gap_p99_us"] = get("gap_p99_us"); v["gap_max_us"] = get("gap_max_us")
	v["lag_p99_us"] = get("lag_p99_us"); v["lag_max_us"] = get("lag_max_us")
	v["missed"] = get("missed"); next
}
$1 == "rss" { v["rss"] = get("kb"); next }
$1 == "fill" {
	flush()
	fill = sprintf("filled %s finished detached jobs in %ss (%s acks/s at " \
	    "journal_sync_ms=50, %s errs), jobs.db + WAL %.1f MB", get("jobs"),
	    get("seconds"), rate(get("acks_per_s")), get("errs"),
	    get("db_kb") / 1024)
	if (get("note") != "") fill = fill " (" get("note") ")"
	next
}
$1 == "restart" {
	flush()
	rs[++nr] = sprintf("%-8s %10s %12s %9s %9s %9s %8s %8s", get("label"),
	    get("ready_ms") "ms", get("recovered_ms") "ms", get("requeued"),
	    get("retained"), get("max_id"),
	    sprintf("%.0fMB", get("rss_kb") / 1024), get("exit_ms") "ms")
	next
}
END {
	flush()
	printf "\nacks/s: acknowledged submissions per second over the load " \
	    "window (heartbeatd OK <id> to\nSUBMIT primes n=0 detach=1; " \
	    "beanstalkd INSERTED <id> to a 10-byte put); ack: request to\n" \
	    "reply; peer: how much longer than 10 ms the peer waited for an " \
	    "HB (kernel stamps);\nown: the daemon'"'"'s lag_us; mis: ticks skipped\n"
	printf "\nheartbeatd / beanstalkd acks/s at the same sync policy " \
	    "(mean over the rounds)\n"
	for (k = 0; k <= 50; k += 50) {
		if (!cnt["heartbeatd", k] || !cnt["beanstalkd", k]) {
			printf "  %2d ms: n/a (a row at this policy did not " \
			    "run)\n", k
			continue
		}
		a = sum["heartbeatd", k] / cnt["heartbeatd", k]
		b = sum["beanstalkd", k] / cnt["beanstalkd", k]
		printf "  %2d ms: %s vs %s = %s\n", k, rate(a), rate(b),
		    (b > 0 ? sprintf("x%.2f", a / b) : "n/a")
	}
	printf "peer lateness p99/max under that load, each round\n"
	printf "  journal sync=0   %s\n  journal sync=50  %s\n" \
	    "  no state_dir     %s\n", p99["journal sync=0"],
	    p99["journal sync=50"], p99["no state_dir"]
	if (fill != "") printf "\nrestart: %s\n", fill
	if (nr > 0) {
		printf "%-8s %11s %13s %9s %9s %9s %8s %10s\n", "state",
		    "exec->ready", "->recovered", "requeued", "retained",
		    "max_id", "RSS", "SIGTERM->exit"
		for (k = 1; k <= nr; k++) print rs[k]
	}
	printf "\nload average at the end: %s\n", load1
}'
}

[ "${1:-}" = durable ] && { shift; durable_mode "$@"; exit $?; }

while [ $# -gt 0 ]; do
	case $1 in
	--quick) idle_s=2 loaded_s=3 tput_s=2 rtt_n=1000 ;;
	burst) mode=burst ;;
	scale) mode=scale ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	heartbeatd|uv_daemon|inline_daemon|seed_asyncio.py) daemons="$daemons $1" ;;
	*) die "unknown argument: $1 (try --help)" ;;
	esac
	shift
done
if [ -z "$daemons" ]; then
	if [ "$mode" = burst ]; then
		daemons=heartbeatd
	else
		daemons="heartbeatd uv_daemon inline_daemon seed_asyncio.py"
	fi
fi

heartbeatd=${HEARTBEATD:-$top/build/src/heartbeatd}
anchors=${ANCHORS:-}
if [ -z "$anchors" ] && [ -f "$top/../shared/anchors/uv_daemon.c" ]; then
	anchors=$(cd "$top/../shared/anchors" && pwd)
fi
if [ -z "$anchors" ] || [ ! -f "$anchors/uv_daemon.c" ]; then
	die "anchor sources not found (set ANCHORS=DIR)"
fi

# ---- dependencies, as bootstrap.sh does ------------------------------------

install_packages() {
	command -v dpkg-query >/dev/null 2>&1 || return 0
	missing=
	for p in gcc pkg-config libuv1-dev libevent-dev libssl-dev python3; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q 'ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -eq 0 ]; then
		sudo=
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo="sudo -n"
	else
		die "missing packages:$missing; run as root or: apt-get install$missing"
	fi
	say "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq >/dev/null || die "apt-get update failed"
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		die "apt-get install$missing failed"
}

install_packages

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hbbench.XXXXXX") || die "mktemp failed"
dpid='' hpid=''
cleanup() {
	[ -n "$dpid" ] && kill -KILL "$dpid" 2>/dev/null
	[ -n "$hpid" ] && kill -KILL "$hpid" 2>/dev/null
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building hbbench, floor, burst and the anchors in $tmp"
for p in hbbench floor burst; do
	cc -std=c11 -O2 -Wall -Wextra -Wshadow -Wmissing-prototypes \
		-Wstrict-prototypes -o "$tmp/$p" "$top/bench/$p.c" ||
		die "$p does not build"
done
# shellcheck disable=SC2046
cc -O2 -o "$tmp/uv_daemon" "$anchors/uv_daemon.c" \
	$(pkg-config --libs libuv) -lcrypto || say "uv_daemon does not build"
# shellcheck disable=SC2046
cc -O2 -o "$tmp/inline_daemon" "$anchors/inline_daemon.c" \
	$(pkg-config --libs libevent) -lcrypto || say "inline_daemon does not build"
: >"$tmp/empty.conf"

# ---- one daemon ---------------------------------------------------------------

# Seconds hbbench needs at most: waits for the first HB (10), settles (0.5),
# measures, drains after the load and after jobs/s (15 each), round trips (30).
# burst: the first HB (10), settle and quiet (1.5), per round the burst
# (burst_limit), STATS (5), the close window (1) and the HB after each.
if [ "$mode" = burst ]; then
	hb_limit=$((10 + 2 + burst_rounds * (burst_limit + 5 + 3) + 10))
else
	hb_limit=$((10 + 1 + idle_s + loaded_s + 15 + tput_s + 15 + 30 + 10))
fi

# The fd limit: burst opens burst_n sockets, and the daemon accepts them.
# shellcheck disable=SC3045 # dash, bash and busybox sh all have -H and -n
if [ "$mode" = burst ]; then
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt $((burst_n + 64)) ]; then
		die "fd hard limit $hard is below $((burst_n + 64)); raise it" \
			"(or set BURST_CLIENTS)"
	fi
	ulimit -n "$hard" || die "cannot raise the fd limit to $hard"
fi

# wait_for SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds.
wait_for() {
	n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

alive() { kill -0 "$1" 2>/dev/null; }
has_port() { grep -q '^peer_port=' "$out" 2>/dev/null; }
is_ready() { grep -q 'msg=ready' "$log" 2>/dev/null || ! alive "$dpid"; }
hb_done() { ! alive "$hpid"; }
gone() { ! alive "$dpid"; }

# run_one NAME COMMAND...: measure one daemon; results go to $tmp/NAME.res.
run_one() {
	name=$1
	shift
	out=$tmp/$name.out log=$tmp/$name.log res=$tmp/$name.res
	fifo=$tmp/$name.fifo
	echo "daemon name=$name" >"$res"

	# hbbench first: it picks the peer port the daemon is told about,
	# then reads the daemon's work address from the fifo.
	mkfifo "$fifo" || die "mkfifo failed"
	exec 3<>"$fifo"
	if [ "$mode" = burst ]; then
		"$tmp/burst" -w - -I 10 -n "$burst_n" -R "$burst_rounds" \
			-t "$burst_limit" <"$fifo" >"$out" 3>&- \
			2>"$tmp/$name.hbbench.err" &
	else
		"$tmp/hbbench" -w - -I 10 -i "$idle_s" -d "$loaded_s" \
			-T "$tput_s" -n "$rtt_n" -r "$tmp/$name.raw" \
			-f "$tmp/floor" -S "$slack_ns" <"$fifo" >"$out" 3>&- \
			2>"$tmp/$name.hbbench.err" &
	fi
	hpid=$!
	if ! wait_for 5 has_port; then
		note="hbbench did not start"
		skip_one
		return
	fi
	port=$(sed -n 's/^peer_port=//p' "$out")

	"$@" -s work_listen=127.0.0.1:0 -s peer_listen=127.0.0.1:0 \
		-s heartbeat_interval_ms=10 -s threads=2 \
		-s "peer=bench@127.0.0.1:$port" 2>"$log" 3>&- &
	dpid=$!
	wait_for 10 is_ready
	addr=$(sed -n 's/.*msg=listening service=work addr="\{0,1\}\([^ "]*\).*/\1/p' "$log" |
		head -n 1)
	if ! alive "$dpid" || [ -z "$addr" ] || ! grep -q 'msg=ready' "$log"; then
		why=$(grep -m 1 -iE 'level=error|error|usage' "$log" 2>/dev/null)
		[ -n "$why" ] || why=$(tail -n 1 "$log" 2>/dev/null)
		note="did not come up: $(printf '%s' "$why" | cut -c1-120)"
		skip_one
		return
	fi
	say "$name: pid $dpid, work $addr, peer port $port"
	echo "$addr" >&3
	exec 3>&-
	wait_for "$hb_limit" hb_done ||
		say "$name: hbbench still running after ${hb_limit}s; stopping it"
	kill -KILL "$hpid" 2>/dev/null
	wait "$hpid" 2>/dev/null
	hstatus=$?
	hpid=''
	[ "$hstatus" -eq 0 ] || echo "note text=hbbench-failed" >>"$res"
	sed 's/^\(hbbench\|burst\): /  \1: /' "$tmp/$name.hbbench.err" >&2
	cat "$out" >>"$res"

	# Peak resident memory over the whole run, then stop it.
	if alive "$dpid"; then
		rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$dpid/status" 2>/dev/null)
		echo "rss kb=${rss:-0}" >>"$res"
		kill -TERM "$dpid"
		if ! wait_for 10 gone; then
			say "$name: no exit 10 s after SIGTERM; SIGKILL"
			kill -KILL "$dpid" 2>/dev/null
		fi
		wait "$dpid"
		status=$?
		case $status in
		0) ;;
		143) say "$name: killed by SIGTERM (it has no handler)" ;;
		*) say "$name: exit status $status after SIGTERM" ;;
		esac
	else
		wait "$dpid"
		say "$name: died during the run (status $?): $(tail -n 1 "$log")"
		echo "note text=died-during-run" >>"$res"
	fi
	dpid=
	rm -f "$fifo"
}

skip_one() {
	say "$name: skipped, $note"
	echo "note text=skipped" >>"$res"
	exec 3>&-
	for p in $dpid $hpid; do
		kill -TERM "$p" 2>/dev/null
	done
	wait_for 5 gone 2>/dev/null
	for p in $dpid $hpid; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	dpid='' hpid=''
	rm -f "$fifo"
}

# ---- scale: idle clients, many peers, slow HTTP clients (bench/scale.c) -------

# scale_one SCENARIO: start bench/scale.c for SCENARIO, then heartbeatd with
# that scenario's settings, hand scale the daemon's addresses and pid, wait
# for it (bounded), stop the daemon. Results go to $tmp/scale.res.
scale_one() {
	sc=$1
	out=$tmp/scale-$sc.out log=$tmp/scale-$sc.log fifo=$tmp/scale-$sc.fifo
	case $sc in
	idle) sargs="-I 10 -n $scale_n -d $scale_s" ;;
	peers) sargs="-I 1000 -n $scale_peers -d $scale_peers_s" ;;
	http) sargs="-I 10 -n $scale_n -d $scale_s -T $scale_http_ms -b 500 -r $scale_recon" ;;
	esac
	mkfifo "$fifo" || die "mkfifo failed"
	exec 3<>"$fifo"
	# shellcheck disable=SC2086
	"$tmp/scale" $sargs "$sc" <"$fifo" >"$out" 3>&- \
		2>"$tmp/scale-$sc.err" &
	hpid=$!
	if ! wait_for 5 has_port; then
		say "scale $sc: scale.c did not start: $(cat "$tmp/scale-$sc.err")"
		exec 3>&-
		kill -KILL "$hpid" 2>/dev/null
		wait "$hpid" 2>/dev/null
		hpid=
		return
	fi
	port=$(sed -n 's/^peer_port=//p' "$out")
	set -- -c "$tmp/empty.conf" -s work_listen=127.0.0.1:0 \
		-s peer_listen=127.0.0.1:0 -s threads=2 -s heartbeat_log_ms=0 \
		-s "timer_slack_ns=$slack_ns" \
		-s "max_connections=$((scale_n * 2))"
	case $sc in
	peers)
		# 1000 peers, each its own name, all at the simulator's port
		i=1
		while [ "$i" -le "$scale_peers" ]; do
			set -- "$@" -s "peer=p$i@127.0.0.1:$port"
			i=$((i + 1))
		done
		set -- "$@" -s heartbeat_interval_ms=1000 -s http_listen=
		;;
	idle)
		set -- "$@" -s heartbeat_interval_ms=10 -s peer_timeout_ms=10000 \
			-s "peer=bench@127.0.0.1:$port" -s http_listen=
		;;
	http)
		set -- "$@" -s heartbeat_interval_ms=10 -s peer_timeout_ms=10000 \
			-s "peer=bench@127.0.0.1:$port" \
			-s http_listen=127.0.0.1:0 \
			-s "http_timeout_ms=$scale_http_ms"
		;;
	esac
	"$heartbeatd" "$@" 2>"$log" 3>&- &
	dpid=$!
	wait_for 10 is_ready
	addr=$(sed -n 's/.*msg=listening service=work addr="\{0,1\}\([^ "]*\).*/\1/p' "$log" |
		head -n 1)
	haddr=$(sed -n 's/.*msg=listening service=http addr="\{0,1\}\([^ "]*\).*/\1/p' "$log" |
		head -n 1)
	paddr=$(sed -n 's/.*msg=listening service=peer addr="\{0,1\}\([^ "]*\).*/\1/p' "$log" |
		head -n 1)
	if ! alive "$dpid" || [ -z "$addr" ] || ! grep -q 'msg=ready' "$log"; then
		say "scale $sc: heartbeatd did not come up: $(tail -n 1 "$log")"
		echo "- - - 0" >&3
	else
		say "scale $sc: heartbeatd pid $dpid, work $addr," \
			"http ${haddr:--}, peer port $port"
		echo "$addr ${haddr:--} ${paddr:--} $dpid" >&3
	fi
	exec 3>&-
	wait_for "$scale_limit" hb_done ||
		say "scale $sc: scale.c still running after ${scale_limit}s; stopping it"
	kill -KILL "$hpid" 2>/dev/null
	wait "$hpid" 2>/dev/null
	hpid=
	sed 's/^scale: /  scale: /' "$tmp/scale-$sc.err" >&2
	grep -v '^peer_port=' "$out" >>"$tmp/scale.res"
	if alive "$dpid"; then
		kill -TERM "$dpid"
		if ! wait_for 10 gone; then
			say "scale $sc: no exit 10 s after SIGTERM; SIGKILL"
			kill -KILL "$dpid" 2>/dev/null
		fi
	else
		say "scale $sc: heartbeatd died during the run: $(tail -n 1 "$log")"
	fi
	wait "$dpid" 2>/dev/null
	dpid=
	rm -f "$fifo"
}

# shellcheck disable=SC3045 # dash, bash and busybox sh all have -H and -n
run_scale() {
	scale_n=${SCALE_CLIENTS:-10000} scale_s=${SCALE_SECONDS:-5}
	scale_peers=${SCALE_PEERS:-1000} scale_peers_s=${SCALE_PEER_SECONDS:-15}
	scale_http_ms=${SCALE_HTTP_TIMEOUT_MS:-2000}
	scale_recon=${SCALE_HTTP_RECONNECT_MS:-1000}
	scale_limit=$((10 + 30 + 30 + scale_s + scale_peers_s + 20))
	cc -std=c11 -O2 -Wall -Wextra -Wshadow -Wmissing-prototypes \
		-Wstrict-prototypes -o "$tmp/scale" "$top/bench/scale.c" ||
		die "scale does not build"
	[ -x "$heartbeatd" ] || die "$heartbeatd is not built (set HEARTBEATD=PATH)"
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt $((scale_n + 256)) ]; then
		die "fd hard limit $hard is below $((scale_n + 256)); raise it" \
			"(or set SCALE_CLIENTS)"
	fi
	ulimit -n "$hard" || die "cannot raise the fd limit to $hard"
	say "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
		"load average $(cut -d' ' -f1-3 /proc/loadavg); scale:" \
		"$scale_n clients, $scale_peers peers, fd limit $(ulimit -n)"
	: >"$tmp/scale.res"
	for sc in ${SCALE_ONLY:-idle peers http}; do
		case $sc in
		idle|peers|http) scale_one "$sc" ;;
		*) die "SCALE_ONLY: unknown scenario $sc (idle, peers, http)" ;;
		esac
	done
	say "load average now $(cut -d' ' -f1-3 /proc/loadavg) (other work on" \
		"the machine shows in every figure)"
	awk -v recon="$scale_recon" -f /dev/stdin "$tmp/scale.res" <<'AWK'
function t(us) {
	if (us == "") return "-"
	us += 0
	if (us < 1000) return sprintf("%dus", us)
	if (us < 10000) return sprintf("%.2fms", us / 1000)
	if (us < 1000000) return sprintf("%.1fms", us / 1000)
	return sprintf("%.2fs", us / 1000000)
}
function mb(kb) { return kb == "" || kb < 0 ? "-" : sprintf("%.1fMiB", kb / 1024) }
function get(key,    i, eq) {
	for (i = 2; i <= NF; i++) {
		eq = index($i, "=")
		if (substr($i, 1, eq - 1) == key) return substr($i, eq + 1)
	}
	return ""
}
# lateness lines come before their scenario's summary: keep them till then
function late(label) {
	pend = pend sprintf("  %-27s HB %5s mis %s  peer p50/p99/max %s/%s/%s  own p99/max %s/%s  seen max %s\n",
	    label, get("hb"), get("missed"), t(get("gap_p50_us")),
	    t(get("gap_p99_us")), t(get("gap_max_us")), t(get("lag_p99_us")),
	    t(get("lag_max_us")), t(get("seen_max_us")))
}
function flush() { printf "%s", pend; pend = "" }
$1 == "idle_connect" { late("while they connect"); next }
$1 == "idle_held" { late("while held, idle"); next }
$1 == "idle" {
	printf "(1) %d idle work clients (10 ms interval): %d PONGs, %d failed, all in %s\n",
	    get("clients"), get("pongs"), get("failed"), t(get("serve_us"))
	printf "  RSS %s before, %s with them (peak %s): %s bytes per connection; daemon fds %s, STATS connections %s\n",
	    mb(get("rss0_kb")), mb(get("rss_kb")), mb(get("hwm_kb")),
	    get("bytes_per_conn"), get("fds"), get("connections")
	flush()
	next
}
$1 == "peers_held" {
	late("over the window, all links")
	pend = pend sprintf("  %-27s one tick's HBs, first to last <t>: p50 %s max %s; transit max %s\n",
	    "", t(get("span_p50_us")), t(get("span_max_us")),
	    t(get("transit_max_us")))
	next
}
$1 == "peers" {
	printf "(2) %d peers at 1 s: %s up after %s (from the first link: %s); links %s\n",
	    get("peers"), get("peers_up"), t(get("up_us")), t(get("up_first_us")),
	    get("links")
	printf "  CPU %.2f%% of a core over %s (%s ticks); RSS %s, peak %s; fds %s\n",
	    get("cpu_pct"), t(get("window_us")), get("cpu_ticks"),
	    mb(get("rss_kb")), mb(get("hwm_kb")), get("fds")
	flush()
	next
}
$1 == "http_quiet" { next }
$1 == "http_flood" { late("during the flood"); next }
$1 == "http" {
	how = "no reconnect"
	if (recon + 0 > 0)
		how = sprintf("reconnect %d-%d ms after a close", recon / 2, recon * 3 / 2)
	printf "(3) %d slow HTTP clients (a byte every 500 ms, %s), http_timeout_ms=%d, %s\n",
	    get("clients"), how, get("timeout_ms"), t(get("window_us"))
	printf "  connects %s (errors %s, failed %s); connected at once (client side, incl. the backlog), at most: %s\n",
	    get("connects"), get("connect_err"), get("conn_failed"), get("open_max")
	printf "  closed at once: %s (p50 %s, p99 %s, max %s); cut at the timeout: %s (%s..%s); longest open: %s\n",
	    get("shed"), t(get("shed_p50_us")), t(get("shed_p99_us")),
	    t(get("shed_max_us")), get("cut"), t(get("cut_min_us")),
	    t(get("cut_max_us")), t(get("hold_max_us"))
	printf "  daemon fds: %s before, peak %s, %s after\n", get("fds0"),
	    get("fds_peak"), get("fds_after")
	printf "  /healthz every 250 ms: %s answered 200 (max %s), %s closed unanswered, %s timed out (1 s)\n",
	    get("healthz_ok"), t(get("healthz_max_us")), get("healthz_refused"),
	    get("healthz_timeout")
	printf "  work PING every 100 ms: %s PONGs, max %s, %s over 100 ms\n",
	    get("pings"), t(get("ping_max_us")), get("ping_late")
	printf "  inbound peer HB every 100 ms: %s ACKs, max %s, %s over 100 ms; STATS peers_up after: %s\n",
	    get("acks"), t(get("ack_max_us")), get("ack_late"), get("peers_up")
	flush()
	next
}
END {
	print "\npeer: how much longer than one interval the peer waited for each HB (kernel stamps)"
	print "own: the daemon's own tick lateness (lag_us= on its HBs); seen: own + from the"
	print "tick's first HB formatted to this HB's arrival (what the last peer of a tick feels)"
}
AWK
	exit 0
}

if [ "$mode" = scale ]; then
	run_scale
fi

if [ "$mode" = burst ]; then
	# shellcheck disable=SC3045
	nofile=$(ulimit -n)
	say "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
		"load average $(cut -d' ' -f1-3 /proc/loadavg);" \
		"burst: $burst_n clients, $burst_rounds rounds, fd limit" \
		"$nofile"
	hb_extra="-s max_connections=$((burst_n * 2))"
else
	say "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
		"load average $(cut -d' ' -f1-3 /proc/loadavg);" \
		"windows: idle ${idle_s}s, loaded ${loaded_s}s, jobs/s ${tput_s}s," \
		"$rtt_n round trips"
	hb_extra=
fi
for d in $daemons; do
	case $d in
	heartbeatd)
		if [ -x "$heartbeatd" ]; then
			# shellcheck disable=SC2086
			run_one heartbeatd "$heartbeatd" -c "$tmp/empty.conf" \
				-s http_listen= -s heartbeat_log_ms=0 \
				-s peer_timeout_ms=10000 \
				-s "timer_slack_ns=$slack_ns" $hb_extra
		else
			say "heartbeatd: skipped, $heartbeatd is not built" \
				"(set HEARTBEATD=PATH)"
			echo "daemon name=heartbeatd" >"$tmp/heartbeatd.res"
			echo "note text=skipped" >>"$tmp/heartbeatd.res"
		fi
		;;
	uv_daemon|inline_daemon)
		if [ -x "$tmp/$d" ]; then
			run_one "$d" "$tmp/$d"
		else
			say "$d: skipped, it does not build"
			printf 'daemon name=%s\nnote text=skipped\n' "$d" >"$tmp/$d.res"
		fi
		;;
	seed_asyncio.py)
		run_one "$d" python3 "$anchors/seed_asyncio.py"
		;;
	esac
done

# ---- the table ----------------------------------------------------------------

say "load average now $(cut -d' ' -f1-3 /proc/loadavg) (other work on the" \
	"machine shows in every figure)"

files=
for d in $daemons; do
	files="$files $tmp/$d.res"
done

# ---- burst: one row per window -------------------------------------------------

if [ "$mode" = burst ]; then
	# shellcheck disable=SC2086
	awk -v n="$burst_n" -v rounds="$burst_rounds" '
function t(us) {
	if (us == "") return "-"
	us += 0
	if (us < 1000) return sprintf("%dus", us)
	if (us < 10000) return sprintf("%.2fms", us / 1000)
	if (us < 1000000) return sprintf("%.1fms", us / 1000)
	return sprintf("%.2fs", us / 1000000)
}
function get(key,    i, eq) {	# the value of key= on this line
	for (i = 2; i <= NF; i++) {
		eq = index($i, "=")
		if (substr($i, 1, eq - 1) == key) return substr($i, eq + 1)
	}
	return ""
}
BEGIN {
	printf "heartbeat lateness (10 ms interval) while %d clients connect " \
	    "at once, each PING -> PONG; %d rounds\n", n, rounds
	hdr = "%-10s %-7s %6s %6s %4s %7s %4s %3s %7s %7s %7s %7s %7s %7s %7s %5s\n"
	printf hdr, "", "", "", "", "", "", "", "", "peer", "peer", "peer",
	    "own", "own", "own", "", ""
	printf hdr, "daemon", "window", "accept", "pongs", "fail", "served",
	    "HB", "mis", "p50", "p99", "max", "p50", "p99", "max", "transit",
	    "drops"
}
$1 == "daemon" { name = substr($2, 6); next }
$1 == "note" { printf "%-12s (%s)\n", name, substr($2, 6); next }
$1 == "quiet" || $1 == "burst" || $1 == "close" || $1 == "burst_all" ||
    $1 == "close_all" {
	w = $1
	if (w == "burst" || w == "close") w = w " " get("round")
	sub(/_all$/, " all", w)
	acc = get("accepted")
	printf hdr, name, w, acc == "" ? "" : (acc < 0 ? "?" : acc),
	    get("pongs"), get("failed"),
	    get("serve_us") == "" ? "" : t(get("serve_us")), get("hb"),
	    get("missed"), t(get("gap_p50_us")), t(get("gap_p99_us")),
	    t(get("gap_max_us")), t(get("lag_p50_us")), t(get("lag_p99_us")),
	    t(get("lag_max_us")), t(get("transit_max_us")), get("drops")
}
END {
	print "\npeer: how much longer than 10 ms the peer waited for each HB " \
	    "(kernel receive stamps)"
	print "own: the daemon'"'"'s own tick lateness against its schedule " \
	    "(lag_us on its HBs)"
	print "transit: worst time from an HB'"'"'s send stamp to its arrival; " \
	    "drops: packets the"
	print "kernel dropped from its input backlog (netdev_max_backlog) in " \
	    "the window; served:"
	print "first connect to last PONG; mis: ticks the daemon swallowed " \
	    "(missed=)"
}' $files
	exit 0
fi

# shellcheck disable=SC2086
awk -v idle_s="$idle_s" -v loaded_s="$loaded_s" -v tput_s="$tput_s" \
    -v rtt_n="$rtt_n" '
function t(us) {	# a time in microseconds, in a readable unit
	if (us == "") return "-"
	us += 0
	if (us < 1000) return sprintf("%dus", us)
	if (us < 10000) return sprintf("%.2fms", us / 1000)
	if (us < 1000000) return sprintf("%.1fms", us / 1000)
	return sprintf("%.2fs", us / 1000000)
}
function rate(r) {
	if (r == "") return "-"
	r += 0
	if (r >= 1000000) return sprintf("%.2fM", r / 1000000)
	if (r >= 1000) return sprintf("%.1fk", r / 1000)
	return sprintf("%.0f", r)
}
function mb(kb) { return kb == "" ? "-" : sprintf("%.1fMB", kb / 1024) }
function ratio(a, b) {	# heartbeatd over an anchor
	if (a == "" || b == "" || b + 0 == 0) return "n/a"
	return sprintf("x%.3g", a / b)
}
$1 == "daemon" { split($2, kv, "="); name = kv[2]; order[++n] = name; next }
$1 == "note" {
	split($2, kv, "=")
	note[name] = note[name] (note[name] == "" ? "" : ", ") kv[2]
	next
}
{
	for (i = 2; i <= NF; i++) {
		eq = index($i, "=")
		v[name, $1 "." substr($i, 1, eq - 1)] = substr($i, eq + 1)
	}
}
END {
	for (k = 1; k <= n; k++) {
		d = order[k]
		if (v[d, "counts.links"] + 0 > 1)
			note[d] = note[d] (note[d] == "" ? "" : ", ") \
			    v[d, "counts.links"] " heartbeat links"
		if (v[d, "counts.err"] + v[d, "counts.fail"] > 0)
			note[d] = note[d] (note[d] == "" ? "" : ", ") \
			    (v[d, "counts.err"] + v[d, "counts.fail"]) " ERR/FAIL"
	}
	hdr = "%-16s %9s %9s %9s %9s %6s %8s %8s %8s %7s%s\n"
	printf "\nheartbeat lateness seen by the peer (10 ms interval); " \
	    "%d threads; idle %ds, loaded %ds\n", 2, idle_s, loaded_s
	printf hdr, "daemon", "idle p99", "load p50", "load p99", "load max",
	    "HB/s", "jobs/s", "rtt p50", "rtt p99", "RSS", ""
	for (k = 1; k <= n; k++) {
		d = order[k]
		if (note[d] == "skipped") {
			printf "%-16s (skipped)\n", d
			continue
		}
		printf hdr, d, t(v[d, "idle.gap_p99_us"]),
		    t(v[d, "loaded.gap_p50_us"]), t(v[d, "loaded.gap_p99_us"]),
		    t(v[d, "loaded.gap_max_us"]),
		    v[d, "loaded.hb_per_s"] == "" ? "-" : v[d, "loaded.hb_per_s"],
		    rate(v[d, "tput.jobs_per_s"]), t(v[d, "rtt.p50_us"]),
		    t(v[d, "rtt.p99_us"]), mb(v[d, "rss.kb"]),
		    note[d] == "" ? "" : "  (" note[d] ")"
	}
	printf "\nagainst a fixed schedule (earliest phase), loaded; counts " \
	    "drift and lost ticks\n"
	h2 = "%-16s %9s %9s %9s %7s %10s\n"
	printf h2, "daemon", "p50", "p99", "max", "missed", "read p99"
	for (k = 1; k <= n; k++) {
		d = order[k]
		if (v[d, "loaded.hb"] == "")
			continue
		printf h2, d, t(v[d, "loaded.sched_p50_us"]),
		    t(v[d, "loaded.sched_p99_us"]), t(v[d, "loaded.sched_max_us"]),
		    v[d, "loaded.missed"], t(v[d, "loaded.read_p99_us"])
	}
	printf "\nagainst the bare-timer floor: bench/floor.c, clock_nanosleep to " \
	    "the same 10 ms schedule,\n" \
	    "same timer slack, in the same loaded window; own = the daemon'"'"'s " \
	    "lag_us, peer = fixed schedule\n"
	h3 = "%-16s %9s %9s %9s %8s %8s %9s %9s %9s %9s\n"
	printf h3, "daemon", "floor p50", "floor p99", "floor max", "own p50",
	    "own p99", "own/floor", "own/floor", "peer/flr", "peer/flr"
	printf h3, "", "", "", "", "", "", "p50", "p99", "p50", "p99"
	for (k = 1; k <= n; k++) {
		d = order[k]
		if (v[d, "floor.ticks"] == "")
			continue
		printf h3, d, t(v[d, "floor.late_p50_us"]),
		    t(v[d, "floor.late_p99_us"]), t(v[d, "floor.late_max_us"]),
		    t(v[d, "loaded.lag_p50_us"]), t(v[d, "loaded.lag_p99_us"]),
		    ratio(v[d, "loaded.lag_p50_us"], v[d, "floor.late_p50_us"]),
		    ratio(v[d, "loaded.lag_p99_us"], v[d, "floor.late_p99_us"]),
		    ratio(v[d, "loaded.sched_p50_us"], v[d, "floor.late_p50_us"]),
		    ratio(v[d, "loaded.sched_p99_us"], v[d, "floor.late_p99_us"])
	}
	h = "heartbeatd"
	printf "\nheartbeatd / anchor (lateness, rtt, RSS: lower is better; " \
	    "jobs/s: higher is better)\n"
	if (!((h, "idle.hb") in v)) {
		print "  none: heartbeatd did not run"
		exit
	}
	for (k = 1; k <= n; k++) {
		d = order[k]
		if (d == h)
			continue
		if (note[d] == "skipped") {
			printf "  vs %-16s (skipped)\n", d
			continue
		}
		printf "  vs %-16s load p99 %s  load max %s  idle p99 %s  " \
		    "jobs/s %s  rtt p50 %s  RSS %s\n", d,
		    ratio(v[h, "loaded.gap_p99_us"], v[d, "loaded.gap_p99_us"]),
		    ratio(v[h, "loaded.gap_max_us"], v[d, "loaded.gap_max_us"]),
		    ratio(v[h, "idle.gap_p99_us"], v[d, "idle.gap_p99_us"]),
		    ratio(v[h, "tput.jobs_per_s"], v[d, "tput.jobs_per_s"]),
		    ratio(v[h, "rtt.p50_us"], v[d, "rtt.p50_us"]),
		    ratio(v[h, "rss.kb"], v[d, "rss.kb"])
	}
}' $files
