"""End-to-end tests of the answers a server keeps for GET by id (serve --cache-mb, issue 9).

A kept answer is only ever what the database holds: after any write through the API (of the
record, or of a doctor or clinic it shows), after a write by another process on the same
SQLite file (`hipusers import` into a running server's database), under concurrent writers,
and never across tenants. Every check compares with what is stored: the list (never kept),
or a server started with --cache-mb 0. On PostgreSQL nothing is kept (other servers write the
database), which the hit counter shows.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BACKEND, BIN, SECRET, Server, ServerTestCase, make_token  # noqa: E402

T = "6600000000000066"
T_OTHER = "6700000000000067"


def counts(srv):
    r = srv.request("GET", "/metrics")
    text = r.raw.decode()
    out = {}
    for res in ("hit", "miss"):
        m = re.search(r'^hipusers_response_cache_lookups_total\{result="%s"\} (\d+)$' % res, text, re.M)
        out[res] = int(m.group(1))
    return out


class CacheTests(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = make_token(T)
        cls.t_other = make_token(T_OTHER)

    _n = 0

    def uniq(self):
        CacheTests._n += 1
        return "%d%04d" % (os.getpid() % 10000, CacheTests._n)

    def create(self, kind, body, tok=None):
        r = self.req("POST", "/cdr/v1/%s/" % kind, body, token=tok or self.t)
        self.assertEqual(r.status, 201, r)
        return r.json["ekaid"]

    def user(self, **kw):
        n = self.uniq()
        body = {"firstname": "U%s" % n, "lastname": "Cache", "gender": "F", "dob": "1990-05-15",
                "email": "cache%s@example.com" % n}
        body.update(kw)
        return self.create("ekauser", body)

    def get(self, kind, ident, tok=None, **kw):
        return self.req("GET", "/cdr/v1/%s/%s/" % (kind, ident), token=tok or self.t, **kw)

    def listed(self, kind, ident):
        """The record as the list shows it (the list is never kept)."""
        many = {"ekauser": "users", "doctor": "doctors", "clinic": "clinics"}[kind]
        r = self.req("GET", "/cdr/v1/%s/?limit=1000" % kind, token=self.t)
        self.assertEqual(r.status, 200, r)
        for x in r.json[many]:
            if x["id"] == ident:
                return x
        return None

    def assertServedAsStored(self, kind, ident):
        one = {"ekauser": "user", "doctor": "doctor", "clinic": "clinic"}[kind]
        r = self.get(kind, ident)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json[one], self.listed(kind, ident))
        return r

    # -- hits ---------------------------------------------------------------------------------
    def test_second_get_is_a_hit_with_the_same_bytes(self):
        u = self.user()
        before = counts(self.srv)
        a, b = self.get("ekauser", u), self.get("ekauser", u)
        after = counts(self.srv)
        self.assertEqual((a.status, b.status), (200, 200))
        self.assertEqual(a.raw, b.raw)
        self.assertEqual(a.headers["etag"], b.headers["etag"])
        self.assertEqual(a.headers.get("content-type"), b.headers.get("content-type"))
        if BACKEND == "sqlite":
            self.assertEqual(after["hit"] - before["hit"], 1)
            self.assertEqual(after["miss"] - before["miss"], 1)
        else:  # other servers write a PostgreSQL database: nothing is kept
            self.assertEqual(after, before)
        # a conditional GET on a kept answer
        r = self.get("ekauser", u, headers={"If-None-Match": a.headers["etag"]})
        self.assertEqual((r.status, r.raw), (304, b""))
        self.assertEqual(r.headers["etag"], a.headers["etag"])
        r = self.get("ekauser", u, headers={"If-None-Match": '"other"'})
        self.assertEqual((r.status, r.raw), (200, a.raw))

    def test_another_tenant_never_gets_a_kept_answer(self):
        u = self.user()
        self.assertEqual(self.get("ekauser", u).status, 200)
        self.assertEqual(self.get("ekauser", u).status, 200)
        r = self.get("ekauser", u, tok=self.t_other)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json["status"], "error")

    def test_partner_id_and_eka_id_agree(self):
        p = "cache-p-%s" % self.uniq()
        u = self.user(partner_id=p)
        self.assertEqual(self.get("ekauser", u).status, 200)
        r = self.req("PATCH", "/cdr/v1/ekauser/%s/" % p, {"firstname": "ByPartner"}, token=self.t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.get("ekauser", u).json["user"]["firstname"], "ByPartner")
        self.assertEqual(self.get("ekauser", p).json["user"]["firstname"], "ByPartner")
        # an answer read by partner id is never kept: a write by Eka id shows through it...
        self.get("ekauser", p)
        self.get("ekauser", p)
        r = self.req("PATCH", "/cdr/v1/ekauser/%s/" % u, {"firstname": "ByEka"}, token=self.t)
        self.assertEqual(r.status, 200, r)
        g = self.get("ekauser", p)
        self.assertEqual(g.json["user"]["firstname"], "ByEka")
        self.assertEqual(g.headers["etag"], r.headers["etag"])
        # ...and the partner id may move to another record
        q = "cache-q-%s" % self.uniq()
        self.assertEqual(self.req("PATCH", "/cdr/v1/ekauser/%s/" % u, {"partner_id": q}, token=self.t).status, 200)
        v = self.user(partner_id=p)
        self.assertEqual(self.get("ekauser", p).json["user"]["id"], v)
        self.assertEqual(self.get("ekauser", p).json["user"]["id"], v)
        self.assertEqual(self.get("ekauser", q).json["user"]["id"], u)

    # -- writes through the API ---------------------------------------------------------------
    def test_patch_is_seen_at_once_with_its_etag(self):
        u = self.user()
        for i in range(20):
            self.get("ekauser", u)
            r = self.req("PATCH", "/cdr/v1/ekauser/%s/" % u, {"firstname": "Name%d" % i}, token=self.t)
            self.assertEqual(r.status, 200, r)
            before = counts(self.srv)
            g = self.assertServedAsStored("ekauser", u)
            if BACKEND == "sqlite":  # the PATCH left its answer kept: the GET after it is a hit
                self.assertEqual(counts(self.srv)["hit"] - before["hit"], 1)
            self.assertEqual(g.json["user"]["firstname"], "Name%d" % i)
            self.assertEqual(g.headers["etag"], r.headers["etag"])

    def test_refused_patch_leaves_the_answer_right(self):
        u = self.user()
        other = self.user()
        taken = self.get("ekauser", other).json["user"]["email"]
        before = self.get("ekauser", u)
        r = self.req("PATCH", "/cdr/v1/ekauser/%s/" % u, {"email": taken}, token=self.t)
        self.assertEqual(r.status, 409, r)
        after = self.assertServedAsStored("ekauser", u)
        self.assertEqual(after.raw, before.raw)

    def test_delete_and_restore(self):
        u = self.user()
        self.get("ekauser", u)
        self.get("ekauser", u)
        self.assertEqual(self.req("DELETE", "/cdr/v1/ekauser/%s/" % u, token=self.t).status, 200)
        self.assertEqual(self.get("ekauser", u).status, 404)
        r = self.req("POST", "/cdr/v1/ekauser/%s/restore/" % u, token=self.t)
        self.assertEqual(r.status, 200, r)
        self.assertServedAsStored("ekauser", u)

    def test_delete_and_restore_of_a_record_shown(self):
        c = self.create("clinic", {"name": "Shown Clinic", "address": "2 Road"})
        d = self.create("doctor", {"firstname": "Shown", "lastname": "Doc", "gender": "M", "clinic_ids": [c]})
        u = self.user(doctor_ids=[d], clinic_ids=[c])
        path = {"ekauser": u, "clinic": c}
        for kind in path:
            self.get(kind, path[kind])
        self.assertEqual(self.req("DELETE", "/cdr/v1/doctor/%s/" % d, token=self.t).status, 200)
        for kind in path:  # kept again, without the doctor
            self.assertEqual(self.assertServedAsStored(kind, path[kind]).json, self.get(kind, path[kind]).json)
        self.assertEqual(self.get("ekauser", u).json["user"]["doctors"], [])
        r = self.req("POST", "/cdr/v1/doctor/%s/restore/" % d, token=self.t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([x["id"] for x in self.assertServedAsStored("ekauser", u).json["user"]["doctors"]], [d])
        self.assertEqual([x["id"] for x in self.assertServedAsStored("clinic", c).json["clinic"]["doctors"]], [d])
        # and so for a clinic, shown by the user and by the doctor
        path["doctor"] = d
        for kind in path:
            self.get(kind, path[kind])
        self.assertEqual(self.req("DELETE", "/cdr/v1/clinic/%s/" % c, token=self.t).status, 200)
        self.assertEqual(self.assertServedAsStored("doctor", d).json["doctor"]["clinics"], [])
        self.get("doctor", d)
        self.get("ekauser", u)
        self.assertEqual(self.req("POST", "/cdr/v1/clinic/%s/restore/" % c, token=self.t).status, 200)
        self.assertEqual([x["id"] for x in self.assertServedAsStored("doctor", d).json["doctor"]["clinics"]], [c])
        self.assertEqual([x["id"] for x in self.assertServedAsStored("ekauser", u).json["user"]["clinics"]], [c])

    def test_writes_of_doctors_and_clinics_show_in_users(self):
        d = self.create("doctor", {"firstname": "Old", "lastname": "Doc", "gender": "M"})
        c = self.create("clinic", {"name": "Old Clinic", "address": "1 Road"})
        u = self.user(doctor_ids=[d], clinic_ids=[c])
        self.get("ekauser", u)
        self.get("clinic", c)
        self.assertEqual(self.req("PATCH", "/cdr/v1/doctor/%s/" % d, {"firstname": "New"}, token=self.t).status, 200)
        g = self.assertServedAsStored("ekauser", u)
        self.assertEqual([x["firstname"] for x in g.json["user"]["doctors"]], ["New"])
        # a doctor linked to a clinic: the clinic shows it
        self.assertEqual(self.req("PATCH", "/cdr/v1/doctor/%s/" % d, {"clinic_ids": [c]}, token=self.t).status, 200)
        g = self.assertServedAsStored("clinic", c)
        self.assertEqual([x["id"] for x in g.json["clinic"]["doctors"]], [d])
        self.assertEqual(self.req("PATCH", "/cdr/v1/clinic/%s/" % c, {"name": "New Clinic"}, token=self.t).status,
                         200)
        g = self.assertServedAsStored("ekauser", u)
        self.assertEqual([x["name"] for x in g.json["user"]["clinics"]], ["New Clinic"])
        self.assertServedAsStored("doctor", d)
        # a doctor created with a link to the clinic shows in the clinic at once
        d2 = self.create("doctor", {"firstname": "Second", "lastname": "Doc", "gender": "F", "clinic_ids": [c]})
        g = self.assertServedAsStored("clinic", c)
        self.assertEqual(sorted(x["id"] for x in g.json["clinic"]["doctors"]), sorted([d, d2]))
        # deleting the doctor
        self.assertEqual(self.req("DELETE", "/cdr/v1/doctor/%s/" % d, token=self.t).status, 200)
        self.assertServedAsStored("ekauser", u)
        self.assertServedAsStored("clinic", c)

    def test_concurrent_writers_read_their_writes(self):
        users = [self.user() for _ in range(6)]
        d = self.create("doctor", {"firstname": "D0", "lastname": "Conc", "gender": "M"})
        watched = self.user(doctor_ids=[d])
        stop = threading.Event()
        errors = []

        def reader():
            while not stop.is_set():
                for u in users + [watched]:
                    r = self.get("ekauser", u)
                    if r.status != 200:
                        errors.append(("reader", r.status))

        def writer(u, k):
            for i in range(25):
                name = "W%d_%d" % (k, i)
                r = self.req("PATCH", "/cdr/v1/ekauser/%s/" % u, {"lastname": name}, token=self.t)
                if r.status != 200:
                    errors.append(("patch", r.status))
                    continue
                g = self.get("ekauser", u)
                if g.json["user"]["lastname"] != name or g.headers["etag"] != r.headers["etag"]:
                    errors.append(("stale", u, name, g.json["user"]["lastname"]))

        def doctor_writer():
            for i in range(25):
                name = "D%d" % (i + 1)
                r = self.req("PATCH", "/cdr/v1/doctor/%s/" % d, {"firstname": name}, token=self.t)
                if r.status != 200:
                    errors.append(("doctor", r.status))
                    continue
                g = self.get("ekauser", watched)
                if [x["firstname"] for x in g.json["user"]["doctors"]] != [name]:
                    errors.append(("stale view", name, g.json["user"]["doctors"]))

        threads = [threading.Thread(target=reader) for _ in range(3)]
        threads += [threading.Thread(target=writer, args=(u, k)) for k, u in enumerate(users)]
        threads.append(threading.Thread(target=doctor_writer))
        for t in threads:
            t.start()
        for t in threads[3:]:
            t.join(120)
        stop.set()
        for t in threads[:3]:
            t.join(60)
        self.assertEqual(errors, [])
        for u in users + [watched]:
            self.assertServedAsStored("ekauser", u)
        # and after a restart, the same
        kept = {u: self.get("ekauser", u).raw for u in users}
        self.srv.restart()
        for u in users:
            self.assertEqual(self.get("ekauser", u).raw, kept[u])


@unittest.skipUnless(BACKEND == "sqlite", "another process writing the same SQLite file")
class AnotherProcessTests(ServerTestCase):
    """`hipusers import` into the database of a running server: its changes show at once."""

    def import_lines(self, lines):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("".join(json.dumps(x) + "\n" for x in lines))
        env = dict(os.environ, HIPUSERS_DB=self.srv.db, HIPUSERS_JWT_SECRET=SECRET)
        p = subprocess.run([BIN, "import", "--b-id", T, "--kind", "ekauser", "--file", f.name],
                           capture_output=True, env=env, timeout=120)
        os.unlink(f.name)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def test_import_changes_are_served_at_once(self):
        tok = make_token(T)
        ids = {}
        for i in range(5):
            r = self.req("POST", "/cdr/v1/ekauser/", {"firstname": "Before", "lastname": "Imp", "gender": "M",
                                                      "dob": "1990-01-01", "mobile": "98765%05d" % i,
                                                      "partner_id": "imp-%d" % i}, token=tok)
            self.assertEqual(r.status, 201, r)
            ids[i] = r.json["ekaid"]
        for round_ in range(6):
            hits = counts(self.srv)["hit"]
            for i in ids:
                self.assertEqual(self.req("GET", "/cdr/v1/ekauser/%s/" % ids[i], token=tok).status, 200)
                self.assertEqual(self.req("GET", "/cdr/v1/ekauser/%s/" % ids[i], token=tok).status, 200)
            # every record's answer is kept (the second GET at least is a hit): the import
            # below has answers to make stale
            self.assertGreaterEqual(counts(self.srv)["hit"] - hits, len(ids), round_)
            name = "After%d" % round_
            self.import_lines([{"firstname": name, "lastname": "Imp", "gender": "M", "dob": "1990-01-01",
                                "mobile": "98765%05d" % i, "partner_id": "imp-%d" % i} for i in ids])
            # on odd rounds a write through the server comes first, before any GET: its writer
            # meets the other process's commit when it takes the write lock, and must count it
            # (the other records' kept answers are stale, and no reader has looked yet)
            if round_ % 2:
                r = self.req("PATCH", "/cdr/v1/ekauser/%s/" % ids[0], {"lastname": "Srv%d" % round_}, token=tok)
                self.assertEqual(r.status, 200, r)
            for i in ids:
                r = self.req("GET", "/cdr/v1/ekauser/%s/" % ids[i], token=tok)
                self.assertEqual(r.json["user"]["firstname"], name, (round_, i))
            if round_ % 2:
                self.assertEqual(self.req("GET", "/cdr/v1/ekauser/%s/" % ids[0], token=tok).json["user"]["lastname"],
                                 "Srv%d" % round_)

    def test_import_while_the_server_writes(self):
        tok = make_token(T)
        r = self.req("POST", "/cdr/v1/ekauser/", {"firstname": "Live", "lastname": "Imp", "gender": "F",
                                                  "dob": "1990-01-01", "mobile": "9111100000",
                                                  "partner_id": "live-imp"}, token=tok)
        self.assertEqual(r.status, 201, r)
        uid = r.json["ekaid"]
        stop = threading.Event()

        def traffic():
            i = 0
            while not stop.is_set():
                i += 1
                self.req("POST", "/cdr/v1/clinic/", {"name": "Busy %d" % i, "address": "x"}, token=tok)
                self.req("GET", "/cdr/v1/ekauser/%s/" % uid, token=tok)

        t = threading.Thread(target=traffic)
        t.start()
        try:
            for k in range(5):
                name = "Imported%d" % k
                self.import_lines([{"firstname": name, "lastname": "Imp", "gender": "F", "dob": "1990-01-01",
                                    "mobile": "9111100000", "partner_id": "live-imp"}])
                r = self.req("GET", "/cdr/v1/ekauser/%s/" % uid, token=tok)
                self.assertEqual(r.json["user"]["firstname"], name)
        finally:
            stop.set()
            t.join(60)


class NoCacheTests(ServerTestCase):
    server_args = ["--cache-mb", "0"]

    def test_nothing_kept(self):
        tok = make_token(T)
        r = self.req("POST", "/cdr/v1/clinic/", {"name": "Plain", "address": "y"}, token=tok)
        self.assertEqual(r.status, 201, r)
        for _ in range(3):
            self.assertEqual(self.req("GET", "/cdr/v1/clinic/%s/" % r.json["ekaid"], token=tok).status, 200)
        self.assertEqual(counts(self.srv), {"hit": 0, "miss": 0})

    def test_bad_value_refused(self):
        db = os.path.join(self.srv.data_dir, "never", "x.db")
        for v in ("-1", "abc", "65537", ""):
            p = subprocess.run([BIN, "serve", "--cache-mb", v, "--db", db], capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, HIPUSERS_JWT_SECRET=SECRET))
            self.assertEqual(p.returncode, 2, (v, p.stderr))
            self.assertIn("--cache-mb 0..65536", p.stderr)
            self.assertFalse(os.path.exists(os.path.dirname(db)))


if __name__ == "__main__":
    unittest.main()
