# SPDX-License-Identifier: Apache-2.0
"""The otagw API client of the gateway tests (lib_gateway.sh puts this
directory on PYTHONPATH). Python 3 standard library only.

    call = make_call(port, token)
    status, body = call("POST", "/v1/ses", {"seid": ..., "msisdn": ...})

call(method, path, body=None, raw=None, token=...) sends body as JSON (or
the bytes raw as they are) to http://127.0.0.1:PORT with "Authorization:
Bearer TOKEN" (none when the token is empty) and returns the status and the
decoded JSON answer ({} when empty); an HTTP error status is returned, not
raised. answers: a file every raw answer is appended to (one a line).
down_ok: a refused connection gives (0, {}) instead of raising.

Conn(port, token) is a kept-alive connection with the same call(), and
register_all() registers SEs with their SCP80 keys from parallel connections.
"""
import http.client
import json
import threading
import urllib.error
import urllib.request


def make_call(port, token, answers=None, down_ok=False):
    base = f"http://127.0.0.1:{port}"
    default_token = token

    def call(method, path, body=None, raw=None, token=default_token):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                st, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            st, text = e.code, e.read()
        except (urllib.error.URLError, ConnectionError):
            if not down_ok:
                raise
            return 0, {}
        if answers is not None:
            answers.write(text.decode() + "\n")
        return st, json.loads(text or b"{}")

    return call


class Conn:
    """A kept-alive connection to otagw (http.client) with "Authorization:
    Bearer TOKEN" (none when empty): call(method, path, body=None) returns
    the status and the decoded JSON answer; on an exception of retry_on the
    connection is reopened and the call tried again, three times at most."""

    def __init__(self, port, token, retry_on=(http.client.HTTPException, OSError)):
        self.port, self.token, self.retry_on = port, token, retry_on
        self.c = None

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data else {}
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        for attempt in range(3):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.c.request(method, path, body=data, headers=hdrs)
                r = self.c.getresponse()
                return r.status, json.loads(r.read() or b"{}")
            except self.retry_on:
                if self.c:
                    self.c.close()
                self.c = None
                if attempt == 2:
                    raise


def register_all(connect, ses, se_body, keys_body, threads=8):
    """POST /v1/ses se_body(s), then POST /v1/ses/{seid}/keys/scp80
    keys_body(s), for every SE s of ses, from `threads` connections made by
    connect(); both must answer 201. Returns the first error, or None."""
    it = iter(ses)
    lock = threading.Lock()
    errors = []

    def worker():
        c = connect()
        while True:
            with lock:
                s = next(it, None)
            if s is None or errors:
                return
            try:
                st, b = c.call("POST", "/v1/ses", se_body(s))
                if st != 201:
                    raise RuntimeError(f"register {s['seid']}: {st} {b}")
                st, b = c.call("POST", f"/v1/ses/{s['seid']}/keys/scp80", keys_body(s))
                if st != 201:
                    raise RuntimeError(f"keys {s['seid']}: {st} {b}")
            except Exception as e:
                with lock:
                    errors.append(str(e))
                return

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors[0] if errors else None
