#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Jobs through the otagw daemon (issue #6), on loopback against otagw-sim:
#  - a batch job (kind filter, batch label) over 10,000 SEs registered through
#    the API from parallel connections: every task done, the job done, the
#    cards counted 10,000 more commands;
#  - a composite upgrade (kind sequence: app-delete then app-download over
#    SCP80): both steps done, the simulated card ran both scripts, the SE's
#    model shows the re-installed application;
#  - a sequence whose first step fails: the later step is cancelled (step-failed);
#  - cancel of a queued (delayed) task; terminate of an active task (the
#    simulator is stopped with SIGSTOP so the task stays in flight), both via
#    the API, with the 409 answers for the wrong verb and for a final task.
# Loopback only; every wait is bounded; every process is stopped on exit.
set -euo pipefail
# shellcheck source=lib_gateway.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_gateway.sh"
gw_init "$1"
gw_need otagw otagw-sim otatool
N=${JOBS_SES:-10000}

# The population: N SEs of batch b10k with random AES keys, plus one SE with an
# application for the upgrade (its load file A0000000871002, instance ...FF86).
python3 - "$tmp/pop.jsonl" "$N" <<'PYEOF'
import json, os, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"seid": "5345B1%014d" % i, "msisdn": "86137%08d" % i, "scp80": [
            {"kvn": 1, "tar": "000000", "kic_alg": "AES", "kic": os.urandom(16).hex(),
             "kid_alg": "AES", "kid": os.urandom(16).hex()}]}) + "\n")
    for j, seid in enumerate(("5345C0000000000000000001", "5345C0000000000000000002",
                              "5345C0000000000000000003")):
        f.write(json.dumps({"seid": seid, "msisdn": "8613600000%03d" % j, "scp80": [
            {"kvn": 1, "tar": "000000", "kic_alg": "AES", "kic": os.urandom(16).hex(),
             "kid_alg": "AES", "kid": os.urandom(16).hex()}], "free_nv": 65536,
            "apps": [{"aid": "A0000000871002FF86", "state": "selectable"}]}) + "\n")
PYEOF

gw_start_ismg "$tmp/pop.jsonl" --window 256 --counts-file "$tmp/counts.json"

{
  gw_conf_gateway 0 info
  gw_conf_engine "durable = yes" "backoff = 1s" "por_timeout = 60s" "dlr_timeout = 60s" \
    "max_attempts = 1"
  gw_conf_clear_import
  gw_conf_section wallet "wait_pull = no"
  gw_conf_link_cmpp "$ismg" "rate = 0" "window = 256" "resp_timeout = 30s"
} > "$tmp/otagw.conf"
# An admin API token (issue #7), made in the auth file next to the engine database.
gw_make_token jobs-admin admin admin.tok
gw_start_otagw

cat > "$tmp/api.py" <<'PYEOF'
import json, os, signal, sys, time

port, cmd, pop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sim_pid = int(os.environ["SIM_PID"])
ses = [json.loads(l) for l in open(pop) if l.strip()]
FINAL = ("done", "failed", "expired", "cancelled")

from gwapi import Conn, register_all

def Api():
    return Conn(port, os.environ["API_TOKEN"])

api = Api()

def expect(what, got, status, code=None):
    st, body = got
    if st != status or (code and body.get("error", {}).get("code") != code):
        sys.exit(f"{what}: got {st} {body}, want {status} {code or ''}")
    return body

def counts():
    try:
        os.unlink(os.environ["COUNTS"])
    except FileNotFoundError:
        pass
    os.kill(sim_pid, signal.SIGUSR1)
    for _ in range(100):
        try:
            return json.load(open(os.environ["COUNTS"]))["cards"]
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    sys.exit("no simulator counts")

def wait_task(i, states=FINAL, limit_s=30):
    t0 = time.time()
    while time.time() - t0 < limit_s:
        t = expect(f"GET task {i}", api.call("GET", f"/v1/tasks/{i}"), 200)
        if t["state"] in states:
            return t
        time.sleep(0.05)
    sys.exit(f"task {i} not in {states} within {limit_s} s: {t}")

def wait_job(j, limit_s):
    t0 = time.time()
    while time.time() - t0 < limit_s:
        b = expect(f"GET job {j}", api.call("GET", f"/v1/jobs/{j}"), 200)
        if b["state"] in ("done", "cancelled"):
            return b
        time.sleep(0.2)
    sys.exit(f"job {j} not finished within {limit_s} s: {b}")

def wait_link():
    for _ in range(100):
        st, h = api.call("GET", "/v1/health")
        if st == 200 and h["links"] and all(l["state"] == "up" for l in h["links"]):
            return
        time.sleep(0.1)
    sys.exit(f"link not up: {h}")

SCP80 = {"tar": "000000", "script": "80CA006600"}

if cmd == "register":
    wait_link()
    t0 = time.time()
    err = register_all(Api, ses, lambda s: {
        "seid": s["seid"], "msisdn": s["msisdn"],
        "batch": "b10k" if s["seid"].startswith("5345B1") else "upgrade"}, lambda s: {
        "tar": "000000", "kvn": 1, "spi": "1639", "kic": "12", "kid": "12",
        "kic_key": s["scp80"][0]["kic"], "kid_key": s["scp80"][0]["kid"], "cc_len": 8})
    if err:
        sys.exit(err)
    print(f"registered {len(ses)} SEs with keys in {time.time() - t0:.1f} s (8 connections)")

elif cmd == "batch":
    n = sum(1 for s in ses if s["seid"].startswith("5345B1"))
    c0 = counts()
    # Bad jobs are refused and create nothing.
    expect("filter job, unknown batch member type", api.call("POST", "/v1/jobs", {
        "kind": "filter", "batch": 5, "op": "scp80", "params": SCP80}), 400)
    expect("job, unknown kind", api.call("POST", "/v1/jobs", {
        "kind": "bogus", "op": "scp80", "params": SCP80}), 400)
    expect("unknown job", api.call("GET", "/v1/jobs/999999"), 404)
    t0 = time.time()
    b = expect("batch job", api.call("POST", "/v1/jobs", {
        "kind": "filter", "batch": "b10k", "op": "scp80", "params": SCP80}), 201)
    j = wait_job(b["id"], 120)
    if j["state"] != "done" or j["total"] != n or j["counts"].get("done") != n:
        sys.exit(f"batch job: {j}, want done with {n} tasks done")
    dt = time.time() - t0
    c1 = counts()
    if c1["commands_ok"] - c0["commands_ok"] != n:
        sys.exit(f"cards ran {c1['commands_ok'] - c0['commands_ok']} commands, want {n}")
    # The job's tasks carry the job id; an SE outside the batch got none.
    page = expect("tasks of job", api.call("GET", f"/v1/tasks?job={b['id']}&limit=5"), 200)
    assert len(page["tasks"]) == 5 and all(t["job"] == b["id"] and t["state"] == "done"
                                           and t["seid"].startswith("5345B1")
                                           for t in page["tasks"]), page
    up = expect("SE outside the batch", api.call("GET", "/v1/tasks?seid=5345C0000000000000000001&state=done"), 200)
    assert up["tasks"] == [], up
    print(f"batch ok: {n} SEs, job {b['id']} done in {dt:.1f} s")

elif cmd == "upgrade":
    seid = "5345C0000000000000000001"
    c0 = counts()
    # app-delete of the instance (the simulated card knows no load file of
    # it), then app-download of a new version (one LOAD block, so the script
    # fits one SCP80 packet).
    steps = [
        {"op": "app-delete", "params": {"aid": "A0000000871002FF86"}},
        {"op": "app-download", "params": {
            "load_file_aid": "A0000000871002", "load_file": "01" * 64,
            "modules": [{"module_aid": "A000000087100201",
                         "instance_aid": "A0000000871002FF86"}]}},
    ]
    b = expect("sequence job", api.call("POST", "/v1/jobs", {"kind": "sequence", "seid": seid,
                                                             "steps": steps}), 201)
    j = wait_job(b["id"], 60)
    if j["state"] != "done" or j["counts"].get("done") != 2:
        sys.exit(f"upgrade job: {j}")
    page = expect("upgrade tasks", api.call("GET", f"/v1/tasks?job={b['id']}"), 200)
    ops = sorted((t.get("step"), t["op"], t["state"]) for t in page["tasks"])
    assert [o[1:] for o in ops] == [("app-delete", "done"), ("app-download", "done")], ops
    c1 = counts()
    if c1["commands_ok"] - c0["commands_ok"] != 2 or c1["apdus_failed"] != c0["apdus_failed"]:
        sys.exit(f"cards: {c0} -> {c1}, want 2 more commands, no APDU failed")
    # GET /v1/ses/{seid} shows no apps yet: prove the card holds the new
    # instance by locking it (the card answers 6A88 for an unknown AID).
    t = expect("lock after upgrade", api.call("POST", "/v1/tasks", {"seid": seid, "op": "app-lock",
               "params": {"aid": "A0000000871002FF86"}}), 201)
    got = wait_task(t["id"])
    if got["state"] != "done":
        sys.exit(f"app-lock of the upgraded app: {got}")
    se = expect("SE after upgrade", api.call("GET", f"/v1/ses/{seid}"), 200)
    if "apps" in se and "A0000000871002FF86" not in json.dumps(se["apps"]).upper():
        sys.exit(f"SE model after the upgrade lacks the app: {se}")

    # A sequence whose first step fails on the card (delete of an app the card
    # does not have): the second step is cancelled with step-failed.
    seid2 = "5345C0000000000000000002"
    steps = [
        {"op": "app-delete", "params": {"aid": "A0000000FFFFFFFF01"}},
        {"op": "app-lock", "params": {"aid": "A0000000871002FF86"}},
    ]
    b = expect("failing sequence", api.call("POST", "/v1/jobs", {"kind": "sequence", "seid": seid2,
                                                                 "steps": steps}), 201)
    j = wait_job(b["id"], 60)
    page = expect("failing sequence tasks", api.call("GET", f"/v1/tasks?job={b['id']}"), 200)
    st = {t["op"]: (t["state"], t.get("reason")) for t in page["tasks"]}
    if st.get("app-delete", ("",))[0] != "failed" or st.get("app-lock") != ("cancelled", "step-failed"):
        sys.exit(f"failing sequence: job {j}, tasks {st}")
    print("upgrade ok: app-delete + app-download done, app locked after; a failed step cancels the rest")

elif cmd == "cancel":
    seid = "5345C0000000000000000003"
    # Cancel: a task delayed one hour stays queued.
    t = expect("delayed task", api.call("POST", "/v1/tasks", {"seid": seid, "op": "scp80",
               "params": SCP80, "schedule": {"delay_s": 3600}}), 201)
    expect("terminate queued", api.call("POST", f"/v1/tasks/{t['id']}/terminate"), 409)
    expect("cancel queued", api.call("POST", f"/v1/tasks/{t['id']}/cancel"), 200)
    got = wait_task(t["id"])
    assert got["state"] == "cancelled" and got["reason"] == "cancelled", got
    expect("cancel again", api.call("POST", f"/v1/tasks/{t['id']}/cancel"), 409, "task-final")
    expect("cancel unknown", api.call("POST", "/v1/tasks/999999999/cancel"), 404)

    # Terminate: with the simulator stopped, a task stays in flight.
    c0 = counts()
    os.kill(sim_pid, signal.SIGSTOP)
    try:
        t = expect("task to terminate", api.call("POST", "/v1/tasks", {"seid": seid, "op": "scp80",
                   "params": SCP80}), 201)
        wait_task(t["id"], ("dispatched", "submitted", "delivered"), 10)
        expect("cancel active", api.call("POST", f"/v1/tasks/{t['id']}/cancel"), 409, "task-active")
        expect("terminate active", api.call("POST", f"/v1/tasks/{t['id']}/terminate"), 200)
        got = wait_task(t["id"])
        assert got["state"] == "cancelled" and got["reason"] == "terminated", got
    finally:
        os.kill(sim_pid, signal.SIGCONT)
    expect("terminate final", api.call("POST", f"/v1/tasks/{t['id']}/terminate"), 409, "task-final")
    # The late answer of the card changes nothing; the SE takes new tasks.
    t2 = expect("task after terminate", api.call("POST", "/v1/tasks", {"seid": seid, "op": "scp80",
                "params": SCP80}), 201)
    got2 = wait_task(t2["id"])
    assert got2["state"] == "done", got2
    got = expect("terminated task", api.call("GET", f"/v1/tasks/{t['id']}"), 200)
    assert got["state"] == "cancelled" and got["reason"] == "terminated", got
    c1 = counts()
    bad = {k: c1[k] for k in ("bad_cc", "counter_reused", "unknown_tar") if c1[k]}
    if bad:
        sys.exit(f"cards: {bad}")
    print("cancel ok (queued -> cancelled), terminate ok (active -> cancelled/terminated)")
PYEOF

API_TOKEN=$(cat "$tmp/admin.tok")
export SIM_PID=$sim_pid COUNTS=$tmp/counts.json API_TOKEN
t0=$(date +%s)
python3 "$tmp/api.py" "$port" register "$tmp/pop.jsonl" || fail "register"
t1=$(date +%s)
[ $((t1 - t0)) -le 60 ] || echo "WARN: registration took $((t1 - t0)) s (> 60 s)"
python3 "$tmp/api.py" "$port" batch "$tmp/pop.jsonl" || fail "batch job"
python3 "$tmp/api.py" "$port" upgrade "$tmp/pop.jsonl" || fail "upgrade sequence"
python3 "$tmp/api.py" "$port" cancel "$tmp/pop.jsonl" || fail "cancel / terminate"
# SIGTERM: otagw exits 0 within 10 s; no sanitizer report on its stderr.
gw_stop_otagw
! grep -q "Sanitizer" "$tmp/gw.err" "$tmp/sim.err" || fail "sanitizer report: $(grep -m3 Sanitizer "$tmp/gw.err" "$tmp/sim.err")"
echo "gateway jobs: ok"
