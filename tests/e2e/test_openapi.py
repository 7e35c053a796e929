#!/usr/bin/env python3
"""The API describes itself: GET /openapi.json and GET /docs.

- docs/openapi.json passes Redocly CLI's lint (pinned in tools/npm, rules in
  tools/redocly.yaml), and the same lint fails copies broken on purpose, so the validator is
  seen to validate;
- the server serves that file byte for byte, without a token, with an ETag (304 when it is
  current) and HEAD; the reference page and each file it loads are served from the binary,
  with a Content-Security-Policy that lets the page talk to this server only;
- `serve --no-docs` turns all of it off (404) and leaves the API alone;
- the vendored Swagger UI files are the pinned npm package's, byte for byte.
(tests/unit/test_openapi.c holds the document against the router and the field tables;
tests/e2e/test_contract.py validates real answers against it with Prism; test_docs_page.py
renders /docs in Chromium.)

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_openapi.py
Environment: HIPUSERS_PRISM (its folder holds the redocly executable too).
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN_DIR = os.path.dirname(os.environ.get("HIPUSERS_PRISM") or
                          os.path.join(ROOT, "build", "tools", "node_modules", ".bin", "prism"))
REDOCLY = os.path.join(BIN_DIR, "redocly")
NODE_MODULES = os.path.dirname(BIN_DIR)
DOC_PATH = os.path.join(ROOT, "docs", "openapi.json")
VENDOR = os.path.join(ROOT, "vendor", "swagger-ui")
PAGE_FILES = {  # what /docs loads, and the type each is served with
    "/docs/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "/docs/swagger-ui.css": "text/css; charset=utf-8",
    "/docs/hipusers-docs.js": "text/javascript; charset=utf-8",
    "/docs/favicon-32x32.png": "image/png",
}


def lint(path):
    """Runs `redocly lint` on a file; returns (exit code, output). No telemetry, no update
    check: nothing leaves the machine."""
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true", NO_COLOR="1")
    r = subprocess.run([REDOCLY, "lint", "--config", os.path.join(ROOT, "tools", "redocly.yaml"), "--format=stylish",
                        path], capture_output=True, text=True, env=env, timeout=300, cwd=os.path.dirname(path))
    return r.returncode, r.stdout + r.stderr


def load_doc():
    with open(DOC_PATH, "rb") as f:
        return f.read()


class DocumentIsValid(unittest.TestCase):
    """The document passes a maintained OpenAPI 3.1 validator, which fails broken copies."""

    @classmethod
    def setUpClass(cls):
        if not os.access(REDOCLY, os.X_OK):
            raise RuntimeError(f"redocly is missing at {REDOCLY}: `make test` installs it (scripts/npm-tools.sh)")
        cls.tmp = tempfile.mkdtemp(prefix="hipusers-openapi-")
        cls.addClassCleanup(lambda: subprocess.run(["rm", "-rf", cls.tmp]))

    def test_lint_passes(self):
        rc, out = lint(DOC_PATH)
        self.assertEqual(rc, 0, out)
        self.assertIn("Your API description is valid", out)
        self.assertNotRegex(out, r"(?i)\bwarning\b")

    def broken(self, name, change):
        doc = json.loads(load_doc())
        change(doc)
        path = os.path.join(self.tmp, name + ".json")
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)
        return lint(path)

    def test_lint_fails_broken_copies(self):
        def no_request_id(doc):
            del doc["components"]["responses"]["Conflict"]["headers"]["X-Request-Id"]

        def dangling_ref(doc):
            doc["paths"]["/cdr/v1/clinic/"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
                "$ref": "#/components/schemas/NoSuchSchema"}

        def bad_type(doc):
            doc["components"]["schemas"]["Clinic"]["properties"]["name"]["type"] = "text"

        def undefined_tag(doc):
            doc["paths"]["/cdr/v1/doctor/"]["get"]["tags"] = ["No such tag"]

        def same_operation_id(doc):
            doc["paths"]["/cdr/v1/doctor/"]["get"]["operationId"] = "ListClinics"

        for name, change, rule in (("no_request_id", no_request_id, "response-contains-header"),
                                   ("dangling_ref", dangling_ref, "no-unresolved-refs"),
                                   ("bad_type", bad_type, "struct"),
                                   ("undefined_tag", undefined_tag, "operation-tag-defined"),
                                   ("same_operation_id", same_operation_id, "operation-operationId-unique")):
            with self.subTest(name):
                rc, out = self.broken(name, change)
                self.assertNotEqual(rc, 0, out)
                self.assertIn(rule, out)


class Served(ServerTestCase):
    """GET /openapi.json and /docs on a default server."""

    def test_document_is_the_file_byte_for_byte(self):
        want = load_doc()
        r = self.req("GET", "/openapi.json", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.raw, want)
        self.assertEqual(r.headers["content-type"], "application/json; charset=utf-8")
        self.assertEqual(r.headers["etag"], '"' + hashlib.sha256(want).hexdigest() + '"')
        self.assertEqual(r.headers["cache-control"], "no-cache")
        self.assertIn("x-request-id", r.headers)
        doc = json.loads(r.raw)
        self.assertEqual(doc["openapi"], "3.1.0")
        # a token, even a bad one, changes nothing: the reference is public
        self.assertEqual(self.req("GET", "/openapi.json", token="not-a-token").raw, want)

    def test_document_describes_what_the_server_serves(self):
        doc = json.loads(load_doc())
        ops = {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m != "parameters"}
        for op in [("POST", "/connect-auth/v1/account/login"), ("GET", "/cdr/v1/ekauser/{user_id}/"),
                   ("HEAD", "/cdr/v1/ekauser/{user_id}/"), ("GET", "/openapi.json"), ("GET", "/docs"),
                   ("GET", "/metrics"), ("GET", "/healthz"), ("GET", "/readyz")]:
            self.assertIn(op, ops)
        self.assertEqual(len(ops), 53)
        # the version is the program's
        out = subprocess.run([os.environ.get("HIPUSERS_BIN", os.path.join(ROOT, "build", "hipusers")), "--version"],
                             capture_output=True, text=True, timeout=30).stdout
        self.assertEqual(out.strip(), "hipusers " + doc["info"]["version"])

    def test_list_filters_are_the_servers(self):
        """Each list takes exactly the query parameters the document gives it: a documented one
        is served (200), any other list's filter is refused by this list (400 naming it)."""
        doc = json.loads(load_doc())
        params = doc["components"]["parameters"]
        sample = {"limit": "5", "partner_id": "x", "mobile": "9000000000", "email": "a@example.com",
                  "auth_userid": "x", "clinic_id": "c-" + "0" * 24, "doctor_id": "do1000000000000",
                  "updated_since": "2000-01-01T00:00:00Z"}
        lists = {p: [params[r["$ref"].rsplit("/", 1)[1]]["name"] for r in item["get"]["parameters"]
                     if params[r["$ref"].rsplit("/", 1)[1]]["in"] == "query"]
                 for p, item in doc["paths"].items() if p in ("/cdr/v1/ekauser/", "/cdr/v1/doctor/",
                                                               "/cdr/v1/clinic/", "/cdr/v1/hipusers/")}
        self.assertEqual(len(lists), 4)
        for path, names in lists.items():
            self.assertIn("cursor", names)
            for name, value in sample.items():
                with self.subTest(path=path, param=name):
                    r = self.req("GET", f"{path}?{name}={value.replace('+', '%2B')}")
                    if name in names:
                        self.assertEqual(r.status, 200, r)
                    else:
                        self.assertError(r, 400, name, field=name)

    def test_etag_and_head(self):
        r = self.req("GET", "/openapi.json", token=None)
        etag = r.headers["etag"]
        for inm in (etag, "W/" + etag, '"other", ' + etag, "*"):
            with self.subTest(inm):
                n = self.req("GET", "/openapi.json", token=None, headers={"If-None-Match": inm})
                self.assertEqual(n.status, 304, n)
                self.assertEqual(n.raw, b"")
                self.assertEqual(n.headers["etag"], etag)
        n = self.req("GET", "/openapi.json", token=None, headers={"If-None-Match": '"0123"'})
        self.assertEqual(n.status, 200)
        self.assertEqual(n.raw, r.raw)
        h = self.req("HEAD", "/openapi.json", token=None)
        self.assertEqual(h.status, 200)
        self.assertEqual(h.raw, b"")
        self.assertEqual(int(h.headers["content-length"]), len(r.raw))
        self.assertEqual(h.headers["etag"], etag)

    def test_page_and_every_file_it_loads(self):
        for path in ("/docs", "/docs/"):
            r = self.req("GET", path, token=None)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
            csp = r.headers["content-security-policy"]
            self.assertIn("default-src 'none'", csp)
            self.assertIn("script-src 'self'", csp)
            self.assertIn("connect-src 'self'", csp)
            self.assertNotIn("http", csp)  # no other origin
            self.assertEqual(r.headers["referrer-policy"], "no-referrer")
            html = r.raw.decode()
            loaded = set(re.findall(r'(?:src|href)="(/[^"]+)"', html))
            self.assertEqual(loaded, set(PAGE_FILES) | {"/openapi.json"}, html)
            self.assertNotRegex(html, r'(?:src|href)="(?:https?:)?//')  # nothing from elsewhere
            self.assertNotIn("<script>", html)  # no inline script (CSP allows none)
        for path, ctype in PAGE_FILES.items():
            with self.subTest(path):
                r = self.req("GET", path, token=None)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.headers["content-type"], ctype)
                self.assertEqual(r.headers["x-content-type-options"], "nosniff")
                self.assertEqual(r.headers["etag"], '"' + hashlib.sha256(r.raw).hexdigest() + '"')
                name = path.rsplit("/", 1)[1]
                src = os.path.join(VENDOR, name) if name != "hipusers-docs.js" else os.path.join(ROOT, "web", name)
                with open(src, "rb") as f:
                    self.assertEqual(r.raw, f.read())
        js = self.req("GET", "/docs/hipusers-docs.js", token=None).raw.decode()
        self.assertIn('url: "/openapi.json"', js)
        self.assertIn("validatorUrl: null", js)  # Swagger UI would otherwise call validator.swagger.io

    def test_unknown_files_and_other_methods(self):
        for path in ("/docs/nope.js", "/docs/swagger-ui-bundle.js.map", "/docs/..", "/docs/a/b", "/openapi.yaml",
                     "/openapi.json/"):
            with self.subTest(path):
                self.assertError(self.req("GET", path, token=None), 404, "Not found")
        before = self.req("GET", "/openapi.json", token=None).raw
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for path in ("/openapi.json", "/docs", "/docs/swagger-ui.css"):
                with self.subTest(f"{method} {path}"):
                    r = self.req(method, path, body={"openapi": "3.0.0"}, token=None)
                    self.assertError(r, 405, "Method not allowed")
                    self.assertEqual(r.headers["allow"], "GET")
        self.assertEqual(self.req("GET", "/openapi.json", token=None).raw, before)

    def test_access_log_names_the_path(self):
        r = self.req("GET", "/docs/swagger-ui.css", token=None, headers={"X-Request-Id": "docs-log-1"})
        self.assertEqual(r.status, 200)
        deadline = time.time() + 15
        line = None
        while line is None and time.time() < deadline:
            for ln in self.srv.log().splitlines():
                if '"docs-log-1"' in ln:
                    line = json.loads(ln)
        self.assertIsNotNone(line, self.srv.log()[-2000:])
        self.assertEqual((line["path"], line["status"], line["tenant"]), ("/docs/swagger-ui.css", 200, None))


class NoDocs(ServerTestCase):
    """`serve --no-docs`: the reference is gone, the API is not."""
    server_args = ["--no-docs"]

    def test_everything_of_the_reference_is_404(self):
        for method in ("GET", "HEAD", "POST"):
            for path in ["/openapi.json", "/docs", "/docs/"] + list(PAGE_FILES):
                with self.subTest(f"{method} {path}"):
                    r = self.req(method, path, token=None)
                    self.assertEqual(r.status, 404, r)
                    if method != "HEAD":
                        self.assertError(r, 404, "Not found")
                    self.assertNotIn("etag", r.headers)

    def test_the_api_still_works(self):
        r = self.req("POST", "/cdr/v1/clinic/", {"name": "Docs Off", "address": "1 Road"})
        self.assertEqual(r.status, 201, r)
        r = self.req("GET", "/cdr/v1/clinic/" + r.json["ekaid"] + "/")
        self.assertEqual(r.json["clinic"]["name"], "Docs Off")


class VendoredSwaggerUi(unittest.TestCase):
    """vendor/swagger-ui holds the pinned swagger-ui-dist's files, unchanged."""

    def test_files_are_the_pinned_package(self):
        with open(os.path.join(ROOT, "tools", "npm", "package.json")) as f:
            pinned = json.load(f)["dependencies"]["swagger-ui-dist"]
        with open(os.path.join(ROOT, "tools", "npm", "package-lock.json")) as f:
            locked = json.load(f)["packages"]["node_modules/swagger-ui-dist"]["version"]
        self.assertEqual(pinned, locked)
        with open(os.path.join(VENDOR, "README.md")) as f:
            self.assertIn(f"**{pinned}**", f.read())
        pkg = os.path.join(NODE_MODULES, "swagger-ui-dist")
        if not os.path.isdir(pkg):
            raise RuntimeError(f"swagger-ui-dist is missing at {pkg}: `make test` installs it (scripts/npm-tools.sh)")
        with open(os.path.join(pkg, "package.json")) as f:
            self.assertEqual(json.load(f)["version"], pinned)
        names = sorted(n for n in os.listdir(VENDOR) if n != "README.md")
        self.assertEqual(names, sorted(["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE",
                                        "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"]))
        for name in names:
            with self.subTest(name), open(os.path.join(VENDOR, name), "rb") as a, \
                    open(os.path.join(pkg, name), "rb") as b:
                self.assertEqual(hashlib.sha256(a.read()).hexdigest(), hashlib.sha256(b.read()).hexdigest())


if __name__ == "__main__":
    unittest.main()
