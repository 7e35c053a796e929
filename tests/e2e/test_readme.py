"""The README's curl session, run as written (only the port and paths are pointed at a
test server), so the walkthrough a newcomer follows can never rot."""
import json
import os
import re
import subprocess
import unittest

from harness import BIN, Server

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def readme_block(heading):
    """The first ```sh block after the given heading."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index(heading)
    m = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    return m.group(1)


def run_block(srv, script):
    script = (script.replace("localhost:8080", f"127.0.0.1:{srv.port}")
                    .replace("./data/hipusers.db", srv.db)
                    .replace("./build/hipusers", BIN))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIPUSERS_JWT")}
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                         timeout=120, env=env, cwd=srv.data_dir)
    return out


class ReadmeTests(unittest.TestCase):
    def setUp(self):
        # As after `make run`: no secret in the environment, the server makes its own file.
        self.srv = Server(secret=None).start()

    def tearDown(self):
        self.srv.cleanup()

    def test_first_session(self):
        out = run_block(self.srv, readme_block("## A first session with curl"))
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        lines = [l for l in out.stdout.splitlines() if l.strip()]
        # 5: the seed PATCH, 6: GET shows it, 7: DELETE then GET 404
        self.assertRegex(lines[0], r'^\{"status":"success","ekaid":"\d{15}"\}$')
        self.assertIn('"is_admin":true', lines[1])
        self.assertIn('"seat_type":"p"', lines[1])
        self.assertIn('"partner_id":"Part_user_1"', lines[1])
        self.assertIn('"clinics":[{"id":"c-', lines[1])
        self.assertIn('"doctors":[{"id":"do', lines[1])
        self.assertEqual(lines[2], '{"status":"success","message":"EkaUser Deleted Successfully"}')
        self.assertIn('"message":"EkaUser not found"', lines[3])
        self.assertEqual(len(lines), 4, out.stdout)

    def test_versions_session(self):
        out = run_block(self.srv, readme_block("## Versions, history, the change feed and restore"))
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        lines = [l for l in out.stdout.splitlines() if l.strip()]
        self.assertEqual(len(lines), 7, out.stdout)
        self.assertRegex(lines[0], r'^\{"status":"success","ekaid":"c-[0-9a-f]{24}"\}$')
        cid = json.loads(lines[0])["ekaid"]
        self.assertEqual(lines[1], '{"status":"error","message":"precondition failed: the record has changed"}')
        self.assertEqual(lines[2], "200")
        hist = json.loads(lines[3])["history"]
        self.assertEqual([(h["version"], h["action"]) for h in hist], [(1, "create"), (2, "update")])
        self.assertEqual(hist[1]["changes"], {"city": {"from": None, "to": "Bangalore"}})
        feed = json.loads(lines[4])
        self.assertEqual([(c["seq"], c["id"], c["action"]) for c in feed["changes"]],
                         [(1, cid, "create"), (2, cid, "update")])
        self.assertEqual(feed["next_after"], 2)
        self.assertEqual(lines[5], '{"status":"success","message":"Clinic Deleted Successfully"}')
        self.assertEqual(lines[6], '{"status":"success","ekaid":"%s"}' % cid)

    def test_reference_and_backup(self):
        out = run_block(self.srv, readme_block("## The API reference, and backups"))
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        lines = out.stdout.splitlines()
        self.assertEqual(lines[0], "hipusers 3.1.0")
        self.assertRegex(lines[1], r"^backed up .*hipusers\.db to \./hipusers-backup\.db: \d+ pages, \d+ bytes, checked$")
        self.assertTrue(os.path.isfile(os.path.join(self.srv.data_dir, "hipusers-backup.db")))

    def test_login_flow(self):
        out = run_block(self.srv, readme_block("## Logging in as a business"))
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        self.assertIn('"business_name":"Sunrise Health"', out.stdout)
        self.assertIn('"users":[]', out.stdout)

    def test_metrics_and_health(self):
        out = run_block(self.srv, readme_block("## Metrics and health"))
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        lines = out.stdout.splitlines()
        self.assertEqual(lines[:2], ['{"status":"ok"}', '{"status":"ok"}'])
        # what moved: the two probes, the build, no series at 0
        self.assertIn('hipusers_http_requests_total{route="healthz",status="2xx"} 1', lines)
        self.assertIn('hipusers_http_requests_total{route="readyz",status="2xx"} 1', lines)
        self.assertTrue(any(l.startswith('hipusers_build_info{version="') for l in lines), lines)
        self.assertFalse([l for l in lines[2:] if l.endswith(" 0") or l.startswith("#")], lines)

    def test_idempotency_key(self):
        out = run_block(self.srv, readme_block("## Retries: Idempotency-Key on creates"))
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        lines = [l for l in out.stdout.splitlines() if l.strip()]
        self.assertRegex(lines[0], r'^\{"status":"success","ekaid":"c-[0-9a-f]{24}"\}$')
        self.assertEqual(lines[1], "HTTP/1.1 201 Created")
        self.assertEqual(lines[2].lower(), "idempotent-replayed: true")
        self.assertEqual(lines[3], lines[0])
        self.assertEqual(lines[4], '{"status":"error","message":"Idempotency-Key reused with a different request"}')
        self.assertEqual(len(lines), 5, out.stdout)

    def test_pages_and_filters(self):
        out = run_block(self.srv, readme_block("## Lists: pages and filters"))
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        lines = [l for l in out.stdout.splitlines() if l.strip()]
        self.assertRegex(lines[0], r"^\['Doc1', 'Doc2'\] [A-Za-z0-9_-]{12}$")
        self.assertEqual(lines[1], "['Doc3'] (last page)")
        self.assertEqual(lines[2], "['Doc2'] (last page)")
        self.assertRegex(lines[3], r"^\['Doc1'\] [A-Za-z0-9_-]{12}$")
        self.assertIn('"message":"mobile: Not a filter of this list: Clinic records have no mobile."', lines[4])
        self.assertEqual(len(lines), 5, out.stdout)


if __name__ == "__main__":
    unittest.main()
