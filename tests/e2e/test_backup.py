#!/usr/bin/env python3
"""`hipusers backup --db DB --to FILE`: an online copy of the SQLite database.

Under write load (clinics, and doctors linked to them, created without pause by several
clients), copies are taken until one whose run overlapped acknowledged writes; each copy is
checked: SQLite's integrity_check says ok, the file is mode 0600 with nothing left beside it,
and a server started on it serves every record acknowledged before the copy began, with each
doctor's clinic link (a doctor and its link are one transaction: a torn copy would show one
without the other), and nothing that was never created. No write of the load fails while
copies are taken. The bad inputs: no --to, a missing database, the database itself or its
WAL as the target, a directory, a folder that does not exist, a PostgreSQL URL; an existing
copy is replaced whole.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_backup.py
"""
import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Server, make_token  # noqa: E402

WRITERS = 3
LOAD_SECONDS = 120  # bound on every wait below; the conditions usually hold within seconds


def backup(*args, env=None):
    e = dict(os.environ)
    e.pop("HIPUSERS_DB", None)
    e.update(env or {})
    return subprocess.run([BIN, "backup", *args], capture_output=True, text=True, env=e, timeout=120)


class Load:
    """Clients creating a clinic, then a doctor linked to it, over and over, until stopped.
    acked: (time acknowledged, kind, id, linked clinic id) of every 201."""

    def __init__(self, srv):
        self.srv, self.tok = srv, make_token()
        self.acked, self.failures = [], []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(WRITERS)]

    def run(self, n):
        i = 0
        while not self.stop.is_set():
            i += 1
            r = self.srv.request("POST", "/cdr/v1/clinic/", {"name": f"Load {n}-{i}", "address": f"{i} Road"},
                                 token=self.tok)
            if r.status != 201:
                self.failures.append(r)
                continue
            clinic = r.json["ekaid"]
            with self.lock:
                self.acked.append((time.time(), "clinic", clinic, None))
            r = self.srv.request("POST", "/cdr/v1/doctor/", {"firstname": "Load", "lastname": f"{n}-{i}", "gender": "F",
                                                             "clinic_ids": [clinic]}, token=self.tok)
            if r.status != 201:
                self.failures.append(r)
                continue
            with self.lock:
                self.acked.append((time.time(), "doctor", r.json["ekaid"], clinic))

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def snapshot(self):
        with self.lock:
            return list(self.acked)


class BackupUnderLoad(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.start()
        cls.out = tempfile.mkdtemp(prefix="hipusers-backup-")
        cls.addClassCleanup(shutil.rmtree, cls.out, True)

    def served(self, copy):
        """What a server started on (a copy of) the backup shows: clinics {id}, doctors {id: [clinic ids]}."""
        d = tempfile.mkdtemp(prefix="hipusers-restored-")
        self.addCleanup(shutil.rmtree, d, True)
        shutil.copyfile(copy, os.path.join(d, "hipusers.db"))
        srv = Server(data_dir=d)
        srv.start()
        try:
            tok = make_token()
            clinics = srv.request("GET", "/cdr/v1/clinic/", token=tok)
            doctors = srv.request("GET", "/cdr/v1/doctor/", token=tok)
        finally:
            srv.cleanup()
        self.assertEqual((clinics.status, doctors.status), (200, 200))
        return ({c["id"] for c in clinics.json["clinics"]},
                {d["id"]: [c["id"] for c in d["clinics"]] for d in doctors.json["doctors"]})

    def check_copy(self, path, before):
        """The copy is sound and holds every record acknowledged in `before`."""
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(sorted(os.listdir(os.path.dirname(path))), [os.path.basename(path)],
                         "files left beside the copy")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        finally:
            db.close()
        clinics, doctors = self.served(path)
        for _, kind, rid, clinic in before:
            if kind == "clinic":
                self.assertIn(rid, clinics)
            else:
                self.assertIn(rid, doctors)
                self.assertEqual(doctors[rid], [clinic])
        for rid, linked in doctors.items():  # never a doctor without its link
            self.assertEqual(len(linked), 1, rid)
            self.assertIn(linked[0], clinics)
        return clinics, doctors

    def test_backup_while_the_server_writes(self):
        load = Load(self.srv)
        load.start()
        self.addCleanup(load.finish)
        deadline = time.time() + LOAD_SECONDS
        while len(load.snapshot()) < 200 and time.time() < deadline and not load.failures:
            time.sleep(0.01)
        self.assertGreaterEqual(len(load.snapshot()), 200, load.failures[:3])

        copies = []
        overlapped = False
        while not overlapped and time.time() < deadline:
            folder = os.path.join(self.out, f"round{len(copies)}")
            os.mkdir(folder)
            target = os.path.join(folder, "hipusers-backup.db")
            before = load.snapshot()
            start = time.time()
            r = backup("--db", self.srv.db, "--to", target)
            end = time.time()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("checked", r.stdout)
            during = [a for a in load.snapshot() if start < a[0] < end]
            copies.append((target, before))
            self.check_copy(target, before)
            overlapped = bool(during)
        self.assertTrue(overlapped, "no backup ran while writes were acknowledged")
        # the load goes on after the copies, then stops; nothing failed at any time
        n = len(load.snapshot())
        while len(load.snapshot()) < n + 20 and time.time() < deadline and not load.failures:
            time.sleep(0.01)
        load.finish()
        self.assertEqual(load.failures, [])
        everything = {a[2] for a in load.snapshot()}
        for target, before in copies:
            clinics, doctors = self.served(target)
            self.assertLessEqual(clinics | set(doctors), everything)  # nothing that was never created


class BackupCommand(unittest.TestCase):
    """The command's answers to what a user may get wrong."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.start()
        r = cls.srv.request("POST", "/cdr/v1/clinic/", {"name": "Kept", "address": "1 Road"}, token=make_token())
        assert r.status == 201, r
        cls.clinic = r.json["ekaid"]

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hipusers-backup-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def listing(self):
        return sorted(os.listdir(self.dir))

    def test_usage(self):
        for args in ([], ["--db", self.srv.db], ["--to"], ["--to", "", "--db", self.srv.db],
                     ["--to", os.path.join(self.dir, "x.db"), "extra"], ["--bogus"]):
            with self.subTest(args):
                r = backup(*args)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn("usage: hipusers backup", r.stderr)
        self.assertEqual(self.listing(), [])

    def test_missing_database(self):
        r = backup("--db", os.path.join(self.dir, "nope.db"), "--to", os.path.join(self.dir, "copy.db"))
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot read the database", r.stderr)
        self.assertEqual(self.listing(), [])  # neither a copy nor an empty database

    def test_the_database_itself_is_refused(self):
        with open(self.srv.db, "rb") as f:
            before = hashlib.sha256(f.read()).hexdigest()
        for to in (self.srv.db, self.srv.db + "-wal", self.srv.db + "-shm", self.srv.db + "-journal",
                   os.path.join(os.path.dirname(self.srv.db), ".", os.path.basename(self.srv.db))):
            with self.subTest(to):
                r = backup("--db", self.srv.db, "--to", to)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn("is the database or one of its files", r.stderr)
        with open(self.srv.db, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), before)
        r = self.srv.request("GET", f"/cdr/v1/clinic/{self.clinic}/", token=make_token())
        self.assertEqual(r.status, 200)

    def test_bad_targets(self):
        r = backup("--db", self.srv.db, "--to", os.path.join(self.dir, "no", "such", "folder", "copy.db"))
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot create a file beside", r.stderr)
        os.mkdir(os.path.join(self.dir, "a-folder"))
        r = backup("--db", self.srv.db, "--to", os.path.join(self.dir, "a-folder"))
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("is not a regular file", r.stderr)
        self.assertEqual(self.listing(), ["a-folder"])
        self.assertEqual(os.listdir(os.path.join(self.dir, "a-folder")), [])

    def test_postgresql_is_pg_dumps(self):
        for url in ("postgres://u@h/db", "postgresql://u@h/db"):
            r = backup("--db", url, "--to", os.path.join(self.dir, "copy.db"))
            self.assertEqual(r.returncode, 2, r)
            self.assertIn("pg_dump", r.stderr)
        for url in ("mysql://h/db", "sqlite:"):  # not a database --db can name
            r = backup("--db", url, "--to", os.path.join(self.dir, "copy.db"))
            self.assertEqual(r.returncode, 2, r)
            self.assertIn("--db:", r.stderr)
        self.assertEqual(self.listing(), [])

    def test_sqlite_url(self):
        target = os.path.join(self.dir, "copy.db")
        for form in ("sqlite:" + self.srv.db, "sqlite://" + self.srv.db):
            with self.subTest(form):
                r = backup("--db", form, "--to", target)
                self.assertEqual(r.returncode, 0, r)
                self.assertIn(f"backed up {self.srv.db} to", r.stdout)
        self.assertEqual(self.listing(), ["copy.db"])

    def test_an_old_copy_is_replaced_whole(self):
        target = os.path.join(self.dir, "copy.db")
        with open(target, "wb") as f:
            f.write(b"yesterday's copy")
        os.chmod(target, 0o644)
        r = backup("--to", target, env={"HIPUSERS_DB": self.srv.db})  # the database from the environment
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(stat.S_IMODE(os.stat(target).st_mode), 0o600)
        self.assertEqual(self.listing(), ["copy.db"])
        db = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
            self.assertEqual(db.execute("PRAGMA journal_mode").fetchall(), [("delete",)])  # one file of its own
        finally:
            db.close()

    def test_root_copies_only_its_own_files(self):
        # As root, copying another user's database would leave root-owned -wal/-shm files
        # the server (that user) could not open; CI runs as root, where this is checked.
        if os.geteuid() != 0:
            return
        theirs = os.path.join(self.dir, "theirs.db")
        shutil.copyfile(self.srv.db, theirs)
        os.chown(theirs, 65534, 65534)
        r = backup("--db", theirs, "--to", os.path.join(self.dir, "copy.db"))
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("belongs to another user", r.stderr)
        self.assertEqual(self.listing(), ["theirs.db"])


if __name__ == "__main__":
    unittest.main()
