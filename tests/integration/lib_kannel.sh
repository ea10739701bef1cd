# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
#
# Test harness for a real Kannel bearerbox (Debian kannel 1.4.5) on loopback.
# Source it from an integration test; it only defines functions and never
# starts anything by itself.
#
#   kannel_init DIR             work directory (config, store, logs, pid file)
#   kannel_config SMSC_PORT SYSTEM_ID PASSWORD
#                               write DIR/kannel.conf: core group on free
#                               loopback ports (box port in KANNEL_BOX_PORT,
#                               admin port in KANNEL_ADMIN_PORT), DLR storage
#                               (internal by default), a file message store (MTs acked to a
#                               box survive a restart), one SMPP transceiver
#                               SMSC "sim" bound to 127.0.0.1:SMSC_PORT.
#                               KANNEL_MSG_ID_TYPE, if set, becomes msg-id-type.
#                               KANNEL_DLR_STORAGE=sqlite3 keeps the DLR map in
#                               DIR/dlr.db instead of memory, so receipts that
#                               arrive after a restart still match.
#   kannel_start                start bearerbox in the background, record its
#                               pid in DIR/bearerbox.pid, wait for the box port
#   kannel_stop                 SIGTERM, wait (KANNEL_STOP_TIMEOUT_S, default 60:
#                               bearerbox first flushes its queue to the SMSC),
#                               SIGKILL after that bound
#   kannel_stop_begin           send the SIGTERM only (kannel_stop then waits)
#   kannel_restart              stop then start on the same ports and store
#   kannel_wait_smsc_online [S] wait until the SMSC link is bound (admin status)
#   kannel_status               print bearerbox's status.txt
#
# The caller owns the cleanup: call kannel_stop from its EXIT trap.

KANNEL_BIN=${KANNEL_BIN:-/usr/sbin/bearerbox}
KANNEL_DIR=
KANNEL_BOX_PORT=
KANNEL_ADMIN_PORT=
KANNEL_ADMIN_PASSWORD=otagw-admin
KANNEL_PID=

kannel_log() {
    echo "kannel: $*" >&2
}

# A TCP port nobody listens on now, from the ephemeral-looking range, avoiding
# the ones in $* (already handed out by this harness).
kannel_free_port() {
    local p used
    used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! grep -qx "$p" <<<"$used" && [[ " $* " != *" $p "* ]]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

kannel_init() {
    KANNEL_DIR=$1
    mkdir -p "$KANNEL_DIR" || return 1
}

kannel_config() {
    local smsc_port=$1 system_id=$2 password=$3
    [ -n "$KANNEL_DIR" ] || { kannel_log "kannel_init first"; return 1; }
    KANNEL_BOX_PORT=$(kannel_free_port) || return 1
    KANNEL_ADMIN_PORT=$(kannel_free_port "$KANNEL_BOX_PORT") || return 1
    {
        echo "group = core"
        echo "admin-port = $KANNEL_ADMIN_PORT"
        echo "admin-password = $KANNEL_ADMIN_PASSWORD"
        echo "admin-interface = 127.0.0.1"
        echo "admin-allow-ip = 127.0.0.1"
        echo "smsbox-port = $KANNEL_BOX_PORT"
        echo "smsbox-interface = 127.0.0.1"
        echo "box-allow-ip = 127.0.0.1"
        echo "dlr-storage = ${KANNEL_DLR_STORAGE:-internal}"
        echo "store-type = file"
        echo "store-location = \"$KANNEL_DIR/kannel.store\""
        echo "log-file = \"$KANNEL_DIR/bearerbox.log\""
        echo "log-level = ${KANNEL_LOG_LEVEL:-1}"
        echo "access-log = \"$KANNEL_DIR/access.log\""
        echo
        # bearerbox refuses an smsbox-port without an smsbox group; no smsbox runs.
        echo "group = smsbox"
        echo "bearerbox-host = 127.0.0.1"
        echo
        echo "group = smsc"
        echo "smsc = smpp"
        echo "smsc-id = sim"
        echo "host = 127.0.0.1"
        echo "port = $smsc_port"
        echo "transceiver-mode = true"
        echo "smsc-username = \"$system_id\""
        echo "smsc-password = \"$password\""
        echo "system-type = \"\""
        echo "reconnect-delay = 1"
        echo "enquire-link-interval = 30"
        echo "max-pending-submits = 100"
        if [ -n "${KANNEL_MSG_ID_TYPE:-}" ]; then
            echo "msg-id-type = $KANNEL_MSG_ID_TYPE"
        fi
        if [ "${KANNEL_DLR_STORAGE:-internal}" = sqlite3 ]; then
            echo
            echo "group = sqlite3-connection"
            echo "id = dlrdb"
            echo "database = \"$KANNEL_DIR/dlr.db\""
            echo "max-connections = 1"
            echo
            echo "group = dlr-db"
            echo "id = dlrdb"
            echo "table = dlr"
            echo "field-smsc = smsc"
            echo "field-timestamp = ts"
            echo "field-destination = destination"
            echo "field-source = source"
            echo "field-service = service"
            echo "field-url = url"
            echo "field-mask = mask"
            echo "field-status = status"
            echo "field-boxc-id = boxc"
        fi
    } >"$KANNEL_DIR/kannel.conf"
    if [ "${KANNEL_DLR_STORAGE:-internal}" = sqlite3 ]; then
        # Kannel does not create its DLR table.
        sqlite3 "$KANNEL_DIR/dlr.db" "CREATE TABLE IF NOT EXISTS dlr (smsc TEXT, ts TEXT,
            destination TEXT, source TEXT, service TEXT, url TEXT, mask INTEGER,
            status INTEGER, boxc TEXT);" || return 1
    fi
}

# 0 when something listens on 127.0.0.1:$1.
kannel_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

kannel_running() {
    [ -n "$KANNEL_PID" ] && kill -0 "$KANNEL_PID" 2>/dev/null
}

kannel_start() {
    [ -f "$KANNEL_DIR/kannel.conf" ] || { kannel_log "kannel_config first"; return 1; }
    if kannel_running; then
        kannel_log "already running (pid $KANNEL_PID)"
        return 1
    fi
    "$KANNEL_BIN" -v 4 "$KANNEL_DIR/kannel.conf" >>"$KANNEL_DIR/bearerbox.out" 2>&1 &
    KANNEL_PID=$!
    echo "$KANNEL_PID" >"$KANNEL_DIR/bearerbox.pid"
    for _ in $(seq 1 100); do
        if ! kannel_running; then
            kannel_log "bearerbox exited during start; log tail:"
            tail -n 20 "$KANNEL_DIR/bearerbox.log" "$KANNEL_DIR/bearerbox.out" >&2 2>/dev/null
            KANNEL_PID=
            return 1
        fi
        if kannel_port_open "$KANNEL_BOX_PORT"; then
            kannel_log "bearerbox pid $KANNEL_PID box port $KANNEL_BOX_PORT"
            return 0
        fi
        sleep 0.1
    done
    kannel_log "box port $KANNEL_BOX_PORT not open after 10 s"
    kannel_stop
    return 1
}

# Ask bearerbox to stop (SIGTERM) without waiting; kannel_stop waits.
kannel_stop_begin() {
    [ -n "$KANNEL_PID" ] || return 0
    if [ -z "${KANNEL_TERM_SENT:-}" ]; then
        kill -TERM "$KANNEL_PID" 2>/dev/null
        KANNEL_TERM_SENT=1
    fi
}

kannel_stop() {
    [ -n "$KANNEL_PID" ] || return 0
    if kill -0 "$KANNEL_PID" 2>/dev/null; then
        kannel_stop_begin
        # A graceful stop first flushes every queued MT to the SMSC; SIGKILL
        # instead makes the restarted bearerbox resend from its store.
        for _ in $(seq 1 $((${KANNEL_STOP_TIMEOUT_S:-60} * 10))); do
            kill -0 "$KANNEL_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$KANNEL_PID" 2>/dev/null; then
            kannel_log "bearerbox $KANNEL_PID still up ${KANNEL_STOP_TIMEOUT_S:-60} s after SIGTERM, killing it"
            kill -KILL "$KANNEL_PID" 2>/dev/null
        fi
    fi
    wait "$KANNEL_PID" 2>/dev/null
    KANNEL_PID=
    KANNEL_TERM_SENT=
    rm -f "$KANNEL_DIR/bearerbox.pid"
    return 0
}

kannel_restart() {
    kannel_stop && kannel_start
}

kannel_status() {
    curl -s --max-time 3 \
        "http://127.0.0.1:$KANNEL_ADMIN_PORT/status.txt?password=$KANNEL_ADMIN_PASSWORD"
}

# Wait (default 20 s) until the admin status shows the SMSC "sim" online.
kannel_wait_smsc_online() {
    local limit_s=${1:-20}
    for _ in $(seq 1 $((limit_s * 5))); do
        kannel_running || { kannel_log "bearerbox is not running"; return 1; }
        if kannel_status 2>/dev/null | grep -q "^ *sim\[sim\].*online"; then
            return 0
        fi
        sleep 0.2
    done
    kannel_log "SMSC link not online after $limit_s s; status:"
    kannel_status >&2
    return 1
}
