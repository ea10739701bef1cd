#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench-e2e: SCP80 tasks through the whole otagw daemon (issue #6).

Starts otagw-sim (ISMG role, a population file this script writes with
random SCP80 keys) and otagw (temp config, durable commits, one CMPP link to
the simulator, HTTP on 127.0.0.1:0 with --port-file), registers the SEs and
imports their keys over the API, submits the tasks over the API from several
keep-alive connections, waits until every task is final (GET /v1/stats) and
prints one JSON object:

  api_tasks_per_s  tasks / (first accept -> last task final), wall clock
  submit_per_s     tasks / submit span (201 answers, durable)
  p50_ms, p99_ms   created -> done from the tasks' own timestamps, on a
                   sampled subset (latency_sample says how many; polling all
                   would load otagw); seen_p50_ms / seen_p99_ms: client 201 ->
                   final as seen by polling (includes the poll period)
  otagw_cpu_s, sim_cpu_s, rss_mb (otagw, at the end)

Stdlib only. Every process it starts is stopped at the end, also on error.
"""
import argparse
import datetime
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default=HERE, help="directory with otagw and otagw-sim")
    p.add_argument("--ses", type=int, default=10000, help="SEs registered (default 10000)")
    p.add_argument("--tasks", type=int, default=30000, help="SCP80 tasks (default 30000)")
    p.add_argument("--conns", type=int, default=32, help="concurrent API connections")
    p.add_argument("--sample", type=int, default=200, help="tasks whose latency is measured")
    p.add_argument("--durable", default="yes", choices=("yes", "no"))
    p.add_argument("--window", type=int, default=256, help="CMPP window of the link")
    p.add_argument("--timeout", type=float, default=300, help="give up after this many s")
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    return p.parse_args()


class Api:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        hdr = {"Content-Type": "application/json"} if data is not None else {}
        if TOKEN:
            hdr["Authorization"] = "Bearer " + TOKEN
        for attempt in range(3):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.c.request(method, path, body=data, headers=hdr)
                r = self.c.getresponse()
                raw = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.c.close()
                    self.c = None
                return r.status, json.loads(raw or b"{}")
            except (http.client.HTTPException, ConnectionError, OSError):
                # The server may close an idle keep-alive connection: reconnect.
                if self.c is not None:
                    self.c.close()
                self.c = None
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")


def ts_s(text):
    """RFC 3339 UTC with a Z (otagw's timestamps) -> seconds since the epoch."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / tck


def proc_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def wait_file(path, limit_s, proc):
    t0 = time.time()
    while time.time() - t0 < limit_s:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{path} not written within {limit_s} s")


def parallel(n_threads, items, fn):
    """Run fn(api, item) over items from n_threads threads; return errors."""
    errors = []
    lock = threading.Lock()
    it = iter(items)

    def worker():
        api = Api(PORT)
        while True:
            with lock:
                try:
                    x = next(it)
                except StopIteration:
                    return
            try:
                fn(api, x)
            except Exception as e:  # noqa: BLE001 - reported, the run fails
                with lock:
                    errors.append(f"{x}: {e}")
                    return

    ts = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors


PORT = None
TOKEN = None  # an admin API token (issue #7), made with otatool before otagw starts


def main():
    global PORT
    a = parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-e2e.")
    procs = []
    try:
        return run(a, tmp, procs)
    except (RuntimeError, OSError, KeyError, ValueError) as e:
        print(f"bench-e2e: {e}", file=sys.stderr)
        for name in ("sim.err", "gw.err", "gw.log"):
            try:
                with open(f"{tmp}/{name}") as f:
                    for line in f.readlines()[-10:]:
                        print(f"  {name}: {line.rstrip()}", file=sys.stderr)
            except OSError:
                pass
        return 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if a.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(a, tmp, procs):
    global PORT, TOKEN
    rnd = random.Random()
    ses = []
    with open(f"{tmp}/pop.jsonl", "w") as f:
        for i in range(a.ses):
            s = {
                "seid": "5345BE%014d" % i,
                "msisdn": "86139%08d" % i,
                "scp80": [
                    {
                        "kvn": 1,
                        "tar": "000000",
                        "kic_alg": "AES",
                        "kic": rnd.randbytes(16).hex().upper(),
                        "kid_alg": "AES",
                        "kid": rnd.randbytes(16).hex().upper(),
                    }
                ],
            }
            ses.append(s)
            f.write(json.dumps(s) + "\n")

    sim_err = open(f"{tmp}/sim.err", "w")
    sim = subprocess.Popen(
        [f"{a.bin}/otagw-sim", "--ismg", "127.0.0.1:0", "--secret", "otagw-test", "--sp-id",
         "901234", "--population", f"{tmp}/pop.jsonl", "--window", str(a.window),
         "--port-file", f"{tmp}/sim.json", "--counts-file", f"{tmp}/counts.json"],
        stdout=subprocess.DEVNULL, stderr=sim_err)
    procs.append(sim)
    wait_file(f"{tmp}/sim.json", 10, sim)
    ismg = json.load(open(f"{tmp}/sim.json"))["ismg"]

    with open(f"{tmp}/otagw.conf", "w") as f:
        f.write(f"""[gateway]
listen = 127.0.0.1:0
plain_http = yes
log_level = notice
log_file = {tmp}/gw.log
max_body = 4M
[engine]
db = {tmp}/otagw.db
durable = {a.durable}
por_timeout = 60s
dlr_timeout = 120s
backoff = 1s
keep_history = yes
[keys]
# Test keys arrive in clear over loopback (the key store refuses that by default).
clear_import = yes
[wallet]
wait_pull = no
[link sim]
kind = cmpp
host = 127.0.0.1
port = {ismg}
rate = 0
window = {a.window}
sp_id = 901234
secret = otagw-test
""")
    subprocess.run([f"{a.bin}/otatool", "token", "create", "--db", f"{tmp}/otagw.db",
                    "--name", "bench", "--role", "admin", "--out", f"{tmp}/admin.tok"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    TOKEN = open(f"{tmp}/admin.tok").read().strip()
    gw_err = open(f"{tmp}/gw.err", "w")
    gw = subprocess.Popen(
        [f"{a.bin}/otagw", "-c", f"{tmp}/otagw.conf", "--port-file", f"{tmp}/port"],
        stdout=subprocess.DEVNULL, stderr=gw_err)
    procs.append(gw)
    wait_file(f"{tmp}/port", 10, gw)
    PORT = int(open(f"{tmp}/port").read().strip())

    api = Api(PORT)
    t0 = time.time()
    while True:
        st, h = api.call("GET", "/v1/health")
        if st == 200 and h.get("links") and all(l["state"] == "up" for l in h["links"]):
            break
        if time.time() - t0 > 10:
            raise RuntimeError(f"link not up within 10 s: {h}")
        time.sleep(0.05)

    def register(c, s):
        st, b = c.call("POST", "/v1/ses", {"seid": s["seid"], "msisdn": s["msisdn"],
                                          "batch": "bench"})
        if st != 201:
            raise RuntimeError(f"register: {st} {b}")
        ks = s["scp80"][0]
        st, b = c.call("POST", f"/v1/ses/{s['seid']}/keys/scp80",
                       {"tar": "000000", "kvn": 1, "spi": "1639", "kic": "12", "kid": "12",
                        "kic_key": ks["kic"], "kid_key": ks["kid"], "cc_len": 8})
        if st != 201:
            raise RuntimeError(f"keys: {st} {b}")

    t_reg = time.time()
    errs = parallel(a.conns, ses, register)
    if errs:
        raise RuntimeError(f"registration: {errs[:3]}")
    reg_s = time.time() - t_reg

    st, s0 = api.call("GET", "/v1/stats")
    base_final = {k: s0["tasks"].get(k, 0) for k in ("done", "failed", "expired", "cancelled")}

    n = a.tasks
    sample_every = max(1, n // max(1, a.sample))
    accepted = {}  # sampled task id -> accept time
    acc_lock = threading.Lock()
    cpu0_gw, cpu0_sim = proc_cpu_s(gw.pid), proc_cpu_s(sim.pid)
    cpu0_me = sum(os.times()[:2])

    def submit(c, i):
        s = ses[i % len(ses)]
        st, b = c.call("POST", "/v1/tasks", {"seid": s["seid"], "op": "scp80",
                                             "params": {"tar": "000000",
                                                        "script": "80CA006600"}})
        if st != 201:
            raise RuntimeError(f"submit: {st} {b}")
        if i % sample_every == 0:
            with acc_lock:
                accepted[b["id"]] = time.time()

    # Latency sampler: polls the sampled ids by id until each is final.
    done_at = {}
    final_state = {}
    srv_lat = {}  # created -> last update (final), from the task's own timestamps
    stop_sampler = threading.Event()

    def sampler():
        c = Api(PORT)
        while not stop_sampler.is_set():
            with acc_lock:
                pending = [i for i in accepted if i not in done_at]
            for i in pending:
                st, t = c.call("GET", f"/v1/tasks/{i}")
                if st == 200 and t["state"] in ("done", "failed", "expired", "cancelled"):
                    done_at[i] = time.time()
                    final_state[i] = t["state"]
                    srv_lat[i] = (ts_s(t["updated"]) - ts_s(t["created"])) * 1000
            time.sleep(0.02)

    sth = threading.Thread(target=sampler)
    sth.start()
    t_sub0 = time.time()
    errs = parallel(a.conns, range(n), submit)
    t_sub1 = time.time()
    if errs:
        stop_sampler.set()
        sth.join()
        raise RuntimeError(f"submit: {errs[:3]}")

    counts = {}
    while True:
        st, s1 = api.call("GET", "/v1/stats")
        counts = {k: s1["tasks"].get(k, 0) - base_final[k] for k in base_final}
        if sum(counts.values()) >= n:
            break
        if time.time() - t_sub0 > a.timeout:
            break
        time.sleep(0.01)
    t_end = time.time()
    # The sampler needs a moment to see the last sampled ones.
    t_w = time.time()
    while len(done_at) < len(accepted) and time.time() - t_w < 10:
        time.sleep(0.02)
    stop_sampler.set()
    sth.join()

    lat = sorted(srv_lat[i] for i in done_at if final_state[i] == "done")
    seen = sorted((done_at[i] - accepted[i]) * 1000 for i in done_at)

    def pct(p, v=lat):
        if not v:
            return None
        return round(v[min(len(v) - 1, int(p / 100.0 * len(v)))], 1)

    out = {
        "tasks": n,
        "done": counts["done"],
        "failed": counts["failed"] + counts["expired"] + counts["cancelled"],
        "api_tasks_per_s": round(n / (t_end - t_sub0), 1) if counts["done"] else 0,
        "submit_per_s": round(n / (t_sub1 - t_sub0), 1),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "latency": "p50_ms/p99_ms: task created -> done, from the task's created/updated "
                   "timestamps (ms), on a sample of tasks spread over the run; seen_*: client "
                   "201 -> final seen by polling GET /v1/tasks/{id} every ~20 ms",
        "latency_sample": len(lat),
        "seen_p50_ms": pct(50, seen),
        "seen_p99_ms": pct(99, seen),
        "durable": a.durable == "yes",
        "ses": a.ses,
        "conns": a.conns,
        "register_s": round(reg_s, 2),
        "wall_s": round(t_end - t_sub0, 2),
        "otagw_cpu_s": round(proc_cpu_s(gw.pid) - cpu0_gw, 2),
        "sim_cpu_s": round(proc_cpu_s(sim.pid) - cpu0_sim, 2),
        "client_cpu_s": round(sum(os.times()[:2]) - cpu0_me, 2),
        "rss_mb": round(proc_rss_mb(gw.pid), 1),
        "timed_out": sum(counts.values()) < n,
    }
    print(json.dumps(out))
    return 0 if out["done"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
