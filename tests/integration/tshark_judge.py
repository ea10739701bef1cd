#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Judge tshark's decode (PDML) of otagw's loopback traffic (issue #4, proof c).

  tshark_judge.py cmpp PDML BENCH_JSON   CMPP 3.0 between otagw's link and the ISMG
  tshark_judge.py smpp PDML EXPECT_JSON  SMPP between bearerbox and the SMSC

PDML keeps each PDU in its own <proto> element, so fields stay attached to
the PDU they belong to even when one TCP segment carries many PDUs (the
-T fields output flattens them per frame). Standard library only.
Exit 0 when every assertion holds; otherwise 1, printing each failure with
the decoded PDU it is about.
"""
import json
import sys
import xml.etree.ElementTree as ET

SEV_WARN = 0x00600000
SEV_ERROR = 0x00800000

CMPP_NAMES = {
    0x00000001: "CONNECT", 0x80000001: "CONNECT_RESP",
    0x00000002: "TERMINATE", 0x80000002: "TERMINATE_RESP",
    0x00000004: "SUBMIT", 0x80000004: "SUBMIT_RESP",
    0x00000005: "DELIVER", 0x80000005: "DELIVER_RESP",
    0x00000008: "ACTIVE_TEST", 0x80000008: "ACTIVE_TEST_RESP",
}
SMPP_NAMES = {
    0x00000009: "bind_transceiver", 0x80000009: "bind_transceiver_resp",
    0x00000004: "submit_sm", 0x80000004: "submit_sm_resp",
    0x00000005: "deliver_sm", 0x80000005: "deliver_sm_resp",
    0x00000015: "enquire_link", 0x80000015: "enquire_link_resp",
    0x00000006: "unbind", 0x80000006: "unbind_resp",
    0x80000000: "generic_nack",
}


class Pdu:
    """One decoded PDU: its frame, its fields (name -> [field element]) and
    the protocols tshark handed its payload to (gsm_sms_ud, wsp, ...)."""

    def __init__(self, frame, proto):
        self.frame = frame
        self.proto = proto
        self.fields = {}
        self.subs = []
        self.add(proto)

    def add(self, proto):
        for f in proto.iter("field"):
            if f.get("name"):
                self.fields.setdefault(f.get("name"), []).append(f)

    def show(self, name, default=None):
        f = self.fields.get(name)
        return f[0].get("show") if f else default

    def value(self, name, default=None):
        f = self.fields.get(name)
        return f[0].get("value") if f else default

    def int(self, name, default=None):
        s = self.show(name)
        return default if s is None else int(s, 0)

    def describe(self):
        keep = []
        for p in [self.proto] + self.subs:
            for f in p.iter("field"):
                n = f.get("name") or ""
                if f.get("hide") == "yes" or n.endswith(("_raw", ".oui")):
                    continue
                keep.append(f"{n or '-'}={f.get('show')}")
        return f"frame {self.frame}: " + " ".join(keep)[:1500]


class Judge:
    def __init__(self, pdml, proto):
        self.failures = []
        self.pdus = []
        self.packets = 0
        self.tcp_payload = 0
        self.bad_frames = []
        root = ET.parse(pdml).getroot()
        for pkt in root.iter("packet"):
            self.read_packet(pkt, proto)

    def read_packet(self, pkt, proto):
        self.packets += 1
        frame = None
        for f in pkt.iter("field"):
            if f.get("name") == "frame.number":
                frame = int(f.get("show"))
                break
        last = None
        retrans = False
        tcp_len = 0
        for p in pkt.findall("proto"):
            name = p.get("name")
            if name == "tcp":
                for f in p.iter("field"):
                    if f.get("name") == "tcp.len":
                        tcp_len = int(f.get("show"))
                    if f.get("name") == "tcp.analysis.retransmission":
                        retrans = True
                if not retrans:
                    self.tcp_payload += tcp_len
            elif name == proto:
                last = Pdu(frame, p)
                self.pdus.append(last)
            elif name == "_ws.malformed":
                self.bad_frames.append((frame, "malformed", p))
                continue
            elif last is not None and name not in ("geninfo", "frame", "eth", "ip"):
                last.subs.append(p)
            # Expert infos of any protocol: errors anywhere; warnings anywhere
            # but TCP's own (a reset or window note is not about our bytes).
            for e in p.iter("field"):
                if e.get("name") != "_ws.expert":
                    continue
                sev = 0
                for s in e.iter("field"):
                    if s.get("name") == "_ws.expert.severity":
                        sev = int(s.get("show"))
                if sev >= SEV_ERROR or (sev >= SEV_WARN and name != "tcp"):
                    self.bad_frames.append((frame, e.get("showname"), p))

    def need(self, cond, what, pdus=()):
        if not cond:
            self.failures.append(what)
            print(f"FAIL: {what}")
            for p in list(pdus)[:8]:
                print("   ", p.describe())
        return cond

    def common(self, proto, length_field, names):
        self.need(self.packets > 0, "no packet captured")
        for frame, why, p in self.bad_frames:
            self.need(False, f"frame {frame}: {why} ({p.get('showname')})",
                      [q for q in self.pdus if q.frame == frame])
        # Every payload byte belongs to a decoded PDU: nothing was left
        # undissected or taken for something else.
        decoded = sum(p.int(length_field, 0) for p in self.pdus)
        self.need(decoded == self.tcp_payload,
                  f"{decoded} octets in decoded {proto} PDUs, {self.tcp_payload} TCP payload octets")
        for p in self.pdus:
            self.need(int(p.proto.get("size")) == p.int(length_field, -1),
                      f"{proto} PDU length field disagrees with the decoded size", [p])
            cid = p.int(self.id_field)
            p.name = names.get(cid, f"0x{cid:08x}" if cid is not None else "?")
            self.need(p.name in names.values(), f"unexpected {proto} command {p.name}", [p])

    def by_name(self, name):
        return [p for p in self.pdus if p.name == name]

    def summary(self):
        counts = {}
        for p in self.pdus:
            counts[p.name] = counts.get(p.name, 0) + 1
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def udh_ies(ud):
    """[(iei, bytes)] of the UDH at the start of UD octets; None when the IE
    lengths do not add up to the UDH length (or it runs past the UD)."""
    n = ud[0] if ud else 0
    h, ies, i = ud[1:1 + n], [], 0
    if not ud or len(h) != n:
        return None
    while i + 2 <= n:
        ies.append((h[i], h[i + 2:i + 2 + h[i + 1]]))
        i += 2 + h[i + 1]
    return ies if i == n else None


def judge_cmpp(pdml, bench_path):
    bench = json.load(open(bench_path))
    j = Judge(pdml, "cmpp")
    j.id_field = "cmpp.Command_Id"
    j.common("CMPP", "cmpp.Total_Length", CMPP_NAMES)
    for name in ("CONNECT", "CONNECT_RESP", "SUBMIT", "SUBMIT_RESP", "DELIVER", "DELIVER_RESP"):
        j.need(j.by_name(name), f"no {name} decoded")
    for p in j.by_name("CONNECT"):
        j.need(p.value("cmpp.Version") == "30", "CONNECT Version is not 0x30", [p])
    for p in j.by_name("CONNECT_RESP"):
        j.need(p.int("cmpp.connect_resp.Status") == 0, "CONNECT_RESP Status not 0", [p])

    subs = j.by_name("SUBMIT")
    j.need(len(subs) == bench["parts_submitted"],
           f"{len(subs)} SUBMITs decoded, bench-bearer sent {bench['parts_submitted']} parts")
    pushes = scp80 = concat = 0
    for p in subs:
        content = p.value("cmpp.Msg_Content")
        if not j.need(content, "SUBMIT without a decoded Msg_Content", [p]):
            continue
        ud = bytes.fromhex(content)
        parsed = udh_ies(ud)
        if not j.need(parsed is not None, "SUBMIT Msg_Content does not start with a well-formed UDH", [p]):
            continue
        ies = dict(parsed)
        ok = j.need(p.int("cmpp.Msg_Fmt") == 4 and p.int("cmpp.TP_udhi") == 1,
                    "SUBMIT without Msg_Fmt 4 / TP_udhi 1", [p])
        ok &= j.need(p.int("cmpp.Total_Length") == 195 + p.int("cmpp.Msg_Length", -999)
                     and len(ud) == p.int("cmpp.Msg_Length"),
                     "SUBMIT length is not the 3.0 layout (195 + Msg_Length)", [p])
        ok &= j.need(p.show("cmpp.submit.Registered_Delivery") == "1",
                     "SUBMIT without Registered_Delivery", [p])
        total, number = p.int("cmpp.submit.Pk_total"), p.int("cmpp.submit.Pk_number")
        if 0x00 in ies:  # concatenated: Pk_* agree with the UDH's IE 0x00
            concat += 1
            ok &= j.need(ies[0x00][1:] == bytes([total, number]),
                         "Pk_total/Pk_number disagree with the concatenation IE", [p])
        else:
            ok &= j.need(total == 1 and number == 1, "single SUBMIT with Pk_total != 1", [p])
        if 0x05 in ies:  # push: application port addressing, plain PID
            pushes += 1
            j.need(p.int("cmpp.TP_pId") == 0, "push SUBMIT with TP_pId != 0", [p])
        else:  # SCP80 command packet (CPI IE 0x70 in its first part): SIM data download
            scp80 += 1
            j.need(p.int("cmpp.TP_pId") == 0x7F, "SCP80 SUBMIT with TP_pId != 0x7f", [p])
            j.need(0x70 in ies or number > 1, "SCP80 first part without IE 0x70", [p])
    j.need(pushes == bench["push"], f"{pushes} push SUBMITs, bench-bearer sent {bench['push']}")
    j.need(scp80 == bench["parts_submitted"] - bench["push"],
           f"{scp80} SCP80 SUBMIT parts, want {bench['parts_submitted'] - bench['push']}")
    j.need(concat > 0, "no concatenated SUBMIT in the capture")

    resps = j.by_name("SUBMIT_RESP")
    j.need(len(resps) == len(subs), f"{len(resps)} SUBMIT_RESPs for {len(subs)} SUBMITs")
    for p in resps:
        j.need(p.int("cmpp.submit_resp.Result") == 0, "SUBMIT_RESP Result != 0", [p])

    delivers = j.by_name("DELIVER")
    reports = [p for p in delivers if p.show("cmpp.deliver.Registered_Delivery") == "1"]
    mos = [p for p in delivers if p.show("cmpp.deliver.Registered_Delivery") == "0"]
    j.need(len(reports) == len(subs), f"{len(reports)} status-report DELIVERs for {len(subs)} SUBMITs")
    for p in reports:
        j.need(p.show("cmpp.deliver.Report.Status") == "DELIVRD"
               and p.int("cmpp.Msg_Length") == 71 and p.int("cmpp.Total_Length") == 180,
               "status report is not a 3.0 DELIVRD report (71-octet report, 180 total)", [p])
    j.need(len(mos) == bench["scp80"], f"{len(mos)} PoR DELIVERs, want {bench['scp80']}")
    for p in mos:
        j.need(p.int("cmpp.Total_Length") == 109 + p.int("cmpp.Msg_Length", -999)
               and p.int("cmpp.Msg_Fmt") == 4 and p.int("cmpp.TP_udhi") == 1,
               "MO DELIVER not in the 3.0 layout with Msg_Fmt 4 / TP_udhi 1", [p])
    dresps = j.by_name("DELIVER_RESP")
    j.need(len(dresps) == len(delivers), f"{len(dresps)} DELIVER_RESPs for {len(delivers)} DELIVERs")
    for p in dresps:
        j.need(p.int("cmpp.deliver_resp.Result") == 0, "DELIVER_RESP Result != 0", [p])
    print(f"cmpp judge: {len(j.pdus)} PDUs ({j.summary()}); {pushes} push + {scp80} SCP80 "
          f"SUBMITs, {concat} concatenated parts, {j.tcp_payload} TCP payload octets")
    return not j.failures


def judge_smpp(pdml, expect_path):
    expect = json.load(open(expect_path))
    j = Judge(pdml, "smpp")
    j.id_field = "smpp.command_id"
    j.common("SMPP", "smpp.command_length", SMPP_NAMES)
    for name in ("bind_transceiver", "bind_transceiver_resp", "submit_sm", "submit_sm_resp",
                 "deliver_sm", "deliver_sm_resp", "enquire_link", "enquire_link_resp"):
        j.need(j.by_name(name), f"no {name} decoded")
    j.need(not j.by_name("generic_nack"), "generic_nack on the link", j.by_name("generic_nack"))
    for p in j.by_name("bind_transceiver"):
        j.need(p.show("smpp.system_id") == expect["system_id"], "bind system_id", [p])
    for p in j.pdus:
        if p.name.endswith("_resp"):
            j.need(p.int("smpp.command_status") == 0, f"{p.name} with an error status", [p])
    # Every request answered, matched by sequence number.
    for req in ("bind_transceiver", "submit_sm", "deliver_sm", "enquire_link"):
        seqs = sorted(p.int("smpp.sequence_number") for p in j.by_name(req))
        rseqs = sorted(p.int("smpp.sequence_number") for p in j.by_name(req + "_resp"))
        j.need(seqs == rseqs, f"{req} sequence numbers {seqs}, answers {rseqs}")

    subs = j.by_name("submit_sm")
    j.need(len(subs) == len(expect["sent"]), f"{len(subs)} submit_sm for {len(expect['sent'])} sends",
           subs)
    for want in expect["sent"]:
        mine = [p for p in subs if p.show("smpp.destination_addr") == want["dest"]]
        if not j.need(len(mine) == 1, f"{len(mine)} submit_sm to {want['dest']}", mine):
            continue
        p = mine[0]
        ud = bytes.fromhex(want["ud"])
        esm_f = p.fields.get("smpp.esm.submit.features")
        esm = int(esm_f[0].get("unmaskedvalue"), 16) if esm_f else 0
        j.need(esm & 0x40 and (esm & 0x3C) == 0,
               f"submit_sm to {want['dest']}: esm_class 0x{esm:02x}, want UDHI (0x40), default type", [p])
        j.need(p.int("smpp.protocol_id") == int(want["pid"], 16),
               f"submit_sm to {want['dest']}: protocol_id {p.show('smpp.protocol_id')}, want {want['pid']}", [p])
        j.need(p.int("smpp.data_coding") == int(want["wire_dcs"], 16),
               f"submit_sm to {want['dest']}: data_coding {p.show('smpp.data_coding')}, want {want['wire_dcs']}", [p])
        j.need(p.int("smpp.regdel.receipt") == 1, f"submit_sm to {want['dest']}: no receipt asked", [p])
        j.need(p.value("smpp.message") == want["ud"],
               f"submit_sm to {want['dest']}: short_message is not the UD sent", [p])
        # The UDH as gsm_sms_ud decoded it: the same IEs, in order, and the body after it.
        ud_pdu = next((s for s in p.subs if s.get("name") == "gsm_sms_ud"), None)
        if not j.need(ud_pdu is not None, f"submit_sm to {want['dest']}: UD not handed to gsm_sms_ud", [p]):
            continue
        got_ies = [int(f.get("show"), 16) for f in ud_pdu.iter("field")
                   if f.get("name") == "gsm_sms.ie_identifier"]
        sent_ies = udh_ies(ud)
        j.need(got_ies == [i for i, _ in sent_ies],
               f"submit_sm to {want['dest']}: gsm_sms_ud IEs {got_ies}, sent {[i for i, _ in sent_ies]}", [p])
        for iei, data in sent_ies:
            if iei == 0x05:
                dst, org = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big")
                got = {f.get("name"): int(f.get("show")) for f in ud_pdu.iter("field")
                       if f.get("name") in ("gsm_sms.destination_port", "gsm_sms.originator_port")}
                j.need(got == {"gsm_sms.destination_port": dst, "gsm_sms.originator_port": org},
                       f"submit_sm to {want['dest']}: ports {got}, sent {dst}/{org}", [p])
        body = ud[1 + ud[0]:]
        if want.get("decoded_as"):  # handed on by port: that dissector takes the whole body
            sub = next((s for s in p.subs if s.get("name") == want["decoded_as"]), None)
            j.need(sub is not None and int(sub.get("size")) == len(body),
                   f"submit_sm to {want['dest']}: body not decoded whole as {want['decoded_as']}", [p])
        else:
            got = next((f.get("value") for f in ud_pdu.iter("field")
                        if f.get("name") == "gsm_sms_ud.short_msg"), None)
            j.need(got == body.hex(), f"submit_sm to {want['dest']}: body after the UDH differs", [p])

    # Receipts: esm_class 0x04 with receipted_message_id naming a message id
    # that a submit_sm_resp gave out, message_state DELIVERED, and the same id
    # in the receipt text.
    ids = {p.show("smpp.message_id") for p in j.by_name("submit_sm_resp")}
    receipts = [p for p in j.by_name("deliver_sm") if p.int("smpp.esm.submit.msg_type") == 1]
    j.need(len(receipts) == len(subs), f"{len(receipts)} receipts for {len(subs)} submit_sm")
    seen = set()
    for p in receipts:
        rid = p.show("smpp.receipted_message_id")
        text = bytes.fromhex(p.value("smpp.message", "")).decode("ascii", "replace")
        j.need(rid in ids and rid not in seen, f"receipt for unknown or repeated id {rid!r}", [p])
        seen.add(rid)
        j.need(p.int("smpp.message_state") == 2, "receipt message_state is not DELIVERED", [p])
        j.need(text.startswith(f"id:{rid} ") and "stat:DELIVRD" in text,
               f"receipt text {text!r} does not match id {rid}", [p])
    print(f"smpp judge: {len(j.pdus)} PDUs ({j.summary()}); {len(subs)} submit_sm with their UDH "
          f"decoded, {len(receipts)} receipts matched, {j.tcp_payload} TCP payload octets")
    return not j.failures


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("cmpp", "smpp"):
        sys.exit(__doc__)
    try:
        ok = (judge_cmpp if sys.argv[1] == "cmpp" else judge_smpp)(sys.argv[2], sys.argv[3])
    except (KeyError, TypeError, ValueError, IndexError) as e:
        # A field the judge relies on is missing or not what tshark usually
        # prints: a failure of the decode, not a pass.
        print(f"FAIL: unexpected decode ({type(e).__name__}: {e})")
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
