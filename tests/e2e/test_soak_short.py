#!/usr/bin/env python3
"""The short soak: tests/soak/soak.py for 60 s (HIPUSERS_SOAK_SECONDS overrides) of mixed
load across 4 tenants, at most 400 requests/s since other tests run alongside. Fails on
any 5xx or unexpected answer, on resident memory or open fds that keep growing, or on a
server that does not stop cleanly (under ASan: on a LeakSanitizer report).

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_soak_short.py
"""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOAK = os.path.join(HERE, "..", "soak", "soak.py")
sys.path.insert(0, HERE)
from harness import BIN  # noqa: E402

SECONDS = float(os.environ.get("HIPUSERS_SOAK_SECONDS", "60"))


class ShortSoakTest(unittest.TestCase):
    def test_soak(self):
        cmd = [sys.executable, SOAK, "--duration", str(SECONDS), "--workers", "4", "--tenants", "4",
               "--max-rps", "400", "--bin", BIN]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 180)
        sys.stderr.write("\n" + p.stdout)
        self.assertEqual(p.returncode, 0, "soak failed:\n" + p.stdout + p.stderr[-3000:])
        self.assertIn("PASS", p.stdout)


if __name__ == "__main__":
    unittest.main()
