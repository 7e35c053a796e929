#!/usr/bin/env python3
"""Idempotency-Key on creates (issue 10, part 2), end to end against the real binary.

The first POST with a key runs; a repeat with the same key, tenant and body replays the first
answer (status and body) with `Idempotent-Replayed: true` and creates nothing. The same key with
another body is a 422; while the first is still running, a 409 with Retry-After; a malformed key
a 400. Keys are per tenant, live 24 hours, survive the deletion of what they created, restarts,
other server processes on the same database, and crashes. Every refusal is checked to change
nothing (the lists are read back).

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_idempotency.py
"""
import hashlib
import itertools
import json
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BACKEND, DB, PsqlSession, Server, ServerTestCase, make_token, pg_until_server_waits,  # noqa: E402
                     psql)

MISMATCH = {"status": "error", "message": "Idempotency-Key reused with a different request"}
MALFORMED = "Idempotency-Key must be 1 to 255 visible ASCII characters"
BUSY = "still being processed"
PATHS = {"clinic": "/cdr/v1/clinic/", "doctor": "/cdr/v1/doctor/", "ekauser": "/cdr/v1/ekauser/"}
MANY = {"clinic": "clinics", "doctor": "doctors", "ekauser": "users"}

_n = itertools.count(1)
_tenants = itertools.count(1)


def body_for(kind, n=None):
    n = next(_n) if n is None else n
    if kind == "clinic":
        return {"name": "Clinic %d" % n, "address": "%d Main Street" % n}
    if kind == "doctor":
        return {"firstname": "Doc%d" % n, "lastname": "Rao", "gender": "F"}
    return {"firstname": "User%d" % n, "lastname": "Kumar", "gender": "M", "dob": "1990-05-15",
            "mobile": "9%09d" % n}


def request_hash(path, body):
    """The stored request hash, as docs/decisions.md defines it: SHA-256 of "POST <path>\\n" and
    the body as canonical JSON (keys sorted, no spaces)."""
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(("POST " + path + "\n" + canon).encode()).hexdigest()


def now_ms():
    return int(time.time() * 1000)


class Base(ServerTestCase):

    def tenant(self):
        return make_token("51%014d" % next(_tenants))

    def post(self, kind, body, key, tok, path=None, extra=None):
        h = {} if key is None else {"Idempotency-Key": key}
        h.update(extra or {})
        return self.req("POST", path or PATHS[kind], body, token=tok, headers=h)

    def listing(self, kind, tok):
        r = self.req("GET", PATHS[kind], token=tok)
        self.assertEqual(r.status, 200, r)
        return r.json[MANY[kind]]

    def ids(self, kind, tok):
        return [x["id"] for x in self.listing(kind, tok)]

    def assertFresh(self, r):
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["status"], "success", r)
        self.assertNotIn("idempotent-replayed", r.headers, r)
        return r.json["ekaid"]

    def assertReplay(self, r, first):
        self.assertEqual(r.status, first.status, r)
        self.assertEqual(r.raw, first.raw, r)  # byte for byte
        self.assertEqual(r.headers.get("idempotent-replayed"), "true", r)
        self.assertEqual(r.headers.get("content-type"), "application/json; charset=utf-8", r)

    def db(self):
        return DB(self.srv)

    def key_row(self, b_id, key):
        with self.db() as db:
            return db.execute("SELECT state, status, body, created_ms, lease_until_ms FROM idempotency_key"
                              " WHERE b_id = ? AND key = ?", (b_id, key)).fetchone()


class ReplayTests(Base):

    def test_repeat_replays_the_first_answer_and_creates_nothing(self):
        for kind in PATHS:
            with self.subTest(kind=kind):
                tok = self.tenant()
                body = body_for(kind)
                first = self.post(kind, body, "key-" + kind, tok)
                ekaid = self.assertFresh(first)
                for _ in range(3):
                    self.assertReplay(self.post(kind, body, "key-" + kind, tok), first)
                self.assertEqual(self.ids(kind, tok), [ekaid])
                # the record is an ordinary one
                r = self.req("GET", PATHS[kind] + ekaid + "/", token=tok)
                self.assertEqual(r.status, 200, r)

    def test_same_request_spelt_otherwise_is_the_same(self):
        tok = self.tenant()
        first = self.post("clinic", {"name": "Sunrise", "address": "1 Main St", "city": "Pune"}, "k-order", tok)
        self.assertFresh(first)
        # other key order and spacing: the same JSON
        raw = b'{ "city" : "Pune",  "address":"1 Main St", "name":"Sunrise" }'
        r = self.req("POST", PATHS["clinic"], raw=raw, token=tok, headers={"Idempotency-Key": "k-order"})
        self.assertReplay(r, first)
        # the path without its trailing slash is the same route
        self.assertReplay(self.post("clinic", {"name": "Sunrise", "address": "1 Main St", "city": "Pune"},
                                    "k-order", tok, path="/cdr/v1/clinic"), first)
        self.assertEqual(len(self.listing("clinic", tok)), 1)

    def test_different_request_with_the_key_is_422(self):
        tok = self.tenant()
        body = body_for("clinic")
        first = self.post("clinic", body, "k-422", tok)
        ekaid = self.assertFresh(first)
        other = dict(body, city="Indore")
        for path, b in ((PATHS["clinic"], other),             # another body
                        (PATHS["doctor"], body_for("doctor")),  # another resource
                        (PATHS["clinic"], dict(body, name=body["name"] + " "))):  # one character more
            r = self.req("POST", path, b, token=tok, headers={"Idempotency-Key": "k-422"})
            self.assertEqual(r.status, 422, r)
            self.assertEqual(r.json, MISMATCH, r)
            self.assertEqual(r.headers.get("content-type"), "application/json; charset=utf-8", r)
        self.assertEqual(self.ids("clinic", tok), [ekaid])
        self.assertEqual(self.ids("doctor", tok), [])
        # the first answer is still replayed
        self.assertReplay(self.post("clinic", body, "k-422", tok), first)

    def test_keys_are_per_tenant(self):
        a, b = self.tenant(), self.tenant()
        body = body_for("doctor")
        first_a = self.post("doctor", body, "shared-key", a)
        id_a = self.assertFresh(first_a)
        id_b = self.assertFresh(self.post("doctor", body, "shared-key", b))
        self.assertNotEqual(id_a, id_b)
        # and with another body in B the key is still free in A's sense: no 422 across tenants
        self.assertFresh(self.post("doctor", body_for("doctor"), "only-in-b", b))
        self.assertFresh(self.post("doctor", body_for("doctor"), "only-in-b", a))
        self.assertReplay(self.post("doctor", body, "shared-key", a), first_a)
        self.assertEqual(self.ids("doctor", a)[0], id_a)
        self.assertEqual(self.ids("doctor", b)[0], id_b)

    def test_repeat_after_the_record_was_deleted_still_replays(self):
        tok = self.tenant()
        body = body_for("ekauser")
        first = self.post("ekauser", body, "k-del", tok)
        ekaid = self.assertFresh(first)
        r = self.req("DELETE", PATHS["ekauser"] + ekaid + "/", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertReplay(self.post("ekauser", body, "k-del", tok), first)
        self.assertEqual(self.req("GET", PATHS["ekauser"] + ekaid + "/", token=tok).status, 404)
        self.assertEqual(self.ids("ekauser", tok), [])  # the replay created nothing

    def test_without_a_key_nothing_changes(self):
        tok = self.tenant()
        body = body_for("clinic")
        a = self.assertFresh(self.post("clinic", body, None, tok))
        b = self.assertFresh(self.post("clinic", body, None, tok))
        self.assertNotEqual(a, b)

    def test_a_create_that_failed_leaves_the_key_free(self):
        tok = self.tenant()
        # 409: the mobile is taken; once it is free the same request (same key) creates
        holder = self.assertFresh(self.post("ekauser", body_for("ekauser", 777001), None, tok))
        body = dict(body_for("ekauser"), mobile="9000777001")
        r = self.post("ekauser", body, "k-fail", tok)
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json["message"], "mobile already in use", r)
        self.assertNotIn("idempotent-replayed", r.headers)
        self.assertIsNone(self.key_row(self.b_id(tok), "k-fail"))
        self.assertEqual(self.req("DELETE", PATHS["ekauser"] + holder + "/", token=tok).status, 200)
        ekaid = self.assertFresh(self.post("ekauser", body, "k-fail", tok))
        self.assertEqual(self.ids("ekauser", tok), [ekaid])
        # 400 from the unit: a clinic that does not exist
        body = dict(body_for("doctor"), clinic_ids=["c-0123456789abcdef01234567"])
        r = self.post("doctor", body, "k-fail-400", tok)
        self.assertEqual(r.status, 400, r)
        self.assertIsNone(self.key_row(self.b_id(tok), "k-fail-400"))
        # 400 from the body's rules: never reaches the key; another body with the key runs
        r = self.post("doctor", {"firstname": "X"}, "k-bad-body", tok)
        self.assertEqual(r.status, 400, r)
        self.assertIsInstance(r.json["message"], list, r)
        self.assertFresh(self.post("doctor", body_for("doctor"), "k-bad-body", tok))
        self.assertEqual(len(self.ids("doctor", tok)), 1)

    def test_key_on_other_methods_is_ignored(self):
        tok = self.tenant()
        ekaid = self.assertFresh(self.post("clinic", body_for("clinic"), None, tok))
        for key in ("k-patch", "a b", ""):
            r = self.req("PATCH", PATHS["clinic"] + ekaid + "/", {"city": "Pune"}, token=tok,
                         headers={"Idempotency-Key": key})
            self.assertEqual(r.status, 200, r)
            r = self.req("GET", PATHS["clinic"], token=tok, headers={"Idempotency-Key": key})
            self.assertEqual(r.status, 200, r)

    def test_replay_survives_a_restart(self):
        tok = self.tenant()
        body = body_for("clinic")
        first = self.post("clinic", body, "k-restart", tok)
        self.assertFresh(first)
        self.srv.restart()
        self.assertReplay(self.post("clinic", body, "k-restart", tok), first)
        self.assertEqual(len(self.listing("clinic", tok)), 1)

    @staticmethod
    def b_id(tok):
        import base64
        payload = tok.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["b_id"]


class MalformedKeyTests(Base):

    def assertRefused(self, r):
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["status"], "error", r)
        self.assertIsInstance(r.json["message"], list, r)  # a create's 400, as Eka's OpenAPI types it
        self.assertIn(MALFORMED, r.json["message"][0], r)

    def test_malformed_keys_are_400_and_create_nothing(self):
        tok = self.tenant()
        bad = ["", " ", "a b", "tab\there", "ctl\x01", "del\x7f", "x" * 256, "caf\u00e9"]
        for key in bad:
            with self.subTest(key=key[:20]):
                self.assertRefused(self.post("clinic", body_for("clinic"), key, tok))
        # UTF-8 bytes rather than Latin-1
        r = self.req("POST", PATHS["clinic"], body_for("clinic"), token=tok,
                     headers={"Idempotency-Key": "caf\u00e9".encode("utf-8")})
        self.assertRefused(r)
        self.assertEqual(self.listing("clinic", tok), [])

    def test_key_sent_twice_is_400(self):
        tok = self.tenant()
        body = json.dumps(body_for("clinic")).encode()
        raw = (b"POST /cdr/v1/clinic/ HTTP/1.1\r\nHost: x\r\nauth: " + tok.encode() +
               b"\r\nContent-Type: application/json\r\nIdempotency-Key: k1\r\nIdempotency-Key: k1\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        out = self.srv.raw_request(raw)
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:200])
        self.assertIn(MALFORMED.encode(), out)
        self.assertEqual(self.listing("clinic", tok), [])

    def test_longest_and_odd_but_valid_keys(self):
        tok = self.tenant()
        for key in ("k" * 255, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "8e03978e-40d5-43e8-bc93-6894a57f9324"):
            body = body_for("clinic")
            first = self.post("clinic", body, key, tok)
            self.assertFresh(first)
            self.assertReplay(self.post("clinic", body, key, tok), first)
        self.assertEqual(len(self.listing("clinic", tok)), 3)
        # spaces around the value are not part of it (RFC 9110 5.5)
        body = body_for("clinic")
        first = self.post("clinic", body, "padded", tok)
        self.assertReplay(self.post("clinic", body, "  padded\t", tok), first)


class ClaimTests(Base):
    """States a crash or another server leaves in the database, made directly in it."""

    B_ID = "5200000000000001"

    def setUp(self):
        self.tok = make_token(self.B_ID)

    def claim(self, key, path, body, lease_ms, created_ms=None, state="running"):
        with self.db() as db:
            db.execute("DELETE FROM idempotency_key WHERE b_id = ? AND key = ?", (self.B_ID, key))
            db.execute("INSERT INTO idempotency_key (b_id, key, request_hash, holder, state,"
                       " created_ms, lease_until_ms) VALUES (?, ?, ?, 'dead-holder', ?, ?, ?)",
                       (self.B_ID, key, request_hash(path, body), state,
                        created_ms if created_ms is not None else now_ms(), lease_ms))

    def test_while_the_first_is_running_409_then_its_lease_ends(self):
        body = body_for("doctor")
        # a request holding the key (another server, or one that died before answering)
        self.claim("k-running", PATHS["doctor"], body, now_ms() + 600000)
        before = self.ids("doctor", self.tok)
        r = self.post("doctor", body, "k-running", self.tok)
        self.assertEqual(r.status, 409, r)
        self.assertIn(BUSY, r.json["message"], r)
        self.assertEqual(r.json["status"], "error", r)
        self.assertEqual(r.headers.get("retry-after"), "1", r)
        # a different body is still a 422, running or not
        r = self.post("doctor", body_for("doctor"), "k-running", self.tok)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(self.ids("doctor", self.tok), before)
        # its holder died: once the lease is over, the next retry takes the key over and runs
        with self.db() as db:
            db.execute("UPDATE idempotency_key SET lease_until_ms = ? WHERE b_id = ? AND key = ?",
                       (now_ms() - 1, self.B_ID, "k-running"))
        first = self.post("doctor", body, "k-running", self.tok)
        ekaid = self.assertFresh(first)
        self.assertReplay(self.post("doctor", body, "k-running", self.tok), first)
        self.assertEqual(self.ids("doctor", self.tok), before + [ekaid])

    def test_expired_key_runs_again_and_expired_keys_are_purged(self):
        body = body_for("clinic")
        first = self.post("clinic", body, "k-old", self.tok)
        old_id = self.assertFresh(first)
        day = 24 * 3600 * 1000
        with self.db() as db:
            db.execute("UPDATE idempotency_key SET created_ms = ? WHERE b_id = ? AND key = 'k-old'",
                       (now_ms() - day - 1000, self.B_ID))
        # more expired keys of this tenant and of another one
        for i in range(5):
            self.claim("stale-%d" % i, PATHS["clinic"], body_for("clinic"), 0, now_ms() - day - 60000 - i)
        with self.db() as db:
            db.execute("INSERT INTO idempotency_key (b_id, key, request_hash, holder, state, created_ms,"
                       " lease_until_ms) VALUES ('5299999999999999', 'stale-x', 'h', 'x', 'done', ?, 0)",
                       (now_ms() - day - 60000,))
            # a key just inside its 24 hours is kept and replayed
            db.execute("UPDATE idempotency_key SET created_ms = ? WHERE b_id = ? AND key = ?",
                       (now_ms() - day + 60000, self.B_ID, "k-young"))
        young = self.post("clinic", dict(body, name="Young"), "k-young", self.tok)
        self.assertFresh(young)
        with self.db() as db:
            db.execute("UPDATE idempotency_key SET created_ms = ? WHERE b_id = ? AND key = 'k-young'",
                       (now_ms() - day + 60000, self.B_ID))
        self.assertReplay(self.post("clinic", dict(body, name="Young"), "k-young", self.tok), young)
        # after 24 hours the same request is a new one
        second = self.post("clinic", body, "k-old", self.tok)
        new_id = self.assertFresh(second)
        self.assertNotEqual(new_id, old_id)
        self.assertReplay(self.post("clinic", body, "k-old", self.tok), second)
        # the tenant's expired keys are gone; another tenant's are its own business
        with self.db() as db:
            left = {k for (k,) in db.execute("SELECT key FROM idempotency_key WHERE b_id = ?", (self.B_ID,))}
            other = db.execute("SELECT count(*) FROM idempotency_key WHERE b_id = '5299999999999999'").fetchone()[0]
        self.assertFalse({k for k in left if k.startswith("stale-")}, left)
        self.assertIn("k-old", left)
        self.assertIn("k-young", left)
        self.assertEqual(other, 1)


class RaceTests(Base):

    def fire(self, targets, kind, body, key, tok, n):
        """n identical POSTs at once (a barrier releases them together), spread over targets."""
        barrier = threading.Barrier(n)
        out = [None] * n

        def one(i):
            barrier.wait()
            out[i] = targets[i % len(targets)].request("POST", PATHS[kind], body=body, token=tok,
                                                        headers={"Idempotency-Key": key})

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return out

    def check_one_create(self, answers, kind, tok):
        fresh = [r for r in answers if r.status == 201 and "idempotent-replayed" not in r.headers]
        replayed = [r for r in answers if r.status == 201 and "idempotent-replayed" in r.headers]
        busy = [r for r in answers if r.status == 409]
        self.assertEqual(len(fresh) + len(replayed) + len(busy), len(answers), answers)
        self.assertEqual(len(fresh), 1, answers)
        for r in replayed:
            self.assertEqual(r.raw, fresh[0].raw)
        for r in busy:
            self.assertIn(BUSY, r.json["message"])
            self.assertEqual(r.headers.get("retry-after"), "1")
        self.assertEqual(self.ids(kind, tok), [fresh[0].json["ekaid"]])

    def test_identical_posts_at_once_create_one(self):
        for round_ in range(5):
            tok = self.tenant()
            body = body_for("doctor")
            answers = self.fire([self.srv], "doctor", body, "race-%d" % round_, tok, 8)
            self.check_one_create(answers, "doctor", tok)

    def test_identical_posts_at_once_on_two_servers_create_one(self):
        other = Server(data_dir=self.srv.data_dir).start()
        try:
            for round_ in range(4):
                tok = self.tenant()
                body = body_for("clinic")
                answers = self.fire([self.srv, other], "clinic", body, "race2-%d" % round_, tok, 8)
                self.check_one_create(answers, "clinic", tok)
                # either server replays what the other created
                first = [r for r in answers if r.status == 201][0]
                for s in (self.srv, other):
                    r = s.request("POST", PATHS["clinic"], body=body, token=tok,
                                  headers={"Idempotency-Key": "race2-%d" % round_})
                    self.assertReplay(r, first)
        finally:
            other.stop()


@unittest.skipUnless(BACKEND == "postgresql", "PostgreSQL's Read Committed re-check of a locked row")
class LeaseRaceTests(Base):
    """A create that outlives its lease (a slow database) answers while a retry takes its key
    over: the retry must not run the create a second time. Locks held by psql sessions order
    the steps; each step waits for the server's statement to be waiting on its lock."""

    def session(self, name):
        p = PsqlSession(self.srv.db, name)
        self.addCleanup(p.close)
        return p

    def test_a_claim_answered_meanwhile_is_not_taken_over(self):
        b_id, key = "51%014d" % next(_tenants), "lease-race"
        tok = make_token(b_id)
        body = body_for("clinic")
        before = self.ids("clinic", tok)
        out = {}

        def post(name):
            out[name] = self.post("clinic", body, key, tok)

        # the first create claims its key, then waits for the clinic table
        tables = self.session("e2e-lock-table")
        tables.hold("BEGIN; LOCK TABLE clinic IN SHARE ROW EXCLUSIVE MODE;", "the table locked")
        first = threading.Thread(target=post, args=("first",))
        first.start()
        pg_until_server_waits(self.srv.db, "the create waits for the table", "INSERT INTO clinic")
        # its lease runs out meanwhile, and its key's row is held when it comes to answer
        psql(self.srv.db, "UPDATE idempotency_key SET lease_until_ms = 0 WHERE b_id = '%s' AND key = '%s'" % (b_id, key))
        row = self.session("e2e-lock-row")
        row.hold("BEGIN; SELECT 1 FROM idempotency_key WHERE b_id = '%s' AND key = '%s' FOR UPDATE;" % (b_id, key),
                 "the row locked")
        tables.send("COMMIT;")
        pg_until_server_waits(self.srv.db, "the create's answer waits for the key", "UPDATE idempotency_key SET state")
        # the client gives up on it and retries: the retry takes the expired claim over
        retry = threading.Thread(target=post, args=("retry",))
        retry.start()
        pg_until_server_waits(self.srv.db, "the retry's take-over waits for the key",
                              "UPDATE idempotency_key SET request_hash")
        row.send("COMMIT;")
        first.join(60)
        retry.join(60)
        ekaid = self.assertFresh(out["first"])
        r = out["retry"]
        self.assertEqual(r.status, 409, r)
        self.assertIn(BUSY, r.json["message"], r)
        self.assertEqual(r.headers.get("retry-after"), "1", r)
        self.assertReplay(self.post("clinic", body, key, tok), out["first"])
        self.assertEqual(self.ids("clinic", tok), before + [ekaid])


class CrashTests(unittest.TestCase):
    """SIGKILL while idempotent creates are in flight; after a restart every key's retry ends
    in exactly one record: a create never commits without its stored answer."""

    def test_sigkill_then_retries_create_each_record_once(self):
        srv = Server().start()
        tok = make_token("5300000000000001")
        stop = threading.Event()
        sent = {}
        lock = threading.Lock()
        counter = itertools.count(1)

        def worker():
            while not stop.is_set():
                n = next(counter)
                key, body = "crash-%d" % n, {"firstname": "Crash%d" % n, "lastname": "K", "gender": "F"}
                with lock:
                    sent[key] = body
                try:
                    srv.request("POST", PATHS["doctor"], body=body, token=tok, headers={"Idempotency-Key": key})
                except OSError:
                    return

        try:
            threads = [threading.Thread(target=worker) for _ in range(4)]
            for t in threads:
                t.start()
            deadline = time.time() + 30
            while len(sent) < 60 and time.time() < deadline:
                time.sleep(0.01)
            srv.stop(signal.SIGKILL)
            stop.set()
            for t in threads:
                t.join(30)
            srv.start()
            # retry every key until it is settled (a claim of the dead process blocks with 409
            # until its lease ends: wait as Retry-After says)
            answers = {}
            for key, body in sent.items():
                deadline = time.time() + 60
                while True:
                    r = srv.request("POST", PATHS["doctor"], body=body, token=tok, headers={"Idempotency-Key": key})
                    if r.status != 409 or time.time() > deadline:
                        break
                    time.sleep(int(r.headers.get("retry-after", "1")))
                self.assertEqual(r.status, 201, (key, r))
                answers[key] = r.json["ekaid"]
            docs = srv.request("GET", PATHS["doctor"], token=tok).json["doctors"]
            by_name = {}
            for d in docs:
                by_name.setdefault(d["firstname"], []).append(d["id"])
            for key, body in sent.items():
                self.assertEqual(by_name.get(body["firstname"]), [answers[key]], key)
            self.assertEqual(len(docs), len(sent))
        finally:
            stop.set()
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
