"""What an operator sees: the command line, files on disk, the access log, and a
graceful stop that finishes requests in flight."""
import base64
import json
import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BIN, Server, free_port, make_token

PERSONAL = {"firstname": "Zyxwvu", "lastname": "Qponml", "gender": "F", "dob": "1988-08-08",
            "mobile": "9123456789", "email": "very.private@example.org", "auth_userid": "sso_secret_login",
            "partner_id": "HIS-PATIENT-7781"}


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class CommandLineTests(unittest.TestCase):
    def run_bin(self, *args, env=None):
        return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, **(env or {})))

    def test_help_and_version(self):
        r = self.run_bin("--help")
        self.assertEqual(r.returncode, 0)
        for word in ("serve", "token", "business", "client", "sharing-key", "--listen", "--db", "--threads"):
            self.assertIn(word, r.stdout)
        r = self.run_bin("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^hipusers \d+\.\d+\.\d+\n$")

    def test_bad_usage_exits_2(self):
        self.assertEqual(self.run_bin("frobnicate").returncode, 2)
        self.assertEqual(self.run_bin().returncode, 2)
        self.assertEqual(self.run_bin("token").returncode, 2)  # --b-id is required
        self.assertEqual(self.run_bin("serve", "--threads", "0").returncode, 2)

    def test_token_claims(self):
        srv = Server()
        r = srv.cli("token", "--b-id", "5550000000000001", "--client-id", "ops", "--ttl", "120")
        self.assertEqual(r.returncode, 0, r.stderr)
        tok = r.stdout.strip()
        c = claims(tok)
        self.assertEqual(c["b_id"], "5550000000000001")
        self.assertEqual(c["client_id"], "ops")
        self.assertAlmostEqual(c["exp"] - c["iat"], 120, delta=1)
        self.assertAlmostEqual(c["iat"], time.time(), delta=30)
        srv.start()
        try:
            self.assertEqual(srv.request("GET", "/cdr/v1/ekauser/", token=tok).status, 200)
        finally:
            srv.cleanup()


class DatabaseArgumentTests(unittest.TestCase):
    """--db (and HIPUSERS_DB) is a file path, sqlite:PATH, or a postgresql:// URL; anything
    that looks like another URL is refused with a clear message and creates nothing."""

    def run_in(self, cwd, *args, env=None):
        e = dict(os.environ, HIPUSERS_JWT_SECRET="x" * 32)
        e.pop("HIPUSERS_DB", None)
        e.update(env or {})
        return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30, env=e, cwd=cwd)

    def test_unknown_scheme_refused_and_nothing_created(self):
        with tempfile.TemporaryDirectory() as cwd:
            for db in ("mysql://db.example.com/hipusers", "http://x/y.db", "file:data.db", "sqlite3:x.db"):
                scheme = db.split(":")[0]
                r = self.run_in(cwd, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--db", db)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn("unknown database URL scheme '%s:'" % scheme, r.stderr)
                r = self.run_in(cwd, "business", "list", env={"HIPUSERS_DB": db})
                self.assertEqual(r.returncode, 2, r)
                self.assertIn("unknown database URL scheme", r.stderr)
                r = self.run_in(cwd, "token", "--b-id", "1", "--db", db)
                self.assertEqual(r.returncode, 2, r)
            self.assertEqual(os.listdir(cwd), [])

    def test_malformed_urls_refused(self):
        with tempfile.TemporaryDirectory() as cwd:
            for db, words in (("sqlite:", "needs a file path"), ("postgresql:hipusers", "postgresql://"),
                              ("postgres:", "postgresql://")):
                r = self.run_in(cwd, "serve", "--db", db)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn(words, r.stderr)
            self.assertEqual(os.listdir(cwd), [])

    def test_unreachable_postgresql_and_password_not_shown(self):
        with tempfile.TemporaryDirectory() as cwd:
            url = "postgresql://hip:s3cretpw@127.0.0.1:1/hipusers?password=other-pw"
            for args in (("serve", "--listen", "127.0.0.1:%d" % free_port(), "--db", url), ("migrate", "--db", url),
                         ("business", "list", "--db", url)):
                if args[0] == "business":
                    args = ("business", "--db", url, "list")
                r = self.run_in(cwd, *args)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn("cannot connect to PostgreSQL", r.stderr)
                self.assertIn("postgresql://hip:***@127.0.0.1:1/hipusers?password=***", r.stderr)
                self.assertNotIn("s3cretpw", r.stderr)
                self.assertNotIn("other-pw", r.stderr)
            self.assertEqual(os.listdir(cwd), [])  # no SQLite file named like the URL

    def test_sqlite_url_and_path_name_the_same_file(self):
        srv = Server()
        path = srv.db
        srv.db = "sqlite:" + path
        srv.start()
        try:
            tok = make_token("5550000000000007")
            r = srv.request("POST", "/cdr/v1/clinic/", body={"name": "URL", "address": "x"}, token=tok)
            self.assertEqual(r.status, 201, r)
            self.assertTrue(os.path.exists(path))
            srv.stop()
            srv.db = path  # the same database by its plain path
            srv.start()
            r = srv.request("GET", "/cdr/v1/clinic/", token=tok)
            self.assertEqual([c["name"] for c in r.json["clinics"]], ["URL"])
            r = srv.cli("business", "list", env={"HIPUSERS_DB": "sqlite://" + path})
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            srv.cleanup()


class FilesTests(unittest.TestCase):
    def test_secret_file_created_0600_and_reused(self):
        srv = Server(secret=None).start()
        try:
            path = os.path.join(srv.data_dir, "jwt-secret")
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            r = srv.cli("token", "--b-id", "5550000000000002", env={"HIPUSERS_JWT_SECRET": ""})
            self.assertEqual(r.returncode, 0, r.stderr)
            tok = r.stdout.strip()
            self.assertEqual(srv.request("GET", "/cdr/v1/ekauser/", token=tok).status, 200)
            with open(path) as f:
                before = f.read()
            srv.restart()
            with open(path) as f:
                self.assertEqual(f.read(), before)
            self.assertEqual(srv.request("GET", "/cdr/v1/ekauser/", token=tok).status, 200)
            # A token signed with some other secret is refused.
            self.assertEqual(srv.request("GET", "/cdr/v1/ekauser/", token=make_token("5550000000000002")).status,
                             401)
        finally:
            srv.cleanup()

    def test_database_files_0600(self):
        srv = Server().start()
        try:
            r = srv.request("POST", "/cdr/v1/ekauser/", body=dict(PERSONAL), token=make_token("5550000000000003"))
            self.assertEqual(r.status, 201, r)
            for name in ("hipusers.db", "hipusers.db-wal", "hipusers.db-shm"):
                path = os.path.join(srv.data_dir, name)
                self.assertTrue(os.path.exists(path), name)
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, name)
        finally:
            srv.cleanup()

    def test_admin_command_creates_database_0600(self):
        srv = Server()  # never started: the CLI is the first to touch the database
        try:
            r = srv.cli("business", "create", "--name", "Files Ltd")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(stat.S_IMODE(os.stat(srv.db).st_mode), 0o600)
            r = srv.cli("business", "create", "--name", "\udcff bad")
            self.assertEqual(r.returncode, 2)
        finally:
            srv.cleanup()

    def test_admin_commands_while_serving_keep_the_database_whole(self):
        srv = Server().start()
        tok = make_token("5550000000000006")
        try:
            for i in range(3):
                self.assertEqual(srv.cli("business", "create", "--name", f"B{i}").returncode, 0)
                r = srv.request("POST", "/cdr/v1/clinic/", body={"name": f"C{i}", "address": "x"}, token=tok)
                self.assertEqual(r.status, 201, r)
            self.assertTrue(os.path.exists(srv.db + "-shm"))  # the server's WAL index was not taken away
            r = srv.request("GET", "/cdr/v1/clinic/", token=tok)
            self.assertEqual(len(r.json["clinics"]), 3)
        finally:
            srv.cleanup()

    def test_listen_from_environment(self):
        port = free_port()
        srv = Server(env={"HIPUSERS_LISTEN": f"127.0.0.1:{port}"})
        # Start by hand: no --listen, the environment decides.
        env = dict(os.environ, HIPUSERS_JWT_SECRET=srv.secret, HIPUSERS_LISTEN=f"127.0.0.1:{port}",
                   HIPUSERS_DB=srv.db)
        err = open(srv.stderr_path, "wb")
        proc = subprocess.Popen([BIN, "serve"], stderr=err, env=env)
        try:
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            srv.port = port
            self.assertEqual(srv.request("GET", "/cdr/v1/clinic/", token=make_token("1")).status, 200)
            self.assertTrue(os.path.exists(srv.db))
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=15)
            err.close()
            log = srv.log()
            srv.cleanup()
            self.assertEqual(rc, 0, log)
            Server.check_clean(log, rc)


class AccessLogTests(unittest.TestCase):
    def test_one_json_line_per_request_without_personal_data(self):
        srv = Server().start()
        tok = make_token("5550000000000004")
        try:
            r = srv.request("POST", "/cdr/v1/ekauser/", body=dict(PERSONAL), token=tok,
                            headers={"X-Request-Id": "ops-test-1"})
            self.assertEqual(r.status, 201, r)
            uid = r.json["ekaid"]
            srv.request("GET", f"/cdr/v1/ekauser/{PERSONAL['partner_id']}/", token=tok,
                        headers={"X-Request-Id": "ops-test-2"})
            srv.request("PATCH", f"/cdr/v1/ekauser/{uid}/", body={"email": "other.private@example.org"}, token=tok,
                        headers={"X-Request-Id": "ops-test-3"})
            srv.request("GET", "/cdr/v1/ekauser/", token="not-a-token", headers={"X-Request-Id": "ops-test-4"})
            srv.request("GET", "/cdr/v1/ekauser/9123456789/", token=tok,  # a mobile as an id: no such record
                        headers={"X-Request-Id": "ops-test-5"})

            # A line is written once its answer has gone out, by whichever worker served it:
            # lines of consecutive requests may appear in either order, so they are matched
            # by request id, and awaited rather than slept for.
            def access_lines():
                return [json.loads(l) for l in srv.log().splitlines() if l.startswith('{"method"')]
            deadline = time.monotonic() + 30
            while len(access_lines()) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            log = srv.log()
            by_id = {l["request_id"]: l for l in access_lines()}
            self.assertEqual(len(access_lines()), 5, log)
            lines = [by_id.get("ops-test-%d" % i) for i in range(1, 6)]
            self.assertNotIn(None, lines, log)
            for line in lines:
                self.assertEqual(set(line), {"method", "path", "status", "us", "tenant", "request_id", "completed"})
                self.assertIsInstance(line["us"], int)
            self.assertEqual([l["status"] for l in lines], [201, 200, 200, 401, 404])
            self.assertEqual(lines[0]["tenant"], "5550000000000004")
            self.assertEqual(lines[1]["path"], f"/cdr/v1/ekauser/{uid}")  # resolved from the partner id
            self.assertEqual(lines[4]["path"], "/cdr/v1/ekauser/{id}")
            self.assertEqual(lines[2]["path"], f"/cdr/v1/ekauser/{uid}")
            self.assertIsNone(lines[3]["tenant"])
            for secret in list(PERSONAL.values())[:2] + ["9123456789", "very.private", "other.private",
                                                          "sso_secret_login", "HIS-PATIENT-7781", tok, "not-a-token",
                                                          srv.secret]:
                self.assertNotIn(secret, log)
        finally:
            srv.cleanup()


    def test_request_with_raw_bytes_in_its_method_is_logged(self):
        """A method that is not UTF-8 once made the line vanish (its JSON could not be built):
        now the line is there, valid UTF-8 JSON, each stray byte shown as U+FFFD."""
        srv = Server().start()
        try:
            r = srv.raw_request(b"G\xffT /cdr/v1/ekauser/ HTTP/1.1\r\nHost: t\r\nX-Request-Id: ops-raw-1\r\n\r\n")
            self.assertTrue(r.startswith(b"HTTP/1.1 405"), r)

            def line():
                with open(srv.stderr_path, "rb") as f:
                    for raw in f.read().splitlines():
                        if b'"ops-raw-1"' in raw:
                            return raw
                return None
            deadline = time.monotonic() + 30
            while line() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            raw = line()
            self.assertIsNotNone(raw, srv.log())
            entry = json.loads(raw.decode("utf-8"))  # strict: the bytes are UTF-8
            self.assertEqual(entry["method"], "G\ufffdT")
            self.assertEqual(entry["status"], 405)
            self.assertEqual(entry["path"], "/cdr/v1/ekauser/")
            self.assertIsNone(entry["tenant"])
        finally:
            srv.cleanup()


class GracefulStopTests(unittest.TestCase):
    def test_request_in_flight_finishes_and_nothing_new_is_accepted(self):
        srv = Server().start()
        tok = make_token("5550000000000005")
        body = json.dumps(dict(PERSONAL)).encode()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        # Expect: 100-continue makes the server say when it has read the headers and taken
        # the request on: from then on the request is in flight.
        s.sendall((f"POST /cdr/v1/ekauser/ HTTP/1.1\r\nHost: t\r\nauth: {tok}\r\nExpect: 100-continue\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode())
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            chunk = s.recv(1)
            self.assertTrue(chunk, "closed before 100 Continue")
            interim += chunk
        self.assertTrue(interim.startswith(b"HTTP/1.1 100"), interim)
        s.sendall(body[:10])
        srv.proc.send_signal(signal.SIGTERM)
        refused = False  # no longer accepting: wait for it, however loaded the machine
        deadline = time.monotonic() + 8
        while not refused and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
                time.sleep(0.05)
            except OSError:
                refused = True
        self.assertTrue(refused, "still accepting connections after SIGTERM")
        s.sendall(body[10:])
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 201"), reply)
        self.assertEqual(srv.proc.wait(timeout=15), 0)
        srv.proc = None
        # What was acknowledged is there after the restart.
        uid = json.loads(reply.split(b"\r\n\r\n", 1)[1])["ekaid"]
        srv.start()
        try:
            r = srv.request("GET", f"/cdr/v1/ekauser/{uid}/", token=tok)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["user"]["email"], PERSONAL["email"])
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
