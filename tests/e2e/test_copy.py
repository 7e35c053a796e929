"""`hipusers copy --from SQLITE --to postgresql://...` (issue 8): a SQLite deployment built
through the API and the CLI (two businesses, API clients, a sharing key, logins and a refresh,
users, doctors and clinics with links, PATCHes, soft deletes, an idempotent create) is copied
to a fresh PostgreSQL database, and a server on it answers everything as the SQLite one did:
every record and its ETag, lists page by page with their cursors, links in their order,
histories and the change feed; a refresh token from before the copy refreshes; writes go on
(new ids, the feed's next numbers, a deleted record's partner_id taken again). A target that
holds data is refused and left as it was; a copy that fails mid-way (a row the target refuses,
the connection killed) leaves the target empty; a copy runs while a server writes to the
source; the progress bar shows on a terminal only.

PostgreSQL only (ctest runs it as e2e-pg/test_copy): without HIPUSERS_TEST_DB it fails.
"""
import json
import os
import pty
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from harness import BACKEND, BIN, SECRET, Server, _psql_bin, pg_url, psql

LOGIN = "/connect-auth/v1/account/login"
REFRESH = "/connect-auth/v1/account/refresh-token"
KINDS = {"clinic": "clinics", "doctor": "doctors", "ekauser": "users"}


def setUpModule():
    if BACKEND != "postgresql":
        raise RuntimeError("test_copy.py needs HIPUSERS_TEST_DB (a PostgreSQL URL or @FILE)")


class SqliteServer(Server):
    """A server on a SQLite file, whatever HIPUSERS_TEST_DB says: the copy's source."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.db = os.path.join(self.data_dir, "hipusers.db")

    def make_db(self):
        pass

    def drop_db(self):
        pass

    def query(self, sql):
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            return [tuple(r) for r in conn.execute(sql)]
        finally:
            conn.close()


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("HIPUSERS_")}
    e["HIPUSERS_BIN"] = BIN
    return e


def sane(stderr):
    """Fails on a sanitizer's report (the ASan build runs these tests too)."""
    Server.check_clean(stderr, None)
    return stderr


def copy(src, dst, *extra, timeout=300):
    r = subprocess.run([BIN, "copy", "--from", src, "--to", dst, *extra], capture_output=True, text=True,
                       env=env(), timeout=timeout)
    sane(r.stderr)
    return r


def cli(db, *args):
    e = env()
    e["HIPUSERS_JWT_SECRET"] = SECRET
    e["HIPUSERS_DB"] = db
    r = subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=60)
    assert r.returncode == 0, r
    return r.stdout


def kv(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def tables(url):
    return sorted(r[0] for r in psql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))


def dump(url):
    """Every row of every table of the target (but its schema version), as sorted JSON."""
    out = {}
    for t in tables(url):
        if t != "hipusers_schema":
            out[t] = sorted(r[0] for r in psql(url, 'SELECT row_to_json(t)::text FROM "%s" t' % t))
    return out


def poll(fn, timeout=60.0, step=0.05):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


def ok(r, status=200):
    assert r.status == status, r
    return r.json


def create(srv, tok, kind, body, headers=None):
    r = srv.request("POST", "/cdr/v1/%s/" % kind, body, token=tok, headers=headers)
    return ok(r, 201)["ekaid"]


def q(ident):
    return urllib.parse.quote(ident, safe="")


def view(srv, tok, ids):
    """What a business's API user sees: every list whole and page by page (with cursors),
    every record (body and ETag; 404 for the deleted), every history, the feed whole and
    page by page, the business. "KIND cursors" are the lists' cursors, one per page but the last."""
    v = {"business": ok(srv.request("GET", "/cdr/v1/get_business_info/", token=tok)),
         "hipusers": ok(srv.request("GET", "/cdr/v1/hipusers/", token=tok))}
    for kind in KINDS:
        v[kind] = ok(srv.request("GET", "/cdr/v1/%s/" % kind, token=tok))
        pages, cursor, cursors = [], None, []
        while True:
            r = ok(srv.request("GET", "/cdr/v1/%s/?limit=2%s" % (kind, "&cursor=" + q(cursor) if cursor else ""),
                               token=tok))
            cursor = r.get("next_cursor")
            if cursor:  # sealed with a fresh nonce each time: kept aside, to be opened by the other server
                r["next_cursor"] = "(present)"
                cursors.append(cursor)
            pages.append(r)
            if not cursor:
                break
        v[kind + " pages"] = pages
        v[kind + " cursors"] = cursors
    for kind, ident in ids:
        r = srv.request("GET", "/cdr/v1/%s/%s/" % (kind, q(ident)), token=tok)
        v["%s %s" % (kind, ident)] = (r.status, r.json, r.headers.get("etag"))
        r = srv.request("GET", "/cdr/v1/%s/%s/history" % (kind, q(ident)), token=tok)
        v["%s %s history" % (kind, ident)] = (r.status, r.json)
    v["feed"] = ok(srv.request("GET", "/cdr/v1/changes/", token=tok))
    pages, after = [], 0
    while True:
        r = ok(srv.request("GET", "/cdr/v1/changes/?after=%d&limit=3" % after, token=tok))
        pages.append(r)
        if not r["changes"]:
            break
        after = r["next_after"]
    v["feed pages"] = pages
    return v


class CopyTests(unittest.TestCase):
    """One SQLite deployment, built once, stopped, and copied by each test to a target of its own."""

    @classmethod
    def setUpClass(cls):
        cls.src = SqliteServer(secret=None).start()  # it makes its own secret, as after `make run`
        s, db = cls.src, cls.src.db
        cls.b1 = cli(db, "business", "create", "--name", "Sunrise Health").strip()
        cls.b2 = cli(db, "business", "create", "--name", "Nightfall Clinics").strip()
        c1, c2 = kv(cli(db, "client", "create", "--b-id", cls.b1)), kv(cli(db, "client", "create", "--b-id", cls.b2))
        cls.client1, cls.secret1 = c1["client_id"], c1["client_secret"]
        cls.client2, cls.secret2 = c2["client_id"], c2["client_secret"]
        cls.sharing_key = kv(cli(db, "sharing-key", "create", "--b-id", cls.b1))["sharing_key"]
        # logins: business 1's refreshed once (its first refresh token spent), business 2's not
        first = ok(s.request("POST", LOGIN, {"client_id": cls.client1, "client_secret": cls.secret1}))
        pair = ok(s.request("POST", REFRESH, {"refresh_token": first["refresh_token"]},
                            headers={"Authorization": "Bearer " + first["access_token"], "Client-Id": cls.client1}))
        cls.tok1, cls.refresh1 = pair["access_token"], pair["refresh_token"]
        cls.tok2 = ok(s.request("POST", LOGIN, {"client_id": cls.client2, "client_secret": cls.secret2}))[
            "access_token"]

        t, ids = cls.tok1, []
        c = [create(s, t, "clinic", {"name": "Clinic %d" % i, "address": "%d Main Road" % i}) for i in range(3)]
        c.append(create(s, t, "clinic", {"name": 'Clínica "Ünï" 東京 \\ back', "address": "Tab\\tnot, 5th cross",
                                         "partner_id": "CL-3", "city": "Pune"}))
        d = [create(s, t, "doctor", {"firstname": "Doc", "lastname": "One", "gender": "M",
                                     "clinic_ids": [c[0], c[1]]}),
             create(s, t, "doctor", {"firstname": "Doc", "lastname": "Two", "gender": "F", "clinic_ids": [c[1]],
                                     "partner_id": "D-2"}),
             create(s, t, "doctor", {"firstname": "Doc", "lastname": "Three", "gender": "O"})]
        u = [create(s, t, "ekauser", {"firstname": "Amit", "lastname": "Kumar", "gender": "M", "dob": "1990-05-15",
                                      "mobile": "9000000001", "doctor_ids": [d[1], d[0]], "clinic_ids": [c[3], c[0]],
                                      "partner_id": "U-1"}),
             create(s, t, "ekauser", {"firstname": "Gone", "lastname": "Soon", "gender": "F", "dob": "1991-01-01",
                                      "email": "gone@example.in", "doctor_ids": [d[0]], "partner_id": "U-DEL"}),
             create(s, t, "ekauser", {"firstname": "Third", "lastname": "User", "gender": "O", "dob": "1992-02-02",
                                      "auth_userid": "auth-3"})]
        ok(s.request("PATCH", "/cdr/v1/ekauser/%s/" % u[0], {"is_admin": True, "seat_type": "p"}, token=t))
        ok(s.request("PATCH", "/cdr/v1/doctor/%s/" % d[0], {"about": "Line one \\ line two", "clinic_ids": [c[2], c[0]]},
                     token=t))
        ok(s.request("PATCH", "/cdr/v1/clinic/%s/" % c[1], {"pincode": "560001"}, token=t))
        ok(s.request("DELETE", "/cdr/v1/ekauser/%s/" % u[1], token=t))
        ok(s.request("DELETE", "/cdr/v1/clinic/%s/" % c[2], token=t))
        cls.idem_body = {"name": "Idempotent Clinic", "address": "1 Retry Lane"}
        r = s.request("POST", "/cdr/v1/clinic/", cls.idem_body, token=t, headers={"Idempotency-Key": "idem-1"})
        cls.idem = (r.status, r.json)
        c.append(r.json["ekaid"])
        ids = [("clinic", x) for x in c] + [("doctor", x) for x in d] + [("ekauser", x) for x in u]
        ids += [("ekauser", "U-1"), ("clinic", "CL-3"), ("ekauser", "U-DEL")]
        e1 = create(s, cls.tok2, "clinic", {"name": "Other Clinic", "address": "2 Far Street", "partner_id": "CL-3"})
        v1 = create(s, cls.tok2, "ekauser", {"firstname": "Vee", "lastname": "One", "gender": "F", "dob": "1980-03-03",
                                             "mobile": "9000000001", "clinic_ids": [e1]})
        ok(s.request("DELETE", "/cdr/v1/ekauser/%s/" % v1, token=cls.tok2))
        cls.ids1, cls.ids2 = ids, [("clinic", e1), ("ekauser", v1), ("clinic", "CL-3")]
        cls.view1, cls.view2 = view(s, cls.tok1, cls.ids1), view(s, cls.tok2, cls.ids2)
        cls.rows = {t: s.query('SELECT count(*) FROM "%s"' % t)[0][0]
                    for (t,) in s.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert s.stop() == 0

    @classmethod
    def tearDownClass(cls):
        cls.src.cleanup()

    def setUp(self):
        self.targets = []

    def tearDown(self):
        for t in self.targets:
            t.cleanup()

    def target(self, **kw):
        """A server's fresh, empty PostgreSQL database (dropped after the test)."""
        t = Server(**kw)
        t.make_db()
        self.targets.append(t)
        return t

    def assertEmpty(self, url):
        d = dump(url)
        self.assertIn("ekauser", d)  # the schema is there (migrated), with no rows
        self.assertEqual({t: rows for t, rows in d.items() if rows}, {})

    def test_everything_reads_the_same_and_writes_go_on(self):
        # served with the secret the SQLite server made for itself, as the README says
        dst = self.target(secret=None, args=["--jwt-secret-file", os.path.join(self.src.data_dir, "jwt-secret")])
        r = copy(self.src.db, dst.db)
        self.assertEqual(r.returncode, 0, r.stderr)
        # the summary: each table with its rows, the tables with a b_id with their businesses
        for t, n in self.rows.items():
            self.assertRegex(r.stdout, r"(?m)^%s +%d +(\d+|-)$" % (t, n))
        self.assertRegex(r.stdout, r"(?m)^ekauser +4 +2$")
        self.assertRegex(r.stdout, r"(?m)^business +2 +2$")
        self.assertIn("rows per table and per business verified; committed", r.stdout)
        self.assertEqual(r.stdout.count(self.src.db), 1)
        # no progress bar off a terminal: one line per table
        self.assertNotIn("\r", r.stderr)
        self.assertNotIn("\x1b", r.stderr)
        self.assertEqual(sorted(re.findall(r"(?m)^copy: (\w+): (\d+) rows in ", r.stderr)),
                         sorted((t, str(n)) for t, n in self.rows.items()))
        self.assertEqual(psql(dst.db, "SELECT version FROM hipusers_schema"),
                         [(str(self.src.query("PRAGMA user_version")[0][0]),)])
        # PostgreSQL's id registry (ids unique over all businesses) holds every copied record
        registry = sorted(psql(dst.db, "SELECT id, resource, b_id FROM eka_id"))
        records = sorted(r for t in ("ekauser", "doctor", "clinic")
                         for r in psql(dst.db, "SELECT id, '%s', b_id FROM %s" % (t, t)))
        self.assertEqual(registry, records)
        self.assertTrue(records)
        # the filled tables were analyzed: the servers' first plans see their sizes
        self.assertEqual(psql(dst.db, "SELECT reltuples::bigint FROM pg_class WHERE relname = 'ekauser'"),
                         [(str(self.rows["ekauser"]),)])

        dst.start()
        for tok, ids, before in ((self.tok1, self.ids1, self.view1), (self.tok2, self.ids2, self.view2)):
            after = view(dst, tok, ids)
            self.assertEqual(set(after), set(before))
            for key in before:
                if not key.endswith(" cursors"):
                    self.assertEqual(after[key], before[key], key)
            # a cursor handed out before the copy goes on where it stopped
            for kind in KINDS:
                pages = before[kind + " pages"]
                self.assertEqual(len(before[kind + " cursors"]), len(pages) - 1)
                for i, cursor in enumerate(before[kind + " cursors"]):
                    r = ok(dst.request("GET", "/cdr/v1/%s/?limit=2&cursor=%s" % (kind, q(cursor)), token=tok))
                    if "next_cursor" in r:
                        r["next_cursor"] = "(present)"
                    self.assertEqual(r, pages[i + 1], kind)
        # 4 live clinics (pages of 2 and 2), 3 doctors (2 and 1): a cursor each was tried
        self.assertEqual((len(self.view1["clinic cursors"]), len(self.view1["doctor cursors"])), (1, 1))

        # the login: the refresh token from before the copy refreshes, the clients log in
        pair = ok(dst.request("POST", REFRESH, {"refresh_token": self.refresh1},
                              headers={"Authorization": "Bearer " + self.tok1, "Client-Id": self.client1}))
        self.assertEqual(ok(dst.request("GET", "/cdr/v1/get_business_info/", token=pair["access_token"]))["bid"],
                         self.b1)
        ok(dst.request("POST", LOGIN, {"client_id": self.client2, "client_secret": self.secret2}))
        shared = ok(dst.request("POST", LOGIN, {"client_id": self.client2, "client_secret": self.secret2,
                                                "sharing_key": self.sharing_key}))
        self.assertEqual(ok(dst.request("GET", "/cdr/v1/get_business_info/", token=shared["access_token"]))["bid"],
                         self.b1)

        # the idempotent create replays its answer and creates nothing
        r = dst.request("POST", "/cdr/v1/clinic/", self.idem_body, token=self.tok1, headers={"Idempotency-Key": "idem-1"})
        self.assertEqual((r.status, r.json), self.idem)
        self.assertEqual(r.headers.get("idempotent-replayed"), "true")
        self.assertEqual(ok(dst.request("GET", "/cdr/v1/clinic/", token=self.tok1)), self.view1["clinic"])

        # writes go on: new ids after the copied ones, the feed's next numbers, a deleted
        # record's partner_id taken again, links appended after the copied ones
        t = self.tok1
        last = self.view1["feed"]["changes"][-1]["seq"]
        reused = create(dst, t, "ekauser", {"firstname": "New", "lastname": "Again", "gender": "F", "dob": "1995-01-01",
                                            "email": "gone@example.in", "partner_id": "U-DEL"})
        clinic = create(dst, t, "clinic", {"name": "New Clinic", "address": "9 New Road"})
        old_ids = {ident for _, ident in self.ids1 + self.ids2}
        self.assertNotIn(reused, old_ids)
        self.assertNotIn(clinic, old_ids)
        users = ok(dst.request("GET", "/cdr/v1/ekauser/", token=t))["users"]
        self.assertEqual([x["id"] for x in users], [x["id"] for x in self.view1["ekauser"]["users"]] + [reused])
        clinics = ok(dst.request("GET", "/cdr/v1/clinic/", token=t))["clinics"]
        self.assertEqual([x["id"] for x in clinics], [x["id"] for x in self.view1["clinic"]["clinics"]] + [clinic])
        self.assertEqual(ok(dst.request("GET", "/cdr/v1/ekauser/U-DEL/", token=t))["user"]["id"], reused)
        u1 = ok(dst.request("GET", "/cdr/v1/ekauser/U-1/", token=t))["user"]
        ok(dst.request("PATCH", "/cdr/v1/ekauser/U-1/", {"clinic_ids": [x["id"] for x in u1["clinics"]] + [clinic]},
                       token=t))
        self.assertEqual([x["id"] for x in ok(dst.request("GET", "/cdr/v1/ekauser/U-1/", token=t))["user"]["clinics"]],
                         [x["id"] for x in u1["clinics"]] + [clinic])
        feed = ok(dst.request("GET", "/cdr/v1/changes/?after=%d" % last, token=t))["changes"]
        self.assertEqual([(x["seq"], x["action"]) for x in feed][:2], [(last + 1, "create"), (last + 2, "create")])
        self.assertEqual(ok(dst.request("GET", "/cdr/v1/changes/", token=self.tok2)), self.view2["feed"])
        # and after a restart, the same
        now = [ok(dst.request("GET", "/cdr/v1/%s/" % kind, token=t)) for kind in KINDS]
        dst.restart()
        self.assertEqual([ok(dst.request("GET", "/cdr/v1/%s/" % kind, token=t)) for kind in KINDS], now)

    def test_a_target_with_data_is_refused_and_left_alone(self):
        dst = self.target()
        self.assertEqual(copy(self.src.db, dst.db).returncode, 0)
        copied = dump(dst.db)
        r = copy(self.src.db, dst.db)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("already holds data", r.stderr)
        self.assertIn("--replace", r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(dump(dst.db), copied)

        # a business made on the target alone is data too; --replace puts the source in its place
        other = self.target()
        b = cli(other.db, "business", "create", "--name", "Already Here").strip()
        before = dump(other.db)
        r = copy(self.src.db, other.db)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("already holds data (in business)", r.stderr)
        self.assertEqual(dump(other.db), before)
        r = copy(self.src.db, other.db, "--replace")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--replace: emptied business", r.stderr)
        self.assertEqual(dump(other.db), copied)
        self.assertNotIn(b, json.dumps(dump(other.db)))

    def test_a_row_the_target_refuses_rolls_everything_back(self):
        # a refresh token of a session that does not exist: SQLite kept it (no foreign key
        # checks outside the server), PostgreSQL's foreign key refuses it
        d = tempfile.mkdtemp(prefix="hipusers-copy-")
        self.addCleanup(shutil.rmtree, d, True)
        bad = os.path.join(d, "bad.db")
        cli(self.src.db, "backup", "--to", bad)
        with sqlite3.connect(bad) as conn:
            conn.execute("INSERT INTO refresh_token (token_hash, family, expires_at, created_at)"
                         " VALUES ('nohash', 'no-such-session', 1, 1)")
        conn.close()
        dst = self.target()
        r = copy(bad, dst.db)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("copying refresh_token failed", r.stderr)
        self.assertIn("foreign key", r.stderr)
        self.assertIn("rolled back", r.stderr)
        self.assertNotIn("no-such-session", r.stderr)  # values stay out of messages
        self.assertRegex(r.stderr, r"(?m)^copy: ekauser: 4 rows")  # tables before it went in, and back out
        self.assertEqual(r.stdout, "")
        self.assertEmpty(dst.db)

    def test_a_lost_connection_rolls_everything_back(self):
        dst = self.target()
        cli(dst.db, "migrate")
        # a transaction holding a lock the copy's COPY into change_log waits for (reads pass)
        locker = subprocess.Popen([_psql_bin(), "-X", "-q", "-d", dst.db], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            locker.stdin.write("BEGIN;\nLOCK TABLE change_log IN SHARE MODE;\n\\echo locked\n")
            locker.stdin.flush()
            self.assertEqual(locker.stdout.readline().strip(), "locked")
            cp = subprocess.Popen([BIN, "copy", "--from", self.src.db, "--to", dst.db], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env())
            try:
                def waiting():
                    self.assertIsNone(cp.poll(), "the copy ended before it reached change_log")
                    return psql(pg_url("postgres"),
                                "SELECT pid FROM pg_stat_activity WHERE application_name = 'hipusers copy'"
                                " AND datname = '%s' AND wait_event_type = 'Lock'" % dst.dbname)
                pid = poll(waiting)
                self.assertTrue(pid, "the copy never waited for change_log")
                psql(pg_url("postgres"), "SELECT pg_terminate_backend(%s)" % pid[0][0])
                out, err = cp.communicate(timeout=60)
                sane(err)
            finally:
                if cp.poll() is None:
                    cp.kill()
                    cp.wait()
        finally:
            locker.stdin.write("ROLLBACK;\n\\q\n")
            locker.stdin.close()
            locker.wait(30)
            locker.stdout.close()
            locker.stderr.close()
        self.assertEqual(cp.returncode, 1, err)
        self.assertIn("copying change_log failed", err)
        self.assertRegex(err, r"(?m)^copy: ekauser: 4 rows")
        self.assertEqual(out, "")
        self.assertEmpty(dst.db)
        # and the next copy into it goes through
        r = copy(self.src.db, dst.db)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_progress_bar_on_a_terminal(self):
        dst = self.target()
        master, slave = pty.openpty()
        p = subprocess.Popen([BIN, "copy", "--from", self.src.db, "--to", dst.db], stdout=subprocess.PIPE,
                             stderr=slave, env=env())
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        out = p.stdout.read().decode()
        p.stdout.close()
        self.assertEqual(p.wait(60), 0, seen)
        text = sane(seen.decode())
        for t, n in self.rows.items():
            self.assertRegex(text, r"\r%s +\[#{30}\] %d/%d rows" % (t, n, n))
        self.assertIn("rows/s", text)
        self.assertIn("\x1b[K", text)
        self.assertNotIn("copy: ekauser:", text)  # the bar, not the lines
        self.assertIn("verified; committed", out)

    def test_copy_while_a_server_writes_to_the_source(self):
        src = SqliteServer().start()
        self.addCleanup(src.cleanup)
        b = cli(src.db, "business", "create", "--name", "Busy").strip()
        tok = kv(cli(src.db, "client", "create", "--b-id", b))
        tok = ok(src.request("POST", LOGIN, {"client_id": tok["client_id"], "client_secret": tok["client_secret"]}))[
            "access_token"]
        for i in range(20):
            create(src, tok, "clinic", {"name": "Clinic %d" % i, "address": "Road %d" % i})
        stop, made = threading.Event(), []

        def writer():
            i = 0
            while not stop.is_set():
                i += 1
                made.append(create(src, tok, "clinic", {"name": "Busy %d" % i, "address": "Lane %d" % i}))

        w = threading.Thread(target=writer)
        w.start()
        try:
            self.assertTrue(poll(lambda: len(made) >= 5))
            dst = self.target()
            r = copy(src.db, dst.db)
            n = len(made)
            self.assertTrue(poll(lambda: len(made) >= n + 5))  # still writing after the copy
        finally:
            stop.set()
            w.join(60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # the target holds one moment of the source: every clinic with its feed entry, in order
        got = [x[0] for x in psql(dst.db, "SELECT id FROM clinic ORDER BY rid")]
        want = [x[0] for x in src.query("SELECT id FROM clinic ORDER BY rid")]
        self.assertGreaterEqual(len(got), 25)
        self.assertLess(len(got), len(want))
        self.assertEqual(got, want[:len(got)])
        self.assertEqual([x[0] for x in psql(dst.db, "SELECT id FROM change_log ORDER BY seq")], got)
        self.assertEqual(psql(dst.db, "SELECT last FROM change_seq"), [(str(len(got)),)])

    def test_usage_and_sources_it_refuses(self):
        dst = self.target()
        p = subprocess.run([BIN, "copy", "--help"], capture_output=True, text=True, env=env())
        self.assertEqual(p.returncode, 0)
        self.assertIn("--replace", p.stdout)
        p = subprocess.run([BIN, "--help"], capture_output=True, text=True, env=env())
        self.assertIn("copy --from SQLITE_DB --to POSTGRESQL_URL", p.stdout)
        self.assertEqual(subprocess.run([BIN, "copy", "--from", self.src.db], capture_output=True, env=env())
                         .returncode, 2)
        r = copy(dst.db, self.src.db)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("into a PostgreSQL one", r.stderr)
        r = copy("/nonexistent/hipusers.db", dst.db)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("/nonexistent/hipusers.db", r.stderr)
        # a source at an older schema version: migrate it first (nothing is read or written)
        d = tempfile.mkdtemp(prefix="hipusers-copy-")
        self.addCleanup(shutil.rmtree, d, True)
        old = os.path.join(d, "old.db")
        cli(self.src.db, "backup", "--to", old)
        with sqlite3.connect(old) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("PRAGMA user_version=%d" % (version - 1))
        conn.close()
        r = copy(old, dst.db)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("hipusers migrate --db %s" % old, r.stderr)
        self.assertEqual(tables(dst.db), [])  # the target was not even migrated
        # the password of the target's URL is never printed
        u = urllib.parse.urlsplit(dst.db)
        secret_url = urllib.parse.urlunsplit((u.scheme, "postgres:hunter2-secret@" + u.netloc, u.path, u.query, ""))
        r = copy(self.src.db, secret_url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("hunter2-secret", r.stdout + r.stderr)
        self.assertIn("***", r.stdout)


if __name__ == "__main__":
    unittest.main()
