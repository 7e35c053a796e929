#!/usr/bin/env python3
"""End-to-end tests of HTTP/1.1 message framing (RFC 9112): requests whose framing is
ambiguous are refused at once and the connection closed, so no request can be smuggled
inside another's body; absolute-form targets; HEAD without a body; keep-alive kept for
errors answered before a body that was never announced; a Content-Length that
libmicrohttpd refuses itself answered once, in JSON.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_framing.py
"""
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, error_message, exchange  # noqa: E402

CLINICS = "/cdr/v1/clinic/"


def got_header(raw: bytes, name: bytes):
    """The value of header `name` in the first header block of raw, or None."""
    for line in raw.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip()
    return None


def read_to_close(s):
    """Everything the peer sends until it closes (the socket's own timeout bounds it)."""
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk


def responses(buf: bytes):
    """Splits what a server sent into (status, headers, body) triples by Content-Length
    (and chunked framing); raises on anything that is not a well-formed response."""
    out = []
    while buf:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("incomplete header block: %r" % buf[:200])
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 "):
            raise AssertionError("not a status line: %r" % lines[0][:200])
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, colon, v = line.partition(b":")
            if not colon:
                raise AssertionError("malformed header line %r" % line)
            name = k.decode().lower()
            if name in hdrs and name in ("content-length", "date", "connection", "content-type"):
                raise AssertionError("header %s sent twice" % name)
            hdrs[name] = v.strip().decode()
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            if len(rest) < n:
                raise AssertionError("body shorter than Content-Length")
            body, buf = rest[:n], rest[n:]
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line, 16)
                if size == 0:
                    _, _, rest = rest.partition(b"\r\n")
                    break
                body += rest[:size]
                rest = rest[size + 2:]
            buf = rest
        else:
            body, buf = rest, b""
        out.append((status, hdrs, body))
    return out


class FramingTests(ServerTestCase):

    def setUp(self):
        self.before = self.clinics()

    def clinics(self):
        r = self.req("GET", CLINICS)
        self.assertEqual(r.status, 200, r)
        return r.json["clinics"]

    def hidden_create(self):
        """A complete POST that would create a clinic if it were ever parsed as a request."""
        body = json.dumps({"name": "Smuggled Clinic", "address": "1 Hidden Road"}).encode()
        return (b"POST " + CLINICS.encode() + b" HTTP/1.1\r\nHost: x\r\nauth: " + self.tok.encode()
                + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    def send(self, data: bytes, timeout=20.0):
        """Sends data on a fresh connection; returns (responses, closed by the server, seconds)."""
        t0 = time.monotonic()
        out, closed = exchange(self.srv.port, [data], timeout)
        self.last_raw = out
        return responses(out), closed, time.monotonic() - t0

    def assertRefused(self, data, status, fragment=None):
        """A JSON error answered at once, then close. On POST to a collection a 400's message
        is a list (Eka's OpenAPI gives a create's 400 that shape), else a string."""
        got, closed, took = self.send(data)
        self.assertEqual(len(got), 1, got)
        # one status line and one header block in the bytes themselves
        self.assertEqual(self.last_raw.count(b"HTTP/1.1 "), 1, self.last_raw)
        self.assertEqual(self.last_raw.lower().count(b"\r\ncontent-length:"), 1, self.last_raw)
        st, hdrs, body = got[0]
        self.assertEqual(st, status, got)
        self.assertEqual(hdrs.get("content-type"), "application/json; charset=utf-8", hdrs)
        self.assertEqual(hdrs.get("x-content-type-options"), "nosniff", hdrs)
        self.assertEqual(hdrs.get("cache-control"), "no-store", hdrs)
        self.assertEqual(hdrs.get("connection", "").lower(), "close", hdrs)
        self.assertTrue(closed, "the connection must be closed after a framing error")
        self.assertLess(took, 15.0, "answered at once, not at the 60 s header deadline")
        err = json.loads(body)
        self.assertEqual(err["status"], "error")
        text = error_message(err, create=data.startswith(b"POST ") and status == 400)
        if fragment:
            self.assertIn(fragment, text)
        self.assertEqual(self.clinics(), self.before, "nothing may change")
        return err

    def post_head(self, *fields):
        return (b"POST " + CLINICS.encode() + b" HTTP/1.1\r\nHost: x\r\nauth: " + self.tok.encode()
                + b"\r\nContent-Type: application/json\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n")

    # -- request smuggling ------------------------------------------------------------
    def test_content_length_and_transfer_encoding(self):
        hidden = self.hidden_create()
        chunked = b"0\r\n\r\n" + hidden
        for fields in ([b"Content-Length: %d" % len(chunked), b"Transfer-Encoding: chunked"],
                       [b"Transfer-Encoding: chunked", b"Content-Length: 5"]):
            with self.subTest(fields=fields):
                self.assertRefused(self.post_head(*fields) + chunked, 400, "Content-Length and Transfer-Encoding")

    def test_several_content_lengths(self):
        body = json.dumps({"name": "One Clinic", "address": "1 Main Road"}).encode()
        for fields in ([b"Content-Length: %d" % len(body)] * 2,
                       [b"Content-Length: %d" % len(body), b"Content-Length: %d" % (len(body) + 5)]):
            with self.subTest(fields=fields):
                self.assertRefused(self.post_head(*fields) + body + self.hidden_create(), 400, "Content-Length")

    # libmicrohttpd 0.9.75 reads Content-Length itself before hipusers sees the request, and its
    # own answer carries its status line and headers twice: hipusers answers these instead.
    def test_content_length_not_a_number(self):
        body = json.dumps({"name": "Smuggled Clinic", "address": "1 Hidden Road"}).encode()
        for value in (b"abc", b"-1", b"+48", b"0x30", b"4 8", b"48abc", b""):
            with self.subTest(value=value):
                data = self.post_head(b"Content-Length: " + value) + body + self.hidden_create()
                self.assertRefused(data, 400, "Content-Length must be a decimal number")

    def test_content_length_past_64_bits(self):
        for value in (b"18446744073709551616", b"9" * 40):
            with self.subTest(value=value):
                self.assertRefused(self.post_head(b"Content-Length: " + value) + b"{}", 413, "larger than 1 MiB")

    def test_content_length_not_a_number_elsewhere(self):
        r = self.req("POST", CLINICS, {"name": "Kept Clinic", "address": "1 Main Road"})
        self.assertEqual(r.status, 201, r)
        self.before = self.clinics()
        item = CLINICS + r.json["ekaid"] + "/"
        patch = (b"PATCH " + item.encode() + b" HTTP/1.1\r\nHost: x\r\nauth: " + self.tok.encode()
                 + b"\r\nContent-Type: application/json\r\nContent-Length: abc\r\nX-Request-Id: cl-abc-1\r\n\r\n"
                 + b'{"name":"Changed"}')
        self.assertRefused(patch, 400, "Content-Length must be a decimal number")
        self.assertEqual(got_header(self.last_raw, b"x-request-id"), b"cl-abc-1")
        # absolute-form, on the login API: that API's own error shape
        login = (b"POST http://x/connect-auth/v1/account/login HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: abc\r\n\r\n{}")
        got, closed, _ = self.send(login)
        self.assertEqual(self.last_raw.count(b"HTTP/1.1 "), 1, self.last_raw)
        self.assertEqual([(g[0], json.loads(g[2])) for g in got],
                         [(400, {"code": 400, "error": "Content-Length must be a decimal number."})])
        self.assertTrue(closed)

    def test_content_length_not_a_number_after_a_request(self):
        get = b"GET " + CLINICS.encode() + b" HTTP/1.1\r\nHost: x\r\nauth: " + self.tok.encode() + b"\r\n\r\n"
        data = get + self.post_head(b"Content-Length: abc") + b"{}" + self.hidden_create()
        got, closed, _ = self.send(data)
        self.assertEqual([g[0] for g in got], [200, 400], got)
        self.assertEqual(self.last_raw.count(b"HTTP/1.1 "), 2, self.last_raw)
        self.assertEqual(json.loads(got[1][2])["message"], ["Content-Length must be a decimal number."])
        self.assertEqual(got[1][1].get("connection"), "close", got[1][1])
        self.assertTrue(closed)
        self.assertEqual(self.clinics(), self.before)

    def test_content_length_not_a_number_in_pieces(self):
        """The header block in pieces, another connection's unfinished one beside it: each
        connection gets its own answer."""
        a = socket.create_connection(("127.0.0.1", self.srv.port), timeout=20)
        b = socket.create_connection(("127.0.0.1", self.srv.port), timeout=20)
        try:
            a.sendall(self.post_head()[:-2])
            b.sendall(b"GET " + CLINICS.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Bad: Content-Length: abc\r\n")
            a.sendall(b"Content-Len")
            a.sendall(b"gth: abc\r\n\r\n")
            got_a = responses(read_to_close(a))
            self.assertEqual([g[0] for g in got_a], [400], got_a)
            self.assertEqual(json.loads(got_a[0][2])["message"], ["Content-Length must be a decimal number."])
            b.sendall(b"auth: " + self.tok.encode() + b"\r\nConnection: close\r\n\r\n")
            got_b = responses(read_to_close(b))
            self.assertEqual([g[0] for g in got_b], [200], got_b)
        finally:
            a.close()
            b.close()
        self.assertEqual(self.clinics(), self.before)

    def test_whitespace_before_colon(self):
        body = json.dumps({"name": "One Clinic", "address": "1 Main Road"}).encode()
        for field in (b"Content-Length : %d" % len(body), b"Content-Length\t: %d" % len(body)):
            with self.subTest(field=field):
                self.assertRefused(self.post_head(field) + body, 400, "header field name")
        get = b"GET " + CLINICS.encode() + b" HTTP/1.1\r\nHost: x\r\nauth : " + self.tok.encode() + b"\r\n\r\n"
        self.assertRefused(get, 400, "header field name")

    def test_transfer_codings(self):
        body = b"5\r\nhello\r\n0\r\n\r\n"
        cases = [([b"Transfer-Encoding: gzip"], 501), ([b"Transfer-Encoding: gzip, chunked"], 501),
                 ([b"Transfer-Encoding: chunked, identity"], 400),
                 ([b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"], 400),
                 ([b"Transfer-Encoding: chunked, chunked"], 400),
                 ([b"Transfer-Encoding: chunked;ext=1"], 501),
                 ([b"Transfer-Encoding: identity"], 501)]
        for fields, status in cases:
            with self.subTest(fields=fields):
                self.assertRefused(self.post_head(*fields) + body + self.hidden_create(), status,
                                   "Transfer-Encoding")

    def test_chunked_any_case_is_accepted(self):
        body = json.dumps({"name": "Chunked Clinic", "address": "1 Main Road"}).encode()
        data = self.post_head(b"Transfer-Encoding: CHUNKED", b"Connection: close") + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
        got, _, _ = self.send(data)
        self.assertEqual(got[0][0], 201, got)
        names = [c["name"] for c in self.clinics()]
        self.assertIn("Chunked Clinic", names)

    def test_two_host_headers(self):
        get = (b"GET " + CLINICS.encode() + b" HTTP/1.1\r\nHost: a\r\nHost: b\r\nauth: " + self.tok.encode()
               + b"\r\n\r\n")
        self.assertRefused(get, 400, "Host")

    def test_space_or_control_in_target(self):
        for target in (b"/cdr/v1/cli nic/", b"/cdr/v1/cli\x01nic/", b"/cdr/v1/clinic/\x7f"):
            with self.subTest(target=target):
                get = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nauth: " + self.tok.encode() + b"\r\n\r\n"
                got, closed, _ = self.send(get)
                self.assertEqual(len(got), 1, got)
                self.assertEqual(got[0][0], 400, got)
                self.assertEqual(json.loads(got[0][2])["status"], "error")

    # -- accepted forms ---------------------------------------------------------------
    def test_absolute_form_target(self):
        for target in (b"http://127.0.0.1" + CLINICS.encode(), b"HTTP://example.test" + CLINICS.encode()):
            with self.subTest(target=target):
                get = (b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nauth: "
                       + self.tok.encode() + b"\r\n\r\n")
                got, _, _ = self.send(get)
                self.assertEqual(got[0][0], 200, got)
                self.assertEqual(json.loads(got[0][2])["clinics"], self.before)

    def test_head_has_no_body_on_every_route(self):
        r = self.req("POST", CLINICS, {"name": "Head Clinic", "address": "1 Main Road"})
        self.assertEqual(r.status, 201, r)
        cid = r.json["ekaid"]
        for path in (CLINICS, CLINICS + cid + "/", "/cdr/v1/ekauser/", "/cdr/v1/doctor/", "/cdr/v1/hipusers/",
                     "/cdr/v1/get_business_info/", "/cdr/v1/nothing/"):
            with self.subTest(path=path):
                get = self.req("GET", path)
                head = (b"HEAD " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nauth: " + self.tok.encode()
                        + b"\r\n\r\n")
                # a second request on the same connection proves nothing followed the headers
                second = b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                out, _ = exchange(self.srv.port, [head + second], 20.0)
                head_part, _, rest = out.partition(b"\r\n\r\n")
                self.assertTrue(head_part.startswith(b"HTTP/1.1 %d" % get.status), out[:200])
                self.assertNotIn(b"transfer-encoding", head_part.lower())
                lengths = [ln for ln in head_part.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
                self.assertEqual(len(lengths), 1, head_part)
                self.assertEqual(int(lengths[0].split(b":")[1]), len(get.raw), "GET's length")
                self.assertTrue(rest.startswith(b"HTTP/1.1 404"), rest[:100])

    def test_bodyless_error_keeps_the_connection(self):
        reqs = (b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
                + b"GET " + CLINICS.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"  # 401: no token
                + b"DELETE " + CLINICS.encode() + b" HTTP/1.1\r\nHost: x\r\nauth: " + self.tok.encode() + b"\r\n\r\n"
                + b"GET " + CLINICS.encode() + b" HTTP/1.1\r\nHost: x\r\nauth: " + self.tok.encode() + b"\r\n\r\n")
        out, closed = exchange(self.srv.port, [reqs], 20.0,
                               until=lambda b: b.count(b"HTTP/1.1 ") >= 4 and b.endswith(b"0\r\n\r\n"))
        got = responses(out)
        self.assertEqual([g[0] for g in got], [404, 401, 405, 200], got)
        for st, hdrs, _ in got:
            self.assertNotEqual(hdrs.get("connection", "").lower(), "close", hdrs)

    def test_error_before_an_announced_body_closes(self):
        body = json.dumps({"name": "Never Read", "address": "1 Main Road"}).encode()
        data = (b"POST " + CLINICS.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)
        got, closed, _ = self.send(data + self.hidden_create())
        self.assertEqual([g[0] for g in got], [401], got)
        self.assertTrue(closed)
        self.assertEqual(self.clinics(), self.before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
