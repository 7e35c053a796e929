#!/usr/bin/env python3
"""contrib/hipusers.service: `systemd-analyze verify` prints nothing about it (any warning
fails), `systemd-analyze security` rates its exposure at most 2.0 ("OK"), the hardening the
deployment guide promises is in it, and the server starts the way the unit starts it (its
Environment= and ExecStart= with flags from the environment file) and stops cleanly on the
unit's KillSignal. systemd need not be running: both commands read the unit file.

The unit's ExecStart names /usr/local/bin/hipusers, which verify requires to exist: the test
checks a copy naming the binary under test instead.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_service.py
"""
import http.client
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, SECRET, Server, free_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UNIT = os.path.join(ROOT, "contrib", "hipusers.service")
INSTALLED = "/usr/local/bin/hipusers"


def unit_text():
    with open(UNIT) as f:
        return f.read()


def directives(text):
    """[(key, value)] of the unit, in order (a key may repeat)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.append((k.strip(), v.strip()))
    return out


class Unit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("systemd-analyze"):
            raise RuntimeError("systemd-analyze is missing: scripts/deps.sh installs the systemd package")
        cls.dir = tempfile.mkdtemp(prefix="hipusers-unit-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)

    def write(self, text, name="hipusers.service"):
        """A copy of the unit whose ExecStart names the binary under test."""
        self.assertIn(INSTALLED + " ", text)
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text.replace(INSTALLED, os.path.abspath(BIN)))
        return path

    def verify(self, path):
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER=""))
        return r.returncode, (r.stdout + r.stderr).strip()

    def test_verify_prints_nothing(self):
        rc, out = self.verify(self.write(unit_text()))
        self.assertEqual((rc, out), (0, ""))

    def test_verify_would_see_a_fault(self):
        # the same check on broken copies: it is seen to see
        rc, out = self.verify(self.write(unit_text().replace("NoNewPrivileges=", "NoNewPrivilege="), "typo.service"))
        self.assertIn("NoNewPrivilege", out)
        rc, out = self.verify(self.write(unit_text().replace("Restart=on-failure", "Restart=sometimes"),
                                         "value.service"))
        self.assertIn("sometimes", out)
        path = os.path.join(self.dir, "nobinary.service")
        with open(path, "w") as f:
            f.write(unit_text().replace(INSTALLED, "/nonexistent/hipusers"))
        rc, out = self.verify(path)
        self.assertNotEqual((rc, out), (0, ""))

    def test_exposure_is_ok(self):
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", "--no-pager",
                            self.write(unit_text())], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        self.assertIsNotNone(m, r.stdout[-2000:])
        self.assertLessEqual(float(m.group(1)), 2.0)

    def test_hardening_and_lifecycle(self):
        d = directives(unit_text())
        keys = dict(d)
        for k, v in {"User": "hipusers", "StateDirectory": "hipusers", "StateDirectoryMode": "0700",
                     "UMask": "0077", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                     "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
                     "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "MemoryDenyWriteExecute": "yes",
                     "SystemCallArchitectures": "native", "Restart": "on-failure", "KillSignal": "SIGTERM",
                     "Type": "simple"}.items():
            self.assertEqual(keys.get(k), v, k)
        filters = [v for k, v in d if k == "SystemCallFilter"]
        self.assertIn("@system-service", filters)
        self.assertIn("~@privileged", filters)
        env = [v for k, v in d if k == "Environment"]
        self.assertIn("HIPUSERS_DB=/var/lib/hipusers/hipusers.db", env)  # inside the StateDirectory
        self.assertTrue(keys["ExecStart"].startswith(INSTALLED + " serve"))

    def test_the_server_starts_as_the_unit_starts_it(self):
        """The unit's Environment= lines and ExecStart (flags from the environment file),
        with the database moved to a temporary folder: it serves, and stops with exit 0 on
        SIGTERM."""
        d = directives(unit_text())
        data = tempfile.mkdtemp(prefix="hipusers-unit-data-")
        self.addCleanup(shutil.rmtree, data, True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HIPUSERS_")}
        for k, v in d:
            if k == "Environment":
                name, value = v.split("=", 1)
                env[name] = value
        env["HIPUSERS_DB"] = env["HIPUSERS_DB"].replace("/var/lib/hipusers", data)
        # what an environment file would add
        env.update(HIPUSERS_LISTEN=f"127.0.0.1:{port}", HIPUSERS_JWT_SECRET=SECRET, HIPUSERS_SERVE_FLAGS="--no-docs")
        argv = [os.path.abspath(BIN) if w == INSTALLED else w for w in shlex.split(dict(d)["ExecStart"])]
        argv = [x for w in argv for x in (env["HIPUSERS_SERVE_FLAGS"].split() if w == "$HIPUSERS_SERVE_FLAGS" else [w])]
        log = open(os.path.join(data, "stderr.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        def stderr():
            with open(log.name, errors="replace") as f:
                return f.read()

        deadline = time.time() + 30
        status = None
        while time.time() < deadline and status is None:
            if proc.poll() is not None:
                self.fail(f"exited with {proc.returncode}:\n{stderr()}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/openapi.json")
                status = c.getresponse().status
                c.close()
            except OSError:
                time.sleep(0.05)
        self.assertEqual(status, 404)  # --no-docs, from HIPUSERS_SERVE_FLAGS
        self.assertTrue(os.path.exists(os.path.join(data, "hipusers.db")))
        proc.send_signal(getattr(signal, dict(d)["KillSignal"]))
        rc = proc.wait(timeout=30)
        Server.check_clean(stderr(), rc)  # exit 0, no sanitizer report


if __name__ == "__main__":
    unittest.main()
