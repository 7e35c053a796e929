#!/usr/bin/env python3
"""GET /metrics, /healthz and /readyz, and --admin-listen.

/metrics is read with Prometheus' own text parser (Debian's python3-prometheus-client), and
every check is a difference between two scrapes around requests of known routes and answers:
the counters must move by exactly what was sent, in the right series and nowhere else.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_metrics.py
"""
import http.client
import itertools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BACKEND, BIN, SECRET, Server, ServerTestCase, free_port, make_token, pg_url, psql  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # a python3 that is not Debian's (pyenv) does not look in Debian's directory
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LOGIN = "/connect-auth/v1/account/login"
REFRESH = "/connect-auth/v1/account/refresh-token"
TENANT = "7100000000000071"

ROUTES = {"unrouted", "ekauser_collection", "ekauser_item", "doctor_collection", "doctor_item",
          "clinic_collection", "clinic_item", "hipusers_collection", "hipusers_item", "business_info",
          "login", "refresh_token", "refresh", "metrics", "healthz", "readyz", "ekauser_history",
          "doctor_history", "clinic_history", "ekauser_restore", "doctor_restore", "clinic_restore", "changes",
          "openapi", "docs", "other"}
# Every label value /metrics may ever show: a fixed set, whatever the clients send.
LABEL_VALUES = {
    "route": ROUTES,
    "status": {"2xx", "3xx", "4xx", "5xx"},
    "le": {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
           "5", "10", "+Inf", "2", "4", "8", "16", "32", "64"},
    "result": {"success", "failure", "throttled", "reuse_detected", "hit", "miss"},
    "reason": {"retry", "unavailable", "internal"},
}

_seq = itertools.count(1)


def uniq():
    return "%d%03d" % (os.getpid() % 100000, next(_seq))


def get(port, path, method="GET"):
    """One request on a fresh connection: (status, headers with lower-case names, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class Scrape:
    """One /metrics answer, parsed: samples by (name, labels)."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.types = {}
        for fam in text_string_to_metric_families(text):
            self.types[fam.name] = fam.type
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                if key in self.samples:
                    raise AssertionError("series shown twice: %r" % (key,))
                self.samples[key] = s.value

    def get(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        if key not in self.samples:
            raise AssertionError("no series %s%r" % (name, labels))
        return self.samples[key]

    def series(self, name):
        """{labels tuple: value} of every sample called name."""
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}


def scrape(port):
    status, headers, body = get(port, "/metrics")
    assert status == 200, (status, body[:300])
    assert headers.get("content-type") == CONTENT_TYPE, headers
    return Scrape(body.decode("utf-8"))


def wait_for(fn, timeout=20.0):
    """Calls fn until it returns something true, or until timeout; returns its last value."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() >= deadline:
            return v
        time.sleep(0.02)


class MetricsCase(ServerTestCase):
    # strict refresh: a second use of a refresh token is a reuse at once
    server_args = ["--refresh-reuse-grace", "0"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tok = make_token(TENANT)

    def scrape(self):
        return scrape(self.srv.port)

    def quiet(self):
        """A scrape once every earlier request has ended and been counted: the scrape itself
        is then the only request in flight."""
        s = wait_for(lambda: (lambda x: x if x.get("hipusers_http_requests_in_flight") == 1 else None)(
            self.scrape()))
        self.assertIsNotNone(s, "requests still in flight")
        return s

    def requests_delta(self, before, after):
        """{(route, class): increase} of hipusers_http_requests_total, the scrapes left out."""
        out = {}
        for labels, v in after.series("hipusers_http_requests_total").items():
            d = dict(labels)
            if d["route"] == "metrics":
                continue
            inc = v - before.series("hipusers_http_requests_total")[labels]
            self.assertGreaterEqual(inc, 0, labels)
            if inc:
                out[(d["route"], d["status"])] = inc
        return out

    def assertLabelsClean(self, s, secrets):
        """Label values come from the fixed sets only, and none holds anything a client sent."""
        for (name, labels), _ in s.samples.items():
            for k, v in labels:
                if k == "version":
                    self.assertEqual(name, "hipusers_build_info")
                    continue
                self.assertIn(k, LABEL_VALUES, name)
                self.assertIn(v, LABEL_VALUES[k], (name, k, v))
        for secret in secrets:
            self.assertNotIn(secret, s.text)

    def cli(self, *args):
        r = self.srv.cli(*args)
        self.assertEqual(r.returncode, 0, r)
        return r.stdout

    def new_client(self):
        b_id = self.cli("business", "create", "--name", "Metrics Biz %s" % uniq()).strip()
        kv = dict(line.split("=", 1) for line in self.cli("client", "create", "--b-id", b_id).splitlines()
                  if "=" in line)
        return b_id, kv["client_id"], kv["client_secret"]


class MetricsTests(MetricsCase):

    def test_format_and_families(self):
        status, headers, body = get(self.srv.port, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], CONTENT_TYPE)
        s = Scrape(body.decode())
        self.assertEqual(s.types["hipusers_http_requests"], "counter")
        self.assertEqual(s.types["hipusers_http_request_duration_seconds"], "histogram")
        self.assertEqual(s.types["hipusers_http_requests_in_flight"], "gauge")
        self.assertEqual(s.types["hipusers_http_open_connections"], "gauge")
        self.assertEqual(s.types["hipusers_logins"], "counter")
        self.assertEqual(s.types["hipusers_token_refreshes"], "counter")
        self.assertEqual(s.types["hipusers_storage_commits"], "counter")
        self.assertEqual(s.types["hipusers_storage_errors"], "counter")
        self.assertEqual(s.types["hipusers_storage_commit_batch_size"], "histogram")
        self.assertEqual(s.types["hipusers_response_cache_lookups"], "counter")
        out = self.srv.cli("--version").stdout.split()[1]
        self.assertEqual(s.get("hipusers_build_info", version=out), 1)
        self.assertAlmostEqual(s.get("hipusers_start_time_seconds"), time.time(), delta=600)
        # every route template and class is there from the start, so rates begin at 0
        routes = {dict(k)["route"] for k in s.series("hipusers_http_requests_total")}
        self.assertEqual(routes, ROUTES)
        self.assertEqual(len(s.series("hipusers_http_requests_total")), len(ROUTES) * 4)
        # HEAD: the same headers, no body; other methods: 405 with Allow
        status, headers, body = get(self.srv.port, "/metrics", "HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(headers["content-type"], CONTENT_TYPE)
        status, headers, body = get(self.srv.port, "/metrics", "POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET")
        self.assertEqual(json.loads(body)["status"], "error")
        # no authentication is asked for, and a token changes nothing
        self.assertEqual(self.req("GET", "/metrics/", token=self.tok).status, 200)

    def test_requests_counted_by_route_and_status(self):
        partner = "HIS-PATIENT-%s" % uniq()
        personal = {"firstname": "Zorawar", "lastname": "Qureshi", "gender": "M", "dob": "1987-03-04",
                    "mobile": "9%09d" % int(uniq()), "email": "zq%s@example.org" % uniq(),
                    "partner_id": partner}
        before = self.quiet()
        r = self.req("POST", "/cdr/v1/ekauser/", personal)
        self.assertEqual(r.status, 201, r)
        ekaid = r.json["ekaid"]
        r = self.req("POST", "/cdr/v1/ekauser/", {"firstname": "Other", "lastname": "Person", "gender": "F",
                                                   "dob": "1990-01-01", "email": "o%s@example.org" % uniq()})
        self.assertEqual(r.status, 201, r)
        for _ in range(3):
            self.assertEqual(self.req("GET", "/cdr/v1/ekauser/").status, 200)
        self.assertEqual(self.req("GET", "/cdr/v1/ekauser/%s/" % partner).status, 200)
        self.assertEqual(self.req("GET", "/cdr/v1/ekauser/%s" % ekaid).status, 200)
        for i in range(3):
            self.assertEqual(self.req("GET", "/cdr/v1/ekauser/missing-%d/" % i).status, 404)
        self.assertEqual(self.req("PATCH", "/cdr/v1/ekauser/", {"lastname": "x"}).status, 400)
        for _ in range(2):
            self.assertEqual(self.req("DELETE", "/cdr/v1/get_business_info/").status, 405)
        self.assertEqual(self.req("GET", "/cdr/v1/doctor/", token=None).status, 401)
        for i in range(4):
            self.assertEqual(self.req("GET", "/nowhere/%s/%d" % (partner, i)).status, 404)
        # refused by the framing checks before any route is looked at
        out = self.srv.raw_request(b"GET /cdr/v1/clinic/ HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                                   b"Content-Length: 2\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out)
        self.assertEqual(self.req("HEAD", "/cdr/v1/clinic/").status, 200)
        self.assertEqual(self.req("GET", "/cdr/v1/hipusers/%s" % ekaid).status, 200)
        for _ in range(2):
            self.assertEqual(get(self.srv.port, "/healthz")[0], 200)
        want = {("ekauser_collection", "2xx"): 5, ("ekauser_collection", "4xx"): 1,
                ("ekauser_item", "2xx"): 2, ("ekauser_item", "4xx"): 3, ("business_info", "4xx"): 2,
                ("doctor_collection", "4xx"): 1, ("unrouted", "4xx"): 5, ("clinic_collection", "2xx"): 1,
                ("hipusers_item", "2xx"): 1, ("healthz", "2xx"): 2}
        after = self.quiet()
        self.assertEqual(self.requests_delta(before, after), want)
        # the latency histograms moved by the same numbers, buckets cumulative up to _count
        for route in ROUTES - {"metrics"}:
            n = sum(v for (rt, _), v in want.items() if rt == route)
            count = lambda s: s.get("hipusers_http_request_duration_seconds_count", route=route)  # noqa: E731
            self.assertEqual(count(after) - count(before), n, route)
            buckets = sorted(((float(dict(k)["le"]), v) for k, v in
                              after.series("hipusers_http_request_duration_seconds_bucket").items()
                              if dict(k)["route"] == route))
            self.assertEqual(len(buckets), 15)
            values = [v for _, v in buckets]
            self.assertEqual(values, sorted(values), route)
            self.assertEqual(buckets[-1], (float("inf"), count(after)), route)
            sums = [s.get("hipusers_http_request_duration_seconds_sum", route=route) for s in (before, after)]
            if n:
                self.assertGreater(sums[1], sums[0], route)
            else:
                self.assertEqual(sums[1], sums[0], route)
        self.assertLabelsClean(after, [partner, ekaid, TENANT] + [str(v) for v in personal.values()])

    def test_storage_commits(self):
        before = self.quiet()
        ids = []
        for i in range(2):
            r = self.req("POST", "/cdr/v1/clinic/", {"name": "Clinic %d" % i, "address": "1 Road",
                                                      "pincode": "560001"})
            self.assertEqual(r.status, 201, r)
            ids.append(r.json["ekaid"])
        self.assertEqual(self.req("PATCH", "/cdr/v1/clinic/%s/" % ids[0], {"name": "Renamed"}).status, 200)
        self.assertEqual(self.req("DELETE", "/cdr/v1/clinic/%s/" % ids[1]).status, 200)
        # refused before any write: nothing committed
        self.assertEqual(self.req("POST", "/cdr/v1/clinic/", {"name": ""}).status, 400)
        self.assertEqual(self.req("GET", "/cdr/v1/clinic/").status, 200)
        after = self.quiet()
        d = lambda name, **kw: after.get(name, **kw) - before.get(name, **kw)  # noqa: E731
        self.assertEqual(d("hipusers_storage_commits_total"), 4)
        # one unit of work per commit until writes are grouped
        self.assertEqual(d("hipusers_storage_commit_batch_size_count"), 4)
        self.assertEqual(d("hipusers_storage_commit_batch_size_sum"), 4)
        self.assertEqual(d("hipusers_storage_commit_batch_size_bucket", le="1"), 4)
        for reason in ("retry", "unavailable", "internal"):
            self.assertEqual(d("hipusers_storage_errors_total", reason=reason), 0, reason)

    def test_login_counters(self):
        b_id, cid, secret = self.new_client()
        _, cid2, _ = self.new_client()
        before = self.quiet()
        for _ in range(2):
            r = self.srv.request("POST", LOGIN, {"client_id": cid, "client_secret": secret})
            self.assertEqual(r.status, 200, r)
        for i in range(3):
            r = self.srv.request("POST", LOGIN, {"client_id": cid, "client_secret": "wrong-%d" % i})
            self.assertEqual(r.status, 401, r)
        # ten failures for one client id from one address, then it is throttled
        for i in range(10):
            r = self.srv.request("POST", LOGIN, {"client_id": cid2, "client_secret": "bad-%d" % i})
            self.assertEqual(r.status, 401, r)
        for i in range(2):
            r = self.srv.request("POST", LOGIN, {"client_id": cid2, "client_secret": "bad-x%d" % i})
            self.assertEqual(r.status, 429, r)
        # a malformed body is neither a success nor a failed login
        self.assertEqual(self.srv.request("POST", LOGIN, {"client_id": cid}).status, 400)
        after = self.quiet()
        d = lambda result: (after.get("hipusers_logins_total", result=result)  # noqa: E731
                            - before.get("hipusers_logins_total", result=result))
        self.assertEqual((d("success"), d("failure"), d("throttled")), (2, 13, 2))
        self.assertEqual(self.requests_delta(before, after), {("login", "2xx"): 2, ("login", "4xx"): 16})
        # one session per successful login; the throttle's counters (in the store, shared by every
        # server) take a unit to reserve each attempt and one to end each that was checked
        self.assertEqual(after.get("hipusers_storage_commits_total") - before.get("hipusers_storage_commits_total"),
                         2 + 2 * (2 + 3 + 10) + 2)
        self.assertLabelsClean(after, [b_id, cid, cid2, secret])

    def test_refresh_and_reuse_counters(self):
        b_id, cid, secret = self.new_client()
        r = self.srv.request("POST", LOGIN, {"client_id": cid, "client_secret": secret})
        self.assertEqual(r.status, 200, r)
        p1 = r.json
        before = self.quiet()

        def refresh(pair, headers=True):
            h = {"Authorization": "Bearer " + pair["access_token"], "Client-Id": cid} if headers else {}
            return self.srv.request("POST", REFRESH, {"refresh_token": pair["refresh_token"]}, headers=h)

        r = refresh(p1)
        self.assertEqual(r.status, 200, r)
        p2 = r.json
        r = refresh(p1)  # spent already: the session ends
        self.assertEqual(r.status, 401, r)
        self.assertIn("reuse", r.json["error"])
        r = refresh(p2)  # of the ended session
        self.assertEqual(r.status, 401, r)
        r = refresh({"access_token": p2["access_token"], "refresh_token": "no-such-token"})
        self.assertEqual(r.status, 401, r)
        r = refresh(p2, headers=False)
        self.assertEqual(r.status, 401, r)
        after = self.quiet()
        d = lambda result: (after.get("hipusers_token_refreshes_total", result=result)  # noqa: E731
                            - before.get("hipusers_token_refreshes_total", result=result))
        self.assertEqual((d("success"), d("reuse_detected"), d("failure")), (1, 1, 3))
        self.assertEqual(self.requests_delta(before, after), {("refresh_token", "2xx"): 1, ("refresh_token", "4xx"): 4})
        # the new pair, and the ended session
        self.assertEqual(after.get("hipusers_storage_commits_total") - before.get("hipusers_storage_commits_total"),
                         2)
        self.assertLabelsClean(after, [b_id, cid, secret, p1["refresh_token"], p2["refresh_token"]])

    def test_in_flight_and_open_connections(self):
        s = self.quiet()
        # the scrape's own connection is the only one once the others are seen closed
        s = wait_for(lambda: (lambda x: x if x.get("hipusers_http_open_connections") == 1 else None)(self.scrape()))
        self.assertIsNotNone(s, "connections of earlier requests still counted as open")
        before = s
        idle = [socket.create_connection(("127.0.0.1", self.srv.port), timeout=10) for _ in range(2)]
        busy = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        # a create whose body is slow to come: in flight from its headers on
        busy.sendall(("POST /cdr/v1/ekauser/ HTTP/1.1\r\nHost: t\r\nauth: %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"first" % self.tok).encode())
        try:
            s = wait_for(lambda: (lambda x: x if (x.get("hipusers_http_open_connections"),
                                                  x.get("hipusers_http_requests_in_flight")) == (4, 2) else None)(
                self.scrape()))
            self.assertIsNotNone(s, self.scrape().text[-600:])
        finally:
            for c in idle + [busy]:
                c.close()
        s = wait_for(lambda: (lambda x: x if (x.get("hipusers_http_open_connections"),
                                              x.get("hipusers_http_requests_in_flight")) == (1, 1) else None)(
            self.scrape()))
        self.assertIsNotNone(s, "connections or requests still counted after the clients left")
        # the create never got its body: it ended unanswered, and is not among the answered
        d = (s.get("hipusers_http_requests_unanswered_total", route="ekauser_collection")
             - before.get("hipusers_http_requests_unanswered_total", route="ekauser_collection"))
        self.assertEqual(d, 1)
        self.assertEqual(self.requests_delta(before, s), {})


class HealthTests(MetricsCase):
    server_args = []

    def test_healthz(self):
        for path in ("/healthz", "/healthz/"):
            status, headers, body = get(self.srv.port, path)
            self.assertEqual(status, 200)
            self.assertTrue(headers["content-type"].startswith("application/json"), headers)
            self.assertEqual(json.loads(body), {"status": "ok"})
        self.assertEqual(get(self.srv.port, "/healthz", "HEAD")[:1], (200,))
        status, headers, _ = get(self.srv.port, "/healthz", "DELETE")
        self.assertEqual((status, headers.get("allow")), (405, "GET"))

    def readyz(self):
        status, headers, body = get(self.srv.port, "/readyz")
        return status, headers, json.loads(body)

    def test_readyz_follows_paused_writes(self):
        if BACKEND == "postgresql":
            return self.readyz_follows_the_database_going_away()
        self.assertEqual(self.readyz()[::2], (200, {"status": "ok"}))
        before = self.quiet()
        os.chmod(self.srv.db, 0o400)  # the operator pauses writes
        try:
            for _ in range(2):
                status, headers, js = self.readyz()
                self.assertEqual(status, 503, js)
                self.assertEqual(js["status"], "error")
                self.assertIn("paused", js["message"])
                self.assertGreaterEqual(int(headers["retry-after"]), 1)
            # alive all the same, and reads go on
            self.assertEqual(get(self.srv.port, "/healthz")[0], 200)
            self.assertEqual(self.req("GET", "/cdr/v1/doctor/").status, 200)
            r = self.req("POST", "/cdr/v1/doctor/", {"firstname": "Paused", "lastname": "Write", "gender": "M"})
            self.assertEqual(r.status, 503, r)
        finally:
            os.chmod(self.srv.db, 0o600)
        self.assertEqual(self.readyz()[::2], (200, {"status": "ok"}))
        r = self.req("POST", "/cdr/v1/doctor/", {"firstname": "Resumed", "lastname": "Write", "gender": "M"})
        self.assertEqual(r.status, 201, r)
        after = self.quiet()
        d = lambda reason: (after.get("hipusers_storage_errors_total", reason=reason)  # noqa: E731
                            - before.get("hipusers_storage_errors_total", reason=reason))
        # the refused write is a storage error; the probes are not
        self.assertEqual((d("unavailable"), d("retry"), d("internal")), (1, 0, 0))
        self.assertEqual(self.requests_delta(before, after),
                         {("readyz", "5xx"): 2, ("readyz", "2xx"): 1, ("healthz", "2xx"): 1,
                          ("doctor_collection", "2xx"): 2, ("doctor_collection", "5xx"): 1})

    def readyz_follows_the_database_going_away(self):
        """PostgreSQL has no file to pause writes with: the database refusing connections is
        what takes a server out of rotation, and letting them in again puts it back."""
        self.assertEqual(self.readyz()[::2], (200, {"status": "ok"}))
        before = self.quiet()
        admin = pg_url("postgres")
        psql(admin, 'ALTER DATABASE "%s" ALLOW_CONNECTIONS false' % self.srv.dbname)
        try:
            psql(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
                        " AND application_name = 'hipusers'" % self.srv.dbname)
            for _ in range(2):
                status, headers, js = self.readyz()
                self.assertEqual(status, 503, js)
                self.assertEqual(js["status"], "error")
                self.assertIn("does not answer", js["message"])
                self.assertGreaterEqual(int(headers["retry-after"]), 1)
            self.assertEqual(get(self.srv.port, "/healthz")[0], 200)  # alive all the same
        finally:
            psql(admin, 'ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % self.srv.dbname)
        self.assertEqual(self.readyz()[::2], (200, {"status": "ok"}))
        r = self.req("POST", "/cdr/v1/doctor/", {"firstname": "Resumed", "lastname": "Write", "gender": "M"})
        self.assertEqual(r.status, 201, r)
        after = self.quiet()
        d = lambda reason: (after.get("hipusers_storage_errors_total", reason=reason)  # noqa: E731
                            - before.get("hipusers_storage_errors_total", reason=reason))
        self.assertEqual((d("retry"), d("internal")), (0, 0))  # the probes count as no unit's failure
        self.assertEqual(self.requests_delta(before, after),
                         {("readyz", "5xx"): 2, ("readyz", "2xx"): 1, ("healthz", "2xx"): 1,
                          ("doctor_collection", "2xx"): 1})

    def test_readyz_refuses_a_schema_this_build_does_not_know(self):
        if BACKEND == "postgresql":
            version = int(self.srv.query("SELECT version FROM hipusers_schema")[0][0])
            self.assertGreater(version, 0)
            self.srv.query("UPDATE hipusers_schema SET version = %d" % (version + 1))  # migrated further
            try:
                status, headers, js = self.readyz()
                self.assertEqual(status, 503, js)
                self.assertIn("schema", js["message"])
                self.assertIn("retry-after", headers)
            finally:
                self.srv.query("UPDATE hipusers_schema SET version = %d" % version)
            self.assertEqual(self.readyz()[::2], (200, {"status": "ok"}))
            return
        db = sqlite3.connect(self.srv.db, timeout=10)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            self.assertGreater(version, 0)
            db.execute("PRAGMA user_version=%d" % (version + 1))  # another build migrated it further
            status, headers, js = self.readyz()
            self.assertEqual(status, 503, js)
            self.assertIn("schema", js["message"])
            self.assertIn("retry-after", headers)
            db.execute("PRAGMA user_version=%d" % version)
        finally:
            db.close()
        self.assertEqual(self.readyz()[::2], (200, {"status": "ok"}))


class AdminListenTests(unittest.TestCase):
    """--admin-listen: the operations endpoints there and only there; the API only on --listen."""

    @classmethod
    def setUpClass(cls):
        cls.admin = free_port()
        cls.srv = Server(args=["--admin-listen", "127.0.0.1:%d" % cls.admin]).start()
        # the admin address is opened before the main one, so it answers once the main one does
        cls.tok = make_token(TENANT)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def test_ops_endpoints_move_to_the_admin_address(self):
        for path in ("/metrics", "/healthz", "/readyz"):
            status, _, body = get(self.admin, path)
            self.assertEqual(status, 200, (path, body[:200]))
            status, _, body = get(self.srv.port, path)
            self.assertEqual(status, 404, path)
            self.assertEqual(json.loads(body)["status"], "error")
        # the API is not served on the admin address
        status, _, _ = get(self.admin, "/cdr/v1/ekauser/")
        self.assertEqual(status, 404)
        self.assertEqual(self.srv.request("GET", "/cdr/v1/ekauser/", token=self.tok).status, 200)

    def test_admin_requests_are_counted(self):
        before = scrape(self.admin)
        self.assertEqual(get(self.admin, "/healthz")[0], 200)
        self.assertEqual(get(self.srv.port, "/healthz")[0], 404)
        self.assertEqual(self.srv.request("GET", "/cdr/v1/clinic/", token=self.tok).status, 200)

        def moved():
            s = scrape(self.admin)
            d = lambda **kw: (s.get("hipusers_http_requests_total", **kw)  # noqa: E731
                              - before.get("hipusers_http_requests_total", **kw))
            return s if (d(route="healthz", status="2xx"), d(route="unrouted", status="4xx"),
                         d(route="clinic_collection", status="2xx")) == (1, 1, 1) else None

        self.assertIsNotNone(wait_for(moved))

    def test_bad_admin_address_refused_at_start(self):
        d = tempfile.mkdtemp(prefix="hipusers-admin-")
        try:
            for bad in ("nonsense", ":%d" % free_port(), "127.0.0.1"):
                r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--db",
                                    os.path.join(d, "x.db"), "--admin-listen", bad],
                                   capture_output=True, text=True, timeout=60,
                                   env=dict(os.environ, HIPUSERS_JWT_SECRET=SECRET))
                self.assertEqual(r.returncode, 2, (bad, r))
                self.assertIn("cannot parse listen address", r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)

if __name__ == "__main__":
    unittest.main()
