"""Shared harness for the end-to-end tests: starts the real hipusers binary on a
free port with a temporary data directory, mints tokens and sends requests.

The binary is found through HIPUSERS_BIN (set by ctest); the default is ./build/hipusers.

The backend: SQLite files in each server's data directory by default. HIPUSERS_TEST_DB set to
a PostgreSQL URL (or to @FILE, a file holding one: tests/pg/cluster.sh writes it) runs every
server on PostgreSQL instead, each on a database of its own created in that cluster (named
after the server's data directory, so a restart finds its data), so suites can run in
parallel.
"""
import base64
import glob
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

BIN = os.environ.get("HIPUSERS_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "hipusers"))
SECRET = "e2e-test-secret-0123456789abcdef0123456789abcdef"


def _test_db():
    v = os.environ.get("HIPUSERS_TEST_DB", "")
    if v.startswith("@"):
        with open(v[1:]) as f:
            v = f.read().strip()
    return v


PG_BASE = _test_db()
BACKEND = "postgresql" if PG_BASE else "sqlite"


def _psql_bin():
    try:
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
    except OSError:
        bindir = ""
    for cand in [os.path.join(bindir, "psql")] + sorted(glob.glob("/usr/lib/postgresql/*/bin/psql")) + ["psql"]:
        if os.path.isabs(cand) and os.access(cand, os.X_OK):
            return cand
    return "psql"


def pg_url(dbname):
    """The test cluster's URL with another database name."""
    u = urllib.parse.urlsplit(PG_BASE)
    return "%s://%s/%s%s" % (u.scheme, u.netloc, dbname, "?" + u.query if u.query else "")


def psql(url, sql):
    """Runs SQL through psql; returns the rows as tuples of strings (NULL: None)."""
    p = subprocess.run([_psql_bin(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\x1f", "-P", "null=\x1e",
                        "-d", url, "-c", sql], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("psql failed: " + p.stderr)
    return [tuple(None if c == "\x1e" else c for c in line.split("\x1f"))
            for line in p.stdout.split("\n") if line]


def pg_until(url, what, sql, deadline_s=60):
    """Runs sql (one count) until it answers 1; fails after deadline_s."""
    deadline = time.monotonic() + deadline_s
    while psql(url, sql) != [("1",)]:
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %d s" % (what, deadline_s))
        time.sleep(0.02)


def pg_until_server_waits(url, what, query_start):
    """Until one of the server's statements that starts with query_start waits for a lock."""
    pg_until(url, what, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hipusers'"
                        " AND wait_event_type = 'Lock' AND query LIKE '%s%%'" % query_start)


class PsqlSession:
    """A psql session of its own (application_name `name`) fed statements one at a time, for
    tests that hold a lock while the server waits on it. hold() returns once the session has
    run its statements and sits in its transaction."""

    def __init__(self, url, name):
        self.url, self.name = url, name
        self.proc = subprocess.Popen([_psql_bin(), "-X", "-q", "-d", url], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                                     env=dict(os.environ, PGAPPNAME=name))

    def send(self, sql):
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()

    def hold(self, sql, what):
        self.send(sql)
        pg_until(self.url, what, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'"
                                 " AND state = 'idle in transaction'" % self.name)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(b_id="1000000000000001", secret=SECRET, alg="HS256", exp_in=3600,
               claims=None, header=None, claim_name="b_id"):
    """An HS256/HS384/HS512 (or 'none') JWT built here independently of the server."""
    h = {"alg": alg, "typ": "JWT"}
    if header:
        h.update(header)
    payload = {}
    if b_id is not None:
        payload[claim_name] = b_id
    payload["client_id"] = "e2e"
    if exp_in is not None:
        payload["exp"] = int(time.time()) + exp_in
    if claims:
        payload.update(claims)
    signing_input = b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(payload).encode())
    if alg == "none":
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(sig)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CREATE_PATH = re.compile(r"/cdr/v1/(ekauser|doctor|clinic)/?(\?.*)?")


def is_create(method, path):
    """A POST on a collection: Eka's OpenAPI types its 400's message as a list of strings."""
    return method == "POST" and CREATE_PATH.fullmatch(path or "") is not None


def error_message(js, create=False):
    """The message of a /cdr/v1 error body as text: a string, or for a create's 400 the list of
    strings Eka's OpenAPI gives it (joined). Raises AssertionError when the shape is wrong."""
    m = js.get("message") if isinstance(js, dict) else None
    if create:
        if not (isinstance(m, list) and m and all(isinstance(x, str) and x for x in m)):
            raise AssertionError(f"a create's 400 message must be a non-empty list of strings: {js!r}")
        return "; ".join(m)
    if not (isinstance(m, str) and m):
        raise AssertionError(f"message must be a non-empty string: {js!r}")
    return m


def _sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return list(self.rows)

    def __iter__(self):
        return iter(self.rows)


LINK_TABLES = (("user_doctor", "user_id", "doctor_id"), ("user_clinic", "user_id", "clinic_id"),
               ("doctor_clinic", "doctor_id", "clinic_id"))


def undo_migration_12():
    """SQL that takes a database back from schema 12 to 11: the records lose last_version."""
    return "".join("ALTER TABLE %s DROP COLUMN last_version;" % t for t in ("ekauser", "doctor", "clinic"))


def undo_migration_11():
    """SQL that takes a database back from schema 11 to 10: the records lose last_seq and the
    change log its prev (on SQLite it gets its (b_id, resource, id, version) key back)."""
    drop = "".join("ALTER TABLE %s DROP COLUMN last_seq;" % t for t in ("ekauser", "doctor", "clinic"))
    if BACKEND == "postgresql":
        return drop + "ALTER TABLE change_log DROP COLUMN prev;"
    return (drop +
            "CREATE TABLE change_log_v10 (b_id TEXT NOT NULL, seq INTEGER NOT NULL, resource TEXT NOT NULL,"
            "  id TEXT NOT NULL, version INTEGER NOT NULL, action TEXT NOT NULL, at TEXT NOT NULL,"
            "  client_id TEXT, request_id TEXT, changes TEXT NOT NULL,"
            "  PRIMARY KEY (b_id, seq), UNIQUE (b_id, resource, id, version)) WITHOUT ROWID;"
            "INSERT INTO change_log_v10 SELECT b_id, seq, resource, id, version, action, at, client_id,"
            "  request_id, changes FROM change_log;"
            "DROP TABLE change_log; ALTER TABLE change_log_v10 RENAME TO change_log;")


def undo_migration_9():
    """SQL that takes a database back from schema 9 to 8 (for tests of older databases):
    the link tables lose b_id and get their keys on (col0, col1) and (col1) back; on
    PostgreSQL the record tables' keys are (rid) and (id) again and the id registry goes."""
    if BACKEND == "postgresql":
        return ("DROP TABLE eka_id;" +
                "".join("ALTER TABLE %s DROP CONSTRAINT %s_pkey, DROP CONSTRAINT %s_b_id_id_key,"
                        " ADD PRIMARY KEY (rid), ADD UNIQUE (id);" % (t, t, t)
                        for t in ("ekauser", "doctor", "clinic")) +
                "".join("ALTER TABLE %s DROP COLUMN b_id, ADD PRIMARY KEY (pos), ADD UNIQUE (%s, %s);"
                        "CREATE INDEX %s_rev ON %s (%s);" % (t, a, b, t, t, b) for t, a, b in LINK_TABLES))
    return "".join("DROP INDEX %s_key; DROP INDEX %s_rev; ALTER TABLE %s DROP COLUMN b_id;"
                   "CREATE UNIQUE INDEX %s_v7_key ON %s(%s, %s); CREATE INDEX %s_rev ON %s(%s);"
                   % (t, t, t, t, t, a, b, t, t, b) for t, a, b in LINK_TABLES)


class DB:
    """The server's database for tests that read or make states directly, on either backend,
    with sqlite3's interface: execute(sql, params) with ? placeholders (rows as tuples of ints,
    strings and None), executescript(script) where `PRAGMA user_version=N` sets the schema
    version, commit(), close(), and `with` (commits at the end)."""

    def __init__(self, srv):
        self.srv = srv
        if BACKEND == "postgresql":
            srv.make_db()
            self.conn = None
        else:
            import sqlite3
            self.conn = sqlite3.connect(srv.db, timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.commit()
        return False

    def execute(self, sql, params=()):
        if self.conn is not None:
            return self.conn.execute(sql, params)
        parts = sql.split("?")
        if len(parts) != len(params) + 1:
            raise ValueError("placeholders and parameters differ: " + sql)
        text = parts[0] + "".join(_sql_literal(v) + rest for v, rest in zip(params, parts[1:]))
        if text.lstrip().upper().startswith("SELECT"):
            rows = psql(self.srv.db, "SELECT row_to_json(q)::text FROM (%s) q" % text)
            return _Rows([tuple(json.loads(r[0]).values()) for r in rows])
        psql(self.srv.db, text)
        return _Rows([])

    def executescript(self, script):
        if self.conn is not None:
            return self.conn.executescript(script)
        import re
        psql(self.srv.db, re.sub(r"PRAGMA user_version\s*=\s*(\d+)", r"UPDATE hipusers_schema SET version = \1",
                                 script))

    def commit(self):
        if self.conn is not None:
            self.conn.commit()

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Response:
    def __init__(self, status, headers, raw, method=None, path=None):
        self.status = status
        self.headers = headers  # dict with lower-case names
        self.raw = raw
        self.method = method
        self.path = path
        try:
            self.json = json.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def __repr__(self):
        return f"<Response {self.status} {self.raw[:300]!r}>"


class Server:
    """One hipusers process on a free port; the data directory survives restart()."""

    def __init__(self, secret=SECRET, env=None, args=None, data_dir=None):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="hipusers-e2e-")
        if BACKEND == "postgresql":
            # one database per data directory: made on first use, dropped with the directory
            self.dbname = "hip_" + hashlib.sha256(os.path.realpath(self.data_dir).encode()).hexdigest()[:16]
            self.db = pg_url(self.dbname)
            self.db_made = False
        else:
            self.db = os.path.join(self.data_dir, "hipusers.db")
        self.secret = secret
        self.extra_env = env or {}
        self.args = args or []
        self.proc = None
        self.port = None
        self.stderr_path = os.path.join(self.data_dir, "stderr.log")

    def make_db(self):
        if BACKEND == "postgresql" and not self.db_made:
            if not psql(pg_url("postgres"), "SELECT 1 FROM pg_database WHERE datname = '%s'" % self.dbname):
                psql(pg_url("postgres"), 'CREATE DATABASE "%s"' % self.dbname)
            self.db_made = True

    def drop_db(self):
        if BACKEND == "postgresql" and self.db_made:
            psql(pg_url("postgres"), 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.dbname)
            self.db_made = False

    def query(self, sql):
        """Rows of a query on the server's database, either backend (tuples; values as the
        driver gives them: strings and None on PostgreSQL)."""
        if BACKEND == "postgresql":
            self.make_db()
            return psql(self.db, sql)
        import sqlite3
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            return [tuple(r) for r in conn.execute(sql)]
        finally:
            conn.close()

    def text_cells(self):
        """Every text value stored in every table of the server's database."""
        out = []
        if BACKEND == "postgresql":
            tables = [r[0] for r in self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            for t in tables:
                for (row,) in self.query('SELECT row_to_json(t)::text FROM "%s" t' % t.replace('"', '""')):
                    out.extend(v for v in json.loads(row).values() if isinstance(v, str))
            return out
        tables = [r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            for row in self.query('SELECT * FROM "%s"' % t.replace('"', '""')):
                for v in row:
                    if isinstance(v, bytes):
                        out.append(v.decode("latin-1"))
                    elif isinstance(v, str):
                        out.append(v)
        return out

    def start(self):
        self.make_db()
        self.port = free_port()
        env = dict(os.environ)
        if self.secret is not None:
            env["HIPUSERS_JWT_SECRET"] = self.secret
        else:
            env.pop("HIPUSERS_JWT_SECRET", None)
        env.update(self.extra_env)
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--db", self.db] + self.args,
            stdout=subprocess.DEVNULL, stderr=self._stderr, env=env)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: " + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("server did not start: " + self.log())

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        if getattr(self, "_stderr", None):
            self._stderr.close()
            self._stderr = None
        return rc

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        rc = self.stop()
        log = self.log()
        if self.own_dir:
            self.drop_db()
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.check_clean(log, rc)

    @staticmethod
    def check_clean(log, rc):
        """Fails when the server's stderr holds a sanitizer report or it did not exit cleanly."""
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if marker in log:
                raise AssertionError("sanitizer report in the server log:\n" + log[-4000:])
        if rc not in (None, 0):
            raise AssertionError(f"server exited with {rc} on SIGTERM:\n" + log[-2000:])

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def cli(self, *args, env=None):
        """Runs `hipusers ARGS` against the same database; returns CompletedProcess."""
        self.make_db()
        e = dict(os.environ)
        if self.secret is not None:
            e["HIPUSERS_JWT_SECRET"] = self.secret
        e["HIPUSERS_DB"] = self.db
        e.update(env or {})
        return subprocess.run([BIN] + list(args), capture_output=True, text=True, env=e, timeout=60)

    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                content_type="application/json"):
        """Sends one request. body is JSON-encoded; raw is sent as is (bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        h = {}
        if token is not None:
            h["auth"] = token
        data = None
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type is not None:
            h["Content-Type"] = content_type
        if headers:
            h.update(headers)
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw_body = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        return Response(r.status, hdrs, raw_body, method, path)

    def raw_request(self, data: bytes, timeout=5) -> bytes:
        """Sends bytes on a fresh socket and returns everything read until one response is
        complete, the server closes, or the timeout passes."""
        return exchange(self.port, [data], timeout, until=response_complete)[0]


def exchange(port, parts, timeout=5.0, until=None):
    """Sends the byte strings on one fresh socket from a helper thread while reading here,
    so an early answer (a 413 before the body is all sent) is read rather than lost in
    EPIPE. Reads until the peer closes, `timeout` passes or until(bytes read so far) holds.
    Returns (bytes read, closed by the server)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def pump():
        try:
            for p in parts:
                s.sendall(p)
        except OSError:
            pass

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    out, closed = b"", False
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            s.settimeout(max(0.05, deadline - time.time()))
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
            if until is not None and until(out):
                break
    except socket.timeout:
        pass
    except OSError:
        closed = True
    finally:
        s.close()
        t.join(5)
    return out, closed


def response_complete(buf: bytes) -> bool:
    """Holds once buf has a header block and all of the body its Content-Length names."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1].strip())
    return False


class ServerTestCase(unittest.TestCase):
    """Starts one server per test class; self.srv, self.tok (tenant A) and self.tok_b (tenant B)."""

    server_env = None
    server_args = None

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(env=cls.server_env, args=cls.server_args).start()
        cls.tok = make_token("1000000000000001")
        cls.tok_b = make_token("2000000000000002")

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def req(self, method, path, body=None, token="default", **kw):
        if token == "default":
            token = self.tok
        return self.srv.request(method, path, body=body, token=token, **kw)

    def msg(self, r):
        """The error message of r as text; checks its shape (a list for a create's 400)."""
        try:
            return error_message(r.json, r.status == 400 and is_create(r.method, r.path))
        except AssertionError as e:
            self.fail(f"{e} ({r.method} {r.path} -> {r.status})")

    def assertError(self, r, status, message=None, field=None):
        self.assertEqual(r.status, status, r)
        self.assertIsInstance(r.json, dict, r)
        self.assertEqual(r.json.get("status"), "error", r)
        text = self.msg(r)
        if message is not None:
            self.assertIn(message, text, r)
        if field is not None:
            self.assertIn(field, r.json.get("errors", {}), r)
