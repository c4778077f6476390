#!/bin/sh
# fuzz/run.sh - build the libFuzzer harnesses with clang (ASan + UBSan) and
# run each one for a while on a small seed corpus.
#
#   fuzz/run.sh [SECONDS] [TARGET...]    TARGET: proto config (default: both)
#
# SECONDS defaults to 60 per target. Binaries, corpora and crash files go to
# $FUZZ_DIR (default: a new temporary directory, printed at the start); a
# corpus found there from an earlier run is reused. Exits non-zero when a
# target fails to build or the fuzzer finds a crash.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-proto config}
CC=${CC:-clang}
dir=${FUZZ_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/hb-fuzz.XXXXXX")}
mkdir -p "$dir"

case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS] [proto|config]..." >&2; exit 2 ;;
esac

say() { printf 'fuzz: %s\n' "$*" >&2; }

CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
-I $top/src -DSYSCONFDIR=\"/etc\""

# Each target: its harness, the src/*.c it needs and its pkg-config modules.
build() {
	name=$1
	case $name in
	proto)	srcs="src/proto.c src/status.c src/liveness.c src/util.c"; mods= ;;
	config)	srcs="src/config.c src/log.c src/util.c"; mods=inih ;;
	*)	say "unknown target $name"; exit 2 ;;
	esac
	files="$top/fuzz/fuzz_$name.c"
	for s in $srcs; do files="$files $top/$s"; done
	libs="-lpthread"
	if [ -n "$mods" ]; then
		# shellcheck disable=SC2086
		libs="$(pkg-config --cflags --libs $mods) $libs"
	fi
	say "building $dir/fuzz_$name"
	# shellcheck disable=SC2086
	$CC $CFLAGS -o "$dir/fuzz_$name" $files $libs
}

# A few valid and nearly valid inputs to start from, one file per line of
# seeds_TARGET (config seeds are whole files: "\n" in them is expanded).
seed() {
	name=$1
	c=$dir/corpus_$name
	mkdir -p "$c"
	i=0
	"seeds_$name" | while IFS= read -r line; do
		i=$((i + 1))
		if [ "$name" = config ]; then
			printf '%b\n' "$line" >"$c/seed$i"
		else
			printf '%s' "$line" >"$c/seed$i"
		fi
	done
}

seeds_proto() {
	cat <<'LINES'
PING
auth s3cret
SUBMIT sleep ms=100 timeout_ms=500
submit sha256 rounds=3 seed=abc
SUBMIT primes n=1000000
CANCEL 18446744073709551615
STATUS 0
STATS
PEERS x
HELLO node-a 1
WELCOME b 1
HB 12 123456789 lag_us=250 load=1
ACK 12 123456789
JOB 9 kind=spin state=running progress=42 queue_us=10 run_us=20
FAIL 5 reason=error detail="a \"b\" \\ c\x01"
STATS uptime_s=1 threads=4 busy=0 queued=0
LINES
}

seeds_config() {
	cat <<'LINES'
node_name = a\nwork_listen = 127.0.0.1:0\npeer = b@127.0.0.1:7071
heartbeat_interval_ms = 100\npeer_timeout_ms = 300\nthreads = 2
# comment\nlog_format = json\nlog_level = debug\nauth_token = x
http_listen =\npool_mode = inline\nqueue_max = 1
peer = [::1]:7071\npeer = c@localhost:9\nmax_line = 64
LINES
}

status=0
for t in $targets; do
	build "$t"
	seed "$t"
	say "running fuzz_$t for ${secs}s (corpus $dir/corpus_$t)"
	(cd "$dir" && "./fuzz_$t" -max_total_time="$secs" -max_len=4096 \
	    -print_final_stats=1 "corpus_$t") 2>"$dir/fuzz_$t.log" || {
		status=1
		say "fuzz_$t FAILED: see $dir/fuzz_$t.log and $dir/crash-*"
	}
	grep -E '^stat::number_of_executed_units|^Done' "$dir/fuzz_$t.log" >&2 || true
done
exit $status
