#!/usr/bin/env python3
"""Crash consistency: concurrent POST and PATCH load on Eka Users (with links to doctors and
clinics), SIGKILL at a random moment, restart on the same data directory, then check that

  * every acknowledged (2xx) write is there exactly: each user equals its last acknowledged
    state, fields and links together;
  * a request in flight at the kill is all-or-nothing: the record equals either the last
    acknowledged state or the full state that request would have produced;
  * a rejected request (400) changed nothing, and no user appears that nobody created;
  * no link row points at a user that does not exist, and PRAGMA integrity_check (SQLite) or
    amcheck over every index (PostgreSQL) says ok;
  * the change log (issue 10) went with the data: every acknowledged write is in its user's
    history under its X-Request-Id, no rejected request is, the request in flight is there
    exactly when its change is, and each tenant's feed is numbered 1..N without a gap.

Each worker thread owns its users, so a user has at most one request in flight at the kill.
The model accumulates over the rounds: every round re-checks everything written before.

Env: HIPUSERS_CRASH_ROUNDS (default 20), HIPUSERS_CRASH_SEED (to replay a run),
HIPUSERS_CRASH_WORKERS (default 6).
Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_crash.py
"""
import http.client
import itertools
import json
import os
import random
import signal
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BACKEND, Server, make_token  # noqa: E402

ROUNDS = int(os.environ.get("HIPUSERS_CRASH_ROUNDS", "20"))
SEED = int(os.environ.get("HIPUSERS_CRASH_SEED", str(random.SystemRandom().randrange(1 << 32))))
WORKERS = int(os.environ.get("HIPUSERS_CRASH_WORKERS", "6"))
TENANTS = ["4100000000000001", "4100000000000002"]
N_DOCTORS = 6
N_CLINICS = 6
USERS = "/cdr/v1/ekauser/"
FIELDS = ("firstname", "lastname", "mobile", "email", "auth_userid", "gender", "dob",
          "is_admin", "seat_type", "persona", "partner_id")
MISSING = "(absent)"

_uniq = itertools.count(1)


def uniq():
    # next() on itertools.count is atomic under the GIL: values are unique across threads.
    return next(_uniq)


def state_key(st):
    """A hashable, comparable form of a user's state (fields + link sets)."""
    if st is MISSING:
        return MISSING
    return tuple((f, st[f]) for f in FIELDS) + (("doctors", st["doctors"]), ("clinics", st["clinics"]))


def observed_state(u):
    st = {f: u.get(f) for f in FIELDS}
    if isinstance(st["mobile"], str) and st["mobile"].startswith("+91"):
        st["mobile"] = st["mobile"][3:]
    st["doctors"] = frozenset(d["id"] for d in u.get("doctors") or [])
    st["clinics"] = frozenset(c["id"] for c in u.get("clinics") or [])
    return st


def show(st):
    if st is MISSING:
        return MISSING
    d = dict(st)
    d["doctors"] = sorted(d["doctors"])
    d["clinics"] = sorted(d["clinics"])
    return json.dumps(d, sort_keys=True)


class Tenant:
    def __init__(self, b_id):
        self.b_id = b_id
        self.token = make_token(b_id, exp_in=24 * 3600)
        self.doctors = []          # [(id, partner_id)]
        self.clinics = []


class Pending:
    """The request a worker sent last and has no answer to (yet)."""

    def __init__(self, kind, tenant, uid, email, new_state, valid, desc):
        self.kind, self.tenant, self.uid, self.email = kind, tenant, uid, email
        self.new_state, self.valid, self.desc = new_state, valid, desc
        self.rid = "crash-%d" % uniq()  # its X-Request-Id: the history names it


class Model:
    """What the clients know: users per tenant (uid -> state) and who owns each."""

    def __init__(self):
        self.users = {t: {} for t in TENANTS}
        self.owner = {}  # uid -> worker id
        self.acked = {}  # uid -> request ids of its acknowledged writes, not yet checked in its history
        self.rejected = set()  # request ids answered 400
        self.lock = threading.Lock()
        self.failures = []
        self.stats = {"acked_post": 0, "acked_patch": 0, "rejected": 0, "inflight": 0,
                      "inflight_applied": 0, "inflight_not_applied": 0}

    def fail(self, msg):
        with self.lock:
            self.failures.append(msg)

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] += n


class Worker(threading.Thread):
    def __init__(self, wid, tenant, other, model, port, rng, round_ctx):
        super().__init__(daemon=True)
        self.wid, self.tenant, self.other, self.model = wid, tenant, other, model
        self.port, self.rng, self.ctx = port, rng, round_ctx
        self.pending = None
        self.conn = None

    # ---- request bodies -------------------------------------------------------------
    def link_subset(self, pool, k_max=4):
        return self.rng.sample(pool, self.rng.randint(0, min(k_max, len(pool))))

    def new_user(self):
        n = uniq()
        r = self.rng
        body = {"firstname": "First%d" % n, "lastname": "Last%d" % n,
                "email": "crash%d.w%d@example.com" % (n, self.wid), "gender": r.choice("MFO"),
                "dob": "%04d-%02d-%02d" % (r.randint(1950, 2005), r.randint(1, 12), r.randint(1, 28))}
        if r.random() < 0.7:
            body["mobile"] = "9%09d" % n
        if r.random() < 0.5:
            body["auth_userid"] = "crash-auth-%d" % n
        if r.random() < 0.5:
            body["is_admin"] = r.random() < 0.5
        if r.random() < 0.5:
            body["seat_type"] = r.choice("bp")
        if r.random() < 0.5:
            body["persona"] = r.choice("SD")
        if r.random() < 0.4:
            body["partner_id"] = "crash-partner-%d" % n
        docs = self.link_subset(self.tenant.doctors)
        clinics = self.link_subset(self.tenant.clinics)
        if docs or r.random() < 0.5:
            body["doctor_ids"] = [d[0] for d in docs]
        if clinics or r.random() < 0.5:
            body["clinic_ids"] = [c[0] for c in clinics]
        st = {f: None for f in FIELDS}
        st.update(is_admin=False, seat_type="b", persona="D")
        st.update({f: v for f, v in body.items() if f in FIELDS})
        st["doctors"] = frozenset(d[0] for d in docs)
        st["clinics"] = frozenset(c[0] for c in clinics)
        return body, st

    def patch_body(self, cur):
        """Several fields changed plus clinic_ids (and sometimes doctor_ids) replaced."""
        r = self.rng
        n = uniq()
        changes = {
            "firstname": lambda: "Pf%d" % n,
            "lastname": lambda: "Pl%d" % n,
            "gender": lambda: r.choice("MFO"),
            "dob": lambda: "%04d-%02d-%02d" % (r.randint(1950, 2005), r.randint(1, 12), r.randint(1, 28)),
            "is_admin": lambda: r.random() < 0.5,
            "seat_type": lambda: r.choice("bp"),
            "persona": lambda: r.choice("SD"),
            "email": lambda: "crash%d.w%d.p@example.com" % (n, self.wid),
            "mobile": lambda: None if r.random() < 0.3 else "8%09d" % n,
            "auth_userid": lambda: None if r.random() < 0.3 else "crash-pauth-%d" % n,
            "partner_id": lambda: None if r.random() < 0.3 else "crash-ppartner-%d" % n,
        }
        body = {}
        for f in r.sample(sorted(changes), r.randint(3, 6)):
            body[f] = changes[f]()
        new = dict(cur)
        new.update(body)
        clinics = self.link_subset(self.tenant.clinics)
        if r.random() < 0.25:
            body["partner_clinic_ids"] = [c[1] for c in clinics]
        else:
            body["clinic_ids"] = [c[0] for c in clinics]
        new["clinics"] = frozenset(c[0] for c in clinics)
        if r.random() < 0.5:
            docs = self.link_subset(self.tenant.doctors)
            body["doctor_ids"] = [d[0] for d in docs]
            new["doctors"] = frozenset(d[0] for d in docs)
        return body, new

    def spoil(self, body):
        """Makes a valid body invalid with its last key, so a handler that applied the
        earlier fields one by one would be caught half-way."""
        r = self.rng.randrange(4)
        if r == 0:
            body["clinic_ids"] = [c[0] for c in self.tenant.clinics[:2]] + ["c-" + "0" * 24]
            body.pop("partner_clinic_ids", None)
            return "unknown clinic id"
        if r == 1:
            body["clinic_ids"] = [self.other.clinics[0][0]]
            body.pop("partner_clinic_ids", None)
            return "other tenant's clinic"
        if r == 2:
            body["doctor_ids"] = [self.tenant.doctors[0][0], "do0000000000000"]
            return "unknown doctor id"
        body["dob"] = "2023-02-30"
        return "impossible dob"

    # ---- the loop ----------------------------------------------------------------------
    def send(self, method, path, body, rid):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.conn.request(method, path, body=json.dumps(body).encode(),
                          headers={"auth": self.tenant.token, "Content-Type": "application/json",
                                   "X-Request-Id": rid})
        resp = self.conn.getresponse()
        data = resp.read()
        try:
            js = json.loads(data)
        except ValueError:
            js = None
        return resp.status, js

    def run(self):
        mine = {uid: st for uid, st in self.model.users[self.tenant.b_id].items()
                if self.model.owner.get(uid) == self.wid}
        users = self.model.users[self.tenant.b_id]
        while not self.ctx["stop"].is_set():
            r = self.rng
            if not mine or r.random() < 0.3:
                body, st = self.new_user()
                valid = r.random() >= 0.1
                desc = "POST " + json.dumps(body)
                if not valid:
                    desc += " spoiled: " + self.spoil(body)
                p = Pending("POST", self.tenant.b_id, None, body["email"], st, valid, desc)
                method, path = "POST", USERS
            else:
                uid = r.choice(sorted(mine))
                cur = mine[uid]
                body, st = self.patch_body(cur)
                valid = r.random() >= 0.15
                desc = "PATCH %s %s" % (uid, json.dumps(body))
                if not valid:
                    desc += " spoiled: " + self.spoil(body)
                p = Pending("PATCH", self.tenant.b_id, uid, None, st, valid, desc)
                method = "PATCH"
                ident = uid
                if cur["partner_id"] and r.random() < 0.2:
                    ident = cur["partner_id"]
                path = USERS + urllib.parse.quote(ident, safe="") + "/"
            self.pending = p
            try:
                status, js = self.send(method, path, body, p.rid)
            except (OSError, http.client.HTTPException) as e:
                if self.ctx["kill_time"] is None:
                    self.model.fail("round %d: request failed while the server was alive: %s: %r"
                                    % (self.ctx["round"], desc[:200], e))
                return  # the outcome is unknown: self.pending stays in flight
            want = (201 if method == "POST" else 200) if valid else 400
            if status != want:
                self.model.fail("round %d: %s answered %s %s, expected %d"
                                % (self.ctx["round"], desc[:300], status, js, want))
                return  # outcome uncertain: keep it pending and stop
            self.pending = None
            if not valid:
                self.model.count("rejected")
                with self.model.lock:
                    self.model.rejected.add(p.rid)
                continue
            if method == "POST":
                uid = js["ekaid"]
                self.model.owner[uid] = self.wid
                self.model.count("acked_post")
            else:
                self.model.count("acked_patch")
            with self.model.lock:
                self.model.acked.setdefault(uid, []).append(p.rid)
            mine[uid] = st
            users[uid] = st


def integrity(srv):
    """(check result, orphan link rows per table, user rows) of the server's database: SQLite's
    integrity_check, or on PostgreSQL amcheck over every index of the schema."""
    if BACKEND == "postgresql":
        try:  # bt_index_check raises on a corrupt index; every btree of the schema is checked
            srv.query("CREATE EXTENSION IF NOT EXISTS amcheck")
            checked = int(srv.query("SELECT count(*) FROM (SELECT bt_index_check(c.oid::regclass, true)"
                                    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                                    " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam"
                                    " WHERE n.nspname = 'public' AND a.amname = 'btree') x")[0][0])
            res = ["ok"] if checked > 0 else ["no index checked"]
        except RuntimeError as e:
            res = [str(e)]
        tables = {r[0] for r in srv.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    else:
        res = [r[0] for r in srv.query("PRAGMA integrity_check")]
        tables = {r[0] for r in srv.query("SELECT name FROM sqlite_master WHERE type='table'")}
    orphans = {}
    for t, col in (("user_doctor", "user_id"), ("user_clinic", "user_id")):
        if t in tables and "ekauser" in tables:
            orphans[t] = int(srv.query("SELECT count(*) FROM %s WHERE %s NOT IN (SELECT id FROM ekauser)"
                                       % (t, col))[0][0])
    users = int(srv.query("SELECT count(*) FROM ekauser")[0][0]) if "ekauser" in tables else None
    return res, orphans, users


class CrashConsistencyTest(unittest.TestCase):
    def setUp(self):
        self.srv = Server(args=["--threads", "4"])
        self.srv.start()
        self.tenants = {b: Tenant(b) for b in TENANTS}
        for t in self.tenants.values():
            for i in range(N_DOCTORS):
                pid = "crash-doc-%s-%d" % (t.b_id, i)
                r = self.srv.request("POST", "/cdr/v1/doctor/", {"firstname": "Doc%d" % i, "lastname": "X",
                                                                  "gender": "F", "partner_id": pid}, token=t.token)
                self.assertEqual(r.status, 201, r)
                t.doctors.append((r.json["ekaid"], pid))
            for i in range(N_CLINICS):
                pid = "crash-clinic-%s-%d" % (t.b_id, i)
                r = self.srv.request("POST", "/cdr/v1/clinic/", {"name": "Clinic%d" % i, "address": "Road %d" % i,
                                                                  "partner_id": pid}, token=t.token)
                self.assertEqual(r.status, 201, r)
                t.clinics.append((r.json["ekaid"], pid))

    def tearDown(self):
        self.srv.cleanup()

    def verify_log(self, model, rnd, users, applied, not_applied):
        """The change log after the restart: acknowledged writes in, rejected ones out, a
        request in flight in exactly when its change is there (applied / not_applied: their
        request ids; one that cannot be told apart is in neither); each tenant's feed is
        numbered 1..N. users: whose histories to read (all written to since the last check)."""
        for b_id, t in self.tenants.items():
            after, seqs = 0, []
            while True:
                r = self.srv.request("GET", "/cdr/v1/changes/?limit=1000&after=%d" % after, token=t.token)
                self.assertEqual(r.status, 200, r)
                seqs += [e["seq"] for e in r.json["changes"]]
                if not r.json["changes"]:
                    break
                after = r.json["next_after"]
            if seqs != list(range(1, len(seqs) + 1)):
                model.fail("round %d: tenant %s's feed is not numbered 1..N: %s" % (rnd, b_id, seqs[:50]))
        for uid, want in users.items():
            b_id = next(b for b, known in model.users.items() if uid in known)
            r = self.srv.request("GET", USERS + uid + "/history", token=self.tenants[b_id].token)
            if r.status != 200:
                model.fail("round %d: history of %s answered %s" % (rnd, uid, r))
                continue
            logged = [e["request_id"] for e in r.json["history"]]
            if [e["version"] for e in r.json["history"]] != list(range(1, len(logged) + 1)):
                model.fail("round %d: versions of %s are not 1..N: %s" % (rnd, uid, r.json["history"]))
            for rid in want:
                if rid not in logged:
                    model.fail("round %d: write %s of %s (acknowledged, or in flight and applied) is not in "
                               "its history %s" % (rnd, rid, uid, logged))
            for rid in logged:
                if rid in model.rejected or rid in not_applied:
                    model.fail("round %d: request %s is in the history of %s but changed nothing" % (rnd, rid, uid))
        model.acked.clear()

    def verify(self, model, workers, rnd):
        pend_patch = {}
        pend_post = {}
        applied_rids = set()  # in-flight requests whose change is there
        unapplied_rids = set()  # in-flight requests whose change is certainly not there
        created = {}  # in-flight POST request id -> the user it made
        for w in workers:
            p = w.pending
            if p is None:
                continue
            model.count("inflight")
            if p.kind == "PATCH":
                pend_patch[p.uid] = p
            else:
                pend_post[p.email] = p
        applied = 0
        for b_id, t in self.tenants.items():
            r = self.srv.request("GET", USERS, token=t.token)
            self.assertEqual(r.status, 200, r)
            listed = r.json["users"]
            known = model.users[b_id]
            seen = set()
            for u in listed:
                uid = u["id"]
                if uid in seen:
                    model.fail("round %d: user %s listed twice" % (rnd, uid))
                seen.add(uid)
                obs = observed_state(u)
                if uid in known:
                    cands = [known[uid]]
                    p = pend_patch.get(uid)
                    if p is not None and p.valid:
                        cands.append(p.new_state)
                    keys = [state_key(c) for c in cands]
                    if state_key(obs) not in keys:
                        model.fail("round %d: user %s is %s\n  last acknowledged: %s\n  in flight: %s"
                                   % (rnd, uid, show(obs), show(known[uid]),
                                      p.desc if p else None))
                    elif p is not None and len(keys) == 2 and state_key(obs) == keys[1] != keys[0]:
                        applied += 1
                        applied_rids.add(p.rid)
                    elif p is not None and len(keys) == 2 and state_key(obs) == keys[0] != keys[1]:
                        unapplied_rids.add(p.rid)
                    known[uid] = obs
                else:
                    p = pend_post.get(obs["email"])
                    if p is None or p.tenant != b_id or not p.valid:
                        model.fail("round %d: user %s appeared that no acknowledged or valid in-flight "
                                   "request created: %s (in flight: %s)"
                                   % (rnd, uid, show(obs), p.desc if p else None))
                        continue
                    if state_key(obs) != state_key(p.new_state):
                        model.fail("round %d: in-flight POST half-applied: user %s is %s\n  request: %s"
                                   % (rnd, uid, show(obs), p.desc))
                    applied += 1
                    applied_rids.add(p.rid)
                    created[p.rid] = uid
                    known[uid] = obs
                    model.owner[uid] = next(w.wid for w in workers if w.pending is p)
            for uid in set(known) - seen:
                model.fail("round %d: acknowledged user %s is missing; last state %s"
                           % (rnd, uid, show(known[uid])))
                del known[uid]
        model.count("inflight_applied", applied)
        # the users whose histories to check, and the writes each must show
        check = {uid: list(rids) for uid, rids in model.acked.items()}
        for uid, p in pend_patch.items():
            if not p.valid:
                unapplied_rids.add(p.rid)
            check.setdefault(uid, []).extend([p.rid] if p.rid in applied_rids else [])
        for rid, uid in created.items():
            check.setdefault(uid, []).append(rid)
        for p in pend_post.values():
            if p.rid not in created:
                unapplied_rids.add(p.rid)
        self.verify_log(model, rnd, check, applied_rids, unapplied_rids)
        res, orphans, db_users = integrity(self.srv)
        if res != ["ok"]:
            model.fail("round %d: integrity_check: %s" % (rnd, res[:10]))
        for t, n in orphans.items():
            if n:
                model.fail("round %d: %d rows of %s point at no user" % (rnd, n, t))
        total = sum(len(u) for u in model.users.values())
        if db_users is not None and db_users != total:
            model.fail("round %d: the database holds %d user rows, the clients know of %d"
                       % (rnd, db_users, total))

    def test_sigkill_under_write_load(self):
        rng = random.Random(SEED)
        model = Model()
        wall = time.time()
        print("\ncrash test: %d rounds, %d workers, seed %d (HIPUSERS_CRASH_SEED to replay)"
              % (ROUNDS, WORKERS, SEED), file=sys.stderr)
        tenants = [self.tenants[b] for b in TENANTS]
        for rnd in range(1, ROUNDS + 1):
            ctx = {"stop": threading.Event(), "kill_time": None, "round": rnd}
            workers = [Worker(i, tenants[i % len(tenants)], tenants[(i + 1) % len(tenants)], model,
                              self.srv.port, random.Random(rng.random()), ctx) for i in range(WORKERS)]
            for w in workers:
                w.start()
            # Mostly kill mid-load; now and then right at the start of it.
            time.sleep(rng.uniform(0.0, 0.05) if rng.random() < 0.1 else rng.uniform(0.1, 1.2))
            if self.srv.proc.poll() is not None:
                model.fail("round %d: the server died on its own (rc %s)" % (rnd, self.srv.proc.returncode))
            ctx["kill_time"] = time.time()
            try:
                self.srv.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.srv.proc.wait()
            ctx["stop"].set()
            for w in workers:
                w.join(60)
                self.assertFalse(w.is_alive(), "worker %d hangs" % w.wid)
                if w.conn:
                    w.conn.close()
            self.srv.stop()
            self.srv.start()
            self.verify(model, workers, rnd)
            if model.failures:
                break
        model.stats["inflight_not_applied"] = model.stats["inflight"] - model.stats["inflight_applied"]
        rc = self.srv.stop()
        res, orphans, _ = integrity(self.srv)
        print("crash test: %d rounds in %.1f s; %s; users %d"
              % (rnd, time.time() - wall, model.stats, sum(len(u) for u in model.users.values())),
              file=sys.stderr)
        msg = "\n".join(model.failures[:10]) + "\nseed %d; server log tail:\n%s" % (SEED, self.srv.log()[-3000:])
        self.assertEqual(model.failures, [], msg)
        self.assertEqual(rc, 0, "clean stop after the last round: " + self.srv.log()[-2000:])
        self.assertEqual(res, ["ok"])
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            self.assertNotIn(marker, self.srv.log())
        self.assertGreater(model.stats["acked_post"] + model.stats["acked_patch"], ROUNDS,
                           "the load hardly wrote anything: " + str(model.stats))


if __name__ == "__main__":
    unittest.main()
