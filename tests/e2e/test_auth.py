#!/usr/bin/env python3
"""End-to-end tests of business login (issue 3): businesses, API clients and sharing keys
through the CLI; POST /connect-auth/v1/account/login, /refresh-token and /refresh;
refresh rotation with reuse detection; client revocation; the login throttle;
sharing keys; GET /cdr/v1/get_business_info/; the /cdr/v1/hipusers/ read views;
hostile tokens; rotation of the signing secret and the refresh lifetime.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_auth.py
"""
import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import shutil
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BACKEND, BIN, DB, SECRET, PsqlSession, Server, ServerTestCase, b64url, free_port,  # noqa: E402
                     make_token, pg_until_server_waits)

LOGIN = "/connect-auth/v1/account/login"
REFRESH = "/connect-auth/v1/account/refresh-token"
REFRESH_OLD = "/connect-auth/v1/account/refresh"
INFO = "/cdr/v1/get_business_info/"
HIPUSERS = "/cdr/v1/hipusers/"
EKAUSER = "/cdr/v1/ekauser/"
BAD_CREDS = {"code": 401, "error": "invalid client credentials"}
DEFAULT_REFRESH_TTL = 30 * 24 * 3600
HIPUSER_SPEC_FIELDS = {"id", "firstname", "lastname", "mobile", "email", "is_admin", "seat_type",
                       "doctors", "clinics", "partner_id"}
# Of those, what every user shows; mobile, email and partner_id are omitted when unset.
HIPUSER_ALWAYS = HIPUSER_SPEC_FIELDS - {"mobile", "email", "partner_id"}
NOT_FOUND_ERROR = {"code": "NOT_FOUND", "message": "User not found. Please check the provided ID."}

_seq = itertools.count(1)


def uniq():
    return "%d%03d" % (os.getpid() % 100000, next(_seq))


# --------------------------------------------------------------------------- helpers
def b64d(seg: str) -> bytes:
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def jwt_parts(token):
    """(header dict, payload dict, signature bytes) of a compact JWT."""
    h, p, s = token.split(".")
    return json.loads(b64d(h)), json.loads(b64d(p)), b64d(s)


def sign_hs256(header: dict, payload: dict, secret: str) -> str:
    si = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    return si + "." + b64url(hmac.new(secret.encode(), si.encode(), hashlib.sha256).digest())


def hs256_valid(token: str, secret: str) -> bool:
    h, p, s = token.split(".")
    want = hmac.new(secret.encode(), (h + "." + p).encode(), hashlib.sha256).digest()
    return hmac.compare_digest(want, b64d(s))


def kv_lines(text):
    """Parses the CLI's `key=value` lines."""
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def secret_bits(s):
    """Rough entropy of a printed random string by its alphabet (hex or base64/base64url)."""
    if re.fullmatch(r"[0-9a-f]+", s) or re.fullmatch(r"[0-9A-F]+", s):
        return 4 * len(s)
    return 6 * len(s.rstrip("="))


def new_business(srv, name=None):
    name = name or "Biz %s" % uniq()
    r = srv.cli("business", "create", "--name", name)
    assert r.returncode == 0, r
    b_id = r.stdout.strip()
    assert re.fullmatch(r"\d{16}", b_id), r
    return b_id, name


def new_client(srv, b_id, name=None):
    args = ["client", "create", "--b-id", b_id]
    if name is not None:
        args += ["--name", name]
    r = srv.cli(*args)
    assert r.returncode == 0, r
    kv = kv_lines(r.stdout)
    assert set(kv) == {"client_id", "client_secret"}, r
    return kv["client_id"], kv["client_secret"]


def new_sharing_key(srv, owner):
    r = srv.cli("sharing-key", "create", "--b-id", owner)
    assert r.returncode == 0, r
    kv = kv_lines(r.stdout)
    assert set(kv) == {"key_id", "sharing_key"}, r
    return kv["key_id"], kv["sharing_key"]


def login(srv, cid, secret, sharing_key=None, headers=None):
    body = {"client_id": cid, "client_secret": secret}
    if sharing_key is not None:
        body["sharing_key"] = sharing_key
    return srv.request("POST", LOGIN, body, headers=headers)


def refresh(srv, rt, access=None, client_id=None, body_access=None):
    """The current endpoint: Authorization: Bearer <access>, Client-Id, body {refresh_token}."""
    h = {}
    if access is not None:
        h["Authorization"] = "Bearer " + access
    if client_id is not None:
        h["Client-Id"] = client_id
    body = {"refresh_token": rt}
    if body_access is not None:
        body["access_token"] = body_access
    return srv.request("POST", REFRESH, body, headers=h)


def refresh_old(srv, rt, access=None):
    body = {"refresh_token": rt}
    if access is not None:
        body["access_token"] = access
    return srv.request("POST", REFRESH_OLD, body)


def poll(fn, timeout=6.0, step=0.1):
    """Calls fn until it returns true or timeout passes; returns the last value."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


def parallel(fn, n):
    results = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait(10)
        except threading.BrokenBarrierError:
            pass
        try:
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001
            results[i] = e

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return results


class AuthCase(ServerTestCase):
    """Helpers on top of the shared server."""

    def business(self, name=None):
        return new_business(self.srv, name)

    def client(self, b_id=None, name=None):
        if b_id is None:
            b_id, _ = self.business()
        cid, sec = new_client(self.srv, b_id, name)
        return b_id, cid, sec

    def login_ok(self, cid, secret, sharing_key=None):
        r = login(self.srv, cid, secret, sharing_key)
        self.assertTokenPair(r)
        return r.json

    def assertTokenPair(self, r, refresh_ttl=DEFAULT_REFRESH_TTL):
        self.assertEqual(r.status, 200, r)
        self.assertIsInstance(r.json, dict, r)
        self.assertEqual(set(r.json), {"access_token", "expires_in", "refresh_token", "refresh_expires_in"}, r)
        self.assertEqual(r.json["expires_in"], 1800, r)
        self.assertIsInstance(r.json["refresh_expires_in"], int, r)
        self.assertNotIsInstance(r.json["refresh_expires_in"], bool, r)
        self.assertTrue(0 < r.json["refresh_expires_in"] <= refresh_ttl, r)
        self.assertGreaterEqual(r.json["refresh_expires_in"], refresh_ttl - 5, r)
        self.assertIsInstance(r.json["access_token"], str)
        self.assertIsInstance(r.json["refresh_token"], str)
        self.assertTrue(r.headers.get("content-type", "").lower().startswith("application/json"), r.headers)

    def assertGenericError(self, r, status):
        """Spec OpenapiGenericError: {"code": int, "error": str} with the HTTP status."""
        self.assertEqual(r.status, status, r)
        self.assertIsInstance(r.json, dict, r)
        self.assertEqual(r.json.get("code"), status, r)
        self.assertIsInstance(r.json.get("error"), str, r)
        self.assertTrue(r.json["error"], r)

    def assertBadCreds(self, r):
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json, BAD_CREDS, r)

    def assert4xxGeneric(self, r):
        self.assertTrue(400 <= r.status < 500, r)
        self.assertGenericError(r, r.status)

    def works(self, token):
        """The token opens /cdr/v1 (business info or, for a b_id without business, the users list)."""
        r = self.srv.request("GET", HIPUSERS, token=token)
        return r.status == 200

    def refused(self, token):
        return self.srv.request("GET", HIPUSERS, token=token).status == 401

    def assertRefusedWithin(self, token, timeout=10.0):
        t0 = time.time()
        ok = poll(lambda: self.refused(token), timeout)
        self.assertTrue(ok, "token still accepted %.1f s later" % (time.time() - t0))

    def info(self, token):
        return self.srv.request("GET", INFO, token=token)

    def create_user(self, token, **extra):
        n = uniq()
        body = {"firstname": "Amit", "lastname": "Kumar", "mobile": "9%09d" % (int(n) % 10 ** 9),
                "email": "auth%s@example.com" % n, "auth_userid": "auth_%s" % n,
                "gender": "M", "dob": "1990-05-15"}
        body.update(extra)
        r = self.srv.request("POST", EKAUSER, body, token=token)
        self.assertEqual(r.status, 201, r)
        return r.json["ekaid"]

    def ekauser_ids(self, token):
        r = self.srv.request("GET", EKAUSER, token=token)
        self.assertEqual(r.status, 200, r)
        return {u["id"] for u in r.json["users"]}


# =========================================================================== CLI
class CliTests(AuthCase):

    def test_business_create_and_list(self):
        name = "Sunrise Health %s" % uniq()
        b_id, _ = self.business(name)
        b2, _ = self.business()
        self.assertNotEqual(b_id, b2)
        r = self.srv.cli("business", "list")
        self.assertEqual(r.returncode, 0, r)
        rows = [line.split("\t") for line in r.stdout.splitlines() if line]
        mine = [row for row in rows if row[0] == b_id]
        self.assertEqual(len(mine), 1, r.stdout)
        self.assertEqual(mine[0][1], name)
        self.assertEqual(len(mine[0]), 3, mine)
        self.assertTrue(mine[0][2], mine)
        self.assertIn(b2, [row[0] for row in rows])

    def test_client_create_prints_id_and_strong_secret_once(self):
        b_id, _ = self.business()
        cid1, s1 = new_client(self.srv, b_id, "first")
        cid2, s2 = new_client(self.srv, b_id)
        self.assertRegex(cid1, r"^EC_\S+$")
        self.assertNotEqual(cid1, cid2)
        self.assertNotEqual(s1, s2)
        for s in (s1, s2):
            self.assertGreaterEqual(secret_bits(s), 256, s)
            self.assertRegex(s, r"^[A-Za-z0-9_\-+/=]+$")

    def test_client_list_never_shows_secrets_and_filters(self):
        b_id, _ = self.business()
        other, _ = self.business()
        cid, sec = new_client(self.srv, b_id, "lister")
        ocid, osec = new_client(self.srv, other)
        r = self.srv.cli("client", "list")
        self.assertEqual(r.returncode, 0, r)
        self.assertNotIn(sec, r.stdout + r.stderr)
        self.assertNotIn(osec, r.stdout + r.stderr)
        rows = {line.split("\t")[0]: line.split("\t") for line in r.stdout.splitlines() if line}
        self.assertIn(cid, rows)
        self.assertIn(ocid, rows)
        self.assertEqual(rows[cid][1:3], [b_id, "lister"])
        self.assertEqual(len(rows[cid]), 4, rows[cid])
        self.assertEqual(rows[cid][3], "")
        r = self.srv.cli("client", "list", "--b-id", b_id)
        self.assertEqual(r.returncode, 0, r)
        ids = [line.split("\t")[0] for line in r.stdout.splitlines() if line]
        self.assertEqual(ids, [cid])
        self.assertNotIn(sec, r.stdout)

    def test_client_revoke_shows_in_list(self):
        b_id, cid, _ = self.client()
        r = self.srv.cli("client", "revoke", cid)
        self.assertEqual(r.returncode, 0, r)
        r = self.srv.cli("client", "list", "--b-id", b_id)
        row = r.stdout.splitlines()[0].split("\t")
        self.assertEqual(row[0], cid)
        self.assertTrue(row[3].strip(), row)

    def test_unknown_business_refused(self):
        missing = "9%015d" % (int(uniq()) % 10 ** 15)
        before = self.srv.cli("client", "list").stdout
        r = self.srv.cli("client", "create", "--b-id", missing)
        self.assertEqual(r.returncode, 1, r)
        self.assertNotIn("client_secret=", r.stdout)
        self.assertEqual(self.srv.cli("client", "list").stdout, before)
        r = self.srv.cli("sharing-key", "create", "--b-id", missing)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertNotIn("sharing_key=", r.stdout)

    def test_revoke_unknown_ids_fail(self):
        self.assertNotEqual(self.srv.cli("client", "revoke", "EC_doesnotexist%s" % uniq()).returncode, 0)
        self.assertNotEqual(self.srv.cli("sharing-key", "revoke", "sk_doesnotexist%s" % uniq()).returncode, 0)

    def test_sharing_key_create_prints_id_and_strong_key(self):
        b_id, _ = self.business()
        k1, s1 = new_sharing_key(self.srv, b_id)
        k2, s2 = new_sharing_key(self.srv, b_id)
        self.assertRegex(k1, r"^sk_\S+$")
        self.assertNotEqual(k1, k2)
        self.assertNotEqual(s1, s2)
        self.assertGreaterEqual(secret_bits(s1), 128, s1)
        self.assertNotIn(s1, k1)

    def test_secrets_keys_and_refresh_tokens_stored_hashed(self):
        b_id, cid, sec = self.client()
        _, skey = new_sharing_key(self.srv, b_id)
        pair = self.login_ok(cid, sec)
        r = refresh(self.srv, pair["refresh_token"], pair["access_token"], cid)
        self.assertTokenPair(r)
        cells = self.srv.text_cells()
        for needle in (sec, skey, pair["refresh_token"], r.json["refresh_token"]):
            self.assertFalse(any(needle in c for c in cells), "stored in clear: %s" % needle[:8])
        self.assertTrue(any(c.startswith("$argon2id$") for c in cells), "no Argon2id hash stored")

    def test_cli_token_still_works(self):
        b_id, _ = self.business()
        r = self.srv.cli("token", "--b-id", b_id)
        self.assertEqual(r.returncode, 0, r)
        tok = r.stdout.strip()
        r = self.info(tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["bid"], b_id)
        # also for a b_id without a business row (tests and development)
        r = self.srv.cli("token", "--b-id", "8%015d" % (int(uniq()) % 10 ** 15))
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(self.srv.request("GET", EKAUSER, token=r.stdout.strip()).status, 200)


# =========================================================================== login
class LoginTests(AuthCase):

    def test_login_returns_pair_and_jwt_claims(self):
        b_id, cid, sec = self.client()
        t0 = int(time.time())
        pair = self.login_ok(cid, sec)
        self.assertEqual(pair["refresh_expires_in"], DEFAULT_REFRESH_TTL)
        h, p, sig = jwt_parts(pair["access_token"])
        self.assertEqual(h["alg"], "HS256")
        self.assertIsInstance(h.get("kid"), str)
        self.assertTrue(h["kid"])
        self.assertTrue({"b_id", "client_id", "iat", "exp", "jti", "iss"} <= set(p), p)
        self.assertEqual(p["b_id"], b_id)
        self.assertEqual(p["client_id"], cid)
        self.assertTrue(abs(p["iat"] - t0) <= 5, p)
        self.assertEqual(p["exp"] - p["iat"], 1800)
        self.assertIsInstance(p["jti"], str)
        self.assertIsInstance(p["iss"], str)
        self.assertTrue(hs256_valid(pair["access_token"], SECRET), "not HS256 with the server secret")
        self.assertEqual(len(sig), 32)

    def test_refresh_token_is_opaque_and_random(self):
        _, cid, sec = self.client()
        a = self.login_ok(cid, sec)
        b = self.login_ok(cid, sec)
        self.assertNotEqual(a["refresh_token"], b["refresh_token"])
        self.assertNotEqual(a["access_token"], b["access_token"])
        self.assertNotEqual(jwt_parts(a["access_token"])[1]["jti"], jwt_parts(b["access_token"])[1]["jti"])
        for rt in (a["refresh_token"], b["refresh_token"]):
            self.assertGreaterEqual(secret_bits(rt), 256, rt)
            self.assertNotEqual(rt.count("."), 2, "refresh token looks like a JWT")
            self.assertNotIn(cid, rt)

    def test_login_token_opens_cdr_v1_in_own_business(self):
        b_id, cid, sec = self.client()
        at = self.login_ok(cid, sec)["access_token"]
        uid = self.create_user(at)
        self.assertIn(uid, self.ekauser_ids(make_token(b_id)))
        self.assertNotIn(uid, self.ekauser_ids(make_token("1000000000000001")))

    def test_failures_have_identical_401_body(self):
        b_id, cid, sec = self.client()
        _, cid2, sec2 = self.client(b_id)
        _, rcid, rsec = self.client(b_id)
        self.assertEqual(self.srv.cli("client", "revoke", rcid).returncode, 0)
        cases = {
            "unknown client": ("EC_nosuch%s" % uniq(), sec),
            "wrong secret": (cid, sec + "x"),
            "other client's secret": (cid, sec2),
            "another client id with a wrong secret": (cid2, sec),
            "revoked client with its right secret": (rcid, rsec),
        }
        raws = set()
        for what, (c, s) in cases.items():
            with self.subTest(what):
                r = login(self.srv, c, s)
                self.assertBadCreds(r)
                raws.add(r.raw)
        self.assertEqual(len(raws), 1, raws)
        # none of those attempts spoiled the real ones
        self.login_ok(cid, sec)

    def test_malformed_login_requests_are_4xx_generic_errors(self):
        _, cid, sec = self.client()
        for what, body in (("no secret", {"client_id": cid}),
                           ("no client id", {"client_secret": sec}),
                           ("empty object", {}),
                           ("empty secret", {"client_id": cid, "client_secret": ""}),
                           ("array", [cid, sec]),
                           ("secret not a string", {"client_id": cid, "client_secret": 123}),
                           ("client id not a string", {"client_id": ["x"], "client_secret": sec})):
            with self.subTest(what):
                r = self.srv.request("POST", LOGIN, body)
                self.assert4xxGeneric(r)
                self.assertNotIn("access_token", r.json)
        r = self.srv.request("POST", LOGIN, raw=b'{"client_id": "x", ')
        self.assert4xxGeneric(r)

    def test_login_timing_does_not_reveal_existing_ids(self):
        """An unknown or revoked client id costs the server as much work as a wrong secret
        (a dummy Argon2id verification). Measured as the server's own CPU time per login,
        read from the kernel's per-thread run time, so a loaded machine does not skew it:
        without the dummy hash an unknown id costs a small fraction of the others."""
        _, cid, sec = self.client()
        _, rcid, rsec = self.client()
        self.srv.cli("client", "revoke", rcid)
        pid = self.srv.proc.pid

        def cpu_ns():
            total = 0
            for tid in os.listdir("/proc/%d/task" % pid):
                try:
                    with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                        total += int(f.read().split()[0])
                except OSError:
                    pass  # a thread that just ended
            return total

        def cost(c, s):
            before = cpu_ns()
            r = login(self.srv, c, s)
            spent = cpu_ns() - before
            self.assertBadCreds(r)
            return spent

        cost(cid, "warmup")
        samples = {"unknown": [], "wrong": [], "revoked": []}
        for _ in range(4):  # interleaved; 4 wrong secrets stay under the throttle's 10
            samples["unknown"].append(cost("EC_unknown%s" % uniq(), "x" * 43))
            samples["wrong"].append(cost(cid, sec[::-1]))
            samples["revoked"].append(cost(rcid, rsec))
        meds = {k: statistics.median(v) for k, v in samples.items()}
        self.assertLessEqual(max(meds.values()), 3 * min(meds.values()), meds)


# =========================================================================== refresh
class RefreshTests(AuthCase):

    def test_login_use_refresh_use(self):
        b_id, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        self.assertTrue(self.works(p1["access_token"]))
        r = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        self.assertTokenPair(r)
        p2 = r.json
        self.assertNotEqual(p2["refresh_token"], p1["refresh_token"])
        self.assertNotEqual(p2["access_token"], p1["access_token"])
        h, c, _ = jwt_parts(p2["access_token"])
        self.assertEqual(h["alg"], "HS256")
        self.assertEqual((c["b_id"], c["client_id"]), (b_id, cid))
        self.assertNotEqual(c["jti"], jwt_parts(p1["access_token"])[1]["jti"])
        r = self.info(p2["access_token"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["bid"], b_id)
        # and the new refresh token rotates again
        r = refresh(self.srv, p2["refresh_token"], p2["access_token"], cid)
        self.assertTokenPair(r)
        self.assertTrue(self.works(r.json["access_token"]))

    def test_refresh_with_access_token_in_body_too(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        r = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid, body_access=p1["access_token"])
        self.assertTokenPair(r)
        self.assertTrue(self.works(r.json["access_token"]))

    def test_deprecated_refresh_endpoint(self):
        b_id, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        r = refresh_old(self.srv, p1["refresh_token"])
        self.assertTokenPair(r)
        p2 = r.json
        self.assertEqual(jwt_parts(p2["access_token"])[1]["b_id"], b_id)
        self.assertTrue(self.works(p2["access_token"]))
        r = refresh_old(self.srv, p2["refresh_token"], p2["access_token"])
        self.assertTokenPair(r)
        self.assertTrue(self.works(r.json["access_token"]))
        # the two endpoints share one chain
        r = refresh(self.srv, r.json["refresh_token"], r.json["access_token"], cid)
        self.assertTokenPair(r)

    def test_refresh_accepts_expired_access_token_in_authorization(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        h, c, _ = jwt_parts(p1["access_token"])
        c = dict(c, iat=c["iat"] - 4000, exp=c["iat"] - 2200)
        expired = sign_hs256(h, c, SECRET)
        self.assertTrue(self.refused(expired))
        r = refresh(self.srv, p1["refresh_token"], expired, cid)
        self.assertTokenPair(r)
        self.assertTrue(self.works(r.json["access_token"]))

    def test_mismatching_client_id_refused(self):
        b_id, cid, sec = self.client()
        _, cid2, _ = self.client(b_id)
        p1 = self.login_ok(cid, sec)
        for other in (cid2, "EC_nosuch%s" % uniq()):
            with self.subTest(client_id=other):
                r = refresh(self.srv, p1["refresh_token"], p1["access_token"], other)
                self.assertGenericError(r, 401)
                self.assertNotIn("access_token", r.json)

    def test_refresh_token_header_requirements(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        for what, at, c in (("no Client-Id", p1["access_token"], None),
                            ("no Authorization", None, cid)):
            with self.subTest(what):
                r = refresh(self.srv, p1["refresh_token"], at, c)
                self.assert4xxGeneric(r)
                self.assertNotIn("access_token", r.json)

    def test_unknown_or_malformed_refresh_token(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        for rt in ("nope", "A" * 43, p1["access_token"], ""):
            with self.subTest(rt=rt[:12]):
                r = refresh(self.srv, rt, p1["access_token"], cid)
                self.assert4xxGeneric(r)
                r = refresh_old(self.srv, rt)
                self.assert4xxGeneric(r)
        r = self.srv.request("POST", REFRESH_OLD, {})
        self.assert4xxGeneric(r)
        # none of these hurt the real session
        self.assertTrue(self.works(p1["access_token"]))
        self.assertTokenPair(refresh(self.srv, p1["refresh_token"], p1["access_token"], cid))


class StrictReuseTests(AuthCase):
    """--refresh-reuse-grace 0: any second use of a refresh token is taken for theft."""
    server_args = ["--refresh-reuse-grace", "0"]

    def test_immediate_retry_is_reuse_when_strict(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        r = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        self.assertTokenPair(r)
        p2 = r.json
        r = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        self.assertGenericError(r, 401)
        self.assertIn("reuse", r.json["error"])
        self.assertNotIn("access_token", r.json)
        for at in (p2["access_token"], p1["access_token"]):
            self.assertRefusedWithin(at)
        self.assertGenericError(refresh(self.srv, p2["refresh_token"], p2["access_token"], cid), 401)

    def test_reuse_of_rotated_refresh_token_revokes_family(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        other = self.login_ok(cid, sec)          # a second login of the same client
        r = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        self.assertTokenPair(r)
        p2 = r.json
        r = refresh(self.srv, p2["refresh_token"], p2["access_token"], cid)
        self.assertTokenPair(r)
        p3 = r.json
        self.assertTrue(self.works(p3["access_token"]))
        # reuse of the first (already rotated) refresh token
        r = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        self.assertGenericError(r, 401)
        self.assertNotIn("access_token", r.json)
        # every access token of that login is refused within 5 s
        for at in (p3["access_token"], p2["access_token"], p1["access_token"]):
            self.assertRefusedWithin(at)
        # and the newest refresh token of the family is dead too
        self.assertGenericError(refresh(self.srv, p3["refresh_token"], p3["access_token"], cid), 401)
        self.assertGenericError(refresh_old(self.srv, p3["refresh_token"]), 401)
        # the other login is untouched
        self.assertTrue(self.works(other["access_token"]))
        r = refresh(self.srv, other["refresh_token"], other["access_token"], cid)
        self.assertTokenPair(r)
        self.assertTrue(self.works(r.json["access_token"]))
        # a fresh login still works
        self.assertTrue(self.works(self.login_ok(cid, sec)["access_token"]))

    def test_reuse_detected_through_deprecated_endpoint(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        r = refresh_old(self.srv, p1["refresh_token"])
        self.assertTokenPair(r)
        p2 = r.json
        r = refresh_old(self.srv, p1["refresh_token"])
        self.assertGenericError(r, 401)
        self.assertRefusedWithin(p2["access_token"])
        self.assertGenericError(refresh_old(self.srv, p2["refresh_token"]), 401)

    def test_concurrent_refresh_with_one_token_succeeds_once(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        rs = parallel(lambda i: refresh(self.srv, p1["refresh_token"], p1["access_token"], cid), 6)
        statuses = sorted(getattr(r, "status", r) for r in rs)
        self.assertLessEqual(statuses.count(200), 1, rs)
        self.assertEqual(statuses.count(200) + statuses.count(401), 6, rs)
        self.assertEqual(statuses.count(200), 1, rs)
        # the reuse revoked the family, so the winner's tokens die as well
        winner = [r for r in rs if r.status == 200][0].json
        self.assertRefusedWithin(winner["access_token"])
        self.assertGenericError(refresh(self.srv, winner["refresh_token"], winner["access_token"], cid), 401)



# =========================================================================== refresh reuse grace
def session_of(pair):
    return jwt_parts(pair["access_token"])[1]["sid"]


class RefreshGraceTests(AuthCase):
    """The default --refresh-reuse-grace (10 s): a refresh token used again soon after its first
    use (a retry after a lost answer, or a concurrent refresh) gets a pair of its own in the
    same session, and nothing is ended."""

    def assertAllLive(self, pairs, cid):
        """Every access token works and every refresh token rotates on: the session is alive
        (a refresh reads the session's revocation from the database, not a cached list)."""
        for p in pairs:
            self.assertTrue(self.works(p["access_token"]), p)
        for p in pairs:
            r = refresh(self.srv, p["refresh_token"], p["access_token"], cid)
            self.assertTokenPair(r)
            self.assertTrue(self.works(r.json["access_token"]))

    def test_retried_refresh_within_grace_gets_a_working_pair(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        r1 = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        self.assertTokenPair(r1)
        # the answer was lost: the client retries with the same tokens, on both endpoints
        r2 = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        self.assertTokenPair(r2)
        r3 = refresh_old(self.srv, p1["refresh_token"])
        self.assertTokenPair(r3)
        pairs = [r1.json, r2.json, r3.json]
        self.assertEqual(len({p["access_token"] for p in pairs}), 3)
        self.assertEqual(len({p["refresh_token"] for p in pairs} | {p1["refresh_token"]}), 4)
        self.assertEqual({session_of(p) for p in pairs}, {session_of(p1)})
        self.assertTrue(self.works(p1["access_token"]))
        self.assertAllLive(pairs, cid)

    def test_concurrent_refreshes_all_succeed(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        rs = parallel(lambda i: refresh(self.srv, p1["refresh_token"], p1["access_token"], cid), 6)
        for r in rs:
            self.assertTokenPair(r)
        pairs = [r.json for r in rs]
        self.assertEqual(len({p["access_token"] for p in pairs}), 6)
        self.assertEqual(len({p["refresh_token"] for p in pairs}), 6)
        self.assertEqual({session_of(p) for p in pairs}, {session_of(p1)})
        self.assertAllLive(pairs, cid)

    def test_grace_does_not_excuse_a_mismatch(self):
        b_id, cid, sec = self.client()
        _, cid2, _ = self.client(b_id)
        p1 = self.login_ok(cid, sec)
        self.assertTokenPair(refresh(self.srv, p1["refresh_token"], p1["access_token"], cid))
        r = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid2)
        self.assertGenericError(r, 401)
        self.assertNotIn("access_token", r.json)


class RefreshGraceWindowTests(AuthCase):
    """--refresh-reuse-grace 3: within the window, a retry gets a pair; after it, reuse ends
    the whole session, the pairs handed out during the grace included. (3 s, not 1: the retry
    must land inside the window even on a loaded machine.)"""
    server_args = ["--refresh-reuse-grace", "3"]

    def test_reuse_after_the_window_revokes_the_family(self):
        _, cid, sec = self.client()
        other = self.login_ok(cid, sec)
        p1 = self.login_ok(cid, sec)
        r1 = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        used = time.time()  # the server stored the first use at or before this second
        self.assertTokenPair(r1)
        r2 = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        self.assertTokenPair(r2)
        self.assertTrue(self.works(r2.json["access_token"]))
        # wait until the window (3 s, whole seconds of the server's clock) has surely passed;
        # one more second because time(2) here can lag the precise clock by some milliseconds
        deadline = int(used) + 5
        while time.time() < deadline:
            time.sleep(0.05)
        r = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        self.assertGenericError(r, 401)
        self.assertIn("reuse", r.json["error"])
        for at in (r1.json["access_token"], r2.json["access_token"], p1["access_token"]):
            self.assertRefusedWithin(at)
        for pair in (r1.json, r2.json):
            self.assertGenericError(refresh(self.srv, pair["refresh_token"], pair["access_token"], cid), 401)
        # the client's other login lives on
        self.assertTrue(self.works(other["access_token"]))
        self.assertTokenPair(refresh(self.srv, other["refresh_token"], other["access_token"], cid))

    @unittest.skipUnless(BACKEND == "postgresql", "a psql session's lock stalls the refresh")
    def test_first_use_is_dated_when_written_not_when_the_refresh_began(self):
        """A refresh that waited for the database longer than the window (a stall, a lock) and
        whose answer was lost: the retry right after it gets a pair, and the session lives."""
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        lock = PsqlSession(self.srv.db, "e2e-lock-refresh")
        self.addCleanup(lock.close)
        lock.hold("BEGIN; LOCK TABLE refresh_token IN EXCLUSIVE MODE;", "the table locked")
        out = {}
        first = threading.Thread(target=lambda: out.update(r=refresh(self.srv, p1["refresh_token"],
                                                                      p1["access_token"], cid)))
        first.start()
        pg_until_server_waits(self.srv.db, "the refresh waits for the token", "SELECT s.family")
        stalled = time.monotonic() + 5  # longer than the window (3 s) in whole seconds
        while time.monotonic() < stalled:
            time.sleep(0.05)
        lock.send("COMMIT;")
        first.join(60)
        self.assertTokenPair(out["r"])
        # its answer was lost: the client retries at once
        r2 = refresh(self.srv, p1["refresh_token"], p1["access_token"], cid)
        self.assertTokenPair(r2)
        for at in (out["r"].json["access_token"], r2.json["access_token"], p1["access_token"]):
            self.assertTrue(self.works(at))


# =========================================================================== revocation
class RevocationTests(AuthCase):
    server_args = ["--threads", "8"]

    def test_revoked_client_loses_login_refresh_and_tokens(self):
        b_id, cid, sec = self.client()
        _, keep_cid, keep_sec = self.client(b_id)
        p1 = self.login_ok(cid, sec)
        p2 = self.login_ok(cid, sec)
        keep = self.login_ok(keep_cid, keep_sec)
        self.assertTrue(self.works(p1["access_token"]))
        r = self.srv.cli("client", "revoke", cid)
        self.assertEqual(r.returncode, 0, r)
        t0 = time.time()
        self.assertRefusedWithin(p1["access_token"])
        # after the 5 s the issue allows, every worker refuses it (fresh connection each)
        time.sleep(max(0.0, 5.0 - (time.time() - t0)))
        rs = parallel(lambda i: self.srv.request("GET", HIPUSERS if i % 2 else INFO, token=p1["access_token"]).status, 32)
        self.assertEqual(set(rs), {401}, rs)
        rs = parallel(lambda i: self.srv.request("GET", HIPUSERS, token=p2["access_token"]).status, 16)
        self.assertEqual(set(rs), {401}, rs)
        # no login, no refresh on either endpoint
        self.assertBadCreds(login(self.srv, cid, sec))
        self.assertGenericError(refresh(self.srv, p1["refresh_token"], p1["access_token"], cid), 401)
        self.assertGenericError(refresh_old(self.srv, p2["refresh_token"]), 401)
        # the business's other client is unaffected
        self.assertTrue(self.works(keep["access_token"]))
        self.assertTokenPair(refresh(self.srv, keep["refresh_token"], keep["access_token"], keep_cid))
        self.login_ok(keep_cid, keep_sec)

    def test_revocation_survives_restart(self):
        _, cid, sec = self.client()
        p = self.login_ok(cid, sec)
        self.srv.cli("client", "revoke", cid)
        self.assertRefusedWithin(p["access_token"])
        self.srv.restart()
        self.assertTrue(self.refused(p["access_token"]))
        self.assertBadCreds(login(self.srv, cid, sec))
        self.assertGenericError(refresh_old(self.srv, p["refresh_token"]), 401)


# =========================================================================== throttle
_addr_seq = itertools.count(1)


def fake_addr(v6=False):
    """An address of its own for each caller, from ranges no real client has
    (198.18.0.0/15, RFC 2544; 2001:db8::/32, RFC 3849)."""
    n = next(_addr_seq)
    if v6:
        return "2001:db8:%x:%x::1" % (os.getpid() % 0xffff, n)
    return "198.18.%d.%d" % (n // 256 % 256, n % 256)


def login_header_lines(srv, cid, secret, lines):
    """A login sent on a raw socket, so a header may be repeated; returns (status, json)."""
    body = json.dumps({"client_id": cid, "client_secret": secret}).encode()
    head = "POST %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n" % LOGIN
    head += "".join("%s: %s\r\n" % (k, v) for k, v in lines)
    head += "Content-Length: %d\r\n\r\n" % len(body)
    out = srv.raw_request(head.encode() + body)
    status = int(out.split(b" ", 2)[1])
    return status, json.loads(out.partition(b"\r\n\r\n")[2] or b"null")


def xff(addr):
    return {"X-Forwarded-For": addr}


class ThrottleBase(AuthCase):

    def assertThrottled(self, r):
        self.assertGenericError(r, 429)
        self.assertNotIn("access_token", r.json)
        ra = r.headers.get("retry-after")
        self.assertIsNotNone(ra, r.headers)
        self.assertRegex(ra.strip(), r"^\d+$")
        self.assertTrue(1 <= int(ra) <= 60, ra)
        return int(ra)


class ThrottleTests(ThrottleBase):
    """Behind a trusted proxy (127.0.0.1, the tests themselves), X-Forwarded-For names the
    client, so each test speaks from addresses of its own."""
    server_args = ["--threads", "8", "--trusted-proxy", "127.0.0.1/32"]

    def test_throttle_after_ten_failures_for_that_client_only(self):
        b_id, cid, sec = self.client()
        _, other, osec = self.client(b_id)
        here = xff(fake_addr())
        for i in range(10):
            self.assertBadCreds(login(self.srv, cid, "wrong-%d" % i, headers=here))
        # the right secret is throttled too, and again on the next try
        self.assertThrottled(login(self.srv, cid, sec, headers=here))
        self.assertThrottled(login(self.srv, cid, "wrong-again", headers=here))
        self.assertThrottled(login(self.srv, cid, sec, headers=here))
        # other client ids are unaffected
        self.assertTokenPair(login(self.srv, other, osec, headers=here))
        self.assertBadCreds(login(self.srv, other, "wrong", headers=here))
        self.assertBadCreds(login(self.srv, "EC_other%s" % uniq(), "x", headers=here))

    def test_locked_client_id_still_logs_in_from_another_address(self):
        _, cid, sec = self.client()
        attacker, integrator = xff(fake_addr()), xff(fake_addr())
        for i in range(10):
            self.assertBadCreds(login(self.srv, cid, "guess-%d" % i, headers=attacker))
        self.assertThrottled(login(self.srv, cid, sec, headers=attacker))
        # the real integrator, elsewhere, is not locked out
        r = login(self.srv, cid, sec, headers=integrator)
        self.assertTokenPair(r)
        self.assertTrue(self.works(r.json["access_token"]))
        self.assertBadCreds(login(self.srv, cid, "typo", headers=integrator))
        self.assertTokenPair(login(self.srv, cid, sec, headers=integrator))
        # while the lock on the attacker's address stays
        self.assertThrottled(login(self.srv, cid, sec, headers=attacker))

    def test_right_most_untrusted_forwarded_address_counts(self):
        _, cid, sec = self.client()
        a, b = fake_addr(), fake_addr()
        # whatever the client wrote to the left of what the proxy added is ignored
        for i in range(10):
            spoof = "%s, %s" % (fake_addr(), a)
            self.assertBadCreds(login(self.srv, cid, "guess-%d" % i, headers=xff(spoof)))
        self.assertThrottled(login(self.srv, cid, sec, headers=xff(a)))
        self.assertThrottled(login(self.srv, cid, sec, headers=xff("%s, %s" % (b, a))))
        # the same address through a second trusted hop, and as two header lines
        self.assertThrottled(login(self.srv, cid, sec, headers=xff("%s, 127.0.0.1" % a)))
        status, js = login_header_lines(self.srv, cid, sec, [("X-Forwarded-For", b), ("X-Forwarded-For", a)])
        self.assertEqual((status, js.get("code")), (429, 429), js)
        # another address, even with the locked one spoofed to its left, gets in
        self.assertTokenPair(login(self.srv, cid, sec, headers=xff("%s, %s" % (a, b))))

    def test_ipv6_counted_per_64(self):
        _, cid, sec = self.client()
        net = fake_addr(v6=True).rsplit("::", 1)[0]
        for i in range(10):  # ten different addresses of one /64
            self.assertBadCreds(login(self.srv, cid, "guess-%d" % i, headers=xff("%s::%x" % (net, i + 1))))
        self.assertThrottled(login(self.srv, cid, sec, headers=xff("%s:ffff:ffff:ffff:ffff" % net)))
        r = login(self.srv, cid, sec, headers=xff(fake_addr(v6=True)))
        self.assertTokenPair(r)

    def test_address_capped_across_client_ids(self):
        b_id, cid, sec = self.client()
        here, elsewhere = xff(fake_addr()), xff(fake_addr())
        # 50 failures spread over client ids, none of which reaches its own limit of 10
        for i in range(50):
            ghost = "EC_spray%s_%d" % (os.getpid(), i // 9)
            self.assertBadCreds(login(self.srv, ghost, "x", headers=here))
        # now that address waits, for any client id, even a right secret
        self.assertThrottled(login(self.srv, "EC_fresh%s" % uniq(), "x", headers=here))
        self.assertThrottled(login(self.srv, cid, sec, headers=here))
        # other addresses are not held back
        self.assertTokenPair(login(self.srv, cid, sec, headers=elsewhere))
        self.assertBadCreds(login(self.srv, "EC_spray%s_0" % os.getpid(), "x", headers=elsewhere))

    def test_unknown_client_ids_throttled_the_same_way(self):
        _, cid, sec = self.client()
        here = xff(fake_addr())
        ghost = "EC_ghost%s" % uniq()
        for i in range(10):
            self.assertBadCreds(login(self.srv, ghost, "x%d" % i, headers=here))
        r_unknown = login(self.srv, ghost, "y", headers=here)
        self.assertThrottled(r_unknown)
        for i in range(10):
            self.assertBadCreds(login(self.srv, cid, "x%d" % i, headers=here))
        r_known = login(self.srv, cid, sec, headers=here)
        self.assertThrottled(r_known)
        self.assertEqual(set(r_unknown.json), set(r_known.json))
        self.assertEqual(r_unknown.json["code"], r_known.json["code"])
        self.assertEqual(r_unknown.json["error"], r_known.json["error"])

    def test_concurrent_failures_counted_atomically(self):
        _, cid, sec = self.client()
        here = xff(fake_addr())
        rs = parallel(lambda i: login(self.srv, cid, "wrong-%d" % i, headers=here), 16)
        statuses = sorted(getattr(r, "status", r) for r in rs)
        self.assertEqual(statuses.count(401), 10, statuses)
        self.assertEqual(statuses.count(429), 6, statuses)
        for r in rs:
            if r.status == 429:
                self.assertThrottled(r)
            else:
                self.assertBadCreds(r)
        self.assertThrottled(login(self.srv, cid, sec, headers=here))


    def test_counters_stored_as_hashes_and_old_ones_deleted(self):
        _, cid, sec = self.client()
        here = fake_addr()
        for i in range(3):
            self.assertBadCreds(login(self.srv, cid, "wrong-%d" % i, headers=xff(here)))
        # the database names the counters by a keyed hash: no client id, no address
        rows = self.srv.query("SELECT key, failures FROM login_throttle")
        self.assertGreaterEqual(len(rows), 2)
        for key, _ in rows:
            self.assertRegex(key, r"^[0-9a-f]{32}$")
        for raw in (cid, here):
            self.assertNotIn(raw, repr(rows))
        self.assertIn(3, [int(f) for _, f in rows])
        # counters whose windows ended long ago are deleted as logins come (a few each)
        with DB(self.srv) as db:
            for i in range(20):
                db.execute("INSERT INTO login_throttle (key, window_start, failures, pending, prev_pending)"
                           " VALUES (?, ?, ?, 0, 0)", ("%032x" % (0xdead0000 + i), 1000 + i, 10))
        stale = "SELECT count(*) FROM login_throttle WHERE window_start < 100000"
        self.assertEqual(int(self.srv.query(stale)[0][0]), 20)
        self.assertBadCreds(login(self.srv, cid, "wrong-3", headers=xff(here)))
        self.assertLess(int(self.srv.query(stale)[0][0]), 20)
        for _ in range(3):
            self.assertTokenPair(login(self.srv, cid, sec, headers=xff(fake_addr())))
        self.assertEqual(int(self.srv.query(stale)[0][0]), 0)
        # while the live ones stay: the four failures here still count, six more make ten
        for i in range(6):
            self.assertBadCreds(login(self.srv, cid, "again-%d" % i, headers=xff(here)))
        self.assertThrottled(login(self.srv, cid, sec, headers=xff(here)))


class ThrottleWithoutProxyTests(ThrottleBase):
    """Without --trusted-proxy, X-Forwarded-For is the client's own say: ignored."""

    def test_forwarded_for_ignored(self):
        _, cid, sec = self.client()
        for i in range(10):
            self.assertBadCreds(login(self.srv, cid, "guess-%d" % i, headers=xff(fake_addr())))
        # every one of them came from 127.0.0.1, whatever the header said
        self.assertThrottled(login(self.srv, cid, sec, headers=xff(fake_addr())))
        self.assertThrottled(login(self.srv, cid, sec))


class TrustedProxyFlagTests(ThrottleBase):
    """--trusted-proxy may be repeated and take comma-separated IPv4 and IPv6 ranges."""
    server_args = ["--trusted-proxy", "10.0.0.0/8, 2001:db8::/32", "--trusted-proxy", "::1,127.0.0.0/8"]

    def test_ranges_from_every_flag_are_trusted(self):
        _, cid, sec = self.client()
        a = fake_addr()
        # 127.0.0.1 (second flag) is a trusted peer; 10.1.2.3 (first flag) a trusted hop
        for i in range(10):
            self.assertBadCreds(login(self.srv, cid, "guess-%d" % i, headers=xff("%s, 10.1.2.3" % a)))
        self.assertThrottled(login(self.srv, cid, sec, headers=xff(a)))
        self.assertTokenPair(login(self.srv, cid, sec, headers=xff(fake_addr())))

    def test_bad_ranges_refused_at_start(self):
        d = tempfile.mkdtemp(prefix="hipusers-proxy-")
        try:
            for bad in ("10.0.0.0/33", "example.com", "10.0.0.1,", "::/129", "1.2.3.4/x"):
                with self.subTest(bad=bad):
                    r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--db",
                                        os.path.join(d, "x.db"), "--trusted-proxy", bad],
                                       capture_output=True, text=True, timeout=60,
                                       env=dict(os.environ, HIPUSERS_JWT_SECRET=SECRET))
                    self.assertEqual(r.returncode, 2, r)
                    self.assertIn("--trusted-proxy", r.stderr)
                    self.assertIn("is not an IPv4 or IPv6 address or CIDR range", r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


# =========================================================================== sharing keys
class SharingKeyTests(AuthCase):

    def test_sharing_key_gives_exactly_the_owners_business(self):
        owner, owner_name = self.business("Owner Clinic %s" % uniq())
        mine, mine_name = self.business("Partner App %s" % uniq())
        _, cid, sec = self.client(mine)
        _, ocid, osec = self.client(owner)
        _, skey = new_sharing_key(self.srv, owner)

        shared = self.login_ok(cid, sec, sharing_key=skey)
        own = self.login_ok(cid, sec)
        owner_tok = self.login_ok(ocid, osec)["access_token"]
        p = jwt_parts(shared["access_token"])[1]
        self.assertEqual(p["b_id"], owner)
        self.assertEqual(p["client_id"], cid)
        self.assertEqual(jwt_parts(own["access_token"])[1]["b_id"], mine)

        r = self.info(shared["access_token"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "bid": owner, "business_name": owner_name})
        r = self.info(own["access_token"])
        self.assertEqual(r.json, {"status": "success", "bid": mine, "business_name": mine_name})

        # a user created through the shared token lands in the owner's tenant only
        uid = self.create_user(shared["access_token"])
        self.assertIn(uid, self.ekauser_ids(owner_tok))
        self.assertNotIn(uid, self.ekauser_ids(own["access_token"]))
        r = self.srv.request("GET", HIPUSERS + uid, token=own["access_token"])
        self.assertEqual(r.status, 404, r)
        r = self.srv.request("GET", HIPUSERS + uid, token=owner_tok)
        self.assertEqual(r.status, 200, r)
        # and the client's own users are invisible through the shared token
        own_uid = self.create_user(own["access_token"])
        self.assertNotIn(own_uid, self.ekauser_ids(shared["access_token"]))
        self.assertEqual(self.srv.request("GET", EKAUSER + own_uid + "/", token=shared["access_token"]).status, 404)
        self.assertEqual(self.srv.request("GET", HIPUSERS + own_uid, token=shared["access_token"]).status, 404)

        # refreshing keeps the owner's business
        r = refresh(self.srv, shared["refresh_token"], shared["access_token"], cid)
        self.assertTokenPair(r)
        self.assertEqual(jwt_parts(r.json["access_token"])[1]["b_id"], owner)
        self.assertEqual(self.info(r.json["access_token"]).json["bid"], owner)

    def test_bad_sharing_keys_refused(self):
        owner, _ = self.business()
        mine, _ = self.business()
        _, cid, sec = self.client(mine)
        kid, skey = new_sharing_key(self.srv, owner)
        kid2, skey2 = new_sharing_key(self.srv, owner)
        self.assertEqual(self.srv.cli("sharing-key", "revoke", kid).returncode, 0)
        for what, key in (("revoked", skey), ("bogus", "bogus-%s" % uniq()),
                          ("altered", skey2[:-2] + ("AA" if not skey2.endswith("AA") else "BB")),
                          ("key id instead of key", kid2)):
            with self.subTest(what):
                r = login(self.srv, cid, sec, sharing_key=key)
                self.assertGenericError(r, 401)
                self.assertNotIn("access_token", r.json)
        # a valid key with a wrong client secret is the usual credentials failure
        self.assertBadCreds(login(self.srv, cid, sec + "x", sharing_key=skey2))
        # the other, unrevoked key still works
        pair = self.login_ok(cid, sec, sharing_key=skey2)
        self.assertEqual(jwt_parts(pair["access_token"])[1]["b_id"], owner)

    def test_revoking_a_sharing_key_ends_its_sessions(self):
        owner, _ = self.business()
        mine, _ = self.business()
        _, cid, sec = self.client(mine)
        kid, skey = new_sharing_key(self.srv, owner)
        shared = self.login_ok(cid, sec, sharing_key=skey)
        own = self.login_ok(cid, sec)
        self.works(shared["access_token"])
        self.assertEqual(self.srv.cli("sharing-key", "revoke", kid).returncode, 0)
        # the owner's workspace closes for tokens and refreshes of that login...
        self.assertRefusedWithin(shared["access_token"])
        r = refresh(self.srv, shared["refresh_token"], access=shared["access_token"], client_id=cid)
        self.assertGenericError(r, 401)
        # ...while the client's own login is untouched
        self.works(own["access_token"])
        r = refresh(self.srv, own["refresh_token"], access=own["access_token"], client_id=cid)
        self.assertEqual(r.status, 200, r)

    def test_sharing_key_with_revoked_client(self):
        owner, _ = self.business()
        _, cid, sec = self.client()
        _, skey = new_sharing_key(self.srv, owner)
        self.srv.cli("client", "revoke", cid)
        self.assertBadCreds(login(self.srv, cid, sec, sharing_key=skey))


# =========================================================================== business info
class BusinessInfoTests(AuthCase):

    def test_business_info_both_paths(self):
        b_id, name = self.business("Acme Hospitals %s" % uniq())
        _, cid, sec = self.client(b_id)
        at = self.login_ok(cid, sec)["access_token"]
        for path in (INFO, INFO.rstrip("/")):
            with self.subTest(path=path):
                r = self.srv.request("GET", path, token=at)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json, {"status": "success", "bid": b_id, "business_name": name})
        r = self.info(make_token(b_id))
        self.assertEqual(r.json, {"status": "success", "bid": b_id, "business_name": name})

    def test_business_info_without_business_row(self):
        r = self.info(make_token("7%015d" % (int(uniq()) % 10 ** 15)))
        self.assertEqual(r.status, 404, r)
        self.assertIsInstance(r.json, dict, r)

    def test_business_info_needs_a_token(self):
        self.assertEqual(self.srv.request("GET", INFO).status, 401)
        self.assertEqual(self.srv.request("GET", INFO, token="garbage").status, 401)


# =========================================================================== hipusers
class HipUsersTests(AuthCase):

    def setUp(self):
        self.b_id, _ = self.business()
        self.t = make_token(self.b_id)

    def ekauser(self, uid):
        r = self.srv.request("GET", EKAUSER + uid + "/", token=self.t)
        self.assertEqual(r.status, 200, r)
        return r.json["user"]

    def assertSameUser(self, hip, eka):
        self.assertTrue(HIPUSER_ALWAYS <= set(hip), HIPUSER_ALWAYS - set(hip))
        self.assertEqual(set(hip), set(eka))
        self.assertNotIn(None, hip.values(), hip)
        for k in hip:
            self.assertEqual(hip[k], eka[k], k)

    def test_list_and_detail_match_ekauser(self):
        r = self.srv.request("POST", "/cdr/v1/clinic/", {"name": "Sunrise %s" % uniq(), "address": "1 MG Road"},
                             token=self.t)
        self.assertEqual(r.status, 201, r)
        cid = r.json["ekaid"]
        r = self.srv.request("POST", "/cdr/v1/doctor/", {"firstname": "Rajesh", "lastname": "Sharma", "gender": "M"},
                             token=self.t)
        self.assertEqual(r.status, 201, r)
        did = r.json["ekaid"]
        u1 = self.create_user(self.t, is_admin=True, seat_type="p", clinic_ids=[cid], doctor_ids=[did],
                              partner_id="P-%s" % uniq())
        u2 = self.create_user(self.t)
        u3 = self.create_user(self.t, email=None, auth_userid=None)
        other = self.create_user(make_token("1000000000000001"))

        r = self.srv.request("GET", EKAUSER, token=self.t)
        eka_users = r.json["users"]
        for path in (HIPUSERS, HIPUSERS.rstrip("/")):
            with self.subTest(path=path):
                r = self.srv.request("GET", path, token=self.t)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(set(r.json), {"status", "users"}, r)
                self.assertEqual(r.json["status"], "success")
                hip = r.json["users"]
                self.assertEqual([u["id"] for u in hip], [u["id"] for u in eka_users])
                self.assertEqual({u["id"] for u in hip}, {u1, u2, u3})
                self.assertNotIn(other, [u["id"] for u in hip])
                for h, e in zip(hip, eka_users):
                    self.assertSameUser(h, e)
        for uid in (u1, u2, u3):
            eka = self.ekauser(uid)
            for path in (HIPUSERS + uid, HIPUSERS + uid + "/"):
                with self.subTest(path=path):
                    r = self.srv.request("GET", path, token=self.t)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(set(r.json), {"status", "user"}, r)
                    self.assertEqual(r.json["status"], "success")
                    self.assertSameUser(r.json["user"], eka)
        h1 = self.srv.request("GET", HIPUSERS + u1, token=self.t).json["user"]
        self.assertEqual(h1["clinics"][0]["id"], cid)
        self.assertEqual(h1["doctors"][0]["id"], did)
        self.assertIs(h1["is_admin"], True)
        self.assertEqual(h1["seat_type"], "p")
        self.assertTrue(h1["partner_id"].startswith("P-"), h1)
        h3 = self.srv.request("GET", HIPUSERS + u3, token=self.t).json["user"]
        self.assertNotIn("email", h3)  # unset: omitted
        self.assertNotIn("partner_id", h3)

    def test_views_follow_changes(self):
        uid = self.create_user(self.t)
        r = self.srv.request("PATCH", EKAUSER + uid + "/", {"firstname": "Changed"}, token=self.t)
        self.assertEqual(r.status, 200, r)
        r = self.srv.request("GET", HIPUSERS + uid, token=self.t)
        self.assertEqual(r.json["user"]["firstname"], "Changed")
        self.assertSameUser(r.json["user"], self.ekauser(uid))
        r = self.srv.request("DELETE", EKAUSER + uid + "/", token=self.t)
        self.assertEqual(r.status, 200, r)
        r = self.srv.request("GET", HIPUSERS + uid, token=self.t)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json.get("error"), NOT_FOUND_ERROR, r)
        r = self.srv.request("GET", HIPUSERS, token=self.t)
        self.assertNotIn(uid, [u["id"] for u in r.json["users"]])

    def test_empty_tenant_lists_nothing(self):
        r = self.srv.request("GET", HIPUSERS, token=self.t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "users": []})

    def test_unknown_and_foreign_ids_are_404(self):
        foreign = self.create_user(make_token("1000000000000001"))
        for uid in ("999999999999999", foreign, "not-an-id", urllib.parse.quote("a b", safe="")):
            for path in (HIPUSERS + uid, HIPUSERS + uid + "/"):
                with self.subTest(path=path):
                    r = self.srv.request("GET", path, token=self.t)
                    self.assertEqual(r.status, 404, r)
                    self.assertIsInstance(r.json, dict, r)
                    self.assertEqual(r.json.get("error"), NOT_FOUND_ERROR, r)
                    self.assertNotIn("user", r.json)

    def test_needs_a_token_and_is_read_only(self):
        uid = self.create_user(self.t)
        for path in (HIPUSERS, HIPUSERS + uid):
            self.assertEqual(self.srv.request("GET", path).status, 401)
        before = self.srv.request("GET", EKAUSER, token=self.t).json
        for method, path in (("POST", HIPUSERS), ("PATCH", HIPUSERS + uid), ("DELETE", HIPUSERS + uid),
                             ("PUT", HIPUSERS + uid)):
            with self.subTest(method=method):
                r = self.srv.request(method, path, {"firstname": "X"}, token=self.t)
                self.assertTrue(r.status >= 400, r)
        self.assertEqual(self.srv.request("GET", EKAUSER, token=self.t).json, before)


# =========================================================================== hostile tokens
class HostileTokenTests(AuthCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        b_id, _ = new_business(cls.srv)
        cls.victim, _ = new_business(cls.srv)
        cid, sec = new_client(cls.srv, b_id)
        r = login(cls.srv, cid, sec)
        assert r.status == 200, r
        cls.real = r.json["access_token"]
        cls.b_id = b_id

    def assertRefusedEverywhere(self, tok):
        for path in (HIPUSERS, INFO, EKAUSER):
            r = self.srv.request("GET", path, token=tok)
            self.assertEqual(r.status, 401, (path, r))

    def test_real_token_works(self):
        for path in (HIPUSERS, INFO, EKAUSER):
            self.assertEqual(self.srv.request("GET", path, token=self.real).status, 200, path)

    def test_alg_none_and_other_algorithms(self):
        h, p, _ = jwt_parts(self.real)
        for alg in ("none", "HS384", "HS512"):
            with self.subTest(alg=alg):
                self.assertRefusedEverywhere(make_token(self.b_id, alg=alg, claims=p))
        # the server's own header and claims with alg none, empty signature
        hh = dict(h, alg="none")
        t = b64url(json.dumps(hh).encode()) + "." + self.real.split(".")[1] + "."
        self.assertRefusedEverywhere(t)
        for alg in ("None", "NONE", "RS256", ""):
            with self.subTest(alg=alg):
                t = b64url(json.dumps(dict(h, alg=alg)).encode()) + "." + self.real.split(".")[1] + "." \
                    + self.real.split(".")[2]
                self.assertRefusedEverywhere(t)

    def test_tampered_payload_keeps_signature(self):
        hseg, pseg, sseg = self.real.split(".")
        p = json.loads(b64d(pseg))
        for change in ({"b_id": self.victim}, {"exp": p["exp"] + 86400}, {"client_id": "EC_other"}):
            with self.subTest(change=change):
                t = hseg + "." + b64url(json.dumps(dict(p, **change)).encode()) + "." + sseg
                self.assertRefusedEverywhere(t)
        self.assertRefusedEverywhere(hseg + "." + pseg + ".")
        self.assertRefusedEverywhere(hseg + "." + pseg)

    def test_signature_from_another_secret(self):
        h, p, _ = jwt_parts(self.real)
        self.assertRefusedEverywhere(sign_hs256(h, p, "another-secret-0123456789abcdef0123456789"))
        self.assertRefusedEverywhere(make_token(self.b_id, secret="another-secret"))

    def test_expired_and_missing_b_id(self):
        self.assertRefusedEverywhere(make_token(self.b_id, exp_in=-60))
        h, p, _ = jwt_parts(self.real)
        self.assertRefusedEverywhere(sign_hs256(h, dict(p, exp=int(time.time()) - 60), SECRET))
        self.assertRefusedEverywhere(make_token(None))
        self.assertRefusedEverywhere(sign_hs256(h, {k: v for k, v in p.items() if k != "b_id"}, SECRET))

    def test_refresh_token_is_not_an_access_token(self):
        _, cid, sec = self.client()
        pair = self.login_ok(cid, sec)
        self.assertRefusedEverywhere(pair["refresh_token"])


# =========================================================================== token headers
class TokenHeaderWhitespaceTests(AuthCase):
    """SP and HTAB around the `auth` and `Authorization` values (and between Bearer and the
    token) are not part of the token, on /cdr/v1 and on the refresh endpoint alike."""

    def raw_status(self, method, path, header_lines, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        head = "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" % (method, path)
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
        out = self.srv.raw_request(head.encode() + b"".join(header_lines) + b"\r\n" + data)
        return int(out.split(b" ", 2)[1]), json.loads(out.partition(b"\r\n\r\n")[2] or b"null")

    def test_whitespace_around_token_ignored(self):
        b_id, _ = self.business()
        t = make_token(b_id).encode()
        forms = {
            "auth trailing spaces": b"auth: " + t + b"  \r\n",
            "auth trailing tab": b"auth: " + t + b"\t\r\n",
            "auth tabs both sides": b"auth:\t" + t + b" \t\r\n",
            "bearer trailing space": b"Authorization: Bearer " + t + b" \r\n",
            "bearer trailing tab": b"Authorization: Bearer " + t + b"\t\r\n",
            "bearer tab separator": b"Authorization: Bearer\t" + t + b"\r\n",
            "bearer many separators, lower case": b"Authorization:  bearer \t " + t + b" \t\r\n",
            "empty auth, bearer with a tab": b"auth: \r\nAuthorization: Bearer " + t + b"\t\r\n",
        }
        for what, line in forms.items():
            with self.subTest(what):
                status, js = self.raw_status("GET", INFO, [line])
                self.assertEqual(status, 200, js)
                self.assertEqual(js["bid"], b_id)
        # a create through a token with trailing whitespace is stored for that tenant
        body = {"name": "Whitespace Clinic %s" % uniq(), "address": "1 MG Road"}
        status, js = self.raw_status("POST", "/cdr/v1/clinic/", [b"auth: " + t + b" \t\r\n"], body)
        self.assertEqual(status, 201, js)
        r = self.srv.request("GET", "/cdr/v1/clinic/%s/" % js["ekaid"], token=make_token(b_id))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["clinic"]["name"], body["name"])

    def test_whitespace_inside_or_instead_of_token_still_refused(self):
        b_id, _ = self.business()
        t = make_token(b_id).encode()
        for what, line in (("space inside the token", b"auth: " + t[:20] + b" " + t[20:] + b"\r\n"),
                           ("no separator after Bearer", b"Authorization: Bearer" + t + b"\r\n"),
                           ("blank auth", b"auth: \t \r\n"),
                           ("blank bearer", b"Authorization: Bearer \t \r\n")):
            with self.subTest(what):
                status, js = self.raw_status("GET", INFO, [line])
                self.assertEqual(status, 401, js)
                self.assertEqual(js["status"], "error", js)

    def test_refresh_token_endpoint_trims_authorization(self):
        _, cid, sec = self.client()
        p1 = self.login_ok(cid, sec)
        lines = [b"Authorization:\tBearer\t" + p1["access_token"].encode() + b" \t\r\n",
                 ("Client-Id: %s\r\n" % cid).encode()]
        status, js = self.raw_status("POST", REFRESH, lines, {"refresh_token": p1["refresh_token"]})
        self.assertEqual(status, 200, js)
        self.assertTrue(self.works(js["access_token"]))


# =========================================================================== signing secrets
class SecretLengthTests(unittest.TestCase):
    """An operator-supplied signing secret under 32 bytes (or over 256) stops `serve` and
    `token` with a message naming it: a short HMAC key is found from one token offline."""
    GOOD = "g" * 32

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hipusers-secret-")
        self.db = os.path.join(self.dir, "hipusers.db")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def env(self, secret=None, previous=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("HIPUSERS_")}
        if secret is not None:
            e["HIPUSERS_JWT_SECRET"] = secret
        if previous is not None:
            e["HIPUSERS_JWT_SECRET_PREVIOUS"] = previous
        return e

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(self.dir, name), 0o600)

    def assertRefused(self, env, names):
        """`serve` exits non-zero without listening or creating the database; `token` too."""
        port = free_port()
        r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % port, "--db", self.db],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertNotEqual(r.returncode, 0, r)
        for word in (names, "32", "bytes"):
            self.assertIn(word, r.stderr)
        self.assertFalse(os.path.exists(self.db), "the database was created")
        r = subprocess.run([BIN, "token", "--b-id", "1000000000000001", "--db", self.db],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout, "")
        self.assertIn(names, r.stderr)
        return r.stderr

    def test_short_secret_in_environment(self):
        for secret in ("k", "Zq" * 15 + "Z"):
            with self.subTest(length=len(secret)):
                err = self.assertRefused(self.env(secret), "HIPUSERS_JWT_SECRET")
                self.assertIn("is %d bytes long" % len(secret), err)
                if len(secret) > 1:
                    self.assertNotIn(secret, err)  # the secret itself is never shown

    def test_overlong_secret_in_environment(self):
        self.assertRefused(self.env("x" * 257), "HIPUSERS_JWT_SECRET")

    def test_short_previous_secret_in_environment(self):
        self.assertRefused(self.env(self.GOOD, previous="p" * 31), "HIPUSERS_JWT_SECRET_PREVIOUS")

    def test_short_secret_files(self):
        self.write("jwt-secret", "short-secret\n")
        self.assertRefused(self.env(), "jwt-secret")
        os.unlink(os.path.join(self.dir, "jwt-secret"))
        self.write("jwt-secret.previous", "q" * 31 + "\n")
        self.assertRefused(self.env(self.GOOD), "jwt-secret.previous")

    def test_32_bytes_is_enough(self):
        srv = Server(secret=self.GOOD, env={"HIPUSERS_JWT_SECRET_PREVIOUS": "o" * 32}, data_dir=self.dir).start()
        try:
            self.assertEqual(srv.request("GET", HIPUSERS, token=make_token(secret=self.GOOD)).status, 200)
            self.assertEqual(srv.request("GET", HIPUSERS, token=make_token(secret="o" * 32)).status, 200)
            r = srv.cli("token", "--b-id", "1000000000000001")
            self.assertEqual(r.returncode, 0, r)
            self.assertEqual(srv.request("GET", HIPUSERS, token=r.stdout.strip()).status, 200)
        finally:
            srv.stop()


# =========================================================================== key rotation
class KeyRotationTests(unittest.TestCase):
    OLD = "old-rotation-secret-0123456789abcdef0123456789abcdef"
    NEW = "new-rotation-secret-fedcba9876543210fedcba9876543210"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hipusers-rot-")
        self.srv = None

    def tearDown(self):
        if self.srv:
            self.srv.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, secret, previous=None):
        if self.srv:
            self.srv.stop()
        env = {"HIPUSERS_JWT_SECRET_PREVIOUS": previous} if previous else None
        self.srv = Server(secret=secret, env=env, data_dir=self.dir).start()
        if previous is None:
            # an inherited variable must not leak into the "only new" server
            assert "HIPUSERS_JWT_SECRET_PREVIOUS" not in os.environ
        return self.srv

    def status(self, tok):
        return self.srv.request("GET", HIPUSERS, token=tok).status

    def test_rotation(self):
        srv = self.start(self.OLD)
        b_id, _ = new_business(srv)
        cid, sec = new_client(srv, b_id)
        r = login(srv, cid, sec)
        self.assertEqual(r.status, 200, r)
        old_pair = r.json
        old_issued = old_pair["access_token"]
        kid_old = jwt_parts(old_issued)[0].get("kid")
        self.assertTrue(kid_old)
        self.assertTrue(hs256_valid(old_issued, self.OLD))
        old_hand = make_token(b_id, secret=self.OLD)
        self.assertNotIn(self.OLD, json.dumps(jwt_parts(old_issued)[0]))

        # current = new, previous = old: both verify; new tokens signed with new
        srv = self.start(self.NEW, previous=self.OLD)
        self.assertEqual(self.status(old_issued), 200)
        self.assertEqual(self.status(old_hand), 200)
        self.assertEqual(self.status(make_token(b_id, secret=self.NEW)), 200)
        r = login(srv, cid, sec)
        self.assertEqual(r.status, 200, r)
        new_issued = r.json["access_token"]
        kid_new = jwt_parts(new_issued)[0].get("kid")
        self.assertTrue(kid_new)
        self.assertNotEqual(kid_new, kid_old)
        self.assertTrue(hs256_valid(new_issued, self.NEW))
        self.assertFalse(hs256_valid(new_issued, self.OLD))
        self.assertEqual(self.status(new_issued), 200)
        # a refresh token from before the rotation still refreshes, into a new-secret token
        r = refresh(srv, old_pair["refresh_token"], old_issued, cid)
        self.assertEqual(r.status, 200, r)
        rotated = r.json["access_token"]
        self.assertTrue(hs256_valid(rotated, self.NEW))
        self.assertEqual(jwt_parts(rotated)[0].get("kid"), kid_new)
        # the CLI signs with the current secret as well
        r = srv.cli("token", "--b-id", b_id, env={"HIPUSERS_JWT_SECRET": self.NEW,
                                                     "HIPUSERS_JWT_SECRET_PREVIOUS": self.OLD})
        if r.returncode == 0:
            self.assertTrue(hs256_valid(r.stdout.strip(), self.NEW))

        # previous removed: old-signed tokens are refused, new ones keep working
        self.start(self.NEW)
        self.assertEqual(self.status(old_issued), 401)
        self.assertEqual(self.status(old_hand), 401)
        self.assertEqual(self.status(new_issued), 200)
        self.assertEqual(self.status(rotated), 200)
        self.assertEqual(self.status(make_token(b_id, secret=self.NEW)), 200)
        r = login(self.srv, cid, sec)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(jwt_parts(r.json["access_token"])[0].get("kid"), kid_new)

    def test_kid_is_stable_for_a_secret(self):
        srv = self.start(self.OLD)
        b_id, _ = new_business(srv)
        cid, sec = new_client(srv, b_id)
        k1 = jwt_parts(login(srv, cid, sec).json["access_token"])[0]["kid"]
        srv = self.start(self.OLD)
        k2 = jwt_parts(login(srv, cid, sec).json["access_token"])[0]["kid"]
        self.assertEqual(k1, k2)


# =========================================================================== refresh lifetime
class RefreshTtlTests(AuthCase):
    server_args = ["--refresh-ttl", "1"]

    def test_expired_refresh_token_refused(self):
        _, cid, sec = self.client()
        p1 = login(self.srv, cid, sec)
        self.assertTokenPair(p1, refresh_ttl=1)
        self.assertEqual(p1.json["refresh_expires_in"], 1)
        p2 = login(self.srv, cid, sec).json
        time.sleep(2.2)
        r = refresh(self.srv, p1.json["refresh_token"], p1.json["access_token"], cid)
        self.assertGenericError(r, 401)
        self.assertGenericError(refresh_old(self.srv, p2["refresh_token"]), 401)
        # the access token (30 min) is still fine
        self.assertTrue(self.works(p1.json["access_token"]))


class RefreshTtlEnvTests(AuthCase):
    server_env = {"HIPUSERS_REFRESH_TTL": "1234"}

    def test_env_sets_refresh_lifetime(self):
        _, cid, sec = self.client()
        r = login(self.srv, cid, sec)
        self.assertTokenPair(r, refresh_ttl=1234)
        self.assertEqual(r.json["refresh_expires_in"], 1234)
        r = refresh_old(self.srv, r.json["refresh_token"])
        self.assertTokenPair(r, refresh_ttl=1234)


if __name__ == "__main__":
    unittest.main()
