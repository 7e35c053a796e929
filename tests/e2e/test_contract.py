#!/usr/bin/env python3
"""Contract test: every response of a standard session validates against Eka's OpenAPI and
against the server's own (GET /openapi.json).

Stoplight Prism (installed under build/tools by scripts/npm-tools.sh, which `make test` runs)
validates as a proxy. Every request of the session goes through two of them in a row:

  test -> Prism on the served document -> relay -> Prism on Eka's file of that API -> server

  Eka's files: ../shared/spec/eka-cdr-onboarding.openapi.yaml  for /cdr/v1/...
               ../shared/spec/eka-connect-auth.openapi.yaml    for /connect-auth/v1/...
  the served document: fetched from the server's GET /openapi.json at the start.

Prism runs without --errors, so every request reaches the server unchanged (with --errors a
request that breaks the spec on purpose would be answered 422 by Prism and never reach it), and
reports what it found in the `sl-violations` response header: a JSON list of
{location, severity, code, message}. location[0] tells a request violation ("request": the
test sent something the spec does not allow, often on purpose) from a response violation
("response": the server answered something the spec does not allow). A Prism sets its own
header over any of its upstream's, so the relay (a thread of this test) renames Eka's Prism's
header to `x-eka-violations` on its way back; the outer Prism adds its own `sl-violations`.
Each request is sent once, and both documents judge the same answer.

The session replays all 21 operations of Eka's two files with minimal and full records, after
PATCH (including nulls that clear fields) and after DELETE, and the error answers 400, 401,
404, 405, 409, 415 and 429, and issue 10's conditional requests (ETag headers, 304, 412). It
fails on any response violation of either document, with two exceptions that Eka's file
forces and each step names in advance:
  - a status Eka's file does not declare for that operation (401 on most of /cdr/v1, 409, 415,
    and issue 10's 304 Not Modified and 412 Precondition Failed):
    Prism can only warn "Unable to match the returned status code"; the body is then checked
    here to be the error shape every declared /cdr/v1 error has;
  - a method no document has an operation for (405, PATCH on a collection): Prism finds no
    route and validates nothing; checked here the same way.
The served document has no such exception: it must declare every status the session sees.
Issue 10's history, change feed and restore, which Eka's files do not have, are validated
against the served document alone (Eka's Prism finds no route for them).
Where the two documents differ on a request (the served one takes null in a PATCH, and checks
a pincode's or a mobile's digits), the step says which one the request breaks.
Every answer must also come from the server (X-Request-Id), not from Prism, and no /cdr/v1 or
connect-auth body may hold a null anywhere.

The checker is itself tested (CheckerSeesViolations): a stub upstream behind the same chain
answers with nulls, a string where the specs want an array, and records short of what the
served document requires, including to requests that break the specs, and the same checker
must report each response violation, on the side of each document that has it.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_contract.py
Environment: HIPUSERS_PRISM (the prism executable), HIPUSERS_SPEC_DIR (the spec folder).
"""
import ctypes
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, free_port, make_token  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PRISM = os.environ.get("HIPUSERS_PRISM") or os.path.join(ROOT, "build", "tools", "node_modules", ".bin", "prism")
SPEC_DIR = os.environ.get("HIPUSERS_SPEC_DIR") or os.path.join(ROOT, "..", "shared", "spec")
CDR_SPEC = os.path.join(SPEC_DIR, "eka-cdr-onboarding.openapi.yaml")
AUTH_SPEC = os.path.join(SPEC_DIR, "eka-connect-auth.openapi.yaml")
READY_SECONDS = 120  # three Node processes starting on a loaded 2-core machine
DOC_PATH = os.path.join(ROOT, "docs", "openapi.json")  # what GET /openapi.json serves

# The 21 operations of the two specs: every one must be replayed with a 2xx answer.
OPERATIONS = {
    "GET /cdr/v1/get_business_info/",
    "GET /cdr/v1/hipusers/", "GET /cdr/v1/hipusers/{hip_user_id}",
    "POST /connect-auth/v1/account/login", "POST /connect-auth/v1/account/refresh-token",
    "POST /connect-auth/v1/account/refresh",
} | {f"{m} /cdr/v1/{r}/" for r in ("ekauser", "doctor", "clinic") for m in ("GET", "POST")} \
  | {f"{m} /cdr/v1/{r}/{{{p}}}/" for r, p in (("ekauser", "user_id"), ("doctor", "doc_id"), ("clinic", "clinic_id"))
     for m in ("GET", "PATCH", "DELETE")}

CREATES = {f"POST /cdr/v1/{r}/" for r in ("ekauser", "doctor", "clinic")}
UNDECLARED = "Unable to match the returned status code"
NO_ROUTE = "route not found"


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the child of a fork only calls it
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child before exec: SIGTERM when the test process dies, even by SIGKILL, so a
    ctest timeout leaves no Prism behind."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Prism:
    """One `prism proxy` process on a free port."""

    def __init__(self, spec, upstream, log_dir, name):
        self.spec, self.upstream, self.name = spec, upstream, name
        self.log_path = os.path.join(log_dir, f"prism-{name}.log")
        self.proc = None
        self.port = None

    def start(self):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "NODE_ENV"}  # one process, not -m
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PRISM, "proxy", self.spec, self.upstream, "--host", "127.0.0.1", "--port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            preexec_fn=_die_with_parent)
        return self

    def wait_ready(self, deadline):
        """Polls until Prism accepts connections; fails when it exits or the deadline passes."""
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prism ({self.name}) exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"prism ({self.name}) not listening after {READY_SECONDS} s:\n{self.log()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, raw=None, headers=None, content_type="application/json"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = dict(headers or {})
        if data is not None and content_type:
            h["Content-Type"] = content_type
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw_body = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        return Answer(r.status, hdrs, raw_body)


class Answer:
    """One answer through the chain: `violations` are Eka's Prism's (renamed by the relay),
    `ours` those of the Prism on the served document."""

    def __init__(self, status, headers, raw):
        self.status, self.headers, self.raw = status, headers, raw
        try:
            self.json = json.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, UnicodeDecodeError):
            self.json = None
        self.violations = json.loads(headers["x-eka-violations"]) if "x-eka-violations" in headers else []
        self.ours = json.loads(headers["sl-violations"]) if "sl-violations" in headers else []

    def judged_by_ours(self):
        """The same answer with the served document's violations in place of Eka's."""
        view = Answer.__new__(Answer)
        view.__dict__.update(self.__dict__)
        view.violations = self.ours
        return view

    def side(self, which):
        """Violations of one side, 'request' or 'response' (one without a location counts as a
        response violation, so nothing unexplained passes)."""
        def where(v):
            loc = v.get("location") or []
            return "request" if loc and loc[0] == "request" else "response"
        return [v for v in self.violations if where(v) == which]

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r} violations={self.violations}>"


def nulls(v, where="body"):
    """Paths of every null inside a JSON value."""
    if v is None:
        return [where]
    if isinstance(v, dict):
        return [p for k, x in v.items() for p in nulls(x, f"{where}.{k}")]
    if isinstance(v, list):
        return [p for i, x in enumerate(v) for p in nulls(x, f"{where}[{i}]")]
    return []


def problems(a, status, op, declared=True, bad_request=False, upstream=True, create=False, nulls_ok=False):
    """Everything wrong with one answer, as a list of sentences (empty when it is right).
    op: "METHOD /spec/path/{param}" or None when the spec has no such operation;
    declared: the spec declares this status for op; bad_request: the request breaks the spec
    on purpose (Prism must say so); create: a POST on a collection (its 400 message is a list);
    nulls_ok: a record's history, whose changes go from and to null (no value)."""
    out = []
    if a.status != status:
        out.append(f"status {a.status}, expected {status}")
    if upstream and "x-request-id" not in a.headers:
        out.append("the answer came from Prism, not from the server")
    out += violation_problems(a, op, declared, bad_request)
    if a.json is None and a.raw:
        out.append("body is not JSON")
    for p in nulls(a.json) if a.raw and not nulls_ok else []:  # (no body at all, as a 304 has, holds no null)
        out.append(f"null rendered at {p}")
    # Answers Prism cannot validate (no operation, undeclared status) get the shape every
    # declared error of their API has.
    if a.status >= 400 and (op is None or not declared) and isinstance(a.json, dict):
        if op is not None and op.split(" ")[1].startswith("/connect-auth/"):
            if not (a.json.get("code") == a.status and isinstance(a.json.get("error"), str)):
                out.append(f"connect-auth error shape: {a.json}")
        elif not (a.json.get("status") == "error" and isinstance(a.json.get("message"), str)):
            out.append(f"error shape: {a.json}")
    if create and a.status == 400 and isinstance(a.json, dict):
        m = a.json.get("message")
        if not (isinstance(m, list) and m and all(isinstance(x, str) for x in m)):
            out.append(f"a create's 400 message must be a list of strings: {m!r}")
    return out


def violation_problems(a, op, declared, bad_request):
    """What is wrong with the violations one Prism reported (a.violations) for this answer."""
    out = []
    req, resp = a.side("request"), a.side("response")
    if op is None:
        if not any(NO_ROUTE in v.get("message", "") for v in req):
            out.append(f"expected Prism to find no operation, got request violations {req}")
        resp_ok = []
    elif not declared:
        resp_ok = [v for v in resp if v.get("severity") == "Warning" and UNDECLARED in v.get("message", "")]
        if not resp_ok:
            out.append(f"status {a.status} was expected to be undeclared by the spec; Prism matched it")
    else:
        resp_ok = []
    bad = [v for v in resp if v not in resp_ok]
    if bad:
        out.append("RESPONSE VIOLATIONS: " + json.dumps(bad))
    if op is not None:
        if bad_request and not req:
            out.append("the request breaks the spec on purpose but Prism reported no request violation")
        if not bad_request and req:
            out.append("unexpected request violations (the test's own request breaks the spec): " + json.dumps(req))
    return out


def ours_problems(a, op, bad_request):
    """What the Prism on the served document found wrong: it declares every status the
    server answers, so only an operation it does not have (op None) is exempt."""
    return [p.replace("RESPONSE VIOLATIONS", "RESPONSE VIOLATIONS of the served document")
             .replace("the spec", "the served document")
            for p in violation_problems(a.judged_by_ours(), op, True, bad_request)]


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
              "proxy-authorization", "proxy-authenticate"}


class Relay(http.server.BaseHTTPRequestHandler):
    """Between the Prism on the served document and Eka's Prisms: passes each request to the
    Prism of its API (by path prefix) and the answer back, with Eka's Prism's `sl-violations`
    renamed to `x-eka-violations` so the outer Prism's own header does not replace it."""
    routes = ()  # (path prefix, port), set by Chain

    def _relay(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        port = next(p for prefix, p in self.routes if self.path.startswith(prefix))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request(self.command, self.path, body=body,
                     headers={k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("date", "server"):
                self.send_header("x-eka-violations" if k.lower() == "sl-violations" else k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _relay

    def log_message(self, *args):
        pass


class Chain:
    """test -> Prism on `doc` -> relay -> Prism on Eka's CDR (and auth) file -> upstream.
    Every Prism is forked before the relay's thread starts (a fork copies only the forking
    thread, and Prism's preexec hook must not meet a lock some other thread held)."""

    def __init__(self, cls, doc, upstream, log_dir, with_auth=True):
        relay = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("RelayOf" + cls.__name__, (Relay,), {}))
        cls.addClassCleanup(relay.server_close)
        self.cdr = Prism(CDR_SPEC, upstream, log_dir, "cdr")
        self.auth = Prism(AUTH_SPEC, upstream, log_dir, "auth") if with_auth else None
        self.ours = Prism(doc, f"http://127.0.0.1:{relay.server_address[1]}", log_dir, "ours")
        prisms = [p for p in (self.cdr, self.auth, self.ours) if p]
        for p in prisms:
            p.start()
            cls.addClassCleanup(p.stop)
        relay.RequestHandlerClass.routes = (((("/connect-auth/", self.auth.port),) if self.auth else ()) +
                                            (("/", self.cdr.port),))  # the rest: Eka's CDR file finds no route
        threading.Thread(target=relay.serve_forever, daemon=True).start()
        cls.addClassCleanup(relay.shutdown)
        deadline = time.time() + READY_SECONDS
        for p in prisms:
            p.wait_ready(deadline)

    def request(self, *args, **kw):
        return self.ours.request(*args, **kw)


def start_all(cls, prisms):
    for p in prisms:
        p.start()
        cls.addClassCleanup(p.stop)
    deadline = time.time() + READY_SECONDS
    for p in prisms:
        p.wait_ready(deadline)


def require_tools():
    if not os.access(PRISM, os.X_OK):
        raise RuntimeError(f"Prism is missing at {PRISM}: `make test` installs it (scripts/npm-tools.sh)")
    for spec in (CDR_SPEC, AUTH_SPEC):
        if not os.path.isfile(spec):
            raise RuntimeError(f"Eka's OpenAPI is missing at {spec} (set HIPUSERS_SPEC_DIR)")


class Contract(unittest.TestCase):
    """A standard session through Prism; one test so the steps run in order."""

    @classmethod
    def setUpClass(cls):
        require_tools()
        cls.srv = Server(args=["--refresh-reuse-grace", "0"])  # a reuse is answered 401 at once
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.start()
        served = cls.srv.request("GET", "/openapi.json")  # the document the server describes itself with
        if served.status != 200 or not isinstance(served.json, dict):
            raise RuntimeError(f"GET /openapi.json: {served!r}")
        doc = os.path.join(cls.srv.data_dir, "openapi.json")
        with open(doc, "wb") as f:
            f.write(served.raw)
        cls.chain = Chain(cls, doc, f"http://127.0.0.1:{cls.srv.port}", cls.srv.data_dir)

    def setUp(self):
        self.failures = []
        self.replayed = set()
        self.steps = 0

    def step(self, method, path, status, op, body=None, raw=None, token="access", headers=None,
             content_type="application/json", declared=True, bad_request=False, ours_bad_request=None, ours_op="",
             nulls_ok=False):
        """Sends one request through the chain, records what is wrong with the answer by either
        document and returns it. token: "access" (the session's), None, or a token string;
        declared, bad_request: as Eka's file sees it; ours_bad_request: whether the request
        breaks the served document (by default, as it breaks Eka's); ours_op: the operation of
        the served document, when it is not op."""
        prism = self.chain
        if ours_bad_request is None:
            ours_bad_request = bad_request
        if ours_op == "":
            ours_op = op
        h = dict(headers or {})
        if token == "access":
            token = self.access
        if token is not None:
            h["auth"] = token
        a = prism.request(method, path, body=body, raw=raw, headers=h, content_type=content_type)
        self.steps += 1
        create = op in CREATES
        for p in (problems(a, status, op, declared, bad_request, create=create, nulls_ok=nulls_ok) +
                  ours_problems(a, ours_op, ours_bad_request)):
            self.failures.append(f"{method} {path} -> {a.status}: {p}\n    body: {a.raw[:400]!r}")
        if op is not None and declared and 200 <= a.status < 300:
            self.replayed.add(op)
        return a

    def ok(self, a, status):
        """For steps later steps depend on: stop at once when they failed."""
        self.assertEqual(a.status, status, "\n".join(self.failures) + f"\n{a!r}")
        return a.json

    def test_session(self):
        s = self.step
        r = self.srv.cli("business", "create", "--name", "Contract Clinic Group")
        self.assertEqual(r.returncode, 0, r)
        b_id = r.stdout.strip()
        r = self.srv.cli("client", "create", "--b-id", b_id, "--name", "contract")
        self.assertEqual(r.returncode, 0, r)
        kv = dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
        cid, secret = kv["client_id"], kv["client_secret"]
        LOGIN, REFRESH, REFRESH_OLD = ("/connect-auth/v1/account/login", "/connect-auth/v1/account/refresh-token",
                                       "/connect-auth/v1/account/refresh")
        OP_LOGIN, OP_REFRESH, OP_REFRESH_OLD = ("POST " + LOGIN, "POST " + REFRESH, "POST " + REFRESH_OLD)

        # ---- the server's own document, which Eka's files do not have
        doc = s("GET", "/openapi.json", 200, None, token=None, ours_op="GET /openapi.json").json
        self.assertEqual(doc["openapi"], "3.1.0")
        s("GET", "/healthz", 200, None, token=None, ours_op="GET /healthz")
        s("GET", "/readyz", 200, None, token=None, ours_op="GET /readyz")

        # ---- connect-auth: login, refresh-token, refresh and their errors (4XX is declared)
        self.access = None
        pair = self.ok(s("POST", LOGIN, 200, OP_LOGIN, {"client_id": cid, "client_secret": secret}, token=None), 200)
        self.access = pair["access_token"]
        s("POST", LOGIN, 401, OP_LOGIN, {"client_id": cid, "client_secret": "wrong"}, token=None)
        s("POST", LOGIN, 400, OP_LOGIN, {"client_id": cid}, token=None, bad_request=True)
        s("POST", LOGIN, 415, OP_LOGIN, raw=b"client_id=x", content_type="text/plain", token=None,
          bad_request=True)
        pair = self.ok(s("POST", REFRESH, 200, OP_REFRESH, {"refresh_token": pair["refresh_token"]}, token=None,
                         headers={"Authorization": "Bearer " + self.access, "Client-Id": cid}), 200)
        self.access = pair["access_token"]
        s("POST", REFRESH, 401, OP_REFRESH, {"refresh_token": pair["refresh_token"]}, token=None,
          bad_request=True)  # the required Authorization and Client-Id headers left out
        old_rt = pair["refresh_token"]
        pair = self.ok(s("POST", REFRESH_OLD, 200, OP_REFRESH_OLD, {"refresh_token": old_rt}, token=None), 200)
        self.access = pair["access_token"]
        s("POST", REFRESH_OLD, 400, OP_REFRESH_OLD, {"access_token": self.access}, token=None, bad_request=True)
        for _ in range(10):
            s("POST", LOGIN, 401, OP_LOGIN, {"client_id": "EC_unknown", "client_secret": "x"}, token=None)
        a = s("POST", LOGIN, 429, OP_LOGIN, {"client_id": "EC_unknown", "client_secret": "x"}, token=None)
        self.assertIn("retry-after", a.headers)
        # the spent refresh token: reuse ends the session, so this is the last auth step
        s("POST", REFRESH_OLD, 401, OP_REFRESH_OLD, {"refresh_token": old_rt}, token=None)
        pair = self.ok(s("POST", LOGIN, 200, OP_LOGIN, {"client_id": cid, "client_secret": secret}, token=None), 200)
        self.access = pair["access_token"]

        # ---- business info
        info = self.ok(s("GET", "/cdr/v1/get_business_info/", 200, "GET /cdr/v1/get_business_info/"), 200)
        self.assertEqual(info, {"status": "success", "bid": b_id, "business_name": "Contract Clinic Group"})
        s("GET", "/cdr/v1/get_business_info/", 401, "GET /cdr/v1/get_business_info/", token=None, bad_request=True)
        s("GET", "/cdr/v1/get_business_info/", 404, "GET /cdr/v1/get_business_info/",
          token=make_token("9999999999999999"), declared=False)  # a CLI-style token of no business

        C, D, U = "/cdr/v1/clinic/", "/cdr/v1/doctor/", "/cdr/v1/ekauser/"
        OPC = {m: f"{m} {C}" for m in ("GET", "POST")}
        OPD = {m: f"{m} {D}" for m in ("GET", "POST")}
        OPU = {m: f"{m} {U}" for m in ("GET", "POST")}
        IC = {m: f"{m} /cdr/v1/clinic/{{clinic_id}}/" for m in ("GET", "PATCH", "DELETE")}
        ID = {m: f"{m} /cdr/v1/doctor/{{doc_id}}/" for m in ("GET", "PATCH", "DELETE")}
        IU = {m: f"{m} /cdr/v1/ekauser/{{user_id}}/" for m in ("GET", "PATCH", "DELETE")}
        HL, HI = "GET /cdr/v1/hipusers/", "GET /cdr/v1/hipusers/{hip_user_id}"

        # ---- empty lists
        for path, op in ((C, OPC), (D, OPD), (U, OPU)):
            s("GET", path, 200, op["GET"])
        s("GET", "/cdr/v1/hipusers/", 200, HL)

        # ---- minimal and full records
        c_min = self.ok(s("POST", C, 201, OPC["POST"], {"name": "Min Clinic", "address": "1 Road"}), 201)["ekaid"]
        d_min = self.ok(s("POST", D, 201, OPD["POST"], {"firstname": "Min", "lastname": "Doc", "gender": "F"}),
                        201)["ekaid"]
        c_full = self.ok(s("POST", C, 201, OPC["POST"], {
            "name": "Sunrise Clinic", "address": "123 Main Street, Block A", "partner_id": "Clinic_321_Indore",
            "pincode": "560001", "contact": "9876543210", "doctor_ids": [d_min], "city": "Bangalore",
            "state": "Karnataka"}), 201)["ekaid"]
        d_full = self.ok(s("POST", D, 201, OPD["POST"], {
            "firstname": "Rajesh", "lastname": "Sharma", "mobile": "9000011111", "dob": "1979-01-01",
            "email": "dr.rajesh@example.com", "gender": "M", "specialisations": ["Cardiology", "Internal Medicine"],
            "qualifications": ["MBBS", "MD"], "about": "Cardiologist.",
            "profile_image_url": "https://example.com/images/dr-rajesh.jpg", "partner_clinic_ids": ["Clinic_321_Indore"],
            "partner_id": "Part_doc"}), 201)["ekaid"]
        u_min = self.ok(s("POST", U, 201, OPU["POST"], {"firstname": "Min", "lastname": "User", "gender": "O",
                                                       "dob": "2000-02-29", "mobile": "9000000001"}), 201)["ekaid"]
        u_full = self.ok(s("POST", U, 201, OPU["POST"], {
            "firstname": "Amit", "lastname": "Kumar", "mobile": "9876543210", "email": "amit.kumar@example.com",
            "auth_userid": "Prateek_@_123", "gender": "M", "dob": "1990-05-15", "is_admin": False, "seat_type": "b",
            "persona": "S", "doctor_ids": [d_full, d_min], "clinic_ids": [c_full], "partner_id": "Part_user_1"}),
            201)["ekaid"]

        def views():
            """GET of everything, as a user would look after each change."""
            for path, op in ((C, OPC), (D, OPD), (U, OPU)):
                s("GET", path, 200, op["GET"])
            s("GET", "/cdr/v1/hipusers/", 200, HL)
            out = {}
            for key, path, op in ((c_min, C, IC), (c_full, C, IC), (d_min, D, ID), (d_full, D, ID),
                                  (u_min, U, IU), (u_full, U, IU)):
                if key in deleted:
                    s("GET", path + key + "/", 404, op["GET"])
                    if path == U:
                        s("GET", "/cdr/v1/hipusers/" + key, 404, HI)
                    continue
                out[key] = s("GET", path + key + "/", 200, op["GET"]).json
                if path == U:
                    s("GET", "/cdr/v1/hipusers/" + key, 200, HI)
            return out

        deleted = set()
        got = views()
        # by partner id too
        s("GET", C + "Clinic_321_Indore/", 200, IC["GET"])
        s("GET", D + "Part_doc/", 200, ID["GET"])
        s("GET", U + "Part_user_1/", 200, IU["GET"])
        # a minimal record shows no optional field at all (omitted, never null)
        self.assertEqual(set(got[c_min]["clinic"]), {"id", "name", "address", "doctors", "created_at", "updated_at"})
        self.assertEqual(set(got[d_min]["doctor"]), {"id", "firstname", "lastname", "gender", "dob", "clinics",
                                                    "created_at", "updated_at"})
        self.assertEqual(set(got[u_min]["user"]), {"id", "firstname", "lastname", "mobile", "gender", "dob",
                                                  "is_admin", "seat_type", "persona", "doctors", "clinics",
                                                  "created_at", "updated_at"})
        self.assertEqual(got[d_full]["doctor"]["specialisation"], "Cardiology")

        # ---- PATCH: null clears (the spec types these as strings: a request violation on
        # purpose), values fill in, links change
        s("PATCH", U + u_full + "/", 200, IU["PATCH"], {"email": None, "partner_id": None, "is_admin": True,
                                                        "seat_type": "p", "clinic_ids": [c_full, c_min]},
          bad_request=True, ours_bad_request=False)  # the served document takes null here
        s("PATCH", U + u_min + "/", 200, IU["PATCH"], {"email": "min.user@example.com", "partner_id": "Part_user_2",
                                                       "doctor_ids": [d_min]})
        s("PATCH", D + d_full + "/", 200, ID["PATCH"], {"about": None, "specialisations": None, "email": None,
                                                        "profile_image_url": None}, bad_request=True, ours_bad_request=False)
        s("PATCH", D + d_min + "/", 200, ID["PATCH"], {"about": "Updated bio", "specialisations": ["Dermatology"],
                                                       "clinic_ids": [c_min]})
        s("PATCH", C + c_full + "/", 200, IC["PATCH"], {"pincode": None, "contact": None, "city": None},
          bad_request=True, ours_bad_request=False)
        s("PATCH", C + c_min + "/", 200, IC["PATCH"], {"pincode": "110001", "contact": "01123456789",
                                                       "doctor_ids": [d_full]})
        got = views()
        self.assertNotIn("email", got[u_full]["user"])
        self.assertNotIn("partner_id", got[u_full]["user"])
        self.assertNotIn("specialisation", got[d_full]["doctor"])
        self.assertNotIn("pincode", got[c_full]["clinic"])
        self.assertEqual(got[u_min]["user"]["email"], "min.user@example.com")

        # ---- versions (issue 10): ETag on GET and PATCH are headers the spec does not declare
        # (Prism must not flag them); 304 and 412 are statuses it does not declare, checked
        # like the other undeclared ones
        for path, key, op, body in ((C, c_min, IC, {"city": "Pune"}), (D, d_min, ID, {"about": "Versioned"}),
                                    (U, u_min, IU, {"persona": "S"})):
            a = s("GET", path + key + "/", 200, op["GET"])
            self.ok(a, 200)
            tag = a.headers.get("etag")
            self.assertTrue(tag, f"GET {path}{key}/ answered no ETag")
            a = s("GET", path + key + "/", 304, op["GET"], headers={"If-None-Match": tag}, declared=False)
            self.assertEqual((a.raw, a.headers.get("etag")), (b"", tag))
            s("PATCH", path + key + "/", 412, op["PATCH"], body, headers={"If-Match": '"stale"'}, declared=False)
            s("DELETE", path + key + "/", 412, op["DELETE"], headers={"If-Match": '"stale"'}, declared=False)
            a = s("PATCH", path + key + "/", 200, op["PATCH"], body, headers={"If-Match": tag})
            self.assertNotIn(a.headers.get("etag"), (None, tag))
        if path == U:
            s("GET", "/cdr/v1/hipusers/" + u_min, 304, HI, headers={"If-None-Match": a.headers["etag"]},
              declared=False)
        # ---- issue 10: pages and filters (query parameters, "next_cursor" an extra key), and
        # Idempotency-Key (headers): every answer still valid against the spec
        for path, op in ((C, OPC["GET"]), (D, OPD["GET"]), (U, OPU["GET"]), ("/cdr/v1/hipusers/", HL)):
            page = self.ok(s("GET", path + "?limit=1", 200, op), 200)
            self.assertIn("next_cursor", page)
            last = self.ok(s("GET", path + "?limit=1000&cursor=" + page["next_cursor"], 200, op), 200)
            self.assertNotIn("next_cursor", last)
        s("GET", D + "?mobile=%2B919000011111&clinic_id=" + c_full + "&limit=5", 200, OPD["GET"])
        s("GET", U + "?updated_since=2000-01-01T00:00:00Z&partner_id=Part_user_2", 200, OPU["GET"])
        s("GET", C + "?doctor_id=" + d_min, 200, OPC["GET"])
        s("GET", C + "?limit=0", 400, OPC["GET"], ours_bad_request=True)  # the served document has the range
        s("GET", U + "?page=2", 400, OPU["GET"])
        s("GET", "/cdr/v1/hipusers/?limit=1001", 400, HL, declared=False, ours_bad_request=True)
        idem = {"Idempotency-Key": "contract-create-1"}
        first = s("POST", C, 201, OPC["POST"], {"name": "Idem Clinic", "address": "2 Road"}, headers=idem)
        again = s("POST", C, 201, OPC["POST"], {"name": "Idem Clinic", "address": "2 Road"}, headers=idem)
        self.assertEqual((again.raw, again.headers.get("idempotent-replayed")), (first.raw, "true"))
        s("POST", C, 422, OPC["POST"], {"name": "Other Clinic", "address": "2 Road"}, headers=idem, declared=False)
        s("POST", C, 400, OPC["POST"], {"name": "Idem Clinic", "address": "2 Road"},
          headers={"Idempotency-Key": "two words"}, ours_bad_request=True)  # and the key's pattern
        s("DELETE", C + first.json["ekaid"] + "/", 200, IC["DELETE"])

        # ---- error answers
        s("POST", C, 400, OPC["POST"], {"name": "No Address"}, bad_request=True)
        s("POST", D, 400, OPD["POST"], {"firstname": "Two", "lastname": "Forms", "gender": "M",
                                        "clinic_ids": [c_min], "partner_clinic_ids": ["Clinic_321_Indore"]})
        s("POST", U, 400, OPU["POST"], {"firstname": "Bad", "lastname": "Email", "gender": "M",
                                        "dob": "1990-01-01", "email": "not-an-email"}, bad_request=True)
        s("POST", U, 400, OPU["POST"], {"firstname": "Unknown", "lastname": "Doctor", "gender": "M",
                                        "dob": "1990-01-01", "mobile": "9000000009", "doctor_ids": ["do0"]})
        s("PATCH", U + u_min + "/", 400, IU["PATCH"], {"gender": "X"}, bad_request=True)
        # Eka's file has no rule for these digits; the served document has the server's
        s("PATCH", D + d_min + "/", 400, ID["PATCH"], {"mobile": "12"}, ours_bad_request=True)
        s("PATCH", C + c_min + "/", 400, IC["PATCH"], {"pincode": "12"}, ours_bad_request=True)
        s("PATCH", C, 400, None, {"name": "x"})  # PATCH without an id: the spec has no such operation
        s("PUT", C + c_min + "/", 405, None, {"name": "x"})
        s("DELETE", U, 405, None)
        s("GET", D, 401, OPD["GET"], token=None, declared=False, bad_request=True)
        s("GET", C + c_min + "/", 401, IC["GET"], token="not-a-token", declared=False)
        s("GET", "/cdr/v1/hipusers/", 401, HL, token=make_token(secret="another-secret-0123456789abcdef01234567"),
          declared=False)
        for path, op in ((C, IC), (D, ID), (U, IU)):
            s("GET", path + "nope/", 404, op["GET"])
            s("PATCH", path + "nope/", 404, op["PATCH"], {"partner_id": "x"})
            s("DELETE", path + "nope/", 404, op["DELETE"])
        s("GET", "/cdr/v1/hipusers/nope", 404, HI)
        s("POST", U, 409, OPU["POST"], {"firstname": "Dup", "lastname": "Partner", "gender": "M", "dob": "1990-01-01",
                                        "mobile": "9000000002", "partner_id": "Part_user_2"}, declared=False)
        s("PATCH", C + c_min + "/", 409, IC["PATCH"], {"partner_id": "Clinic_321_Indore"}, declared=False)
        s("POST", C, 415, OPC["POST"], raw=b'{"name":"x","address":"y"}', content_type="text/plain",
          declared=False, bad_request=True)

        # ---- DELETE, and every view afterwards
        for key, path, op in ((c_full, C, IC), (d_min, D, ID), (u_min, U, IU)):
            a = s("DELETE", path + key + "/", 200, op["DELETE"])
            deleted.add(key)
            self.assertEqual(a.json.get("status"), "success", a)
        got = views()
        self.assertEqual([c["id"] for c in got[d_full]["doctor"]["clinics"]], [c_min])
        self.assertEqual([d["id"] for d in got[u_full]["user"]["doctors"]], [d_full])
        for key, path, op in ((d_full, D, ID), (c_min, C, IC), (u_full, U, IU)):
            s("DELETE", path + key + "/", 200, op["DELETE"])
            deleted.add(key)
            s("DELETE", path + key + "/", 404, op["DELETE"])
        views()

        # ---- history, the change feed and restore (issue 10): the served document's alone
        op_of = {"Clinic": IC, "Doctor": ID, "EkaUser": IU}
        for key, path, res, pid in ((c_full, C, "Clinic", "clinic_id"), (d_full, D, "Doctor", "doc_id"),
                                    (u_full, U, "EkaUser", "user_id")):
            seg = path.rstrip("/")
            h = s("GET", f"{seg}/{key}/history", 200, None, ours_op=f"GET {seg}/{{{pid}}}/history", nulls_ok=True)
            self.assertEqual([e["action"] for e in h.json["history"]][0], "create", h)
            self.assertEqual(h.json["history"][-1]["action"], "delete", h)
            s("GET", f"{seg}/nope/history", 404, None, ours_op=f"GET {seg}/{{{pid}}}/history")
            r = s("POST", f"{seg}/{key}/restore", 200, None, ours_op=f"POST {seg}/{{{pid}}}/restore")
            self.assertIn("etag", r.headers)
            s("POST", f"{seg}/{key}/restore", 404, None, ours_op=f"POST {seg}/{{{pid}}}/restore")  # live now
            s("GET", path + key + "/", 200, op_of[res]["GET"])
        feed = s("GET", "/cdr/v1/changes/?after=0&limit=5", 200, None, ours_op="GET /cdr/v1/changes/").json
        self.assertEqual([c["seq"] for c in feed["changes"]], [1, 2, 3, 4, 5])
        s("GET", f"/cdr/v1/changes/?after={feed['next_after']}", 200, None, ours_op="GET /cdr/v1/changes/")
        s("GET", "/cdr/v1/changes/?limit=0", 400, None, ours_op="GET /cdr/v1/changes/", ours_bad_request=True)

        self.assertEqual(OPERATIONS - self.replayed, set(), "operations never answered 2xx through Prism")
        if self.failures:
            self.fail(f"{len(self.failures)} faults in {self.steps} answers:\n" + "\n".join(self.failures))


class Stub(http.server.BaseHTTPRequestHandler):
    """A fake upstream with canned answers: (method, path) -> (status, body)."""
    answers = {}

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        status, body = self.answers.get((self.command, self.path), (404, {"status": "error", "message": "Not found"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-Id", "stub")
        self.send_header("ETag", '"stubstubstubstubstubst"')  # a record's ETag: the served document requires one
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


class CheckerSeesViolations(unittest.TestCase):
    """The checker of the session reports the faults it exists for, through the same chain:
    a null where the specs have a string, a string where they have an array, also under request
    violations sent on purpose, each on the side of the document that has it; and a record that
    satisfies Eka's loose schemas but not the served document's (short of required fields, or
    with one it does not know) is reported by the served document alone."""

    FULL_DOCTOR = {"id": "do1", "firstname": "A", "lastname": "B", "gender": "F", "dob": "1990-01-01",
                   "clinics": [{"id": "c-1", "name": "Sunrise"}],
                   "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z"}

    @classmethod
    def setUpClass(cls):
        require_tools()
        Stub.answers = {
            ("GET", "/cdr/v1/clinic/"): (200, {"status": "success", "clinics": [
                {"id": "c-1", "name": "Sunrise", "address": "1 Road", "pincode": None, "doctors": []}]}),
            ("GET", "/cdr/v1/ekauser/u1/"): (200, {"status": "success", "user": {
                "id": "u1", "firstname": "A", "lastname": "B", "email": None, "is_admin": False,
                "doctors": [], "clinics": []}}),
            ("POST", "/cdr/v1/clinic/"): (400, {"status": "error", "message": "address: This field is required."}),
            ("GET", "/cdr/v1/doctor/"): (200, {"status": "success", "doctors": [
                {"id": "do1", "firstname": "A", "lastname": "B", "clinics": []}]}),
            ("GET", "/cdr/v1/doctor/do1/"): (200, {"status": "success", "doctor": cls.FULL_DOCTOR}),
            ("GET", "/cdr/v1/doctor/do2/"): (200, {"status": "success", "doctor": dict(cls.FULL_DOCTOR, nickname="x")}),
        }
        cls.stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)  # bound, not serving yet
        cls.addClassCleanup(cls.stub.server_close)
        cls.dir = tempfile.mkdtemp(prefix="hipusers-contract-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        # the Prisms are forked before the stub's thread exists
        cls.chain = Chain(cls, DOC_PATH, f"http://127.0.0.1:{cls.stub.server_address[1]}", cls.dir, with_auth=False)
        threading.Thread(target=cls.stub.serve_forever, daemon=True).start()
        cls.addClassCleanup(cls.stub.shutdown)

    def test_null_in_a_list_is_a_response_violation(self):
        a = self.chain.request("GET", "/cdr/v1/clinic/", headers={"auth": "t"})
        p = problems(a, 200, "GET /cdr/v1/clinic/")
        self.assertTrue(any("RESPONSE VIOLATIONS" in x and "clinics.0.pincode" in x for x in p), p)
        self.assertIn("null rendered at body.clinics[0].pincode", p)
        q = ours_problems(a, "GET /cdr/v1/clinic/", False)
        self.assertTrue(any("RESPONSE VIOLATIONS of the served document" in x and "clinics.0.pincode" in x
                            for x in q), q)

    def test_null_in_an_item_is_a_response_violation(self):
        a = self.chain.request("GET", "/cdr/v1/ekauser/u1/", headers={"auth": "t"})
        p = problems(a, 200, "GET /cdr/v1/ekauser/{user_id}/")
        self.assertTrue(any("RESPONSE VIOLATIONS" in x and "user.email" in x for x in p), p)
        q = ours_problems(a, "GET /cdr/v1/ekauser/{user_id}/", False)
        self.assertTrue(any("RESPONSE VIOLATIONS of the served document" in x and "user.email" in x for x in q), q)

    def test_request_violations_do_not_mask_response_ones(self):
        # no auth header and no address: the request breaks the specs twice; the answer's
        # message is a string where the specs want an array
        a = self.chain.request("POST", "/cdr/v1/clinic/", body={"name": "x"})
        self.assertGreaterEqual(len(a.side("request")), 2, a)
        self.assertTrue(any("message" in "".join(map(str, v.get("location", []))) for v in a.side("response")), a)
        p = problems(a, 400, "POST /cdr/v1/clinic/", bad_request=True, create=True)
        self.assertTrue(any(x.startswith("RESPONSE VIOLATIONS") and "message must be array" in x for x in p), p)
        self.assertFalse(any("request violation" in x for x in p), p)  # those were expected
        ours = a.judged_by_ours()
        self.assertGreaterEqual(len(ours.side("request")), 2, a)
        q = ours_problems(a, "POST /cdr/v1/clinic/", True)
        self.assertTrue(any("RESPONSE VIOLATIONS of the served document" in x and "message" in x for x in q), q)
        self.assertFalse(any("request violation" in x for x in q), q)

    def test_what_eka_allows_and_the_served_document_does_not(self):
        # Eka's file has no required fields here; the served document wants gender, dob, timestamps
        a = self.chain.request("GET", "/cdr/v1/doctor/", headers={"auth": "t"})
        self.assertEqual(problems(a, 200, "GET /cdr/v1/doctor/"), [])
        self.assertEqual(a.violations, [])
        q = ours_problems(a, "GET /cdr/v1/doctor/", False)
        self.assertTrue(any("RESPONSE VIOLATIONS of the served document" in x and "gender" in x for x in q), q)
        # a field the served document does not know
        a = self.chain.request("GET", "/cdr/v1/doctor/do2/", headers={"auth": "t"})
        self.assertEqual(a.violations, [])
        q = ours_problems(a, "GET /cdr/v1/doctor/{doc_id}/", False)
        self.assertTrue(any("nickname" in x for x in q), q)

    def test_a_valid_answer_passes(self):
        a = self.chain.request("GET", "/cdr/v1/doctor/do1/", headers={"auth": "t"})
        self.assertEqual(problems(a, 200, "GET /cdr/v1/doctor/{doc_id}/"), [])
        self.assertEqual(ours_problems(a, "GET /cdr/v1/doctor/{doc_id}/", False), [])
        self.assertEqual((a.violations, a.ours), ([], []))


if __name__ == "__main__":
    unittest.main()
