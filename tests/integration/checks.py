#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Judges of bench-bearer's JSON, shared by the loopback integration tests.

Usage: python3 checks.py run NAME JSONFILE [--kannel]

NAME labels the run in the output. Without --kannel the run is judged as
test_cmpp_sim.sh's CMPP runs are; with it, as test_kannel_sim.sh's Kannel
runs are (the same assertions plus the cards' and the SMSC's counts).
Prints "ok NAME: ..." and exits 0, or prints "FAIL NAME: ..." with the
report and exits 1. Python 3 standard library only.
"""
import json
import sys


def need(name, r, cond, what):
    """Fail the run NAME (report r) with what unless cond holds."""
    if not cond:
        print(f"FAIL {name}: {what}\n{json.dumps(r, indent=1)[:3000]}")
        sys.exit(1)


def check_complete(name, r):
    """Every message complete, nothing lost: the assertions every run shares.

    Returns the simulator's card counts (the "cards" object, or the whole
    simulator object when there is none)."""
    s = r.get("simulator") or {}
    n = r["messages"]
    need(name, r, r["finished"], "run did not finish")
    need(name, r, r["messages_complete"] == n, f"{r['messages_complete']} of {n} messages complete")
    need(name, r, r["parts_accepted"] == r["parts_submitted"], "parts not all accepted")
    need(name, r, r["parts_final"] == 0 and r["parts_retryable"] == 0, "parts failed")
    need(name, r, r["dlrs_matched"] >= r["parts_accepted"], "reports missing")
    need(name, r, r["dlrs_unmatched"] == 0, "unmatched reports")
    need(name, r, r["pors_verified"] == r["scp80"],
         f"{r['pors_verified']} of {r['scp80']} PoRs verified")
    need(name, r, r["pors_refused"] == 0, "PoRs refused")
    card = s.get("cards", s)
    need(name, r, card.get("counter_reused", 0) == 0, "a counter was reused")
    return card


def check_cmpp(name, r):
    """A CMPP run (otagw's CMPP bearer against the simulator's ISMG)."""
    n = r["messages"]
    check_complete(name, r)
    print(f"ok {name}: {n} messages, {r['parts_submitted']} parts, "
          f"{r['pors_verified']} PoRs, {r['link_downs']} link drops, "
          f"{r['cmpp_msgs_per_s']:.0f} parts/s")


def check_kannel(name, r):
    """A Kannel run (otagw's box link, bearerbox, the simulator's SMSC)."""
    s = r.get("simulator") or {}
    n = r["messages"]
    card = check_complete(name, r)
    need(name, r, card.get("invalid_sms", 0) == 0, "the cards judged messages invalid")
    smsc = s.get("smsc") or {}
    # the SMSC also saw the sendsms baseline's parts, when it ran
    dup = smsc.get("submits", 0) - r["parts_accepted"] - r.get("sendsms_accepted", 0)
    need(name, r, dup >= 0,
         f"the SMSC saw {smsc.get('submits')} submits for {r['parts_accepted']} parts")
    print(f"ok {name}: {n} messages, {r['parts_submitted']} parts, "
          f"{r['pors_verified']} PoRs, {r['link_downs']} link drops, "
          f"{r['kannel_box_msgs_per_s']:.0f} parts/s; SMSC submits {smsc.get('submits')} "
          f"({dup} resent by bearerbox)")


def main(argv):
    args = [a for a in argv if a != "--kannel"]
    if len(args) != 3 or args[0] != "run":
        print("usage: checks.py run NAME JSONFILE [--kannel]", file=sys.stderr)
        return 2
    name, path = args[1], args[2]
    with open(path) as f:
        r = json.load(f)
    (check_kannel if "--kannel" in argv else check_cmpp)(name, r)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
