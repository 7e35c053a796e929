"""The login throttle shared by the servers of one PostgreSQL database (issue 8): two `serve`
processes on the same database and signing secret count failed logins together. Failures
sent alternately to both lock the client id at that address after 10 in total (not 10 per
server), on both servers; attempts running on both at once never get past the limit; another
address is not locked; and the lock outlives a restart of both servers, since it lives in the
database. Runs only with HIPUSERS_TEST_DB (ctest's e2e-pg variant): with SQLite there is one
server per database file, and nothing here to test.
"""
import json
import os
import threading
import unittest

from harness import BACKEND, Server

LOGIN = "/connect-auth/v1/account/login"
PROXY = ["--trusted-proxy", "127.0.0.1/32"]  # the tests are the proxy: X-Forwarded-For names the client
BAD_CREDS = {"code": 401, "error": "invalid client credentials"}


def setUpModule():
    if BACKEND != "postgresql":
        raise RuntimeError("test_throttle_shared.py needs HIPUSERS_TEST_DB (a PostgreSQL URL or @FILE)")


_addr = iter(range(1, 60000))


def fake_addr():
    """An address of its own for each caller, from 198.18.0.0/15 (RFC 2544: no real client)."""
    n = next(_addr)
    return "198.18.%d.%d" % (n // 256 % 256, n % 256)


def login(srv, cid, secret, addr):
    return srv.request("POST", LOGIN, {"client_id": cid, "client_secret": secret},
                       headers={"X-Forwarded-For": addr})


def parallel(fn, n):
    """fn(0..n-1) on n threads released together; the results in order."""
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


class SharedThrottleTests(unittest.TestCase):
    def setUp(self):
        # the same data directory: the same database; the same (default) signing secret
        self.a = Server(args=PROXY + ["--threads", "8"])
        self.b = Server(args=PROXY + ["--threads", "8"], data_dir=self.a.data_dir)
        self.assertEqual(self.a.db, self.b.db)
        self.assertEqual(self.a.secret, self.b.secret)
        self.b.stderr_path = os.path.join(self.a.data_dir, "stderr-b.log")
        self.a.start()
        self.b.start()
        self.servers = (self.a, self.b)
        r = self.a.cli("business", "create", "--name", "Shared throttle")
        self.assertEqual(r.returncode, 0, r)
        b_id = r.stdout.strip()
        self.cid, self.sec = self.new_client(b_id)
        self.other_cid, self.other_sec = self.new_client(b_id)

    def tearDown(self):
        self.b.cleanup()  # not its own directory: leaves the database to a
        self.a.cleanup()

    def new_client(self, b_id):
        r = self.a.cli("client", "create", "--b-id", b_id)
        self.assertEqual(r.returncode, 0, r)
        kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
        return kv["client_id"].strip(), kv["client_secret"].strip()

    def assertBadCreds(self, r):
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json, BAD_CREDS, r)

    def assertThrottled(self, r):
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json.get("code"), 429, r)
        self.assertIsInstance(r.json.get("error"), str, r)
        self.assertNotIn("access_token", r.json)
        ra = r.headers.get("retry-after", "")
        self.assertRegex(ra, r"^\d+$", r.headers)
        self.assertTrue(1 <= int(ra) <= 60, ra)
        return int(ra)

    def assertTokenPair(self, r):
        self.assertEqual(r.status, 200, r)
        self.assertIn("access_token", r.json)
        self.assertIn("refresh_token", r.json)

    def fail_alternately(self, addr, n=10):
        for i in range(n):
            self.assertBadCreds(login(self.servers[i % 2], self.cid, "wrong-%d" % i, addr))

    def test_failures_on_both_servers_count_together(self):
        here, elsewhere = fake_addr(), fake_addr()
        # 5 on each server: each under the limit of 10 alone, the limit in total
        self.fail_alternately(here)
        # locked on both servers, even with the right secret
        for srv in self.servers:
            self.assertThrottled(login(srv, self.cid, self.sec, here))
            self.assertThrottled(login(srv, self.cid, "wrong-again", here))
        # the same client id from another address logs in, on either server
        for srv in self.servers:
            self.assertTokenPair(login(srv, self.cid, self.sec, elsewhere))
        # another client id from the locked address too
        self.assertTokenPair(login(self.b, self.other_cid, self.other_sec, here))
        # and the lock holds
        for srv in self.servers:
            self.assertThrottled(login(srv, self.cid, self.sec, here))
        # what the database keeps names neither the client id nor the address
        rows = self.a.query("SELECT key, failures FROM login_throttle")
        self.assertTrue(rows)
        for key, _ in rows:
            self.assertRegex(key, r"^[0-9a-f]{32}$")
        cells = json.dumps(rows)
        for raw in (self.cid, here, elsewhere):
            self.assertNotIn(raw, cells)
        self.assertIn("10", [f for _, f in rows])  # the pair's 10 failures, counted once

    def test_attempts_at_once_on_both_servers_never_pass_the_limit(self):
        here = fake_addr()
        rs = parallel(lambda i: login(self.servers[i % 2], self.cid, "wrong-%d" % i, here), 20)
        statuses = sorted(getattr(r, "status", repr(r)) for r in rs)
        self.assertEqual(statuses, [401] * 10 + [429] * 10, statuses)
        for r in rs:
            if r.status == 429:
                self.assertThrottled(r)
            else:
                self.assertBadCreds(r)
        for srv in self.servers:
            self.assertThrottled(login(srv, self.cid, self.sec, here))

    def test_lock_outlives_a_restart_of_both_servers(self):
        here, elsewhere = fake_addr(), fake_addr()
        self.fail_alternately(here)
        before = self.assertThrottled(login(self.a, self.cid, self.sec, here))
        self.a.stop()
        self.b.stop()
        self.a.start()
        self.b.start()
        for srv in self.servers:
            self.assertLessEqual(self.assertThrottled(login(srv, self.cid, self.sec, here)), before)
        self.assertTokenPair(login(self.a, self.cid, self.sec, elsewhere))


if __name__ == "__main__":
    unittest.main()
