#!/usr/bin/env python3
"""Hostile inputs (issue 4, items 3, 6 and 7): a table of malformed, oversized and
adversarial requests, each sent to the real server. Every one is checked for its exact
status, for an error body in the route's own JSON shape ({"status":"error","message":...}
on /cdr/v1, {"code":N,"error":...} on /connect-auth), and for having changed nothing (the
lists of two tenants are read back before and after). Also the hardening headers
(Content-Type with charset, nosniff, no-store, no server version, X-Request-Id), and at
the end that the process is still alive and serving.

One server serves the whole module. docs/bad-inputs.md lists every case with the test
that proves it.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_bad_inputs.py
"""
import collections
import hashlib
import hmac
import itertools
import json
import os
import re
import socket
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SECRET, Server, ServerTestCase, b64url, error_message, is_create, make_token  # noqa: E402
from harness import exchange as harness_exchange  # noqa: E402

USERS = "/cdr/v1/ekauser/"
DOCTORS = "/cdr/v1/doctor/"
CLINICS = "/cdr/v1/clinic/"
LOGIN = "/connect-auth/v1/account/login"
REFRESH = "/connect-auth/v1/account/refresh-token"
REFRESH_OLD = "/connect-auth/v1/account/refresh"
MIB = 1024 * 1024
JSON_CT = "application/json; charset=utf-8"
TENANT_A = "7300000000000001"
TENANT_B = "7300000000000002"
TOK_A = make_token(TENANT_A)
TOK_B = make_token(TENANT_B)
BAD_CREDS = {"code": 401, "error": "invalid client credentials"}
# What an error body must never show: SQL, SQLite, C source locations, the secret.
INTERNALS = re.compile(r"(?i)sqlite|syntax error|select |insert |update |\.c:\d+|segfault|" + re.escape(SECRET))

SQL_OR = "' OR 1=1 --"
SQL_DROP = "x'); DROP TABLE ekauser;--"

_seq = itertools.count(1)


def uniq():
    return next(_seq)


def q(s):
    return urllib.parse.quote(s, safe="")


# ------------------------------------------------------------------ the shared server
SRV = None
FIX = {}          # ids of the seed records, and their state right after seeding


def setUpModule():
    global SRV
    SRV = Server().start()
    r = SRV.request("POST", CLINICS, {"name": "Seed Clinic", "address": "1 MG Road", "partner_id": "seed-clinic"},
                    token=TOK_A)
    assert r.status == 201, r
    FIX["clinic"] = r.json["ekaid"]
    r = SRV.request("POST", DOCTORS, {"firstname": "Seed", "lastname": "Doctor", "gender": "F",
                                      "partner_id": "seed-doctor", "clinic_ids": [FIX["clinic"]],
                                      "specialisations": ["Cardiology"]}, token=TOK_A)
    assert r.status == 201, r
    FIX["doctor"] = r.json["ekaid"]
    r = SRV.request("POST", USERS, {"firstname": "Seed", "lastname": "User", "gender": "M", "dob": "1990-05-15",
                                    "email": "seed.user@example.com", "mobile": "9800000001",
                                    "partner_id": "seed-user", "doctor_ids": [FIX["doctor"]],
                                    "clinic_ids": [FIX["clinic"]]}, token=TOK_A)
    assert r.status == 201, r
    FIX["user"] = r.json["ekaid"]
    r = SRV.request("POST", USERS, {"firstname": "Other", "lastname": "Tenant", "gender": "F", "dob": "1991-01-01",
                                    "email": "seed.user@example.com"}, token=TOK_B)
    assert r.status == 201, r
    FIX["user_b"] = r.json["ekaid"]
    for res, key in (("ekauser", "user"), ("doctor", "doctor"), ("clinic", "clinic")):
        r = SRV.request("GET", "/cdr/v1/%s/%s/" % (res, FIX[key]), token=TOK_A)
        assert r.status == 200, r
        FIX["seed_" + key] = r.json
    # A business and an API client for the login cases.
    r = SRV.cli("business", "create", "--name", "Hostile Biz")
    assert r.returncode == 0, r
    FIX["b_id"] = r.stdout.strip()
    r = SRV.cli("client", "create", "--b-id", FIX["b_id"])
    assert r.returncode == 0, r
    kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    FIX["client_id"], FIX["client_secret"] = kv["client_id"].strip(), kv["client_secret"].strip()


def tearDownModule():
    try:
        assert SRV.proc is not None and SRV.proc.poll() is None, "server died: " + SRV.log()[-2000:]
        r = SRV.request("GET", USERS, token=TOK_A)
        assert r.status == 200, r
    finally:
        SRV.cleanup()   # fails on a sanitizer report or an unclean exit on SIGTERM


def snapshot():
    """Every list of both tenants: what a hostile request must leave as it was."""
    out = {}
    for tok_name, tok in (("A", TOK_A), ("B", TOK_B)):
        for path in (USERS, DOCTORS, CLINICS):
            r = SRV.request("GET", path, token=tok)
            assert r.status == 200, r
            out[tok_name + path] = r.json
    return out


# ------------------------------------------------------------------ raw sockets
def exchange(parts, timeout=5.0, want=None):
    """harness.exchange on the module's server, stopping once `want` complete responses are in.
    Returns (bytes read, closed by the server)."""
    until = None if want is None else (lambda out: len(parse_stream(out, strict=True)) >= want)
    return harness_exchange(SRV.port, parts, timeout, until)


def parse_stream(buf, strict=False):
    """The complete HTTP responses at the start of buf: [(status, headers, body)]. A body
    without Content-Length or chunking runs to the close; `strict` leaves it out (the
    caller is still reading)."""
    out = []
    while buf:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            break
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            hdrs[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            if len(rest) < n:
                break
            body, buf = rest[:n], rest[n:]
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            body, pos, done = b"", 0, False
            while True:
                eol = rest.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(rest[pos:eol].split(b";")[0], 16)
                pos = eol + 2
                if size == 0:
                    end = rest.find(b"\r\n", pos)
                    if end < 0:
                        break
                    pos, done = end + 2, True
                    break
                if len(rest) < pos + size + 2:
                    break
                body += rest[pos:pos + size]
                pos += size + 2
            if not done:
                break
            buf = rest[pos:]
        else:
            if strict:
                break
            body, buf = rest, b""
        out.append((int(m.group(1)), hdrs, body))
    return out


def head(method, path, token=TOK_A, version="HTTP/1.1", host=True, length=None, chunked=False, extra=b"",
         ct="application/json", close=False):
    h = "%s %s %s\r\n" % (method, path, version)
    if host:
        h += "Host: 127.0.0.1\r\n"
    if token is not None:
        h += "auth: %s\r\n" % token
    if ct is not None:
        h += "Content-Type: %s\r\n" % ct
    if length is not None:
        h += "Content-Length: %d\r\n" % length
    if chunked:
        h += "Transfer-Encoding: chunked\r\n"
    if close:
        h += "Connection: close\r\n"
    return h.encode() + extra + b"\r\n"


def chunks(raw, size=64 * 1024):
    parts = [b"%x\r\n" % len(raw[i:i + size]) + raw[i:i + size] + b"\r\n" for i in range(0, len(raw), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def jv(value):
    """A Python value as JSON bytes."""
    return json.dumps(value).encode()


# ------------------------------------------------------------------ body builders
DROP = object()


def obj(pairs):
    """A JSON object from (key, raw JSON bytes of the value) pairs; the values are taken
    as they are, so any hostile fragment can be put in one field of a valid body."""
    return b"{" + b",".join(jv(k) + b":" + (v if isinstance(v, bytes) else jv(v)) for k, v in pairs) + b"}"


def user_raw(**over):
    n = uniq()
    base = {"firstname": jv("Amit"), "lastname": jv("Kumar"), "email": jv("bad%d@example.com" % n),
            "gender": jv("M"), "dob": jv("1990-05-15")}
    for k, v in over.items():
        if v is DROP:
            base.pop(k, None)
        else:
            base[k] = v
    return obj(base.items())


def doctor_raw(**over):
    base = {"firstname": jv("Rajesh"), "lastname": jv("Sharma"), "gender": jv("M")}
    base.update(over)
    return obj(base.items())


def clinic_raw(**over):
    base = {"name": jv("Sunrise"), "address": jv("1 Main Street")}
    base.update(over)
    return obj(base.items())


def one(field, raw_value):
    return obj([(field, raw_value)])


def nested(depth, leaf=b"1"):
    return b"[" * depth + leaf + b"]" * depth


# ------------------------------------------------------------------ base class
class Hostile(ServerTestCase):
    """All classes share the module's server (not one per class as ServerTestCase does)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = SRV
        cls.tok = TOK_A
        cls.tok_b = TOK_B

    @classmethod
    def tearDownClass(cls):
        pass

    def tearDown(self):
        self.assertAlive()

    def assertAlive(self):
        self.assertIsNotNone(SRV.proc)
        self.assertIsNone(SRV.proc.poll(), "server died: " + SRV.log()[-3000:])

    def target(self, name):
        """'POST users' | 'PATCH user' | ... -> (method, path)."""
        method, what = name.split()
        paths = {"users": USERS, "doctors": DOCTORS, "clinics": CLINICS,
                 "user": USERS + FIX["user"] + "/", "doctor": DOCTORS + FIX["doctor"] + "/",
                 "clinic": CLINICS + FIX["clinic"] + "/", "login": LOGIN, "refresh": REFRESH_OLD}
        return method, paths[what]

    def assertJsonError(self, status, hdrs, raw, path, want_status, field=None, contains=None, method=None):
        """The error body in the route's own shape, with the hardening headers (a create's 400
        carries its message in a list, as Eka's OpenAPI has it)."""
        what = "%s -> %s %r" % (path, status, raw[:300])
        self.assertEqual(status, want_status, what)
        self.assertEqual(hdrs.get("content-type"), JSON_CT, what)
        self.assertEqual(hdrs.get("x-content-type-options"), "nosniff", what)
        self.assertEqual(hdrs.get("cache-control"), "no-store", what)
        try:
            js = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            self.fail("error body is not JSON: " + what)
        self.assertIsInstance(js, dict, what)
        if path.startswith("/connect-auth/"):
            self.assertEqual(set(js), {"code", "error"}, "not the connect-auth error shape: " + what)
            self.assertEqual(js["code"], want_status, what)
            self.assertIsInstance(js["error"], str, what)
            self.assertTrue(js["error"], what)
            msg = js["error"]
        else:
            self.assertEqual(js.get("status"), "error", what)
            try:
                msg = error_message(js, status == 400 and is_create(method, path))
            except AssertionError as e:
                self.fail("%s: %s %s" % (e, method, what))
        if field is not None:
            self.assertIn(field, js.get("errors", {}), "field not named: " + what)
            self.assertIn(field, msg, "field not in the message: " + what)
        if contains is not None:
            self.assertIn(contains.lower(), msg.lower(), what)
        self.assertNotRegex(raw.decode("utf-8", "replace"), INTERNALS, what)
        return js

    def rejected(self, method, path, status, raw=None, body=None, ct="application/json", token="default",
                 headers=None, field=None, contains=None):
        """Sends one request; expects `status` with a JSON error and no change in any list."""
        before = snapshot()
        r = self.req(method, path, body=body, raw=raw, content_type=ct, token=token, headers=headers)
        js = self.assertJsonError(r.status, r.headers, r.raw, path, status, field, contains, method)
        self.assertAlive()
        self.assertEqual(snapshot(), before, "%s %s changed the data" % (method, path))
        return r, js

    def rejected_raw(self, parts, path, status, timeout=10, **kw):
        """As rejected(), for bytes written on a socket (oversized or odd framing)."""
        before = snapshot()
        out, _ = exchange(parts, timeout=timeout, want=1)
        resp = parse_stream(out)
        self.assertTrue(resp, "no complete response: %r" % out[:300])
        st, hdrs, body = resp[0]
        self.assertJsonError(st, hdrs, body, path, status, method=parts[0].split(b" ", 1)[0].decode(), **kw)
        self.assertAlive()
        self.assertEqual(snapshot(), before, "%s changed the data" % path)
        return resp

    def no_2xx_and_unchanged(self, parts, before, timeout=2.0, allowed=None):
        """For framing the HTTP library itself refuses or waits on: no 2xx is ever
        answered, the status (when one comes) is one of `allowed`, nothing is stored."""
        out, closed = exchange(parts, timeout=timeout)
        resp = parse_stream(out)
        statuses = [st for st, _, _ in resp]
        self.assertFalse(any(200 <= st < 300 for st in statuses), out[:400])
        if allowed is not None and resp:
            self.assertIn(statuses[0], allowed, out[:400])
        time.sleep(0.2)   # the server has seen the close; nothing may be applied late
        self.assertAlive()
        self.assertEqual(snapshot(), before)
        self.assertEqual(self.req("GET", USERS).status, 200)
        return statuses, closed


# ======================================================================== bodies
Case = collections.namedtuple("Case", "name target raw status field contains ct")


def C(name, target, raw, status=400, field=None, contains=None, ct="application/json"):
    return Case(name, target, raw, status, field, contains, ct)


BIG_IDS = lambda n, fmt: [fmt % i for i in range(n)]  # noqa: E731

BODY_CASES = [
    # --- truncated and malformed JSON: 400 "Invalid JSON at line L, column C: ..."
    C("truncated_after_colon", "POST users", b'{"firstname":"Amit","lastname":', contains="invalid json"),
    C("truncated_inside_string", "PATCH user", b'{"lastname":"Ku', contains="invalid json"),
    C("truncated_inside_escape", "PATCH user", rb'{"lastname":"K\u00', contains="invalid json"),
    C("truncated_open_brace_only", "POST clinics", b"{", contains="invalid json"),
    C("truncated_after_comma", "POST doctors", b'{"firstname":"R","lastname":"S","gender":"M",',
      contains="invalid json"),
    C("truncated_literal", "PATCH user", b'{"is_admin":tr', contains="invalid json"),
    C("truncated_array", "PATCH user", b'{"clinic_ids":["c-1",', contains="invalid json"),
    C("two_json_values", "PATCH user", b'{"lastname":"A"}{"lastname":"B"}', contains="invalid json"),
    C("trailing_comma", "PATCH doctor", b'{"about":"x",}', contains="invalid json"),
    C("single_quotes", "PATCH clinic", b"{'city':'Pune'}", contains="invalid json"),
    C("comment_in_json", "PATCH user", b'/* c */{"lastname":"A"}', contains="invalid json"),
    C("unquoted_key", "PATCH user", b'{lastname:"A"}', contains="invalid json"),
    C("nan_literal", "PATCH user", b'{"is_admin":NaN}', contains="invalid json"),
    C("infinity_literal", "PATCH user", b'{"is_admin":Infinity}', contains="invalid json"),
    C("leading_zero_number", "PATCH clinic", b'{"pincode":0560001}', contains="invalid json"),
    # --- duplicate keys: 400, the parser refuses them (never "last one wins")
    C("duplicate_key_on_create", "POST users", user_raw()[:-1] + b',"firstname":"Other"}', contains="duplicate"),
    C("duplicate_key_same_value", "PATCH user", b'{"lastname":"A","lastname":"A"}', contains="duplicate"),
    C("duplicate_key_escaped_spelling", "PATCH user", rb'{"lastname":"A","l\u0061stname":"B"}',
      contains="duplicate"),
    C("duplicate_key_clinic_create", "POST clinics", b'{"name":"A","address":"x","name":"B"}',
      contains="duplicate"),
    C("duplicate_key_doctor_patch", "PATCH doctor", b'{"about":"a","about":"b"}', contains="duplicate"),
    C("duplicate_key_nested_object", "PATCH user", b'{"lastname":"A","clinic_ids":[{"a":1,"a":2}]}',
      contains="duplicate"),
    # --- numbers (and other types) where strings are due: 400 naming the field
    C("number_for_firstname", "POST users", user_raw(firstname=b"123"), field="firstname"),
    C("number_for_mobile", "POST users", user_raw(mobile=b"9876543210"), field="mobile"),
    C("float_for_email", "PATCH user", one("email", b"1.5"), field="email"),
    C("number_for_dob", "PATCH user", one("dob", b"19900515"), field="dob"),
    C("number_for_gender", "PATCH user", one("gender", b"0"), field="gender"),
    C("number_for_partner_id", "PATCH user", one("partner_id", b"7"), field="partner_id"),
    C("number_for_auth_userid", "PATCH user", one("auth_userid", b"12"), field="auth_userid"),
    C("numbers_in_clinic_ids", "PATCH user", one("clinic_ids", b"[1,2]"), field="clinic_ids"),
    C("string_for_is_admin", "PATCH user", one("is_admin", b'"true"'), field="is_admin"),
    C("number_for_doctor_about", "PATCH doctor", one("about", b"42"), field="about"),
    C("number_in_specialisations", "PATCH doctor", one("specialisations", b"[1]"), field="specialisations"),
    C("string_for_specialisations", "PATCH doctor", one("specialisations", b'"Cardiology"'),
      field="specialisations"),
    C("number_for_pincode", "PATCH clinic", one("pincode", b"560001"), field="pincode"),
    C("number_for_contact", "PATCH clinic", one("contact", b"9876543210"), field="contact"),
    C("bool_for_clinic_name", "PATCH clinic", one("name", b"true"), field="name"),
    C("object_for_lastname", "PATCH user", one("lastname", b'{"$ne":null}'), field="lastname"),
    # --- number edge cases
    C("float_1e400_for_bool", "PATCH user", one("is_admin", b"1e400"), contains="invalid json"),
    C("float_1e400_for_string", "POST users", user_raw(firstname=b"1e400"), contains="invalid json"),
    C("float_minus_1e400", "PATCH doctor", one("about", b"-1e400"), contains="invalid json"),
    C("float_1e_minus_400", "PATCH user", one("is_admin", b"1e-400"), field="is_admin"),
    C("exponent_1e99999", "PATCH user", one("dob", b"1E+99999"), contains="invalid json"),
    C("negative_zero_for_bool", "PATCH user", one("is_admin", b"-0"), field="is_admin"),
    C("negative_zero_for_string", "PATCH user", one("firstname", b"-0"), field="firstname"),
    C("negative_zero_float_for_pincode", "PATCH clinic", one("pincode", b"-0.0"), field="pincode"),
    C("integer_30_digits", "PATCH user", one("mobile", b"123456789012345678901234567890"), contains="invalid json"),
    C("integer_2_pow_63", "PATCH user", one("mobile", b"9223372036854775808"), contains="invalid json"),
    C("integer_int64_max", "PATCH user", one("mobile", b"9223372036854775807"), field="mobile"),
    C("integer_int64_min_minus_1", "PATCH doctor", one("mobile", b"-9223372036854775809"), contains="invalid json"),
    # --- nesting: more than 32 levels is refused before parsing
    C("nesting_33_arrays", "PATCH user", one("clinic_ids", nested(32)), contains="nested"),
    C("nesting_32_is_a_field_error", "PATCH user", one("clinic_ids", nested(31)), field="clinic_ids"),
    C("nesting_33_objects", "PATCH doctor", one("about", b'{"a":' * 32 + b"1" + b"}" * 32), contains="nested"),
    C("nesting_10000_bare", "POST clinics", nested(10000), contains="nested"),
    C("nesting_unclosed_half_mib", "PATCH clinic", b'{"a":' * 100000, contains="nested"),
    # --- NUL: \u0000 is valid JSON and reaches the field rule (400 naming the field);
    #     a raw NUL byte is invalid JSON
    C("nul_escape_in_firstname", "POST users", user_raw(firstname=rb'"Am\u0000it"'), field="firstname"),
    C("nul_escape_leading", "PATCH user", one("lastname", rb'"\u0000Kumar"'), field="lastname"),
    C("nul_escape_in_email", "PATCH user", one("email", rb'"a\u0000@example.com"'), field="email"),
    C("nul_escape_in_partner_id", "PATCH user", one("partner_id", rb'"seed-user\u0000"'), field="partner_id"),
    C("nul_escape_in_link_id", "PATCH user", one("clinic_ids", rb'["c-\u0000"]'), field="clinic_ids"),
    C("nul_escape_in_doctor_about", "PATCH doctor", one("about", rb'"x\u0000y"'), field="about"),
    C("nul_escape_in_clinic_address", "POST clinics", clinic_raw(address=rb'"1 Main\u0000"'), field="address"),
    C("nul_escape_in_key", "PATCH user", rb'{"lastname\u0000x":"A"}', contains="invalid json"),
    C("nul_raw_in_string", "PATCH user", b'{"lastname":"A\x00B"}', contains="invalid json"),
    C("nul_raw_between_tokens", "PATCH user", b'{"lastname":\x00"A"}', contains="invalid json"),
    C("nul_raw_after_body", "PATCH user", b'{"lastname":"A"}\x00', contains="invalid json"),
    C("nul_raw_whole_body", "POST users", b"\x00" * 16, contains="invalid json"),
    # --- invalid UTF-8 and surrogates: 400 (invalid JSON or the field rule)
    C("overlong_c0_af_in_value", "POST users", user_raw(firstname=b'"A\xc0\xafB"'), contains="invalid json"),
    C("overlong_e0_80_af_in_value", "PATCH user", one("lastname", b'"\xe0\x80\xaf"'), contains="invalid json"),
    C("overlong_nul_c0_80", "PATCH user", one("lastname", b'"A\xc0\x80B"'), contains="invalid json"),
    C("overlong_in_key", "PATCH user", b'{"last\xc0\xafname":"A"}', contains="invalid json"),
    C("lone_high_surrogate_escape", "PATCH user", one("lastname", rb'"\ud800"'), contains="invalid json"),
    C("lone_low_surrogate_escape", "PATCH user", one("lastname", rb'"\udc00x"'), contains="invalid json"),
    C("high_surrogate_then_letter", "PATCH doctor", one("about", rb'"\ud800\u0041"'), contains="invalid json"),
    C("reversed_surrogate_pair", "PATCH clinic", one("city", rb'"\ude00\ud83d"'), contains="invalid json"),
    C("raw_surrogate_ed_a0_80", "PATCH user", one("lastname", b'"\xed\xa0\x80"'), contains="invalid json"),
    C("beyond_u10ffff", "PATCH user", one("lastname", b'"\xf4\x90\x80\x80"'), contains="invalid json"),
    C("lone_continuation_byte", "PATCH user", one("lastname", b'"A\x80"'), contains="invalid json"),
    C("truncated_utf8_sequence", "PATCH user", one("lastname", b'"\xe2\x82"'), contains="invalid json"),
    C("latin1_byte", "POST clinics", clinic_raw(name=b'"Jos\xe9"'), contains="invalid json"),
    C("bom_before_json", "POST users", b"\xef\xbb\xbf" + user_raw(), contains="invalid json"),
    C("utf16_body", "PATCH user", '{"lastname":"A"}'.encode("utf-16"), contains="invalid json"),
    # --- control characters inside strings: the field rule (C0, DEL and C1)
    C("c1_escape_u0085", "PATCH user", one("lastname", rb'"A\u0085B"'), field="lastname"),
    C("c1_raw_c2_85", "POST users", user_raw(firstname=b'"A\xc2\x85"'), field="firstname"),
    C("c1_u009f_in_city", "PATCH clinic", one("city", rb'"Pu\u009fne"'), field="city"),
    C("ansi_escape_in_name", "PATCH doctor", one("firstname", rb'"\u001b[31mRed"'), field="firstname"),
    C("del_u007f", "PATCH user", one("lastname", rb'"A\u007f"'), field="lastname"),
    C("crlf_in_value", "PATCH user", one("firstname", rb'"A\r\nSet-Cookie: x=1"'), field="firstname"),
    # --- the whole body not an object
    C("body_empty_array", "POST users", b"[]", contains="json object"),
    C("body_array_of_object", "PATCH user", b'[{"lastname":"A"}]', contains="json object"),
    C("body_string", "POST clinics", b'"x"', contains="invalid json"),
    C("body_number", "PATCH doctor", b"42", contains="invalid json"),
    C("body_null", "POST users", b"null", contains="invalid json"),
    C("body_true", "PATCH user", b"true", contains="invalid json"),
    C("body_empty_post", "POST users", b"", contains="empty"),
    C("body_empty_patch", "PATCH user", b"", contains="empty"),
    C("body_whitespace_only", "PATCH clinic", b" \r\n\t ", contains="invalid json"),
    C("body_empty_object_post", "POST users", b"{}", field="firstname"),
    C("body_empty_object_patch", "PATCH user", b"{}", contains="at least one field"),
    # --- arrays over 1000 items
    C("array_10000_strings", "PATCH user", one("clinic_ids", jv(BIG_IDS(10000, "c-%024x"))), field="clinic_ids"),
    C("array_10000_numbers", "PATCH doctor", one("qualifications", jv(list(range(10000)))),
      field="qualifications"),
    C("array_1001_doctor_ids", "POST users", user_raw(doctor_ids=jv(BIG_IDS(1001, "do%013d"))),
      field="doctor_ids"),
    C("array_1001_specialisations", "PATCH doctor", one("specialisations", jv(BIG_IDS(1001, "Spec %d"))),
      field="specialisations"),
    C("array_1001_same_string", "POST doctors", doctor_raw(specialisations=jv(["x"] * 1001)),
      field="specialisations"),
    C("array_1001_clinic_doctor_ids", "PATCH clinic", one("doctor_ids", jv(BIG_IDS(1001, "do%013d"))),
      field="doctor_ids"),
    # --- media type: 415 before the body is looked at
    C("content_type_text_plain", "POST users", user_raw(), 415, ct="text/plain"),
    C("content_type_missing", "POST users", user_raw(), 415, ct=None),
    C("content_type_empty", "PATCH user", one("lastname", jv("A")), 415, ct=""),
    C("content_type_form", "PATCH user", one("lastname", jv("A")), 415, ct="application/x-www-form-urlencoded"),
    C("content_type_jsonx", "POST clinics", clinic_raw(), 415, ct="application/jsonx"),
    C("content_type_json_seq", "PATCH doctor", one("about", jv("x")), 415, ct="application/json-seq"),
    C("content_type_text_json", "PATCH doctor", one("about", jv("x")), 415, ct="text/json"),
    C("content_type_plain_with_bad_body", "POST users", b"{", 415, ct="text/plain"),
]


def _body_test(case):
    def test(self):
        method, path = self.target(case.target)
        self.rejected(method, path, case.status, raw=case.raw, ct=case.ct, field=case.field,
                      contains=case.contains)
    test.__doc__ = "%s %s -> %d" % (case.target, case.name, case.status)
    return test


class BodyTests(Hostile):
    """One test per row of BODY_CASES (generated below)."""


for _c in BODY_CASES:
    assert not hasattr(BodyTests, "test_" + _c.name), _c.name
    setattr(BodyTests, "test_" + _c.name, _body_test(_c))


# ======================================================================== accepted inputs
class AcceptedTests(Hostile):
    """The near misses that must be accepted, exactly."""

    def create(self, path, body, raw=None, ct="application/json"):
        r = self.req("POST", path, body=body, raw=raw, content_type=ct)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers.get("content-type"), JSON_CT)
        return r.json["ekaid"]

    def read(self, path, ident, key):
        r = self.req("GET", path + q(ident) + "/")
        self.assertEqual(r.status, 200, r)
        return r.json[key]

    def test_array_of_1000_items_accepted(self):
        specs = ["Spec %d" % i for i in range(1000)]
        did = self.create(DOCTORS, {"firstname": "Many", "lastname": "Specs", "gender": "M",
                                    "qualifications": specs})
        self.assertEqual(self.read(DOCTORS, did, "doctor")["qualifications"], specs)
        r = self.req("PATCH", USERS + FIX["user"] + "/", {"clinic_ids": [FIX["clinic"]] * 1000})
        self.assertEqual(r.status, 200, r)
        self.assertEqual([c["id"] for c in self.read(USERS, FIX["user"], "user")["clinics"]], [FIX["clinic"]])

    def test_array_of_1000_duplicates_collapsed(self):
        did = self.create(DOCTORS, None, raw=doctor_raw(specialisations=jv(["Same"] * 1000)))
        self.assertEqual(self.read(DOCTORS, did, "doctor")["specialisations"], ["Same"])

    def test_content_type_charset_and_case_accepted(self):
        for ct in ("application/json; charset=utf-8", "APPLICATION/JSON", "Application/Json;charset=UTF-8"):
            with self.subTest(ct=ct):
                uid = self.create(USERS, None, raw=user_raw(), ct=ct)
                self.assertEqual(self.read(USERS, uid, "user")["firstname"], "Amit")
        r = self.req("PATCH", DOCTORS + FIX["doctor"] + "/", raw=one("about", jv("ct ok")),
                     content_type="APPLICATION/JSON; CHARSET=UTF-8")
        self.assertEqual(r.status, 200, r)

    def test_emoji_and_non_latin_names_round_trip(self):
        user = {"firstname": "अमित 😀", "lastname": "王小明 محمد", "gender": "M", "dob": "1990-05-15",
                "email": "ünï%d@example.com" % uniq(), "auth_userid": "Ελένη-%d" % uniq(),
                "partner_id": "пользователь-%d-👨‍👩‍👧" % uniq()}
        uid = self.create(USERS, user)
        got = self.read(USERS, uid, "user")
        for k in ("firstname", "lastname", "auth_userid", "partner_id"):
            self.assertEqual(got[k], user[k], k)
        self.assertEqual(self.read(USERS, user["partner_id"], "user")["id"], uid)
        doctor = {"firstname": "Zoë\u0301", "lastname": "Đặng", "gender": "F", "about": "עברית · ไทย · 한국어 · 🩺",
                  "specialisations": ["心臓病学", "Кардиология"]}
        did = self.create(DOCTORS, doctor)
        got = self.read(DOCTORS, did, "doctor")
        for k in ("firstname", "lastname", "about", "specialisations"):
            self.assertEqual(got[k], doctor[k], k)
        clinic = {"name": "Ελληνική Κλινική 🏥", "address": "東京都 千代田区 1-2-3", "city": "Zürich",
                  "state": "ಕರ್ನಾಟಕ"}
        cid = self.create(CLINICS, clinic)
        got = self.read(CLINICS, cid, "clinic")
        for k in clinic:
            self.assertEqual(got[k], clinic[k], k)

    def test_surrogate_pair_escape_accepted(self):
        did = self.create(DOCTORS, None, raw=doctor_raw(about=rb'"smile \ud83d\ude00"'))
        self.assertEqual(self.read(DOCTORS, did, "doctor")["about"], "smile \U0001F600")

    def test_brackets_and_quotes_inside_strings_are_not_nesting(self):
        val = '\\"' + "[" * 40 + "{" * 40 + '"'
        r = self.req("PATCH", DOCTORS + FIX["doctor"] + "/", {"about": val})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.read(DOCTORS, FIX["doctor"], "doctor")["about"], val)


# ======================================================================== SQL-looking text
class SqlLookingTextTests(Hostile):
    """Quotes and SQL in every text field and in ids are data: stored and returned
    verbatim, never affecting another row or tenant (SQL only through bound parameters)."""

    def others(self, snap, new_ids):
        """The snapshot without the records just created (those must be unchanged)."""
        out = {}
        for k, v in snap.items():
            key = [x for x in v if x != "status"][0]
            out[k] = [rec for rec in v[key] if rec["id"] not in new_ids]
        return out

    def test_sql_in_every_text_field(self):
        before = snapshot()
        n = uniq()
        clinic = {"name": SQL_OR, "address": SQL_DROP, "city": "'; DELETE FROM clinic; --",
                  "state": '" OR ""="', "partner_id": "%s-%d" % (SQL_DROP, n)}
        doctor = {"firstname": SQL_OR, "lastname": SQL_DROP, "gender": "M",
                  "about": "1; UPDATE doctor SET firstname='pwned' WHERE 1=1; --",
                  "specialisations": [SQL_OR, "Robert'); DROP TABLE doctor;--"],
                  "qualifications": ["' UNION SELECT * FROM sqlite_master --"],
                  "email": "x'or'1'='1.%d@example.com" % n, "partner_id": "%s-doc-%d" % (SQL_OR, n)}
        user = {"firstname": SQL_OR, "lastname": SQL_DROP, "gender": "F", "dob": "1990-01-01",
                "email": "o'reilly.%d@example.com" % n, "auth_userid": "1' OR '1'='1-%d" % n,
                "partner_id": "%s-user-%d" % (SQL_DROP, n)}
        r = self.req("POST", CLINICS, clinic)
        self.assertEqual(r.status, 201, r)
        cid = r.json["ekaid"]
        r = self.req("POST", DOCTORS, dict(doctor, partner_clinic_ids=[clinic["partner_id"]]))
        self.assertEqual(r.status, 201, r)
        did = r.json["ekaid"]
        r = self.req("POST", USERS, dict(user, partner_doctor_ids=[doctor["partner_id"]], clinic_ids=[cid]))
        self.assertEqual(r.status, 201, r)
        uid = r.json["ekaid"]
        for path, key, ident, pid, sent in ((CLINICS, "clinic", cid, clinic["partner_id"], clinic),
                                            (DOCTORS, "doctor", did, doctor["partner_id"], doctor),
                                            (USERS, "user", uid, user["partner_id"], user)):
            with self.subTest(resource=key):
                by_id = self.req("GET", path + ident + "/")
                by_pid = self.req("GET", path + q(pid) + "/")
                self.assertEqual(by_id.status, 200, by_id)
                self.assertEqual(by_pid.json, by_id.json)
                for k, v in sent.items():
                    self.assertEqual(by_id.json[key][k], v, k)
        self.assertEqual([d["id"] for d in self.req("GET", USERS + uid + "/").json["user"]["doctors"]], [did])
        self.assertEqual([c["id"] for c in self.req("GET", DOCTORS + did + "/").json["doctor"]["clinics"]], [cid])
        after = snapshot()
        self.assertEqual(self.others(after, {cid, did, uid}), self.others(before, set()))
        for k in after:
            key = [x for x in after[k] if x != "status"][0]
            grew = len(after[k][key]) - len(before[k][key])
            self.assertEqual(grew, 1 if k.startswith("A") else 0, k)

    def test_patch_with_sql_changes_only_that_row(self):
        r = self.req("POST", USERS, {"firstname": "Target", "lastname": "Row", "gender": "M", "dob": "1990-01-01",
                                     "mobile": "97%08d" % uniq()})
        self.assertEqual(r.status, 201, r)
        uid = r.json["ekaid"]
        before = snapshot()
        evil = "'; UPDATE ekauser SET firstname='pwned'; --"
        r = self.req("PATCH", USERS + uid + "/", {"firstname": evil, "lastname": SQL_OR})
        self.assertEqual(r.status, 200, r)
        after = snapshot()
        for k in before:
            key = [x for x in before[k] if x != "status"][0]
            old = {u["id"]: u for u in before[k][key]}
            new = {u["id"]: u for u in after[k][key]}
            self.assertEqual(set(old), set(new), k)
            for i in old:
                if i != uid:
                    self.assertEqual(new[i], old[i], "%s %s changed" % (k, i))
        got = self.req("GET", USERS + uid + "/").json["user"]
        self.assertEqual((got["firstname"], got["lastname"]), (evil, SQL_OR))

    def test_sql_and_wildcards_in_path_ids_find_nothing(self):
        for ident in (SQL_OR, SQL_DROP, "1 OR 1=1", "' OR ''='", "%", "_" * 15, "*", "seed-%", "seed-____",
                      "SEED-USER", FIX["user"][:-1] + "_", FIX["user"] + "' --"):
            for method, path, body in (("GET", USERS, None), ("PATCH", USERS, {"lastname": "Pwned"}),
                                       ("DELETE", USERS, None), ("DELETE", DOCTORS, None),
                                       ("PATCH", CLINICS, {"city": "Pwned"})):
                with self.subTest(ident=ident, method=method, path=path):
                    _, js = self.rejected(method, path + q(ident) + "/", 404, body=body)
                    self.assertIn("not found", js["message"].lower())

    def test_sql_in_tenant_claim_is_an_empty_tenant(self):
        for b_id in (SQL_OR, "%", "_" * 16, TENANT_A + "' --", TENANT_A + " "):
            with self.subTest(b_id=b_id):
                tok = make_token(b_id)
                for path, key in ((USERS, "users"), (DOCTORS, "doctors"), (CLINICS, "clinics")):
                    r = self.req("GET", path, token=tok)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json[key], [], "tenant %r sees other tenants' records" % b_id)
                r = self.req("GET", USERS + FIX["user"] + "/", token=tok)
                self.assertEqual(r.status, 404, r)


# ======================================================================== path ids
P = collections.namedtuple("P", "name method path status body message")

PATH_CASES = [
    P("crlf_header_injection_in_id", "GET", lambda: USERS + FIX["user"] + "%0d%0aX-Injected:%20yes", 404, None,
      "EkaUser not found"),
    P("crlf_header_injection_patch", "PATCH", lambda: USERS + "%0D%0ASet-Cookie:%20a=b/", 404,
      {"lastname": "X"}, "EkaUser not found"),
    P("crlf_header_injection_delete", "DELETE", lambda: CLINICS + FIX["clinic"] + "%0d%0a", 404, None,
      "Clinic not found"),
    P("dotdot_slash_id", "GET", lambda: USERS + "../", 404, None, "EkaUser not found"),
    P("dotdot_to_other_resource", "GET", lambda: USERS + "../clinic/", 404, None, "Not found"),
    P("dotdot_delete_other_resource", "DELETE", lambda: USERS + "../clinic/" + FIX["clinic"] + "/", 404, None,
      "Not found"),
    P("dotdot_encoded_lower", "GET", lambda: USERS + "%2e%2e%2f", 404, None, "Not found"),
    P("dotdot_encoded_to_clinic", "GET", lambda: USERS + "%2e%2e%2fclinic%2f", 404, None, "Not found"),
    P("dotdot_encoded_dots_only", "GET", lambda: USERS + "%2e%2e/", 404, None, "EkaUser not found"),
    P("dotdot_encoded_patch_doctor", "PATCH", lambda: CLINICS + "..%2F..%2Fdoctor%2F" + FIX["doctor"], 404,
      {"about": "X"}, "Not found"),
    P("encoded_slash_upper", "GET", lambda: USERS + FIX["user"] + "%2F", 404, None, "Not found"),
    P("encoded_slash_lower_patch", "PATCH", lambda: USERS + FIX["user"] + "%2fx", 404, {"lastname": "X"},
      "Not found"),
    P("encoded_nul_suffix", "GET", lambda: USERS + FIX["user"] + "%00", 404, None, "Not found"),
    P("encoded_nul_prefix_delete", "DELETE", lambda: USERS + "%00" + FIX["user"] + "/", 404, None, "Not found"),
    P("encoded_nul_partner_id", "PATCH", lambda: DOCTORS + "seed-doctor%00x/", 404, {"about": "X"}, "Not found"),
    P("bad_percent_escape", "GET", lambda: USERS + "%zz/", 404, None, "Not found"),
    P("truncated_percent_escape", "DELETE", lambda: USERS + FIX["user"] + "%4", 404, None, "Not found"),
    P("id_8000_bytes", "GET", lambda: USERS + "a" * 8000, 404, None, "Not found"),
    P("id_1025_bytes", "DELETE", lambda: USERS + "1" * 1025 + "/", 404, None, "Not found"),
    P("id_1024_bytes", "GET", lambda: USERS + "1" * 1024 + "/", 404, None, "EkaUser not found"),
    P("unknown_method_collection", "BREW", lambda: USERS, 405, None, "not allowed"),
    P("unknown_method_item", "FROB", lambda: USERS + FIX["user"] + "/", 405, None, "not allowed"),
    P("trace_method", "TRACE", lambda: USERS, 405, None, "not allowed"),
    P("options_method", "OPTIONS", lambda: DOCTORS + FIX["doctor"] + "/", 405, None, "not allowed"),
    P("connect_method_on_path", "CONNECT", lambda: CLINICS, 405, None, "not allowed"),
]
ALLOW = {USERS: {"GET", "POST"}}


def _path_test(case):
    def test(self):
        path = case.path()
        r, js = self.rejected(case.method, path, case.status, body=case.body)
        self.assertIn(case.message.lower(), js["message"].lower())
        self.assertNotIn("x-injected", r.headers)
        self.assertNotIn("set-cookie", r.headers)
        self.assertNotIn(TOK_A.encode(), r.raw)           # TRACE must not reflect the request
        if case.status == 405:
            allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
            self.assertTrue(allow, "405 without Allow: %r" % r.headers)
            self.assertNotIn(case.method, allow)
            self.assertTrue(allow <= {"GET", "HEAD", "POST", "PATCH", "DELETE"}, allow)
    test.__doc__ = "%s %s -> %d" % (case.method, case.name, case.status)
    return test


class PathTests(Hostile):
    """One test per row of PATH_CASES (generated below); the seed records must survive all."""

    def test_seed_records_survive_hostile_paths(self):
        for res, key in (("ekauser", "user"), ("doctor", "doctor"), ("clinic", "clinic")):
            r = self.req("GET", "/cdr/v1/%s/%s/" % (res, FIX[key]))
            self.assertEqual(r.status, 200, r)


for _p in PATH_CASES:
    assert not hasattr(PathTests, "test_" + _p.name), _p.name
    setattr(PathTests, "test_" + _p.name, _path_test(_p))


# ======================================================================== tokens
def sign_raw(header: bytes, payload: bytes, secret=SECRET):
    """header.payload exactly as given (any bytes), correctly signed HS256."""
    si = b64url(header) + "." + b64url(payload)
    return si + "." + b64url(hmac.new(secret.encode(), si.encode(), hashlib.sha256).digest())


def forge(header, payload, secret=SECRET):
    return sign_raw(json.dumps(header).encode(), json.dumps(payload).encode(), secret)


TOKEN_CASES = {
    "token_10kb_garbage": lambda: "a" * 10240,
    "token_10kb_jwt_shaped": lambda: TOK_A.split(".")[0] + "." + "A" * 10240 + "." + TOK_A.split(".")[2],
    "token_alg_none": lambda: make_token(TENANT_A, alg="none"),
    "token_alg_none_with_signature": lambda: forge({"alg": "none", "typ": "JWT"}, {"b_id": TENANT_A}),
    "token_alg_hs512": lambda: make_token(TENANT_A, alg="HS512"),
    "token_alg_hs384": lambda: make_token(TENANT_A, alg="HS384"),
    "token_wrong_secret": lambda: make_token(TENANT_A, secret="not-the-server-secret-0123456789abcdef"),
    "token_nul_in_b_id": lambda: make_token(TENANT_A + "\u0000x"),
    "token_b_id_number": lambda: forge({"alg": "HS256", "typ": "JWT"}, {"b_id": int(TENANT_A)}),
    "token_b_id_array": lambda: forge({"alg": "HS256", "typ": "JWT"}, {"b_id": [TENANT_A]}),
    "token_expired": lambda: make_token(TENANT_A, exp_in=-60),
    "token_exp_1e400": lambda: sign_raw(b'{"alg":"HS256","typ":"JWT"}',
                                        b'{"b_id":"%s","exp":1e400}' % TENANT_A.encode()),
    "token_header_not_json": lambda: sign_raw(b"not json", b'{"b_id":"%s"}' % TENANT_A.encode()),
    "token_sql": lambda: SQL_OR,
    # RFC 7515/7518/7519 checks: each refused with its own message (the value is what it must say)
    "token_alg_lowercase_hs256": (lambda: forge({"alg": "hs256", "typ": "JWT"}, {"b_id": TENANT_A}),
                                  "HS256 only"),
    "token_alg_mixed_case_hs256": (lambda: forge({"alg": "Hs256"}, {"b_id": TENANT_A}), "HS256 only"),
    "token_crit_header": (lambda: forge({"alg": "HS256", "crit": ["exp"]}, {"b_id": TENANT_A}), "crit"),
    "token_duplicate_key_in_header": (lambda: sign_raw(b'{"alg":"HS256","alg":"HS256"}',
                                                       b'{"b_id":"%s"}' % TENANT_A.encode()),
                                      "header has a duplicate key"),
    "token_duplicate_alg_none_then_hs256": (lambda: sign_raw(b'{"alg":"none","alg":"HS256"}',
                                                             b'{"b_id":"%s"}' % TENANT_A.encode()),
                                            "header has a duplicate key"),
    "token_duplicate_exp_claim": (lambda: sign_raw(b'{"alg":"HS256"}', b'{"b_id":"%s","exp":1,"exp":%d}'
                                                   % (TENANT_A.encode(), int(time.time()) + 3600)),
                                  "payload has a duplicate key"),
    "token_nbf_in_an_hour": (lambda: forge({"alg": "HS256"}, {"b_id": TENANT_A, "nbf": int(time.time()) + 3600}),
                             "not valid yet"),
    "token_nbf_past_leeway": (lambda: forge({"alg": "HS256"}, {"b_id": TENANT_A, "nbf": int(time.time()) + 90}),
                              "not valid yet"),
    "token_nbf_string": (lambda: forge({"alg": "HS256"}, {"b_id": TENANT_A, "nbf": "0"}), "malformed nbf"),
}


def _token_test(name, make):
    make, contains = make if isinstance(make, tuple) else (make, None)

    def test(self):
        tok = make()
        self.rejected("GET", USERS, 401, token=tok, contains=contains)
        self.rejected("POST", USERS, 401, raw=user_raw(), token=tok, contains=contains)
        self.rejected("DELETE", USERS + FIX["user"] + "/", 401, token=tok, contains=contains)
        self.rejected("GET", USERS, 401, token=None, headers={"Authorization": "Bearer " + tok}, contains=contains)
    test.__doc__ = "%s -> 401" % name
    return test


class TokenTests(Hostile):
    """Every hostile token: 401 on read, create and delete, and nothing changes."""

    def test_token_duplicate_b_id_claim_never_mixes_tenants(self):
        """A (correctly signed) payload naming b_id twice: RFC 7519 section 4 allows refusing it;
        hipusers does, so no tenant is ever read from it (nor through the other header)."""
        for first, last in ((TENANT_B, TENANT_A), (TENANT_A, TENANT_B), (TENANT_A, TENANT_A)):
            tok = sign_raw(b'{"alg":"HS256","typ":"JWT"}',
                           b'{"b_id":"%s","b_id":"%s"}' % (first.encode(), last.encode()))
            self.rejected("GET", USERS, 401, token=tok, contains="payload has a duplicate key")
            self.rejected("POST", USERS, 401, raw=user_raw(), token=tok, contains="duplicate key")
            self.rejected("GET", USERS, 401, token=None, headers={"Authorization": "Bearer " + tok},
                          contains="duplicate key")

    def test_token_nbf_within_leeway_accepted(self):
        """nbf up to 60 s ahead (another server's clock running fast) is accepted; see the rows above."""
        tok = forge({"alg": "HS256"}, {"b_id": TENANT_A, "nbf": int(time.time()) + 30,
                                       "exp": int(time.time()) + 600})
        r = self.req("GET", USERS, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertIn(FIX["user"], {u["id"] for u in r.json["users"]})


for _n, _m in TOKEN_CASES.items():
    setattr(TokenTests, "test_" + _n, _token_test(_n, _m))


# ======================================================================== connect-auth
class LoginTests(Hostile):
    """The login and refresh bodies: errors in the {"code":N,"error":...} shape."""

    def login_raw(self, raw, status, ct="application/json", contains=None):
        return self.rejected("POST", LOGIN, status, raw=raw, ct=ct, token=None, contains=contains)

    def sec(self):
        return jv(FIX["client_secret"])

    def test_login_client_id_number(self):
        self.login_raw(obj([("client_id", b"123"), ("client_secret", self.sec())]), 400)

    def test_login_client_id_true(self):
        self.login_raw(obj([("client_id", b"true"), ("client_secret", self.sec())]), 400)

    def test_login_client_id_object(self):
        self.login_raw(obj([("client_id", b'{"$ne":""}'), ("client_secret", self.sec())]), 400)

    def test_login_client_id_array(self):
        self.login_raw(obj([("client_id", jv([FIX["client_id"]])), ("client_secret", self.sec())]), 400)

    def test_login_client_id_null(self):
        self.login_raw(obj([("client_id", b"null"), ("client_secret", self.sec())]), 400)

    def test_login_client_secret_number(self):
        self.login_raw(obj([("client_id", jv(FIX["client_id"])), ("client_secret", b"1e400")]), 400)

    def test_login_nul_in_client_id(self):
        self.login_raw(obj([("client_id", jv(FIX["client_id"] + "\u0000x")), ("client_secret", self.sec())]), 400)

    def test_login_secret_of_1mb(self):
        self.login_raw(obj([("client_id", jv(FIX["client_id"])), ("client_secret", jv("s" * 1000000))]), 400)

    def test_login_body_over_1mib_is_413(self):
        raw = obj([("client_id", jv(FIX["client_id"])), ("client_secret", jv("s" * (MIB + 1000)))])
        self.rejected_raw([head("POST", LOGIN, token=None, length=len(raw), close=True), raw], LOGIN, 413)

    def test_login_truncated_json(self):
        self.login_raw(b'{"client_id": "x", ', 400)

    def test_login_duplicate_keys(self):
        self.login_raw(obj([("client_id", jv("nobody")), ("client_secret", self.sec()),
                            ("client_id", jv(FIX["client_id"]))]), 400)

    def test_login_body_array(self):
        self.login_raw(jv([FIX["client_id"], FIX["client_secret"]]), 400)

    def test_login_empty_body(self):
        self.login_raw(b"", 400)

    def test_login_deep_nesting(self):
        self.login_raw(nested(5000), 400)

    def test_login_invalid_utf8(self):
        self.login_raw(b'{"client_id":"\xc0\xaf","client_secret":"x"}', 400)

    def test_login_text_plain(self):
        self.login_raw(obj([("client_id", jv(FIX["client_id"])), ("client_secret", self.sec())]), 415,
                       ct="text/plain")

    def test_login_sql_client_id(self):
        r, js = self.login_raw(obj([("client_id", jv(SQL_OR)), ("client_secret", jv(SQL_OR))]), 401)
        self.assertEqual(js, BAD_CREDS)

    def test_login_wrong_method_405(self):
        r, _ = self.rejected("GET", LOGIN, 405, token=None)
        self.assertEqual(r.headers.get("allow"), "POST")

    def test_refresh_garbage_token(self):
        self.rejected("POST", REFRESH_OLD, 401, body={"refresh_token": "garbage"}, token=None)

    def test_refresh_sql_token(self):
        self.rejected("POST", REFRESH_OLD, 401, body={"refresh_token": SQL_OR}, token=None)

    def test_refresh_token_endpoint_garbage(self):
        self.rejected("POST", REFRESH, 401, body={"refresh_token": "garbage"}, token=None,
                      headers={"Authorization": "Bearer garbage", "Client-Id": FIX["client_id"]})

    def test_refresh_token_not_a_string(self):
        self.rejected("POST", REFRESH_OLD, 400, body={"refresh_token": 12345}, token=None)

    def test_zz_real_login_still_works(self):
        r = self.srv.request("POST", LOGIN, {"client_id": FIX["client_id"], "client_secret": FIX["client_secret"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), JSON_CT)
        r = self.srv.request("GET", USERS, token=r.json["access_token"])
        self.assertEqual(r.status, 200, r)


# ======================================================================== HTTP framing
class HttpFramingTests(Hostile):
    """Requests written byte by byte on a socket."""

    def body(self):
        return user_raw()

    def assertCreated(self, resp, raw):
        st, hdrs, body = resp
        self.assertEqual(st, 201, body)
        uid = json.loads(body)["ekaid"]
        got = self.req("GET", USERS + uid + "/").json["user"]
        self.assertEqual(got["email"], json.loads(raw)["email"])
        return uid

    # --- Host and versions
    def test_http10_without_host_and_token_is_401(self):
        self.rejected_raw([head("GET", USERS, token=None, version="HTTP/1.0", host=False, ct=None)], USERS, 401)

    def test_http10_without_host_with_token_get_200(self):
        out, _ = exchange([head("GET", USERS, version="HTTP/1.0", host=False, ct=None)], want=1)
        st, hdrs, body = parse_stream(out)[0]
        self.assertEqual(st, 200, out[:300])
        self.assertEqual(hdrs.get("content-type"), JSON_CT)
        self.assertIn(FIX["user"], [u["id"] for u in json.loads(body)["users"]])

    def test_http10_without_host_with_token_post_201(self):
        raw = self.body()
        out, _ = exchange([head("POST", USERS, version="HTTP/1.0", host=False, length=len(raw)) + raw], want=1)
        self.assertCreated(parse_stream(out)[0], raw)

    def test_http11_without_host_is_400(self):
        self.rejected_raw([head("GET", USERS, host=False, ct=None, close=True)], USERS, 400, contains="host")
        raw = self.body()
        self.rejected_raw([head("POST", USERS, host=False, length=len(raw), close=True) + raw], USERS, 400,
                          contains="host")

    # --- pipelining
    def test_pipelined_three_gets_answered_in_order(self):
        reqs = b"".join(head("GET", p, ct=None, extra=b"X-Request-Id: pipe-%d\r\n" % i)
                        for i, p in enumerate((USERS, DOCTORS, CLINICS)))
        out, _ = exchange([reqs], want=3)
        resp = parse_stream(out)
        self.assertEqual(len(resp), 3, out[:500])
        for i, key in enumerate(("users", "doctors", "clinics")):
            st, hdrs, body = resp[i]
            self.assertEqual(st, 200)
            self.assertEqual(hdrs.get("x-request-id"), "pipe-%d" % i)
            self.assertIn(key, json.loads(body))

    def test_pipelined_post_then_get_sees_the_write(self):
        raw = self.body()
        reqs = head("POST", USERS, length=len(raw)) + raw + head("GET", USERS, ct=None) + \
            head("GET", USERS + "nosuchid/", ct=None)
        out, _ = exchange([reqs], want=3)
        resp = parse_stream(out)
        self.assertEqual([r[0] for r in resp], [201, 200, 404], out[:500])
        uid = json.loads(resp[0][2])["ekaid"]
        self.assertIn(uid, [u["id"] for u in json.loads(resp[1][2])["users"]])

    # --- sizes
    def test_header_over_64kib_is_431(self):
        before = snapshot()
        raw = self.body()
        out, _ = exchange([head("POST", USERS, length=len(raw), extra=b"X-Big: " + b"a" * (70 * 1024) + b"\r\n")
                           + raw], want=1)
        self.assertEqual(parse_stream(out)[0][0], 431, out[:300])
        self.assertEqual(snapshot(), before)

    def test_token_header_over_64kib_is_431(self):
        out, _ = exchange([head("GET", USERS, token="a" * (70 * 1024), ct=None)], want=1)
        self.assertEqual(parse_stream(out)[0][0], 431, out[:300])

    def test_body_over_1mib_is_413(self):
        raw = self.body() + b" " * MIB
        self.rejected_raw([head("POST", USERS, length=len(raw)), raw], USERS, 413)

    def test_chunked_body_over_1mib_is_413(self):
        raw = one("lastname", jv("x")) + b" " * (2 * MIB)
        self.rejected_raw([head("PATCH", USERS + FIX["user"] + "/", chunked=True), chunks(raw)], USERS, 413)

    def test_very_long_url_is_414(self):
        out, _ = exchange([head("GET", USERS + "a" * (100 * 1024), ct=None)], want=1)
        self.assertEqual(parse_stream(out)[0][0], 414, out[:300])

    # --- Content-Length that lies
    def test_content_length_shorter_than_body(self):
        before = snapshot()
        raw = self.body()
        out, _ = exchange([head("POST", USERS, length=len(raw) - 10) + raw], timeout=2)
        resp = parse_stream(out)
        self.assertTrue(resp, out[:300])
        st, hdrs, body = resp[0]
        self.assertJsonError(st, hdrs, body, USERS, 400, contains="invalid json", method="POST")
        self.assertFalse(any(200 <= r[0] < 300 for r in resp), out[:500])
        self.assertEqual(snapshot(), before)

    def test_content_length_shorter_rest_is_a_request_of_its_own(self):
        """The bytes past Content-Length are the next request, which needs its own token:
        a DELETE hidden in a body must not run with the first request's credentials."""
        before = snapshot()
        inner = (b"DELETE " + (USERS + FIX["user"] + "/").encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = one("lastname", jv("Smuggle"))
        data = head("PATCH", USERS + FIX["user"] + "/", length=len(raw)) + raw + inner
        out, _ = exchange([data], want=2)
        resp = parse_stream(out)
        self.assertEqual([r[0] for r in resp], [200, 401], out[:600])
        self.assertJsonError(resp[1][0], resp[1][1], resp[1][2], USERS, 401)
        r = self.req("GET", USERS + FIX["user"] + "/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["user"]["lastname"], "Smuggle")
        self.req("PATCH", USERS + FIX["user"] + "/", {"lastname": FIX["seed_user"]["user"]["lastname"]})
        after = snapshot()
        for k in before:     # only updated_at of the seed user may differ
            for rec in after[k][[x for x in after[k] if x != "status"][0]]:
                rec.pop("updated_at", None)
            for rec in before[k][[x for x in before[k] if x != "status"][0]]:
                rec.pop("updated_at", None)
        self.assertEqual(after, before)

    def test_content_length_longer_than_body(self):
        before = snapshot()
        raw = self.body()
        half = raw[:len(raw) // 2]
        statuses, _ = self.no_2xx_and_unchanged([head("POST", USERS, length=len(raw)) + half], before,
                                                timeout=1.5)
        self.assertEqual(statuses, [], "answered before the body was complete")

    def test_content_length_not_a_number(self):
        before = snapshot()
        raw = self.body()
        statuses, _ = self.no_2xx_and_unchanged(
            [head("POST", USERS, close=True, extra=b"Content-Length: abc\r\n") + raw], before, allowed={400})
        self.assertEqual(statuses[:1], [400])

    def test_content_length_negative(self):
        before = snapshot()
        raw = self.body()
        statuses, _ = self.no_2xx_and_unchanged(
            [head("POST", USERS, close=True, extra=b"Content-Length: -1\r\n") + raw], before, allowed={400})
        self.assertEqual(statuses[:1], [400])

    def test_content_length_twice_differing(self):
        before = snapshot()
        raw = self.body()
        statuses, _ = self.no_2xx_and_unchanged(
            [head("POST", USERS, extra=b"Content-Length: 5\r\nContent-Length: %d\r\n" % len(raw)) + raw], before,
            allowed={400})
        self.assertEqual(statuses[:1], [400])

    # --- chunked
    def test_chunked_post_succeeds(self):
        raw = self.body()
        out, _ = exchange([head("POST", USERS, chunked=True) + chunks(raw, 7)], want=1)
        self.assertCreated(parse_stream(out)[0], raw)

    def test_chunked_patch_with_extensions_succeeds(self):
        raw = one("about", jv("chunked patch"))
        data = b"%x;name=value\r\n" % len(raw) + raw + b"\r\n0\r\n\r\n"
        out, _ = exchange([head("PATCH", DOCTORS + FIX["doctor"] + "/", chunked=True) + data], want=1)
        self.assertEqual(parse_stream(out)[0][0], 200, out[:300])
        self.assertEqual(self.req("GET", DOCTORS + FIX["doctor"] + "/").json["doctor"]["about"], "chunked patch")

    def test_chunked_body_growing_past_the_request_memory(self):
        # the first KiB of a body is read into the request's own memory, the rest moves it to
        # a buffer of its own: every byte arrives, in order, whichever side of the move
        text = "".join("%04d," % i for i in range(390))  # 1,950 characters
        raw = one("about", jv(text))
        out, _ = exchange([head("PATCH", DOCTORS + FIX["doctor"] + "/", chunked=True) + chunks(raw, 7)], want=1)
        self.assertEqual(parse_stream(out)[0][0], 200, out[:300])
        self.assertEqual(self.req("GET", DOCTORS + FIX["doctor"] + "/").json["doctor"]["about"], text)

    def test_chunked_and_content_length_together_is_400_and_close(self):
        before = snapshot()
        raw = self.body()
        statuses, closed = self.no_2xx_and_unchanged(
            [head("POST", USERS, chunked=True, extra=b"Content-Length: 5\r\n") + chunks(raw, 16)], before,
            allowed={400})
        self.assertEqual(statuses, [400])
        self.assertTrue(closed, "ambiguous framing closes the connection")

    def _malformed_chunks(self, data, allowed, timeout=2.0):
        before = snapshot()
        raw = self.body()
        return self.no_2xx_and_unchanged([head("POST", USERS, chunked=True) + data.replace(b"BODY", raw)],
                                         before, timeout=timeout, allowed=allowed)

    def test_chunk_size_not_hex(self):
        st, _ = self._malformed_chunks(b"zz\r\nBODY\r\n0\r\n\r\n", {400})
        self.assertEqual(st[:1], [400])

    def test_chunk_size_negative(self):
        st, _ = self._malformed_chunks(b"-1\r\nBODY\r\n0\r\n\r\n", {400})
        self.assertEqual(st[:1], [400])

    def test_chunk_size_overflowing(self):
        st, _ = self._malformed_chunks(b"ffffffffffffffffffff\r\nBODY\r\n0\r\n\r\n", {400, 413})
        self.assertTrue(st, "no answer")

    def test_chunk_size_with_leading_space(self):
        st, _ = self._malformed_chunks(b" 10\r\nBODY\r\n0\r\n\r\n", {400})
        self.assertEqual(st[:1], [400])

    def test_chunk_data_longer_than_size(self):
        st, _ = self._malformed_chunks(b"3\r\nBODY\r\n0\r\n\r\n", {400})
        self.assertEqual(st[:1], [400])

    def test_chunk_size_larger_than_data_then_close(self):
        st, _ = self._malformed_chunks(b"fff\r\nBODY\r\n0\r\n\r\n", {400}, timeout=1.5)
        self.assertEqual(st, [])

    def test_unknown_transfer_encoding(self):
        before = snapshot()
        raw = self.body()
        self.no_2xx_and_unchanged([head("POST", USERS, extra=b"Transfer-Encoding: gzip\r\n") + raw], before,
                                  timeout=1.5, allowed={400, 411, 501})

    # --- request line
    def test_raw_crlf_in_request_line_is_400(self):
        before = snapshot()
        data = b"GET " + USERS.encode() + b"x\r\nX-Injected: 1 HTTP/1.1\r\nHost: x\r\nauth: " + TOK_A.encode() + \
            b"\r\n\r\n"
        st, _ = self.no_2xx_and_unchanged([data], before, allowed={400})
        self.assertEqual(st[:1], [400])

    def test_http09_request_is_400(self):
        before = snapshot()
        st, _ = self.no_2xx_and_unchanged([b"GET " + USERS.encode() + b"\r\n"], before, allowed={400})
        self.assertEqual(st[:1], [400])

    def test_http2_preface_is_505(self):
        before = snapshot()
        st, _ = self.no_2xx_and_unchanged([b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], before, allowed={505})
        self.assertEqual(st[:1], [505])


# ======================================================================== response headers
class ResponseHeaderTests(Hostile):
    """Issue 4, item 6: Content-Type with charset, nosniff, no-store, no server version,
    X-Request-Id echoed or generated."""

    def assertHardened(self, r, what):
        h = r.headers
        self.assertEqual(h.get("content-type"), JSON_CT, what)
        self.assertEqual(h.get("x-content-type-options"), "nosniff", what)
        self.assertEqual(h.get("cache-control"), "no-store", what)
        server = h.get("server", "")
        self.assertNotRegex(server, r"\d", "Server header names a version: %r (%s)" % (server, what))
        self.assertNotIn("x-powered-by", h, what)
        self.assertRegex(h.get("x-request-id", ""), r"^[A-Za-z0-9_-]{1,32}$", what)

    def responses(self):
        uid, did = FIX["user"], FIX["doctor"]
        return [
            ("GET list 200", self.req("GET", USERS), 200),
            ("GET item 200", self.req("GET", USERS + uid + "/"), 200),
            ("POST 201", self.req("POST", USERS, raw=user_raw()), 201),
            ("PATCH 200", self.req("PATCH", DOCTORS + did + "/", {"about": "headers"}), 200),
            ("400", self.req("PATCH", USERS + uid + "/", raw=b"{"), 400),
            ("401", self.req("GET", USERS, token=None), 401),
            ("404", self.req("GET", USERS + "nosuch/"), 404),
            ("404 unrouted", self.req("GET", "/nope"), 404),
            ("405", self.req("BREW", USERS), 405),
            ("415", self.req("POST", USERS, raw=user_raw(), content_type="text/plain"), 415),
            ("login 401", self.req("POST", LOGIN, {"client_id": "nobody", "client_secret": "x"}, token=None), 401),
            ("login 400", self.req("POST", LOGIN, raw=b"[", token=None), 400),
        ]

    def test_hardening_headers_on_every_kind_of_response(self):
        for what, r, status in self.responses():
            with self.subTest(what):
                self.assertEqual(r.status, status, r)
                self.assertHardened(r, what)

    def test_hardening_headers_on_413(self):
        raw = user_raw() + b" " * MIB
        out, _ = exchange([head("POST", USERS, length=len(raw)), raw], want=1)
        st, hdrs, _ = parse_stream(out)[0]
        self.assertEqual(st, 413)
        self.assertEqual(hdrs.get("content-type"), JSON_CT)
        self.assertEqual(hdrs.get("x-content-type-options"), "nosniff")
        self.assertEqual(hdrs.get("cache-control"), "no-store")

    def test_request_id_echoed(self):
        for rid in ("abc-123_XYZ", "a" * 32, "0"):
            with self.subTest(rid=rid):
                for r in (self.req("GET", USERS, headers={"X-Request-Id": rid}),
                          self.req("GET", USERS, token=None, headers={"X-Request-Id": rid}),
                          self.req("PATCH", USERS + FIX["user"] + "/", raw=b"[", headers={"X-Request-Id": rid})):
                    self.assertEqual(r.headers.get("x-request-id"), rid, r)

    def test_request_id_generated_when_absent(self):
        ids = [self.req("GET", USERS).headers.get("x-request-id") for _ in range(5)]
        for i in ids:
            self.assertRegex(i or "", r"^[A-Za-z0-9_-]{8,32}$")
        self.assertEqual(len(set(ids)), 5, ids)

    def test_request_id_not_a_plain_token_is_replaced(self):
        for rid in ("a b", "<script>alert(1)</script>", "a" * 33, "x;y", "é", "%0d%0aX-Injected:1", ""):
            with self.subTest(rid=rid):
                r = self.req("GET", USERS, headers={"X-Request-Id": rid})
                got = r.headers.get("x-request-id", "")
                self.assertNotEqual(got, rid)
                self.assertRegex(got, r"^[A-Za-z0-9_-]{8,32}$")
                self.assertNotIn("x-injected", r.headers)


# ======================================================================== the end
class ZzAfterEverything(Hostile):
    """Runs last (classes run in name order): the same process is alive and serves, and the
    seed records are exactly as they were created, except the fields tests changed on purpose."""

    def test_server_alive_and_serves_a_normal_get(self):
        self.assertAlive()
        r = self.req("GET", USERS)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), JSON_CT)
        self.assertIn(FIX["user"], [u["id"] for u in r.json["users"]])
        r = self.req("GET", CLINICS + FIX["clinic"] + "/")
        self.assertEqual(r.json, FIX["seed_clinic"])
        r = self.req("GET", USERS + FIX["user_b"] + "/", token=TOK_B)
        self.assertEqual(r.status, 200, r)
        u = self.req("GET", USERS + FIX["user"] + "/").json["user"]
        seed = FIX["seed_user"]["user"]
        for k in ("firstname", "lastname", "email", "mobile", "partner_id", "doctors"):
            self.assertEqual(u[k], seed[k], k)
        self.assertIsNone(SRV.proc.poll())


if __name__ == "__main__":
    unittest.main()
