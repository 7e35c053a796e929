#!/usr/bin/env python3
"""GET /docs renders in a real browser: headless Chromium opens the page, Swagger UI loads its
files and /openapi.json from this server alone, and every operation of the document is listed
(its method and path rendered as text). The network is closed to the browser (every host but
127.0.0.1 is unresolvable, and any proxied request would fail), so a page that needed anything
from elsewhere would not render. A screenshot is kept next to the binary
(build/docs-screenshot.png) for a human to look at.

Chromium comes from Debian (scripts/deps.sh installs it when missing). It runs with
--no-sandbox: CI runs as root, where Chromium's sandbox refuses to start, and the only page it
opens is this server's own.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_docs_page.py
Environment: HIPUSERS_CHROMIUM (the browser executable).
"""
import html.parser
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Server  # noqa: E402

CHROMIUM = os.environ.get("HIPUSERS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = os.path.join(os.path.dirname(os.path.abspath(BIN)), "docs-screenshot.png")
DEADLINE_SECONDS = 240  # a browser and the server sharing a loaded 2-core machine


class Operations(html.parser.HTMLParser):
    """The operations Swagger UI rendered: (METHOD, path) from each operation block's summary,
    the path as the text the reader sees (Swagger UI breaks it with <wbr>), and whether the
    page shows a load error."""

    def __init__(self):
        super().__init__()
        self.ops, self.titles = [], []
        self.failed = False
        self._stack = []  # (tag, role) of open elements; role: "method", "path", "title" or None
        self._method = self._path = None

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        classes = cls.split()
        role = None
        if "opblock-summary-method" in classes:
            role, self._method = "method", ""
        elif "opblock-summary-path" in classes or "opblock-summary-path__deprecated" in classes:
            role, self._path = "path", ""
        elif tag in ("h1", "h2") and "title" in classes:
            role = "title"
            self.titles.append("")
        if "errors-wrapper" in classes or "loading-container" in classes and "failed" in cls:
            self.failed = True
        if tag not in ("wbr", "br", "img", "input", "link", "meta"):
            self._stack.append((tag, role))

    def handle_endtag(self, tag):
        while self._stack:
            t, role = self._stack.pop()
            if role == "path" and self._method is not None:
                self.ops.append((self._method.strip(), self._path.strip()))
                self._method = self._path = None
            if t == tag:
                break

    def handle_data(self, data):
        roles = [r for _, r in self._stack if r]
        if not roles:
            return
        if roles[-1] == "method" and self._method is not None:
            self._method += data
        elif roles[-1] == "path" and self._path is not None:
            self._path += data
        elif roles[-1] == "title":
            self.titles[-1] += data


class DocsPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not CHROMIUM:
            raise RuntimeError("chromium is missing: scripts/deps.sh installs it (make test runs it)")
        cls.srv = Server()
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.start()
        cls.profile = tempfile.mkdtemp(prefix="hipusers-chromium-")
        cls.addClassCleanup(shutil.rmtree, cls.profile, True)
        r = cls.srv.request("GET", "/openapi.json")
        cls.doc = json.loads(r.raw)
        cls.url = f"http://127.0.0.1:{cls.srv.port}/docs"

    def chromium(self, *args, budget_ms):
        cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
               "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
               "--mute-audio", f"--user-data-dir={self.profile}",
               # nothing but this server is reachable
               "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
               f"--virtual-time-budget={budget_ms}", *args, self.url]
        return subprocess.run(cmd, capture_output=True, timeout=180, stdin=subprocess.DEVNULL)

    def documented(self):
        return sorted((m.upper(), p) for p, item in self.doc["paths"].items() for m in item if m != "parameters")

    def test_every_operation_is_listed(self):
        want = self.documented()
        self.assertEqual(len(want), 53)
        deadline = time.time() + DEADLINE_SECONDS
        budget = 5000
        while True:  # poll: a longer virtual time budget until the page has rendered
            r = self.chromium("--dump-dom", budget_ms=budget)
            page = Operations()
            page.feed(r.stdout.decode("utf-8", "replace"))
            got = sorted(page.ops)
            if got == want or page.failed or time.time() > deadline:
                break
            budget *= 2
        self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace")[-3000:])
        self.assertFalse(page.failed, "Swagger UI shows a load error:\n" + r.stdout.decode()[:3000])
        self.assertEqual(got, want, "operations rendered differ from the document\n" +
                         r.stdout.decode("utf-8", "replace")[:2000])
        self.assertTrue(any(t.startswith("hipusers") for t in page.titles), page.titles)
        # the page took its files and the document from this server
        log = self.srv.log()
        for path in ("/docs", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/hipusers-docs.js",
                     "/openapi.json"):
            self.assertIn(f'"path":"{path}","status":200', log)

    def test_screenshot(self):
        if os.path.exists(SCREENSHOT):
            os.unlink(SCREENSHOT)
        r = self.chromium("--hide-scrollbars", "--window-size=1280,4400", f"--screenshot={SCREENSHOT}",
                          budget_ms=20000)
        self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace")[-3000:])
        with open(SCREENSHOT, "rb") as f:
            png = f.read()
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", png[16:24])
        self.assertEqual((width, height), (1280, 4400))
        # a blank page compresses to a few KiB; the rendered reference is far larger
        self.assertGreater(len(png), 100 * 1024, "the screenshot looks empty")


if __name__ == "__main__":
    unittest.main()
