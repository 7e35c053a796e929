#!/usr/bin/env python3
"""End-to-end tests of the HTTP layer: authentication, tenant isolation, routing
(trailing slash, 404, 405), media type (415), body limits (413), Host, malformed JSON,
duplicate keys, invalid UTF-8, encoded ids and number overflow.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_http.py
"""
import hashlib
import hmac
import http.client
import itertools
import json
import os
import socket
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SECRET, ServerTestCase, b64url, make_token  # noqa: E402

BASE = "/cdr/v1/ekauser/"
_seq = itertools.count(1)


def user_body(**over):
    n = next(_seq)
    body = {"firstname": "Amit", "lastname": "Kumar", "mobile": "7%09d" % n,
            "email": "http%d@example.com" % n, "auth_userid": "h_%d" % n,
            "gender": "M", "dob": "1990-05-15"}
    body.update(over)
    return body


def user_path(uid):
    return BASE + urllib.parse.quote(uid, safe="") + "/"


def sign_segments(h_b64, p_b64, secret=SECRET):
    """header.payload (already base64url) signed HS256, so only their content is at fault."""
    si = h_b64 + "." + p_b64
    return si + "." + b64url(hmac.new(secret.encode(), si.encode(), hashlib.sha256).digest())


def forge(header, payload, secret=SECRET):
    """A token with arbitrary header/payload JSON, correctly signed HS256 with secret."""
    return sign_segments(b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()), secret)


class HttpCase(ServerTestCase):

    def create(self, body=None, token="default"):
        r = self.req("POST", BASE, body or user_body(), token=token)
        self.assertEqual(r.status, 201, r)
        return r.json["ekaid"]

    def get(self, uid, token="default"):
        r = self.req("GET", user_path(uid), token=token)
        self.assertEqual(r.status, 200, r)
        return r.json["user"]

    def list_users(self, token="default"):
        r = self.req("GET", BASE, token=token)
        self.assertEqual(r.status, 200, r)
        return r.json["users"]

    def assertNotFound(self, r):
        self.assertError(r, 404)
        self.assertEqual(r.json["message"], "EkaUser not found", r)

    def send_raw(self, data, timeout=10):
        return self.srv.raw_request(data, timeout=timeout)

    def parse_raw(self, out):
        """(status, headers-lowercase dict, body bytes) of a raw HTTP response."""
        self.assertTrue(out.startswith(b"HTTP/1."), out[:200])
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode()
        return status, hdrs, body

    def big_request(self, method, path, body: bytes, content_type="application/json"):
        """Sends a large body; the server may answer before reading it all."""
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=15)
        head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nauth: %s\r\nContent-Type: %s\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n" % (method, path, self.tok, content_type, len(body)))
        out = b""
        try:
            s.sendall(head.encode())
            s.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        return out


# ---------------------------------------------------------------------------------------
class AuthTests(HttpCase):

    def assert401(self, r):
        self.assertEqual(r.status, 401, r)
        self.assertIsInstance(r.json, dict, r)
        self.assertEqual(r.json.get("status"), "error", r)
        self.assertIsInstance(r.json.get("message"), str, r)
        self.assertTrue(r.json["message"], r)

    def bad_tokens(self):
        good = make_token()
        h, p, s = good.split(".")
        other = make_token(secret="another-secret-another-secret-another-secret")
        tampered_payload = b64url(json.dumps({"b_id": "2000000000000002", "client_id": "e2e"}).encode())
        return {
            "empty": "",
            "garbage": "abc",
            "two parts": h + "." + p,
            "four parts": good + ".x",
            "dots only": "..",
            "bad base64": "!!!." + p + "." + s,
            "header not json": sign_segments(b64url(b"not json"), p),
            "payload not json": sign_segments(h, b64url(b'{"b_id": "1000000000000001"')),
            "bad signature": other,
            "tampered payload": h + "." + tampered_payload + "." + s,
            "truncated signature": good[:-4],
            "empty signature": h + "." + p + ".",
            "expired": make_token(exp_in=-120),
            "alg none": make_token(alg="none"),
            "alg none signed": forge({"alg": "none", "typ": "JWT"}, {"b_id": "1000000000000001"}),
            "alg HS512": make_token(alg="HS512"),
            "alg HS384": make_token(alg="HS384"),
            "alg RS256 hmac": forge({"alg": "RS256", "typ": "JWT"}, {"b_id": "1000000000000001"}),
            "no alg": forge({"typ": "JWT"}, {"b_id": "1000000000000001"}),
            "missing b_id": make_token(b_id=None),
            "empty b_id": make_token(b_id=""),
            "numeric b_id": forge({"alg": "HS256", "typ": "JWT"}, {"b_id": 1000000000000001}),
            "exp not a number": forge({"alg": "HS256", "typ": "JWT"}, {"b_id": "1000000000000001", "exp": "soon"}),
            "payload array": forge({"alg": "HS256", "typ": "JWT"}, ["b_id"]),
        }

    def test_missing_token(self):
        for method, path, body in (("GET", BASE, None), ("POST", BASE, user_body()),
                                   ("GET", user_path("123456789012345"), None),
                                   ("PATCH", user_path("123456789012345"), {"firstname": "X"}),
                                   ("DELETE", user_path("123456789012345"), None)):
            with self.subTest(method=method, path=path):
                self.assert401(self.req(method, path, body, token=None))

    def test_bad_tokens_both_headers(self):
        uid = self.create()
        before = self.list_users()
        for name, tok in self.bad_tokens().items():
            with self.subTest(token=name, header="auth"):
                self.assert401(self.req("GET", BASE, token=None, headers={"auth": tok}))
                self.assert401(self.req("POST", BASE, user_body(), token=None, headers={"auth": tok}))
            with self.subTest(token=name, header="Authorization"):
                self.assert401(self.req("GET", BASE, token=None, headers={"Authorization": "Bearer " + tok}))
                self.assert401(self.req("PATCH", user_path(uid), {"firstname": "Hacked"}, token=None,
                                        headers={"Authorization": "Bearer " + tok}))
                self.assert401(self.req("DELETE", user_path(uid), token=None,
                                        headers={"Authorization": "Bearer " + tok}))
        self.assertEqual(self.list_users(), before)

    def test_authorization_header_forms(self):
        tok = make_token()
        self.assert401(self.req("GET", BASE, token=None, headers={"Authorization": tok}))  # no scheme
        self.assert401(self.req("GET", BASE, token=None, headers={"Authorization": "Basic dXNlcjpwYXNz"}))
        self.assert401(self.req("GET", BASE, token=None, headers={"Authorization": "Bearer "}))
        r = self.req("GET", BASE, token=None, headers={"Authorization": "Bearer " + tok})
        self.assertEqual(r.status, 200, r)
        r = self.req("GET", BASE, token=None, headers={"auth": tok})
        self.assertEqual(r.status, 200, r)

    def test_good_token_variants(self):
        for name, tok in (("b-id claim", make_token("1000000000000001", claim_name="b-id")),
                          ("no exp", make_token(exp_in=None)),
                          ("extra claims", make_token(claims={"extra_field": "x", "iat": 1}))):
            with self.subTest(token=name):
                r = self.req("GET", BASE, token=tok)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json.get("status"), "success", r)

    def test_b_dash_id_is_same_tenant(self):
        uid = self.create()
        tok = make_token("1000000000000001", claim_name="b-id")
        self.assertEqual(self.get(uid, token=tok)["id"], uid)

    def test_secret_not_reflected(self):
        r = self.req("GET", BASE, token=make_token(secret="wrong"))
        self.assert401(r)
        self.assertNotIn(SECRET.encode(), r.raw)


# ---------------------------------------------------------------------------------------
class TenantTests(HttpCase):

    def test_other_tenant_sees_404(self):
        pid = "tenantA_%d" % next(_seq)
        uid = self.create(user_body(partner_id=pid))
        before = self.get(uid)
        for ident in (uid, pid):
            with self.subTest(ident=ident):
                self.assertNotFound(self.req("GET", user_path(ident), token=self.tok_b))
                self.assertNotFound(self.req("PATCH", user_path(ident), {"firstname": "B"}, token=self.tok_b))
                self.assertNotFound(self.req("DELETE", user_path(ident), token=self.tok_b))
        self.assertEqual(self.get(uid), before)
        # 404 for another tenant's record is identical to a missing one
        r1 = self.req("GET", user_path(uid), token=self.tok_b)
        r2 = self.req("GET", user_path("000000000000000"), token=self.tok_b)
        self.assertEqual((r1.status, r1.json["message"], set(r1.json)), (r2.status, r2.json["message"], set(r2.json)))

    def test_lists_are_scoped(self):
        tok_c = make_token("5000000000000005")
        tok_d = make_token("6000000000000006")
        c_ids = [self.create(token=tok_c) for _ in range(3)]
        d_ids = [self.create(token=tok_d) for _ in range(2)]
        self.assertEqual([u["id"] for u in self.list_users(token=tok_c)], c_ids)
        self.assertEqual([u["id"] for u in self.list_users(token=tok_d)], d_ids)

    def test_same_unique_values_in_other_tenant(self):
        b = user_body(partner_id="shared_%d" % next(_seq))
        a_id = self.create(dict(b))
        b_id = self.create(dict(b), token=self.tok_b)
        self.assertNotEqual(a_id, b_id)
        self.assertEqual(self.get(b["partner_id"])["id"], a_id)
        self.assertEqual(self.get(b["partner_id"], token=self.tok_b)["id"], b_id)

    def test_cannot_link_other_tenants_clinic(self):
        r = self.req("POST", "/cdr/v1/clinic/", {"name": "A clinic", "address": "Somewhere"})
        self.assertEqual(r.status, 201, r)
        cid = r.json["ekaid"]
        before = self.list_users(token=self.tok_b)
        r = self.req("POST", BASE, user_body(clinic_ids=[cid]), token=self.tok_b)
        self.assertError(r, 400, field="clinic_ids")
        self.assertEqual(self.list_users(token=self.tok_b), before)
        uid = self.create(token=self.tok_b)
        before = self.get(uid, token=self.tok_b)
        r = self.req("PATCH", user_path(uid), {"clinic_ids": [cid]}, token=self.tok_b)
        self.assertError(r, 400, field="clinic_ids")
        self.assertEqual(self.get(uid, token=self.tok_b), before)


# ---------------------------------------------------------------------------------------
class RoutingTests(HttpCase):

    def test_trailing_slash_optional(self):
        for path in (BASE, BASE.rstrip("/")):
            with self.subTest(path=path):
                r = self.req("POST", path, user_body())
                self.assertEqual(r.status, 201, r)
                uid = r.json["ekaid"]
                r = self.req("GET", path)
                self.assertEqual(r.status, 200, r)
                self.assertIn(uid, [u["id"] for u in r.json["users"]])
                for p in (BASE + uid, BASE + uid + "/"):
                    r = self.req("GET", p)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json["user"]["id"], uid)
                r = self.req("PATCH", BASE + uid, {"lastname": "NoSlash"})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.get(uid)["lastname"], "NoSlash")
                r = self.req("DELETE", BASE + uid)
                self.assertEqual(r.status, 200, r)
                self.assertNotFound(self.req("GET", BASE + uid))
        for other in ("/cdr/v1/doctor", "/cdr/v1/doctor/", "/cdr/v1/clinic", "/cdr/v1/clinic/"):
            r = self.req("GET", other)
            self.assertEqual(r.status, 200, (other, r))

    def test_unknown_paths_404(self):
        for path in ("/", "/cdr/v1/", "/cdr/v1/nothing/", "/cdr/v2/ekauser/", "/cdr/v1/ekausers/",
                     "/cdr/v1/ekauser/123/extra/", "/cdr/v1/EKAUSER/"):
            with self.subTest(path=path):
                r = self.req("GET", path)
                self.assertError(r, 404)
                self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r.headers)

    def test_405_with_allow(self):
        uid = self.create()
        before = self.get(uid)
        cases = [("PUT", BASE, {"GET", "POST"}), ("DELETE", BASE, {"GET", "POST"}),
                 ("PUT", BASE.rstrip("/"), {"GET", "POST"}),
                 ("POST", user_path(uid), {"GET", "PATCH", "DELETE"}),
                 ("PUT", user_path(uid), {"GET", "PATCH", "DELETE"}),
                 ("PUT", "/cdr/v1/clinic/", {"GET", "POST"})]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                r = self.req(method, path, user_body())
                self.assertError(r, 405)
                self.assertIn("allow", r.headers, r.headers)
                got = {m.strip().upper() for m in r.headers["allow"].split(",")}
                self.assertTrue(allowed <= got, (allowed, got))
                self.assertNotIn(method, got)
        self.assertEqual(self.get(uid), before)

    def test_no_redirects_anywhere(self):
        uid = self.create()
        for method, path in (("GET", BASE), ("GET", BASE[:-1]), ("GET", BASE + uid), ("GET", "/cdr/v1/clinic")):
            r = self.req(method, path)
            self.assertFalse(300 <= r.status < 400, r)

    def test_encoded_nul_and_slash_in_id(self):
        uid = self.create()
        before = self.get(uid)
        paths = [BASE + uid + "%00", BASE + uid + "%00/", BASE + "%00" + uid, BASE + uid + "%2F",
                 BASE + uid + "%2f", BASE + "..%2F..%2Fclinic", BASE + "%2Fcdr%2Fv1%2Fclinic%2F",
                 BASE + uid + "%2Fx", "/cdr/v1/ekauser%2F" + uid, "/cdr%2Fv1%2Fekauser%2F"]
        for path in paths:
            with self.subTest(path=path):
                for method, body in (("GET", None), ("PATCH", {"firstname": "Z"}), ("DELETE", None)):
                    r = self.req(method, path, body)
                    self.assertError(r, 404)
        self.assertEqual(self.get(uid), before)

    def test_bad_percent_encoding(self):
        for path in (BASE + "%zz/", BASE + "%/", BASE + "%4/"):
            with self.subTest(path=path):
                r = self.req("GET", path)
                self.assertIn(r.status, (400, 404), r)
                self.assertEqual(r.json.get("status"), "error", r)

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        for _ in range(3):
            conn.request("GET", BASE, headers={"auth": self.tok})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            json.loads(r.read())
        conn.close()


# ---------------------------------------------------------------------------------------
class BodyTests(HttpCase):

    def setUp(self):
        self.uid = self.create()
        self.before_user = self.get(self.uid)
        self.before_list = self.list_users()

    def assertNothingChanged(self):
        self.assertEqual(self.get(self.uid), self.before_user)
        self.assertEqual(self.list_users(), self.before_list)

    def test_415(self):
        body = json.dumps(user_body()).encode()
        for ct in (None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                   "application/json-patch+json", "multipart/form-data; boundary=x", "json", ""):
            with self.subTest(ct=ct):
                self.assertError(self.req("POST", BASE, raw=body, content_type=ct), 415)
                self.assertError(self.req("PATCH", user_path(self.uid), raw=b'{"lastname":"T"}',
                                          content_type=ct), 415)
        self.assertNothingChanged()

    def test_content_type_variants_accepted(self):
        for ct in ("application/JSON; charset=utf-8", "Application/Json", "application/json;charset=UTF-8",
                   "application/json ; charset=utf-8"):
            with self.subTest(ct=ct):
                r = self.req("POST", BASE, raw=json.dumps(user_body()).encode(), content_type=ct)
                self.assertEqual(r.status, 201, r)
        r = self.req("PATCH", user_path(self.uid), raw=b'{"lastname":"CT"}',
                     content_type="application/JSON; charset=utf-8")
        self.assertEqual(r.status, 200, r)

    def test_unauthenticated_body_is_never_read(self):
        # Headers promise 512 KiB, but no token: the 401 comes before any of the body is sent.
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        s.sendall(b"POST /cdr/v1/ekauser/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 524288\r\n\r\n")
        reply = s.recv(4096)
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 401"), reply)
        self.assertIn(b'"status":"error"', reply)

    def test_413(self):
        big = b'{"firstname":"' + b"a" * (2 * 1024 * 1024) + b'"}'
        for method, path in (("POST", BASE), ("PATCH", user_path(self.uid))):
            with self.subTest(method=method):
                out = self.big_request(method, path, big)
                status, hdrs, body = self.parse_raw(out)
                self.assertEqual(status, 413, out[:300])
                j = json.loads(body.decode())
                self.assertEqual(j.get("status"), "error")
                self.assertIsInstance(j.get("message"), str)
        # a large body padded with whitespace but under 1 MiB is fine
        padded = json.dumps(user_body()).encode() + b" " * (1000 * 1000)
        r = self.req("POST", BASE, raw=padded)
        self.assertEqual(r.status, 201, r)
        self.before_list = self.list_users()
        self.assertNothingChanged()

    def test_413_chunked(self):
        chunk = b"a" * 65536
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=15)
        out = b""
        try:
            s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nauth: %s\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % (BASE, self.tok)).encode())
            s.sendall(b'%x\r\n{"firstname":"\r\n' % len(b'{"firstname":"'))
            for _ in range(40):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b'2\r\n"}\r\n0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    break
                out += c
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        status, _, _ = self.parse_raw(out)
        self.assertEqual(status, 413, out[:300])
        self.assertNothingChanged()

    def test_http11_without_host(self):
        out = self.send_raw(("GET %s HTTP/1.1\r\nauth: %s\r\nConnection: close\r\n\r\n" % (BASE, self.tok)).encode())
        status, _, _ = self.parse_raw(out)
        self.assertEqual(status, 400, out[:300])
        body = json.dumps(user_body()).encode()
        out = self.send_raw(("POST %s HTTP/1.1\r\nauth: %s\r\nContent-Type: application/json\r\n"
                             "Content-Length: %d\r\nConnection: close\r\n\r\n" % (BASE, self.tok, len(body))).encode()
                            + body)
        status, _, _ = self.parse_raw(out)
        self.assertEqual(status, 400, out[:300])
        # HTTP/1.0 needs no Host
        out = self.send_raw(("GET %s HTTP/1.0\r\nauth: %s\r\n\r\n" % (BASE, self.tok)).encode())
        status, _, _ = self.parse_raw(out)
        self.assertEqual(status, 200, out[:300])
        self.assertNothingChanged()

    def test_invalid_json_says_where(self):
        cases = [b'{"firstname": "A",', b'{"firstname" "A"}', b"{'firstname': 'A'}", b'{"firstname": "A",}',
                 b'{"a":1} x', b"", b" ", b"{", b'{"dob": NaN}', b'{"x": 01}', b'{"x": tru}',
                 b'{"x": "unterminated}', b'{"x": "\\q"}', b'{"x": "\\u12"}', b"/*c*/{}", b'{"x": 1.}',
                 b'{"x": -}', b'{"x": "a\tb"}', b'{"x": +1}']
        for raw in cases:
            with self.subTest(raw=raw):
                for method, path in (("POST", BASE), ("PATCH", user_path(self.uid))):
                    r = self.req(method, path, raw=raw)
                    self.assertError(r, 400)
                    if raw.strip():
                        self.assertRegex(self.msg(r), r"\d|end", r)
        self.assertNothingChanged()

    def test_duplicate_keys(self):
        b = user_body()
        raw = json.dumps(b)[:-1] + ', "firstname": "Other"}'
        self.assertError(self.req("POST", BASE, raw=raw.encode()), 400)
        raw = json.dumps(user_body())[:-1] + ', "email": "dup%d@example.com"}' % next(_seq)
        self.assertError(self.req("POST", BASE, raw=raw.encode()), 400)
        for raw in (b'{"lastname": "A", "lastname": "B"}', b'{"lastname": "A", "lastname": "A"}',
                    b'{"is_admin": true, "is_admin": false}', b'{"lastname": "A", "l\\u0061stname": "B"}'):
            with self.subTest(raw=raw):
                r = self.req("PATCH", user_path(self.uid), raw=raw)
                self.assertError(r, 400)
                msg = r.json["message"]
                self.assertTrue("duplicate" in msg.lower() or "lastname" in msg or "is_admin" in msg, r)
        self.assertNothingChanged()

    def test_invalid_utf8(self):
        for bad in (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"A\x80B", b"\xf5\x80\x80\x80",
                    b"\xf0\x82\x82\xac"):
            with self.subTest(bad=bad):
                body = json.dumps(user_body(firstname="XX")).encode().replace(b'"XX"', b'"' + bad + b'"')
                self.assertError(self.req("POST", BASE, raw=body), 400)
                self.assertError(self.req("PATCH", user_path(self.uid), raw=b'{"lastname":"' + bad + b'"}'), 400)
                # invalid bytes in a key too
                self.assertError(self.req("PATCH", user_path(self.uid), raw=b'{"' + bad + b'":"x"}'), 400)
        self.assertNothingChanged()

    def test_huge_numbers_and_deep_nesting(self):
        for raw in (b'{"is_admin": 1e400}', b'{"mobile": 1e400}', b'{"lastname": -1e400}',
                    b'{"x": 123456789012345678901234567890}', b'{"dob": 1E+99999}'):
            with self.subTest(raw=raw):
                self.assertError(self.req("PATCH", user_path(self.uid), raw=raw), 400)
        body = json.dumps(user_body())[:-1] + ', "is_admin": 1e400}'
        self.assertError(self.req("POST", BASE, raw=body.encode()), 400)
        deep = b'{"clinic_ids": ' + b"[" * 100000 + b"]" * 100000 + b"}"
        self.assertError(self.req("PATCH", user_path(self.uid), raw=deep), 400)
        deep = b'{"a":' * 50000 + b"1" + b"}" * 50000
        self.assertError(self.req("PATCH", user_path(self.uid), raw=deep), 400)
        self.assertNothingChanged()  # and the server is still alive

    def test_error_responses_are_json(self):
        for method, path, kw in (("GET", "/nope", {}), ("PUT", BASE, {"body": {}}),
                                 ("POST", BASE, {"raw": b"{", "content_type": "application/json"}),
                                 ("POST", BASE, {"raw": b"{}", "content_type": "text/plain"}),
                                 ("GET", BASE, {"token": None})):
            with self.subTest(method=method, path=path):
                r = self.req(method, path, **kw)
                self.assertGreaterEqual(r.status, 400, r)
                self.assertTrue(r.headers.get("content-type", "").lower().startswith("application/json"), r.headers)
                self.assertEqual(r.json.get("status"), "error", r)
                self.assertNotRegex(r.raw.decode("utf-8", "replace"), r"(?i)sqlite|\.c:\d+|segfault")


if __name__ == "__main__":
    unittest.main()
