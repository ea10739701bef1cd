# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
#
# Shared harness of the otagw daemon's integration tests (test_gateway_*.sh,
# test_antitheft.sh): the simulator, otagw with a config, API tokens, bounded
# waits and the cleanup. Source it from a test after `set -euo pipefail`; it
# only defines functions and never starts anything by itself.
#
#   gw_init BINDIR            bin, src (the source tree) and tmp (gw_tmpdir);
#                             puts gwapi.py (the API client) on PYTHONPATH;
#                             installs gw_stop_all as the EXIT trap
#   gw_need NAME...           fail unless $bin/NAME is executable
#   gw_fail MSG               print FAIL and the tails of otagw's stderr and
#                             log (and $gw_fail_hook's output), exit 1;
#                             `fail` is the same
#   gw_wait_file FILE         wait (10 s) until FILE is non-empty
#   gw_free_port              a loopback TCP port nobody listens on now
#   gw_start_sim ARG...       otagw-sim ARG... --port-file $tmp/sim.json in the
#                             background (sim_pid), wait for its port file
#   gw_start_ismg POP ARG...  gw_start_sim as the ISMG (CMPP, the test secret
#                             and SP id) with population POP; sets ismg
#   gw_sim_port ROLE          a port from the simulator's port file
#   gw_sim_counts             ask the simulator (SIGUSR1) for $tmp/counts.json
#   gw_start_receiver PORT_FILE LOG [MODE_FILE]
#                             callback_receiver.py (the business platform) in
#                             the background (added to gw_extra_pids), wait for
#                             its port file
#   gw_conf_gateway PORT LEVEL [LINE...]   the [gateway] section (loopback,
#                             plain_http = yes, log file $tmp/gw.log)
#   gw_conf_engine [LINE...]  the [engine] section (db = $tmp/otagw.db)
#   gw_conf_clear_import      the [keys] section with clear_import = yes
#   gw_conf_section NAME [LINE...]          any other section
#   gw_conf_link_cmpp PORT [LINE...]        [link sim]: CMPP to 127.0.0.1:PORT
#   gw_make_token NAME ROLE FILE            `otatool token create` into $tmp/FILE
#   gw_launch_otagw [ARG...]  otagw -c $tmp/otagw.conf ARG... in the background
#                             (gw_pid; stdout $tmp/gw.out, stderr $tmp/gw.err)
#   gw_start_otagw            gw_launch_otagw --port-file, wait, set port
#   gw_wait_listening MSG     wait (10 s) for otagw's listening line, fail MSG
#   gw_term_otagw             SIGTERM; fail if otagw still runs 10 s later
#   gw_stop_otagw             gw_term_otagw, then fail unless it exited 0
#   gw_kill9_otagw            SIGKILL otagw and reap it
#   gw_stop_all               the EXIT trap: SIGTERM to otagw, $gw_stop_hook,
#                             SIGTERM to the simulator and $gw_extra_pids,
#                             SIGKILL whatever still runs 5 s later; removes
#                             $tmp unless KEEP_TMP is set
#
# Variables: bin src tmp (gw_init), sim_pid gw_pid port ismg, gw_extra_pids
# (pids of the test's own helper processes, stopped by gw_stop_all),
# gw_stop_hook and gw_fail_hook (names of functions, or empty).

sim_pid=
gw_pid=
port=
ismg=
gw_extra_pids=
gw_stop_hook=
gw_fail_hook=

gw_tmpdir() {
    tmp=$(mktemp -d)
}

gw_init() {
    bin=$1
    # shellcheck disable=SC2034  # the source tree, for the sourcing test
    src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    gw_tmpdir
    # gwapi.py, the tests' API client, for every python3 they run
    PYTHONPATH="$(dirname "${BASH_SOURCE[0]}")${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONPATH
    trap gw_stop_all EXIT
}

gw_stop_all() {
    local p
    # A simulator stopped with SIGSTOP must run again to see its SIGTERM.
    if [ -n "$sim_pid" ]; then kill -CONT "$sim_pid" 2>/dev/null || true; fi
    if [ -n "$gw_pid" ]; then kill -TERM "$gw_pid" 2>/dev/null || true; fi
    if [ -n "$gw_stop_hook" ]; then
        "$gw_stop_hook" || true
    fi
    for p in $sim_pid $gw_extra_pids; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in $gw_pid $sim_pid $gw_extra_pids; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}

gw_fail() {
    echo "FAIL: $*"
    [ -f "$tmp/gw.err" ] && tail -n 10 "$tmp/gw.err" | sed 's/^/  otagw stderr: /'
    [ -f "$tmp/gw.log" ] && grep -v level=debug "$tmp/gw.log" | tail -n 30 | sed 's/^/  otagw: /'
    if [ -n "$gw_fail_hook" ]; then
        "$gw_fail_hook" || true
    fi
    exit 1
}

fail() {
    gw_fail "$@"
}

gw_need() {
    local b
    for b in "$@"; do
        [ -x "$bin/$b" ] || gw_fail "no $bin/$b"
    done
}

# Wait (bounded, 10 s) until file $1 is non-empty.
gw_wait_file() {
    for _ in $(seq 100); do
        [ -s "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

gw_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

gw_sim_port() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/sim.json" "$1"
}

gw_start_sim() {
    "$bin/otagw-sim" "$@" --port-file "$tmp/sim.json" > "$tmp/sim.out" 2> "$tmp/sim.err" &
    sim_pid=$!
    gw_wait_file "$tmp/sim.json" || gw_fail "simulator did not start: $(cat "$tmp/sim.err")"
}

gw_start_ismg() {
    local pop=$1
    shift
    gw_start_sim --ismg 127.0.0.1:0 --secret otagw-test --sp-id 901234 --population "$pop" "$@"
    # shellcheck disable=SC2034  # the ISMG's port, for the sourcing test
    ismg=$(gw_sim_port ismg)
}

gw_sim_counts() {
    rm -f "$tmp/counts.json"
    kill -USR1 "$sim_pid"
    gw_wait_file "$tmp/counts.json" || gw_fail "no simulator counts"
}

gw_start_receiver() {
    python3 "$(dirname "${BASH_SOURCE[0]}")/callback_receiver.py" "$@" &
    gw_extra_pids="$gw_extra_pids $!"
    gw_wait_file "$1" || gw_fail "callback receiver did not start"
}

gw_conf_section() {
    echo "[$1]"
    shift
    [ "$#" -eq 0 ] || printf '%s\n' "$@"
}

gw_conf_gateway() {
    local listen=$1 level=$2
    shift 2
    gw_conf_section gateway "listen = 127.0.0.1:$listen" "plain_http = yes" \
        "log_level = $level" "log_file = $tmp/gw.log" "$@"
}

# shellcheck disable=SC2120  # the extra lines are optional
gw_conf_engine() {
    gw_conf_section engine "db = $tmp/otagw.db" "$@"
}

gw_conf_clear_import() {
    gw_conf_section keys \
        "# Test keys arrive in clear over loopback (the key store refuses that by default)." \
        "clear_import = yes"
}

gw_conf_link_cmpp() {
    local p=$1
    shift
    gw_conf_section "link sim" "kind = cmpp" "host = 127.0.0.1" "port = $p" "$@" \
        "sp_id = 901234" "secret = otagw-test"
}

gw_make_token() {
    "$bin/otatool" token create --db "$tmp/otagw.db" --name "$1" --role "$2" \
        --out "$tmp/$3" > /dev/null || gw_fail "otatool token create $1 ($2)"
}

gw_launch_otagw() {
    "$bin/otagw" -c "$tmp/otagw.conf" "$@" > "$tmp/gw.out" 2>> "$tmp/gw.err" &
    gw_pid=$!
}

gw_start_otagw() {
    rm -f "$tmp/port"
    gw_launch_otagw --port-file "$tmp/port"
    gw_wait_file "$tmp/port" || gw_fail "otagw did not start"
    port=$(cat "$tmp/port")
}

gw_wait_listening() {
    for _ in $(seq 100); do
        grep -q "otagw listening on http://127.0.0.1:$port" "$tmp/gw.out" 2>/dev/null && return 0
        sleep 0.1
    done
    gw_fail "$1"
}

gw_term_otagw() {
    kill -TERM "$gw_pid"
    for _ in $(seq 100); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.1; done
    ! kill -0 "$gw_pid" 2>/dev/null || gw_fail "otagw still running 10 s after SIGTERM"
}

gw_stop_otagw() {
    local rc=0
    gw_term_otagw
    wait "$gw_pid" || rc=$?
    gw_pid=
    [ "$rc" -eq 0 ] || gw_fail "otagw exited with status $rc after SIGTERM"
}

gw_kill9_otagw() {
    kill -KILL "$gw_pid"
    wait "$gw_pid" 2>/dev/null || true
    gw_pid=
}
