#!/bin/sh
# bootstrap.sh - from a fresh clone to a running demo or a green test suite.
#
#   ./bootstrap.sh demo [demo options]   build, then run the three-node demo
#   ./bootstrap.sh check                 build, then the whole test suite: a
#                                        normal build, an ASan+UBSan build and
#                                        a TSan build of the threaded parts
#   ./bootstrap.sh build                 only install dependencies and build
#
# Missing Debian packages are installed with apt-get (through sudo when not
# root). autoreconf runs only when its inputs changed; each build lives in its
# own directory (build/, build-asan/, build-tsan/), so re-runs are fast.
set -eu

cd "$(dirname "$0")"
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# systemd: tests/systemd.test boots it (with unshare, nsenter and mount from
# the essential util-linux and mount) to run the shipped unit; haproxy:
# tests/haproxy.test runs contrib/haproxy/heartbeatd.cfg in front of nodes;
# prometheus: promtool and prometheus for tests/prometheus.test (contrib/
# alerts and a real scrape). On a host running systemd the package also
# enables and starts its own prometheus.service (port 9090); stop it with
# "systemctl disable --now prometheus" if you only want the tools.
PACKAGES="gcc make autoconf automake pkg-config libevent-dev check libinih-dev \
libssl-dev libsystemd-dev libsqlite3-dev systemd haproxy prometheus"

say() { printf '%s\n' "bootstrap: $*" >&2; }
die() { say "$*"; exit 1; }

install_packages() {
	missing=
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	command -v apt-get >/dev/null 2>&1 ||
		die "missing packages:$missing (and no apt-get: install them by hand)"
	if [ "$(id -u)" -eq 0 ]; then
		sudo=
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo="sudo -n"
	elif command -v sudo >/dev/null 2>&1 && [ -t 0 ]; then
		sudo=sudo
	else
		die "missing packages:$missing; run as root or with sudo: apt-get install$missing"
	fi
	say "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq >/dev/null || die "apt-get update failed"
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		die "apt-get install$missing failed"
}

# Regenerate configure only when configure.ac or a Makefile.am changed.
generate() {
	if [ ! -x configure ] || [ configure.ac -nt configure ] ||
	    [ Makefile.am -nt Makefile.in ] || [ ! -f Makefile.in ]; then
		say "autoreconf"
		autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; die "autoreconf failed"; }
	fi
}

# build DIR [configure args...]: configure (once) and make in DIR.
build() {
	dir=$1; shift
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/config.status" ]; then
		(cd "$dir" && "$top/configure" -q "$@") >"$dir.configure.log" 2>&1 ||
			{ cat "$dir.configure.log"; die "configure failed in $dir"; }
	fi
	make -s -C "$dir" -j"$jobs" >"$dir.make.log" 2>&1 ||
		{ cat "$dir.make.log"; die "build failed in $dir"; }
}

# test_log DIR TEST: the log automake wrote for TEST. A test whose name ends
# in one of TEST_EXTENSIONS (tests/demo.test) logs to its name without the
# extension (tests/demo.log); any other test to its name plus .log.
test_log() {
	case ${2##*/} in
	*.*) [ -f "$1/$2.log" ] || { echo "$1/${2%.*}.log"; return; } ;;
	esac
	echo "$1/$2.log"
}

# run_check DIR [make args...]: make check, printing failing tests' logs.
run_check() {
	dir=$1; shift
	say "make check in $dir"
	if ! make -C "$dir" -j"$jobs" check "$@" >"$dir.check.log" 2>&1; then
		# no test result at all: the tests did not build; show why
		grep -E '^(PASS|FAIL|ERROR|XFAIL|XPASS|SKIP):' "$dir.check.log" >&2 ||
			tail -n 40 "$dir.check.log" >&2
		for t in $(sed -n 's/^\(FAIL\|ERROR\): \([^ ]*\).*/\2/p' "$dir.check.log"); do
			log=$(test_log "$dir" "$t")
			say "---- $log"
			cat "$log" >&2 || true
		done
		die "tests failed in $dir"
	fi
	grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR):' "$dir.check.log" | tr '\n' ' ' >&2
	echo >&2
	# a skipped test says why on its SKIP: line; show it
	for t in $(sed -n 's/^SKIP: \([^ ]*\).*/\1/p' "$dir.check.log"); do
		say "$t: $(grep -m 1 '^SKIP:' "$(test_log "$dir" "$t")" 2>/dev/null)"
	done
	passed=$((passed + $(sed -n 's/^# PASS: *//p' "$dir.check.log")))
}
passed=0

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
demo)
	install_packages
	generate
	build build
	exec "$top/bench/demo.sh" --build "$top/build" "$@"
	;;
check)
	install_packages
	generate
	build build
	run_check build
	build build-asan --enable-sanitizers=asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_check build-asan
	build build-tsan --enable-sanitizers=tsan
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		run_check build-tsan TESTS="tests/check_pool tests/check_journal tests/check_work"
	say "all checks passed"
	echo "check: $passed passed, 0 failed"
	;;
build)
	install_packages
	generate
	build build
	;;
*)
	echo "usage: $0 demo [--duration SECONDS] | check | build" >&2
	exit 2
	;;
esac
