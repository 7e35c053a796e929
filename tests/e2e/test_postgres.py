"""PostgreSQL as an operator meets it: the signing secret must be given, `hipusers migrate`,
a bounded pool of connections, and a database that goes away and comes back (503 with
Retry-After meanwhile, no restart needed). Runs only with HIPUSERS_TEST_DB (ctest sets it
for the e2e-pg variants): without PostgreSQL there is nothing here to test, and it says so
by failing rather than passing empty.
"""
import concurrent.futures
import os
import re
import subprocess
import tempfile
import time
import unittest

from harness import BACKEND, BIN, SECRET, Server, make_token, pg_url, psql

TOKEN = make_token("7100000000000001")
# A token without client or session: the revocation lists are not consulted, so a request
# with it reaches the handler's own unit of work.
PLAIN = make_token("7100000000000001", claims={"client_id": ""})


def setUpModule():
    if BACKEND != "postgresql":
        raise RuntimeError("test_postgres.py needs HIPUSERS_TEST_DB (a PostgreSQL URL or @FILE)")


def run(*args, env=None, timeout=60):
    e = dict(os.environ)
    e.pop("HIPUSERS_JWT_SECRET", None)
    e.pop("HIPUSERS_DB", None)
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=timeout)


class SecretTests(unittest.TestCase):
    def setUp(self):
        self.srv = Server(secret=None)
        self.srv.make_db()

    def tearDown(self):
        self.srv.cleanup()

    def test_serve_refuses_to_start_without_a_secret(self):
        r = run("serve", "--listen", "127.0.0.1:1", "--db", self.srv.db, timeout=30)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("HIPUSERS_JWT_SECRET", r.stderr)
        self.assertIn("--jwt-secret-file", r.stderr)
        r = run("token", "--b-id", "1", "--db", self.srv.db)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("--jwt-secret-file", r.stderr)

    def test_secret_file_and_its_previous(self):
        d = tempfile.mkdtemp(prefix="hipusers-pgsecret-")
        path = os.path.join(d, "secret")
        with open(path, "w") as f:
            f.write("file-secret-0123456789abcdef0123456789abcdef\n")
        with open(path + ".previous", "w") as f:
            f.write(SECRET + "\n")
        self.srv.args = ["--jwt-secret-file", path]
        self.srv.start()
        # the current secret signs (the CLI's token), the previous one still verifies
        r = run("token", "--b-id", "7100000000000002", "--db", self.srv.db, "--jwt-secret-file", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        mine = r.stdout.strip()
        self.assertEqual(self.srv.request("GET", "/cdr/v1/clinic/", token=mine).status, 200)
        self.assertEqual(self.srv.request("GET", "/cdr/v1/clinic/", token=make_token("7100000000000002")).status, 200)
        self.assertEqual(self.srv.request("GET", "/cdr/v1/clinic/",
                                          token=make_token("7100000000000002", secret="some-other")).status, 401)
        os.remove(path + ".previous")
        os.remove(path)
        os.rmdir(d)

    def test_unreadable_secret_file_refused(self):
        r = run("serve", "--listen", "127.0.0.1:1", "--db", self.srv.db, "--jwt-secret-file", "/nonexistent/secret")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("/nonexistent/secret", r.stderr)


class MigrateTests(unittest.TestCase):
    def setUp(self):
        self.srv = Server()
        self.srv.make_db()

    def tearDown(self):
        self.srv.cleanup()

    def version(self):
        return self.srv.query("SELECT version FROM hipusers_schema")

    def migrate_ok(self, *args, **kw):
        """Runs migrate; returns the schema version it reports (as the table's text)."""
        r = run("migrate", *args, **kw)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r": schema version (\d+)\n$", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertGreaterEqual(int(m.group(1)), 5)  # every migration up to the link orders
        return m.group(1)

    def test_migrate_a_fresh_database_then_again(self):
        latest = self.migrate_ok("--db", self.srv.db)
        self.assertEqual(self.version(), [(latest,)])
        tables = {t for (t,) in self.srv.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        self.assertTrue({"ekauser", "doctor", "clinic", "business", "client", "session", "refresh_token"} <= tables)
        self.assertEqual(self.migrate_ok(env={"HIPUSERS_DB": self.srv.db}), latest)
        self.assertEqual(self.version(), [(latest,)])
        # the server on the migrated database serves
        self.srv.start()
        r = self.srv.request("POST", "/cdr/v1/clinic/", body={"name": "M", "address": "x"}, token=TOKEN)
        self.assertEqual(r.status, 201, r)

    def test_concurrent_starters_take_turns(self):
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            results = list(ex.map(lambda _: run("migrate", "--db", self.srv.db), range(6)))
        for r in results:
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, results[0].stdout)
        self.assertEqual(self.version(), [(results[0].stdout.rsplit(" ", 1)[1].strip(),)])

    def test_a_newer_schema_is_refused(self):
        self.migrate_ok("--db", self.srv.db)
        self.srv.query("UPDATE hipusers_schema SET version = 99")
        r = run("migrate", "--db", self.srv.db)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("newer hipusers", r.stderr)
        r = run("serve", "--listen", "127.0.0.1:1", "--db", self.srv.db, env={"HIPUSERS_JWT_SECRET": SECRET})
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("newer hipusers", r.stderr)

    def test_password_never_printed(self):
        bad = pg_url("postgres").replace("postgresql://", "postgresql://hipuser:pw-s3cret@")
        bad = bad.replace("/postgres?", "/no_such_database_here?") + "&password=other-s3cret"
        r = run("migrate", "--db", bad)
        self.assertEqual(r.returncode, 1, r)
        self.assertNotIn("pw-s3cret", r.stderr + r.stdout)
        self.assertNotIn("other-s3cret", r.stderr + r.stdout)
        self.assertIn("cannot connect to PostgreSQL", r.stderr)


class ConnectionTests(unittest.TestCase):
    def setUp(self):
        self.srv = Server(args=["--threads", "2"]).start()

    def tearDown(self):
        psql(pg_url("postgres"), 'ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % self.srv.dbname)
        self.srv.cleanup()

    def backends(self):
        return psql(pg_url("postgres"), "SELECT pid FROM pg_stat_activity WHERE datname = '%s'"
                                        " AND application_name = 'hipusers'" % self.srv.dbname)

    def terminate(self):
        psql(pg_url("postgres"), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
                                 " AND application_name = 'hipusers'" % self.srv.dbname)
        deadline = time.time() + 10
        while self.backends() and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.backends(), [])

    def create(self, name):
        return self.srv.request("POST", "/cdr/v1/clinic/", body={"name": name, "address": "x"}, token=TOKEN)

    def test_pool_is_bounded_by_the_threads(self):
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            statuses = list(ex.map(lambda i: self.create("P%d" % i).status, range(64)))
        self.assertEqual(statuses, [201] * 64)
        self.assertLessEqual(len(self.backends()), 2)
        r = self.srv.request("GET", "/cdr/v1/clinic/", token=TOKEN)
        self.assertEqual(len(r.json["clinics"]), 64)

    def test_lost_connections_are_replaced_unnoticed(self):
        self.assertEqual(self.create("before").status, 201)
        self.terminate()  # e.g. the database restarted, or an idle timeout
        r = self.srv.request("GET", "/cdr/v1/clinic/", token=TOKEN)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([c["name"] for c in r.json["clinics"]], ["before"])
        self.assertEqual(self.create("after").status, 201)

    def test_database_away_is_503_then_back_without_restart(self):
        uid = self.create("kept").json["ekaid"]
        psql(pg_url("postgres"), 'ALTER DATABASE "%s" ALLOW_CONNECTIONS false' % self.srv.dbname)
        self.terminate()
        for tok in (PLAIN, TOKEN):  # the handlers' units, and the revocation check (fails closed)
            for method, path, body in (("GET", "/cdr/v1/clinic/", None), ("GET", "/cdr/v1/clinic/%s/" % uid, None),
                                       ("POST", "/cdr/v1/clinic/", {"name": "lost", "address": "x"}),
                                       ("PATCH", "/cdr/v1/clinic/%s/" % uid, {"name": "lost"}),
                                       ("GET", "/cdr/v1/get_business_info/", None)):
                r = self.srv.request(method, path, body=body, token=tok)
                self.assertEqual(r.status, 503, (method, path, r))
                self.assertEqual(r.json["status"], "error")
                self.assertIn("retry-after", r.headers)
        r = self.srv.request("POST", "/connect-auth/v1/account/login", body={"client_id": "EC_x", "client_secret": "y"})
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json["code"], 503)
        self.assertEqual(self.srv.proc.poll(), None)  # still serving
        psql(pg_url("postgres"), 'ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % self.srv.dbname)
        # served again without a restart; until then (the revocation reload's back-off, at
        # most 1 s, when the outage outlived the revocation snapshot) 503 with Retry-After
        deadline = time.monotonic() + 30
        while True:
            r = self.srv.request("GET", "/cdr/v1/clinic/", token=TOKEN)
            if r.status != 503 or time.monotonic() > deadline:
                break
            self.assertIn("retry-after", r.headers)
            time.sleep(0.02)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([c["name"] for c in r.json["clinics"]], ["kept"])  # nothing half-written
        self.assertEqual(self.create("again").status, 201)
        r = self.srv.request("GET", "/cdr/v1/clinic/", token=PLAIN)
        self.assertEqual([c["name"] for c in r.json["clinics"]], ["kept", "again"])


if __name__ == "__main__":
    unittest.main()
