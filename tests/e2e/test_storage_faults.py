"""Storage faults while serving: a full disk, and a database file made read-only.

Writes must answer 503 with a JSON error, reads keep working, nothing is corrupted,
and writes succeed again once the fault is gone, without a restart. The database lives
on a small tmpfs this test mounts (CI runs as root). The server's own log goes elsewhere.
"""
import os
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

from harness import Server, make_token

TOKEN = make_token("3000000000000003")


def user(i):
    return {"firstname": "Fault", "lastname": f"Test{i}", "gender": "F", "dob": "1991-01-01",
            "email": f"fault{i}@example.com"}


class StorageFaultTests(unittest.TestCase):
    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="hipusers-tmpfs-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", self.mnt], check=True)
        self.srv = Server(data_dir=self.mnt)
        self.logdir = tempfile.mkdtemp(prefix="hipusers-log-")
        self.srv.stderr_path = os.path.join(self.logdir, "stderr.log")
        self.srv.start()

    def tearDown(self):
        self.srv.stop()
        subprocess.run(["umount", self.mnt], check=False)
        os.rmdir(self.mnt)
        shutil.rmtree(self.logdir, ignore_errors=True)

    def create(self, i):
        return self.srv.request("POST", "/cdr/v1/ekauser/", body=user(i), token=TOKEN)

    def list_ids(self):
        r = self.srv.request("GET", "/cdr/v1/ekauser/", token=TOKEN)
        self.assertEqual(r.status, 200, r)
        return [u["id"] for u in r.json["users"]]

    def assert_integrity(self):
        db = sqlite3.connect(f"file:{self.srv.db}?mode=ro", uri=True)
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        db.close()

    def assert_unavailable(self, r):
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json["status"], "error")
        self.assertIsInstance(r.json["message"], str)
        self.assertIn("retry-after", r.headers)

    def test_full_disk(self):
        first = self.create(0)
        self.assertEqual(first.status, 201, first)
        uid = first.json["ekaid"]
        # Fill the file system to the last byte.
        filler = os.path.join(self.mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        for size in (65536, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
        os.close(fd)
        failed = 0
        for i in range(1, 40):  # enough writes to outgrow whatever WAL space was free
            r = self.create(i)
            if r.status == 503:
                self.assert_unavailable(r)
                failed += 1
            else:
                self.assertEqual(r.status, 201, r)
        self.assertGreater(failed, 0, "no write hit the full disk")
        ids_while_full = self.list_ids()
        self.assertIn(uid, ids_while_full)
        r = self.srv.request("GET", f"/cdr/v1/ekauser/{uid}/", token=TOKEN)
        self.assertEqual(r.status, 200, r)
        # Space returns: writes work again without a restart.
        os.remove(filler)
        r = self.create(100)
        self.assertEqual(r.status, 201, r)
        after = r.json["ekaid"]
        r = self.srv.request("PATCH", f"/cdr/v1/ekauser/{uid}/", body={"lastname": "Recovered"}, token=TOKEN)
        self.assertEqual(r.status, 200, r)
        ids = self.list_ids()
        self.assertIn(after, ids)
        self.assertEqual(ids[:len(ids_while_full)], ids_while_full)
        # Everything acknowledged survives a restart, and the file is sound.
        self.srv.restart()
        self.assertEqual(self.list_ids(), ids)
        r = self.srv.request("GET", f"/cdr/v1/ekauser/{uid}/", token=TOKEN)
        self.assertEqual(r.json["user"]["lastname"], "Recovered")
        self.srv.stop()
        self.assert_integrity()

    def test_read_only_database_file(self):
        r = self.create(0)
        self.assertEqual(r.status, 201, r)
        uid = r.json["ekaid"]
        # Root ignores permission bits and open descriptors keep writing, so the server
        # itself honours the file's mode: no owner write bit, no writes.
        os.chmod(self.srv.db, 0o400)
        r = self.create(1)
        self.assert_unavailable(r)
        r = self.srv.request("PATCH", f"/cdr/v1/ekauser/{uid}/", body={"lastname": "Nope"}, token=TOKEN)
        self.assert_unavailable(r)
        r = self.srv.request("DELETE", f"/cdr/v1/ekauser/{uid}/", token=TOKEN)
        self.assert_unavailable(r)
        r = self.srv.request("GET", f"/cdr/v1/ekauser/{uid}/", token=TOKEN)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["user"]["lastname"], "Test0")
        self.assertEqual(self.list_ids(), [uid])
        os.chmod(self.srv.db, 0o600)
        r = self.create(2)
        self.assertEqual(r.status, 201, r)
        second = r.json["ekaid"]
        r = self.srv.request("PATCH", f"/cdr/v1/ekauser/{uid}/", body={"lastname": "Writable"}, token=TOKEN)
        self.assertEqual(r.status, 200, r)
        self.srv.restart()
        self.assertEqual(self.list_ids(), [uid, second])
        self.srv.stop()
        self.assert_integrity()

    def test_login_refused_while_its_attempt_cannot_be_counted(self):
        r = self.srv.cli("business", "create", "--name", "Faults")
        self.assertEqual(r.returncode, 0, r)
        r = self.srv.cli("client", "create", "--b-id", r.stdout.strip())
        self.assertEqual(r.returncode, 0, r)
        kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
        cid, sec = kv["client_id"].strip(), kv["client_secret"].strip()
        login = "/connect-auth/v1/account/login"
        r = self.srv.request("POST", login, body={"client_id": cid, "client_secret": "wrong"})
        self.assertEqual(r.status, 401, r)
        # the credentials can still be read, but the throttle cannot count the attempt: refused
        # (fail closed), with or without the right secret, and the guess costs nothing
        os.chmod(self.srv.db, 0o400)
        for secret in (sec, "wrong-again"):
            r = self.srv.request("POST", login, body={"client_id": cid, "client_secret": secret})
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json["code"], 503, r)
            self.assertNotIn("access_token", r.json)
            self.assertIn("retry-after", r.headers)
        os.chmod(self.srv.db, 0o600)
        r = self.srv.request("POST", login, body={"client_id": cid, "client_secret": sec})
        self.assertEqual(r.status, 200, r)
        self.assertIn("access_token", r.json)
        # what was counted before the fault is still counted: 1 failure, then a success cleared it
        rows = self.srv.query("SELECT failures, pending, prev_pending FROM login_throttle ORDER BY failures")
        self.assertEqual(rows, [(0, 0, 0), (1, 0, 0)])


class ListReadFailureTests(unittest.TestCase):
    """A list reads its first batch before it chooses its status: when that read fails the
    answer is a JSON error, not a 200 whose body is cut short."""

    def test_list_whose_first_read_fails_is_an_error(self):
        srv = Server().start()
        try:
            for i in range(3):
                r = srv.request("POST", "/cdr/v1/clinic/", body={"name": f"C{i}", "address": "x"}, token=TOKEN)
                self.assertEqual(r.status, 201, r)
            r = srv.request("GET", "/cdr/v1/clinic/", token=TOKEN)
            self.assertEqual(len(r.json["clinics"]), 3)
            # Another process takes the table away under the server: every read of it fails.
            db = sqlite3.connect(srv.db, timeout=30)
            db.execute("ALTER TABLE clinic RENAME TO clinic_away")
            db.commit()
            try:
                r = srv.request("GET", "/cdr/v1/clinic/", token=TOKEN)
                self.assertEqual(r.status, 500, r)
                self.assertEqual(r.json, {"status": "error", "message": "Internal server error."})
                self.assertNotIn("transfer-encoding", r.headers)
                r = srv.request("GET", "/cdr/v1/doctor/", token=TOKEN)  # other lists are unaffected
                self.assertEqual(r.status, 200, r)
            finally:
                db.execute("ALTER TABLE clinic_away RENAME TO clinic")
                db.commit()
                db.close()
            r = srv.request("GET", "/cdr/v1/clinic/", token=TOKEN)
            self.assertEqual(r.status, 200, r)
            self.assertEqual([c["name"] for c in r.json["clinics"]], ["C0", "C1", "C2"])
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
