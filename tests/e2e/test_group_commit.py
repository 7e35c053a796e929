#!/usr/bin/env python3
"""Group commit, as a client sees it: writes that wait together are committed together, yet
each gets its own answer. A create that conflicts (409) or names a doctor that does not exist
(400) changes nothing and costs its neighbours nothing; a full write queue answers 503 with
Retry-After at once; reads are served while writes wait; a stop lets waiting writes finish.

To make writes wait together at will, the test holds SQLite's write lock from a connection of
its own (as another process could): the server's writer waits for it and the writes queue
behind it. With --write-queue N, once N writes wait, the next is refused at once, so the first
refusals prove that the others are all queued, and they run as one batch once the lock goes.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_group_commit.py
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Server, make_token  # noqa: E402

USERS = "/cdr/v1/ekauser/"
BUSY = "The database is busy; retry shortly."
MISSING_DOCTOR = "do9999999999999"
WAIT = 120  # seconds: only turns a hang into a failure


class Flight:
    """Requests sent at once, each on a thread and connection of its own; answers are
    gathered as they come, in order of arrival."""

    def __init__(self, srv):
        self.srv = srv
        self.cond = threading.Condition()
        self.answers = []  # (index, response)
        self.threads = []

    def send(self, i, method, path, body, token):
        def run():
            try:
                r = self.srv.request(method, path, body=body, token=token)
            except Exception as e:  # noqa: BLE001 - reported as the answer
                r = e
            with self.cond:
                self.answers.append((i, r))
                self.cond.notify_all()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.threads.append(t)

    def wait_for(self, n):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.answers) >= n, timeout=WAIT)
        if not ok:
            raise AssertionError("only %d of %d answers came" % (len(self.answers), n))
        return list(self.answers)

    def join(self):
        for t in self.threads:
            t.join(WAIT)


class WriteLock:
    """SQLite's write lock on the server's database, held by this process."""

    def __init__(self, db):
        self.con = sqlite3.connect(db, timeout=30, isolation_level=None)
        self.con.execute("BEGIN IMMEDIATE")

    def release(self):
        if self.con:
            self.con.execute("ROLLBACK")
            self.con.close()
            self.con = None


def commit_metrics(srv, token):
    """(commits, units they made durable) from /metrics."""
    r = srv.request("GET", "/metrics", token=token)
    assert r.status == 200, r
    vals = {}
    for line in r.raw.decode().splitlines():
        if line.startswith("hipusers_storage_commit_batch_size_count ") or \
                line.startswith("hipusers_storage_commit_batch_size_sum "):
            name, v = line.split()
            vals[name] = int(float(v))
    return vals["hipusers_storage_commit_batch_size_count"], vals["hipusers_storage_commit_batch_size_sum"]


def write_stats(log):
    lines = [json.loads(l) for l in log.splitlines() if l.startswith("{") and '"msg":"writes"' in l]
    return lines[-1] if lines else None


class GroupCommitTest(unittest.TestCase):
    def start(self, *args):
        srv = Server(args=list(args)).start()
        self.addCleanup(srv.cleanup)
        return srv

    def lock(self, srv):
        lock = WriteLock(srv.db)
        self.addCleanup(lock.release)
        return lock

    def user(self, n, email, **kw):
        body = {"firstname": "Group%d" % n, "lastname": "Commit", "gender": "F", "dob": "1990-01-01",
                "email": email}
        body.update(kw)
        return body

    def emails(self, srv, token):
        r = srv.request("GET", USERS, token=token)
        self.assertEqual(r.status, 200, r)
        return sorted(u["email"] for u in r.json["users"])

    def test_a_batch_answers_each_write_on_its_own_and_a_full_queue_refuses(self):
        queue = 12
        srv = self.start("--write-queue", str(queue))
        tok = make_token("4400000000000001")
        r = srv.request("POST", "/cdr/v1/doctor/", {"firstname": "Doc", "lastname": "Tor", "gender": "M"},
                        token=tok)
        self.assertEqual(r.status, 201, r)
        doctor = r.json["ekaid"]
        existing = ["old%d@example.com" % i for i in range(4)]
        for i, e in enumerate(existing):
            self.assertEqual(srv.request("POST", USERS, self.user(i, e), token=tok).status, 201)

        # 16 creates: 4 new (201), 4 taking an existing email (409), 4 naming a doctor that
        # does not exist (400), and 2 pairs that share a new email (one 201, one 409).
        reqs = []
        for i in range(4):
            reqs.append(("new", self.user(100 + i, "new%d@example.com" % i, doctor_ids=[doctor])))
        for i in range(4):
            reqs.append(("taken", self.user(200 + i, existing[i])))
        for i in range(4):
            reqs.append(("badlink", self.user(300 + i, "bad%d@example.com" % i, doctor_ids=[MISSING_DOCTOR])))
        for i in range(4):
            reqs.append(("pair%d" % (i // 2), self.user(400 + i, "pair%d@example.com" % (i // 2))))
        refused = len(reqs) - queue

        commits_before = commit_metrics(srv, tok)
        lock = self.lock(srv)
        flight = Flight(srv)
        for i, (_, body) in enumerate(reqs):
            flight.send(i, "POST", USERS, body, tok)
        # While the writer waits for the lock, `queue` writes wait and the rest are refused at
        # once: the first answers are those refusals, and then every other write is queued.
        first = flight.wait_for(refused)
        self.assertEqual(len(first), refused)
        lock.release()
        answers = dict(flight.wait_for(len(reqs)))
        flight.join()

        for i, r in first:
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json, {"status": "error", "message": BUSY})
            self.assertEqual(r.headers.get("retry-after"), "1")
        queued = [i for i in range(len(reqs)) if i not in dict(first)]
        self.assertEqual(len(queued), queue)
        created = set()
        pairs = {}
        for i in queued:
            kind, body = reqs[i]
            r = answers[i]
            if kind == "new":
                self.assertEqual(r.status, 201, r)
                created.add(body["email"])
            elif kind == "taken":
                self.assertEqual(r.status, 409, r)
                self.assertEqual(r.json, {"status": "error", "message": "email already in use"})
            elif kind == "badlink":
                self.assertEqual(r.status, 400, r)
                self.assertIn(MISSING_DOCTOR, json.dumps(r.json))
            else:
                pairs.setdefault(kind, []).append(r)
        for kind, rs in pairs.items():
            # whichever of a pair came first in the batch wins; the other sees its email taken
            statuses = sorted(r.status for r in rs)
            self.assertEqual(statuses, [201] if len(rs) == 1 else [201, 409], rs)
            created.add("%s@example.com" % kind)
        # One commit made all of the batch's 201s durable (the metrics count it so).
        commits, units = commit_metrics(srv, tok)
        n201 = sum(1 for i in queued if answers[i].status == 201)
        self.assertEqual((commits - commits_before[0], units - commits_before[1]), (1, n201))
        # Exactly the writes answered 201 are stored, with their links; nothing else is.
        self.assertEqual(self.emails(srv, tok), sorted(existing + list(created)))
        for i in queued:
            r = answers[i]
            if r.status == 201:
                got = srv.request("GET", USERS + r.json["ekaid"] + "/", token=tok)
                self.assertEqual(got.status, 200, got)
                self.assertEqual(got.json["user"]["email"], reqs[i][1]["email"])
                want = reqs[i][1].get("doctor_ids", [])
                self.assertEqual([d["id"] for d in got.json["user"].get("doctors", [])], want)
        # The queued writes ran as one transaction, and stayed after a restart.
        srv.restart()
        self.assertEqual(self.emails(srv, tok), sorted(existing + list(created)))
        self.assertEqual(srv.stop(), 0)
        stats = write_stats(srv.log())
        self.assertIsNotNone(stats, srv.log()[-2000:])
        self.assertGreaterEqual(stats["max_batch"], queue, stats)

    def test_reads_are_served_while_writes_wait(self):
        # One connection thread: a write waiting for the disk must not hold it.
        srv = self.start("--threads", "1")
        tok = make_token("4400000000000002")
        r = srv.request("POST", USERS, self.user(1, "first@example.com"), token=tok)
        self.assertEqual(r.status, 201, r)
        uid = r.json["ekaid"]
        lock = self.lock(srv)
        flight = Flight(srv)
        flight.send(0, "POST", USERS, self.user(2, "second@example.com"), tok)
        flight.send(1, "PATCH", USERS + uid + "/", {"lastname": "Waiting"}, tok)
        for _ in range(5):
            got = srv.request("GET", USERS + uid + "/", token=tok)
            self.assertEqual(got.status, 200, got)
            self.assertEqual(got.json["user"]["lastname"], "Commit")
        self.assertEqual(flight.answers, [])  # the writes cannot have finished: the lock is held
        lock.release()
        answers = dict(flight.wait_for(2))
        self.assertEqual(answers[0].status, 201, answers[0])
        self.assertEqual(answers[1].status, 200, answers[1])
        got = srv.request("GET", USERS + uid + "/", token=tok)
        self.assertEqual(got.json["user"]["lastname"], "Waiting")

    def test_a_stop_lets_waiting_writes_finish(self):
        srv = self.start("--write-queue", "3")
        tok = make_token("4400000000000003")
        lock = self.lock(srv)
        flight = Flight(srv)
        for i in range(4):
            flight.send(i, "POST", USERS, self.user(i, "stop%d@example.com" % i), tok)
        first = flight.wait_for(1)  # the queue is full: the other three wait
        self.assertEqual(first[0][1].status, 503, first)
        srv.proc.send_signal(signal.SIGTERM)
        lock.release()
        answers = dict(flight.wait_for(4))
        waited = [i for i in answers if i != first[0][0]]
        for i in waited:
            self.assertEqual(answers[i].status, 201, answers[i])
        srv.proc.wait(timeout=WAIT)
        self.assertEqual(srv.stop(), 0, srv.log()[-2000:])
        srv.start()
        self.assertEqual(self.emails(srv, tok), sorted("stop%d@example.com" % i for i in waited))

    def test_bad_write_queue_values_refused(self):
        with tempfile.TemporaryDirectory(prefix="hipusers-wq-") as d:
            db = os.path.join(d, "sub", "x.db")
            for bad in ("0", "-1", "abc", "100001", ""):
                r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:1", "--db", db, "--write-queue", bad],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 2, (bad, r.stderr))
                self.assertIn("--write-queue 1..100000", r.stderr)
                self.assertFalse(os.path.exists(os.path.dirname(db)), "something was created for %r" % bad)


if __name__ == "__main__":
    unittest.main()
