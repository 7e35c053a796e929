"""End-to-end tests of `hipusers import` and `hipusers export` (issue 11, part 3).

A tenant's records, made through the API with links in every order the API allows, are
exported, imported into an empty database and exported again: byte for byte the same, in JSON
Lines and CSV, for all three kinds; a server on the new database shows the same GET bodies.
Rejected lines: a report with line numbers and field errors, exit 1, nothing of them written.
Upserts by partner_id keep the Eka id. An import into the database a running server uses:
the server keeps serving and sees the records. Progress: plain lines without a terminal, a
redrawn bar on one (a pty).
"""
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BACKEND, BIN, SECRET, Server, ServerTestCase, make_token  # noqa: E402
import test_readme as readme  # noqa: E402  (a module, so its tests are not collected twice)

T = "1100000000000001"     # the tenant that is exported
OTHER = "1100000000000002"  # another tenant in the same database
KINDS = ("clinic", "doctor", "ekauser")  # the order a restore imports them in
WRAP = {"clinic": "clinics", "doctor": "doctors", "ekauser": "users"}


def run(*args, db, stdin=None, check=None, timeout=300):
    env = dict(os.environ, HIPUSERS_DB=db, HIPUSERS_JWT_SECRET=SECRET)
    p = subprocess.run([BIN] + list(args), capture_output=True, env=env, timeout=timeout, input=stdin)
    if check is not None and p.returncode != check:
        raise AssertionError(f"hipusers {' '.join(args)} exited {p.returncode}:\n{p.stdout.decode()}\n"
                             f"{p.stderr.decode()}")
    return p


def export(db, kind, fmt="jsonl", tenant=T):
    return run("export", "--b-id", tenant, "--kind", kind, "--format", fmt, db=db, check=0).stdout


def import_file(db, kind, path, *extra, tenant=T, check=0):
    return run("import", "--b-id", tenant, "--kind", kind, "--file", path, *extra, db=db, check=check)


def simple_users(n, start=0, partner=False):
    lines = []
    for i in range(start, start + n):
        u = {"firstname": "User%d" % i, "lastname": "Bulk", "gender": "MFO"[i % 3], "dob": "1990-05-15",
             "mobile": "9%09d" % i}
        if partner:
            u["partner_id"] = "bulk-%d" % i
        lines.append(json.dumps(u))
    return "\n".join(lines) + "\n"


class Bulk(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="hipusers-bulk-")
        cls.data_dirs = {}  # PostgreSQL: each fresh database's data directory
        cls.tt = make_token(T)
        cls.build_tenant()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    # -- the tenant, made through the API -----------------------------------------------------
    @classmethod
    def api(cls, method, path, body=None, tok=None, status=None):
        r = cls.srv.request(method, path, body=body, token=tok or cls.tt)
        if status is not None and r.status != status:
            raise AssertionError(f"{method} {path} -> {r.status} {r.raw[:300]!r}")
        return r

    @classmethod
    def create(cls, kind, body, tok=None):
        return cls.api("POST", "/cdr/v1/%s/" % kind, body, tok, 201).json["ekaid"]

    @classmethod
    def build_tenant(cls):
        c = [cls.create("clinic", {"name": "Sunrise, \"Main\" Clinic", "address": "12 Main St, Block A; Floor 2",
                                   "pincode": "560001", "city": "Bengaluru", "partner_id": "clinic-1"}),
             cls.create("clinic", {"name": "Clinique Ünïcode 診療所", "address": " leading and trailing space ",
                                   "contact": "08012345678"}),
             cls.create("clinic", {"name": "Third", "address": "3 Road", "state": "Karnataka"}),
             cls.create("clinic", {"name": "Gone", "address": "deleted later"})]
        d = [cls.create("doctor", {"firstname": "Rajesh", "lastname": "Sharma", "gender": "M",
                                   "clinic_ids": [c[2], c[0]], "specialisations": ["Cardiology; adult", "a\\b"],
                                   "qualifications": [], "partner_id": "doc-1", "mobile": "9876500001"}),
             cls.create("doctor", {"firstname": "Asha", "lastname": "Rao", "gender": "F", "dob": "1985-01-31",
                                   "clinic_ids": [c[0], c[3]], "about": "Says \"hello\", then leaves\\",
                                   "profile_image_url": "https://img.example.com/a.png", "email": "asha@example.in"}),
             cls.create("doctor", {"firstname": "Old", "lastname": "Timer", "gender": "O"}),
             cls.create("doctor", {"firstname": "Gone", "lastname": "Doctor", "gender": "M", "clinic_ids": [c[1]]})]
        # A clinic gives its doctors in an order of its own (an older doctor linked later),
        # and a doctor adds a clinic after that: each side keeps its own order.
        cls.api("PATCH", "/cdr/v1/clinic/%s/" % c[1], {"doctor_ids": [d[2], d[0]]}, status=200)
        cls.api("PATCH", "/cdr/v1/doctor/%s/" % d[2], {"clinic_ids": [c[0]]}, status=200)
        cls.create("clinic", {"name": "Linked at birth", "address": "5 Road", "doctor_ids": [d[1], d[0]]})
        u = [cls.create("ekauser", {"firstname": "Amit", "lastname": "Kumar", "gender": "M", "dob": "1990-05-15",
                                    "mobile": "9876543210", "doctor_ids": [d[1], d[0]], "clinic_ids": [c[2]],
                                    "partner_id": "user-1", "is_admin": True, "seat_type": "p"}),
             cls.create("ekauser", {"firstname": "Émilie", "lastname": "D'Souza", "gender": "F", "dob": "1979-12-31",
                                    "email": "Emilie@Example.IN", "auth_userid": "auth|42", "persona": "S"}),
             cls.create("ekauser", {"firstname": "Gone", "lastname": "User", "gender": "M", "dob": "1990-01-01",
                                    "mobile": "9000000009", "doctor_ids": [d[3]]})]
        cls.api("PATCH", "/cdr/v1/ekauser/%s/" % u[1], {"clinic_ids": [c[1], c[0]], "doctor_ids": [d[2]]},
                status=200)
        for kind, rid in (("ekauser", u[2]), ("doctor", d[3]), ("clinic", c[3])):
            cls.api("DELETE", "/cdr/v1/%s/%s/" % (kind, rid), status=200)
        cls.deleted = {"ekauser": u[2], "doctor": d[3], "clinic": c[3]}
        # Another tenant in the same database: never part of T's export.
        ot = make_token(OTHER)
        cls.other_clinic = cls.create("clinic", {"name": "Other", "address": "elsewhere"}, ot)
        cls.create("ekauser", {"firstname": "Other", "lastname": "Tenant", "gender": "M", "dob": "1990-01-01",
                               "mobile": "9876543210"}, ot)

    def lists(self, srv, tenant=T):
        tok = make_token(tenant)
        out = {}
        for kind in KINDS:
            r = srv.request("GET", "/cdr/v1/%s/" % kind, token=tok)
            self.assertEqual(r.status, 200, r)
            out[kind] = r.json[WRAP[kind]]
        return out

    def fresh_db(self, name):
        """An empty database of the suite's backend (on PostgreSQL, one of its own in the
        cluster, named after its data directory)."""
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        if BACKEND == "postgresql":
            srv = Server(data_dir=d)
            srv.make_db()
            self.data_dirs[srv.db] = d
            return srv.db
        return os.path.join(d, "hipusers.db")

    def serve(self, db):
        """A server on a database fresh_db made."""
        return Server(data_dir=self.data_dirs.get(db) or os.path.dirname(db)).start()

    # -- round trips ----------------------------------------------------------------------------
    def round_trip(self, fmt):
        first = {k: export(self.srv.db, k, fmt) for k in KINDS}
        db = self.fresh_db("rt-" + fmt)
        for kind in KINDS:
            path = os.path.join(self.tmp, "%s-%s.%s" % (kind, fmt, fmt))
            with open(path, "wb") as f:
                f.write(first[kind])
            p = import_file(db, kind, path)
            n = len(first[kind].splitlines()) - (1 if fmt == "csv" else 0)
            self.assertIn(b"%d records" % n, p.stdout)
            self.assertIn(b"%d created, 0 updated, 0 rejected" % n, p.stdout)
        for kind in KINDS:
            again = export(db, kind, fmt)
            self.assertEqual(again, first[kind], "%s %s export differs after the round trip" % (kind, fmt))
        return first, db

    def test_round_trip_jsonl_all_kinds_with_links(self):
        first, db = self.round_trip("jsonl")
        recs = {k: [json.loads(x) for x in first[k].splitlines()] for k in KINDS}
        self.assertEqual([len(recs[k]) for k in KINDS], [4, 3, 2])
        for kind, rid in self.deleted.items():  # soft-deleted records are not exported, nor links to them
            self.assertNotIn(rid.encode(), first[kind])
            for k in KINDS:
                self.assertNotIn(rid.encode(), first[k])
        self.assertNotIn(self.other_clinic.encode(), first["clinic"])
        doc1 = next(x for x in recs["doctor"] if x.get("partner_id") == "doc-1")
        self.assertEqual(doc1["specialisations"], ["Cardiology; adult", "a\\b"])
        self.assertNotIn("specialisation", doc1)
        self.assertEqual(set(doc1), {"id", "firstname", "lastname", "gender", "dob", "mobile", "specialisations",
                                     "qualifications", "partner_id", "clinic_ids", "created_at", "updated_at"})
        # The new database, served: every GET list is what the original server shows.
        srv = self.serve(db)
        try:
            self.assertEqual(self.lists(srv), self.lists(self.srv))
        finally:
            srv.cleanup()

    def test_round_trip_csv_all_kinds_with_links(self):
        first, db = self.round_trip("csv")
        self.assertTrue(first["doctor"].startswith(
            b"id,firstname,lastname,gender,dob,mobile,email,about,profile_image_url,specialisations,"
            b"qualifications,partner_id,clinic_ids,created_at,updated_at\r\n"))
        self.assertIn(b',Cardiology\\; adult;a\\\\b,"",', first["doctor"])  # items escaped; [] is ""
        self.assertIn(b'"Sunrise, ""Main"" Clinic"', first["clinic"])
        # and the CSV import gives the same records as the JSON Lines one
        db2 = self.fresh_db("csv-vs-jsonl")
        for kind in KINDS:
            path = os.path.join(self.tmp, "cmp-%s.jsonl" % kind)
            with open(path, "wb") as f:
                f.write(export(self.srv.db, kind))
            import_file(db2, kind, path)
        for kind in KINDS:
            self.assertEqual(export(db, kind), export(db2, kind))

    def test_import_of_an_export_into_its_own_database_changes_nothing(self):
        before = {k: export(self.srv.db, k) for k in KINDS}
        for kind in KINDS:
            path = os.path.join(self.tmp, "self-%s.jsonl" % kind)
            with open(path, "wb") as f:
                f.write(before[kind])
            p = import_file(self.srv.db, kind, path)
            n = len(before[kind].splitlines())
            self.assertIn(b"0 created, %d updated, 0 rejected" % n, p.stdout)
        self.assertEqual({k: export(self.srv.db, k) for k in KINDS}, before)

    # -- rejected lines -------------------------------------------------------------------------
    def test_rejected_lines_report_exit_code_and_nothing_half_imported(self):
        tenant = "1100000000000101"
        tok = make_token(tenant)
        existing = self.srv.request("POST", "/cdr/v1/ekauser/", body={
            "firstname": "Keep", "lastname": "Me", "gender": "F", "dob": "1990-01-01", "mobile": "9111111111",
            "partner_id": "keep"}, token=tok)
        self.assertEqual(existing.status, 201, existing)
        other_user = json.loads(export(self.srv.db, "ekauser", tenant=OTHER).splitlines()[0])["id"]
        good = {"firstname": "Good", "lastname": "One", "gender": "M", "dob": "1990-05-15"}
        lines = [
            dict(good, mobile="9222222221"),                                # 1 ok
            dict(good, mobile="9222222222", gender="X"),                     # 2 rule
            "{not json",                                                     # 3 syntax
            dict(good, mobile="9222222223", shoe_size=9),                    # 4 unknown field
            dict(good, mobile="9222222221"),                                 # 5 mobile taken (line 1)
            dict(good, mobile="9222222224", doctor_ids=["do1234567890123"]),  # 6 no such doctor
            dict(good, mobile="9111111111", partner_id="new-one"),           # 7 taken by "keep"
            dict(good, firstname="Changed", mobile="9222222221", partner_id="keep"),  # 8 upsert, mobile taken
            dict(good, mobile="9222222225", id=other_user),                  # 9 another tenant's Eka id
            dict(good, mobile="9222222226", id="12"),                        # 10 not an Eka id
            dict(good, mobile="9222222227", created_at="yesterday"),         # 11 bad time
            "",                                                              # 12 blank: skipped
            dict(good, mobile="9222222228", partner_id="p-ok"),              # 13 ok
        ]
        path = os.path.join(self.tmp, "rejects.jsonl")
        with open(path, "w") as f:
            for x in lines:
                f.write((x if isinstance(x, str) else json.dumps(x)) + "\n")
        report = os.path.join(self.tmp, "rejects.report")
        p = import_file(self.srv.db, "ekauser", path, "--report", report, tenant=tenant, check=1)
        self.assertIn(b"12 records", p.stdout)
        self.assertIn(b"2 created, 0 updated, 10 rejected", p.stdout)
        self.assertIn(report.encode(), p.stdout)
        with open(report) as f:
            rep = [json.loads(x) for x in f]
        self.assertEqual([x["line"] for x in rep], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        by = {x["line"]: x for x in rep}
        self.assertEqual(by[2]["errors"], {"gender": ["Not a valid choice."]})
        self.assertIn("Invalid JSON", by[3]["message"])
        self.assertEqual(by[4]["errors"], {"shoe_size": ["Unknown field."]})
        self.assertEqual(by[5]["errors"], {"mobile": ["Already in use."]})
        self.assertEqual(by[6]["errors"], {"doctor_ids": ["Doctor do1234567890123 does not exist."]})
        self.assertEqual(by[7]["errors"], {"mobile": ["Already in use."]})
        self.assertEqual(by[8]["errors"], {"mobile": ["Already in use."]})
        self.assertIn("id", by[9]["errors"])
        self.assertIn("id", by[10]["errors"])
        self.assertIn("created_at", by[11]["errors"])
        # What the API shows: the two good lines and the untouched "keep", nothing else.
        r = self.srv.request("GET", "/cdr/v1/ekauser/", token=tok)
        users = r.json["users"]
        self.assertEqual(sorted(u["mobile"] for u in users), ["+919111111111", "+919222222221", "+919222222228"])
        keep = self.srv.request("GET", "/cdr/v1/ekauser/keep/", token=tok).json["user"]
        self.assertEqual((keep["firstname"], keep["id"]), ("Keep", existing.json["ekaid"]))
        self.assertEqual(self.srv.request("GET", "/cdr/v1/ekauser/new-one/", token=tok).status, 404)
        self.assertEqual(self.srv.request("GET", "/cdr/v1/ekauser/%s/" % other_user, token=tok).status, 404)

    def test_bad_csv_header_imports_nothing(self):
        path = os.path.join(self.tmp, "badheader.csv")
        with open(path, "w") as f:
            f.write("firstname,lastname,gender,dob,mobile,shoe_size\nA,B,M,1990-01-01,9333333331,9\n")
        p = import_file(self.srv.db, "ekauser", path, tenant="1100000000000102", check=2)
        self.assertIn(b"'shoe_size' is not a column of ekauser", p.stderr)
        r = self.srv.request("GET", "/cdr/v1/ekauser/", token=make_token("1100000000000102"))
        self.assertEqual(r.json["users"], [])

    def test_csv_syntax_quoting_and_cell_errors(self):
        tenant = "1100000000000103"
        path = os.path.join(self.tmp, "syntax.csv")
        with open(path, "wb") as f:
            f.write(b"\xef\xbb\xbfname,address,city,partner_id\r\n"             # 1 header, with a BOM
                    b"\"A, \"\"quoted\"\" name\",\"12, Main\",,c-a\r\n"        # 2 ok
                    b"B,\"two\r\nlines\",x,c-b\r\n"                             # 3-4 one cell, a control character
                    b"B,bad\"quote,x,c-b\r\n"                                     # 5 syntax
                    b"C,only three,x\r\n"                                         # 6 cells
                    b"\r\n"                                                       # 7 blank
                    b"D,\"ok\",\"\",c-d\r\n"                                      # 8 city "" is blank
                    b"E,fine,Pune,c-e\r\n"                                        # 9 ok
                    b"F,\"never closed,x,c-f\r\n")                                 # 10 unterminated
        report = os.path.join(self.tmp, "syntax.report")
        p = import_file(self.srv.db, "clinic", path, "--report", report, tenant=tenant, check=1)
        self.assertIn(b"2 created, 0 updated, 5 rejected", p.stdout)
        with open(report) as f:
            rep = {x["line"]: x for x in map(json.loads, f)}
        self.assertEqual(sorted(rep), [3, 5, 6, 8, 10])
        self.assertEqual(list(rep[3]["errors"]), ["address"])
        self.assertIn("CSV syntax", rep[5]["message"])
        self.assertIn("has 3 cells; the header has 4", rep[6]["message"])
        self.assertEqual(rep[8]["errors"], {"city": ["May not be blank."]})
        self.assertIn("not closed", rep[10]["message"])
        r = self.srv.request("GET", "/cdr/v1/clinic/c-a/", token=make_token(tenant))
        self.assertEqual(r.json["clinic"]["name"], 'A, "quoted" name')
        self.assertEqual(r.json["clinic"]["address"], "12, Main")
        self.assertNotIn("city", r.json["clinic"])
        r = self.srv.request("GET", "/cdr/v1/clinic/c-e/", token=make_token(tenant))
        self.assertEqual(r.json["clinic"]["city"], "Pune")

    # -- upsert --------------------------------------------------------------------------------
    def test_upsert_by_partner_id_keeps_the_eka_id(self):
        tenant = "1100000000000104"
        tok = make_token(tenant)
        r = self.srv.request("POST", "/cdr/v1/doctor/", body={
            "firstname": "Before", "lastname": "Import", "gender": "M", "partner_id": "his-77",
            "about": "will be cleared"}, token=tok)
        self.assertEqual(r.status, 201, r)
        eka = r.json["ekaid"]
        path = os.path.join(self.tmp, "upsert.csv")
        with open(path, "w") as f:
            f.write("partner_id,firstname,lastname,gender,specialisations\n"
                    "his-77,After,Import,F,Dermatology;Venereology\n"
                    "his-78,New,Doctor,M,\n")
        p = import_file(self.srv.db, "doctor", path, tenant=tenant)
        self.assertIn(b"1 created, 1 updated, 0 rejected", p.stdout)
        doc = self.srv.request("GET", "/cdr/v1/doctor/his-77/", token=tok).json["doctor"]
        self.assertEqual(doc["id"], eka)
        self.assertEqual((doc["firstname"], doc["gender"], doc["specialisations"]),
                         ("After", "F", ["Dermatology", "Venereology"]))
        self.assertNotIn("about", doc)  # the line is the whole record
        self.assertEqual(self.srv.request("GET", "/cdr/v1/doctor/his-78/", token=tok).status, 200)

    # -- a running server ------------------------------------------------------------------------
    def test_import_into_the_database_of_a_running_server(self):
        tenant = "1100000000000105"
        tok = make_token(tenant)
        path = os.path.join(self.tmp, "live.jsonl")
        with open(path, "w") as f:
            f.write(simple_users(5000, partner=True))
        stop, statuses = threading.Event(), []

        def traffic():
            i = 0
            while not stop.is_set():
                i += 1
                r = self.srv.request("POST", "/cdr/v1/clinic/", body={"name": "Live %d" % i, "address": "x"},
                                     token=tok)
                statuses.append(r.status)
                statuses.append(self.srv.request("GET", "/cdr/v1/clinic/", token=tok).status)

        t = threading.Thread(target=traffic)
        t.start()
        try:
            p = import_file(self.srv.db, "ekauser", path, tenant=tenant)
        finally:
            stop.set()
            t.join(60)
        self.assertIn(b"5000 created, 0 updated, 0 rejected", p.stdout)
        self.assertTrue(statuses)
        self.assertEqual(set(statuses), {200, 201}, statuses[:50])
        r = self.srv.request("GET", "/cdr/v1/ekauser/", token=tok)
        self.assertEqual(len(r.json["users"]), 5000)
        self.assertEqual(self.srv.request("GET", "/cdr/v1/ekauser/bulk-4999/", token=tok).json["user"]["mobile"],
                         "+919000004999")

    # -- progress ------------------------------------------------------------------------------
    def test_progress_lines_without_a_terminal(self):
        tenant = "1100000000000106"
        path = os.path.join(self.tmp, "progress.jsonl")
        with open(path, "w") as f:
            f.write(simple_users(20000))
        p = import_file(self.fresh_db("progress"), "ekauser", path, "--progress-interval", "0.02", "--batch", "200",
                        tenant=tenant)
        err = p.stderr.decode()
        self.assertNotIn("\r", err)
        lines = [x for x in err.splitlines() if x.startswith("import: ")]
        self.assertTrue(lines, err)
        for x in lines:
            self.assertRegex(x, r"^import: \d+% of the file, \d+ records, \d+ records/s, ETA \d+:\d\d$")
        self.assertIn(b"20000 records in", p.stdout)
        self.assertRegex(p.stdout.decode(), r"\(\d+ records/s\): 20000 created")

    def test_progress_bar_on_a_terminal(self):
        path = os.path.join(self.tmp, "tty.jsonl")
        with open(path, "w") as f:
            f.write(simple_users(20000))
        master, slave = pty.openpty()
        env = dict(os.environ, HIPUSERS_DB=self.fresh_db("tty"))
        proc = subprocess.Popen([BIN, "import", "--b-id", "1100000000000107", "--kind", "ekauser", "--file", path,
                                 "--progress-interval", "0.02", "--batch", "200"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env)
        os.close(slave)
        out = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        stdout, _ = proc.communicate(timeout=60)
        os.close(master)
        self.assertEqual(proc.returncode, 0, out)
        draws = [x for x in out.decode().split("\r") if x.startswith("[")]
        self.assertGreaterEqual(len(draws), 2, out)
        pct = []
        for x in draws:
            self.assertRegex(x, r"^\[[#-]{30}\] +\d+%  \d+ records  \d+ records/s  ETA \d+:\d\d")
            pct.append(int(x[32:36].strip().rstrip("%")))
        self.assertEqual(pct, sorted(pct))
        self.assertEqual(pct[-1], 100)
        self.assertTrue(draws[-1].startswith("[" + "#" * 30 + "]"))
        self.assertIn(b"20000 created", stdout)

    # -- the command line ------------------------------------------------------------------------
    if BACKEND == "sqlite":  # the README's walkthrough is of SQLite files (copy.db)
        def test_readme_block(self):
            self.readme_block()

    def readme_block(self):
        srv = Server(secret=None).start()
        try:
            out = readme.run_block(srv, readme.readme_block("## Bulk import and export"))
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("2 created, 0 updated, 1 rejected", out.stdout)
            self.assertIn("exit status 1", out.stdout)
            self.assertIn('{"line":3,"message":"gender: Not a valid choice."', out.stdout)
            with open(os.path.join(srv.data_dir, "users.csv"), encoding="utf-8") as f:
                rows = f.read().splitlines()
            self.assertEqual(len(rows), 3)
            self.assertIn(",HIS-1,", rows[1])
        finally:
            srv.cleanup()

    def test_usage_errors(self):
        for args in (["import", "--kind", "ekauser", "--file", "x"], ["import", "--b-id", T, "--kind", "nurse",
                                                                      "--file", "x"],
                     ["import", "--b-id", T, "--kind", "ekauser"], ["export", "--b-id", T],
                     ["export", "--b-id", T, "--kind", "doctor", "--format", "xml"]):
            p = run(*args, db=self.srv.db)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(b"usage:", p.stderr)
        p = run("import", "--b-id", T, "--kind", "doctor", "--file", os.path.join(self.tmp, "missing.jsonl"),
                db=self.srv.db)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"cannot read", p.stderr)


if __name__ == "__main__":
    unittest.main()
