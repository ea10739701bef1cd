#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A business platform for the gateway tests: records otagw's result callbacks.

Usage: python3 callback_receiver.py PORT_FILE LOG [MODE_FILE]

Listens on a free loopback port (written to PORT_FILE) and appends one JSON
line per POST to LOG: the X-Otagw-Signature header (sig), X-Otagw-Delivery
(delivery), the status it answered and the body. The status is read from
MODE_FILE at every POST (500 when empty); without MODE_FILE it answers 500
to the first POST and 200 to every later one. Python 3 standard library only.
"""
import http.server
import json
import sys

port_file, log = sys.argv[1], sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else None
state = {"n": 0}


class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        state["n"] += 1
        if mode:
            status = int(open(mode).read().strip() or "500")
        else:
            status = 500 if state["n"] == 1 else 200
        with open(log, "a") as f:
            f.write(json.dumps({"sig": self.headers.get("X-Otagw-Signature"),
                                "delivery": self.headers.get("X-Otagw-Delivery"),
                                "status": status, "body": body.decode()}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(port_file, "w").write(str(s.server_address[1]))
s.serve_forever()
