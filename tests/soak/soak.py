#!/usr/bin/env python3
"""Soak: mixed load (GET, list, POST, PATCH, DELETE of Eka Users, doctors and clinics,
plus a few bad requests) across several tenants for --duration seconds against a fresh
hipusers, sampling the server's resident memory (VmRSS) and open file descriptors.

Fails (exit 1) on:
  * any 5xx, any connection error, any status other than the one expected (each worker
    owns its records, so every answer is predictable);
  * VmRSS still growing after warm-up: the median of the last third of the samples above
    the median of the middle third by more than --rss-pct AND --rss-mib;
  * open fds growing: the median of the last third above the middle third by more than
    --fd-slack, or, once the clients have gone, more fds than before the load;
  * a server that does not stop cleanly (exit code 0 on SIGTERM) or logs a sanitizer report.

Usage: HIPUSERS_BIN=build/hipusers python3 tests/soak/soak.py [--duration 600]
"""
import argparse
import http.client
import itertools
import json
import os
import random
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402

MIB = 1024 * 1024
_uniq = itertools.count(1)


def uniq():
    return next(_uniq)


def is_asan(path):
    try:
        with open(path, "rb") as f:
            return b"AddressSanitizer" in f.read()
    except OSError:
        return False


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.by_op = {}
        self.by_status = {}
        self.failures = []
        self.fail_count = 0

    def record(self, op, status):
        with self.lock:
            self.requests += 1
            self.by_op[op] = self.by_op.get(op, 0) + 1
            self.by_status[status] = self.by_status.get(status, 0) + 1

    def fail(self, msg):
        with self.lock:
            self.fail_count += 1
            if len(self.failures) < 20:
                self.failures.append(msg)


class Worker(threading.Thread):
    """One tenant's client. It owns the records it creates, so every answer is predictable."""

    MAX_USERS = 60
    MAX_DOCS = 15
    MAX_CLINICS = 15

    def __init__(self, wid, tenant, port, stats, stop, seed, rps=0.0):
        super().__init__(daemon=True)
        self.gap = 1.0 / rps if rps > 0 else 0.0
        self.wid, self.tenant, self.port, self.stats, self.stop = wid, tenant, port, stats, stop
        self.token = harness.make_token(tenant, exp_in=7 * 24 * 3600)
        self.rng = random.Random(seed)
        self.conn = None
        self.users, self.doctors, self.clinics = [], [], []
        self.deleted = []  # recently deleted ids: [(resource, id)]

    # ---- transport ---------------------------------------------------------------------
    def call(self, op, method, path, body=None, raw=None, want=(200,), token="mine", ctype="application/json"):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {}
        if token == "mine":
            headers["auth"] = self.token
        elif token is not None:
            headers["auth"] = token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None and ctype:
            headers["Content-Type"] = ctype
        close = self.rng.random() < 0.02
        if close:
            headers["Connection"] = "close"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = None
            if not self.stop.is_set():
                self.stats.fail("%s %s: connection error %r" % (method, path, e))
            return None, None
        if close or resp.will_close:
            self.conn.close()
            self.conn = None
        self.stats.record(op, resp.status)
        try:
            js = json.loads(payload)
        except ValueError:
            js = None
        if resp.status >= 500:
            self.stats.fail("%s %s -> %d %s" % (method, path, resp.status, payload[:200]))
        elif resp.status not in want:
            self.stats.fail("%s %s -> %d (want %s) %s" % (method, path, resp.status, want, payload[:200]))
        return resp.status, js

    # ---- bodies ------------------------------------------------------------------------
    def user_body(self):
        n = uniq()
        r = self.rng
        b = {"firstname": "Soak%d" % n, "lastname": "User", "email": "soak%d@example.com" % n,
             "gender": r.choice("MFO"), "dob": "19%02d-0%d-1%d" % (r.randint(50, 99), r.randint(1, 9),
                                                                  r.randint(0, 9))}
        if r.random() < 0.7:
            b["mobile"] = "9%09d" % n
        if r.random() < 0.3:
            b["partner_id"] = "soak-p-%d" % n
        if self.doctors:
            b["doctor_ids"] = r.sample(self.doctors, r.randint(0, min(3, len(self.doctors))))
        if self.clinics:
            b["clinic_ids"] = r.sample(self.clinics, r.randint(0, min(3, len(self.clinics))))
        return b

    def user_patch(self):
        n = uniq()
        r = self.rng
        b = {}
        for f, v in (("firstname", "P%d" % n), ("seat_type", r.choice("bp")), ("persona", r.choice("SD")),
                     ("is_admin", r.random() < 0.5), ("mobile", "8%09d" % n), ("email", "soakp%d@example.com" % n)):
            if r.random() < 0.4:
                b[f] = v
        if self.clinics and r.random() < 0.5:
            b["clinic_ids"] = r.sample(self.clinics, r.randint(0, min(3, len(self.clinics))))
        if self.doctors and r.random() < 0.3:
            b["doctor_ids"] = r.sample(self.doctors, r.randint(0, min(3, len(self.doctors))))
        return b or {"lastname": "L%d" % n}

    # ---- operations --------------------------------------------------------------------
    def op_post_user(self):
        st, js = self.call("POST user", "POST", "/cdr/v1/ekauser/", self.user_body(), want=(201,))
        if st == 201:
            self.users.append(js["ekaid"])

    def op_get_user(self):
        self.call("GET user", "GET", "/cdr/v1/ekauser/%s/" % self.rng.choice(self.users))

    def op_patch_user(self):
        self.call("PATCH user", "PATCH", "/cdr/v1/ekauser/%s/" % self.rng.choice(self.users), self.user_patch())

    def op_delete(self, res, pool):
        i = self.rng.randrange(len(pool))
        rid = pool.pop(i)
        self.call("DELETE " + res, "DELETE", "/cdr/v1/%s/%s/" % (res, rid))
        self.deleted.append((res, rid))
        del self.deleted[:-50]

    def op_get_deleted(self):
        res, rid = self.rng.choice(self.deleted)
        self.call("GET deleted", "GET", "/cdr/v1/%s/%s/" % (res, rid), want=(404,))

    def op_list(self):
        res = self.rng.choice(("ekauser", "ekauser", "doctor", "clinic"))
        self.call("LIST " + res, "GET", "/cdr/v1/%s/" % res)

    def op_post_doctor(self):
        n = uniq()
        b = {"firstname": "Doc%d" % n, "lastname": "Soak", "gender": "F", "specialisations": ["Cardiology"]}
        if self.clinics and self.rng.random() < 0.5:
            b["clinic_ids"] = self.rng.sample(self.clinics, 1)
        st, js = self.call("POST doctor", "POST", "/cdr/v1/doctor/", b, want=(201,))
        if st == 201:
            self.doctors.append(js["ekaid"])

    def op_post_clinic(self):
        n = uniq()
        st, js = self.call("POST clinic", "POST", "/cdr/v1/clinic/",
                           {"name": "Clinic%d" % n, "address": "Street %d" % n, "city": "Pune"}, want=(201,))
        if st == 201:
            self.clinics.append(js["ekaid"])

    def op_patch_doctor(self):
        b = {"about": "about %d" % uniq()}
        if self.clinics and self.rng.random() < 0.5:
            b["clinic_ids"] = self.rng.sample(self.clinics, 1)
        self.call("PATCH doctor", "PATCH", "/cdr/v1/doctor/%s/" % self.rng.choice(self.doctors), b)

    def op_patch_clinic(self):
        self.call("PATCH clinic", "PATCH", "/cdr/v1/clinic/%s/" % self.rng.choice(self.clinics),
                  {"city": "City%d" % uniq()})

    def op_get_other(self):
        if self.rng.random() < 0.5 and self.doctors:
            self.call("GET doctor", "GET", "/cdr/v1/doctor/%s/" % self.rng.choice(self.doctors))
        elif self.clinics:
            self.call("GET clinic", "GET", "/cdr/v1/clinic/%s/" % self.rng.choice(self.clinics))

    def op_bad(self):
        """Error paths leak too: a few bad requests, each with its expected answer."""
        k = self.rng.randrange(6)
        if k == 0:
            self.call("bad json", "POST", "/cdr/v1/ekauser/", raw=b'{"firstname": "x",', want=(400,))
        elif k == 1:
            self.call("unknown field", "PATCH", "/cdr/v1/ekauser/%s/" % self.rng.choice(self.users),
                      {"nickname": "x"}, want=(400,))
        elif k == 2:
            self.call("no token", "GET", "/cdr/v1/ekauser/", token=None, want=(401,))
        elif k == 3:
            self.call("unknown id", "GET", "/cdr/v1/ekauser/%015d/" % self.rng.randrange(10 ** 14), want=(404,))
        elif k == 4:
            self.call("bad link", "PATCH", "/cdr/v1/ekauser/%s/" % self.rng.choice(self.users),
                      {"firstname": "Nope", "clinic_ids": ["c-" + "f" * 24]}, want=(400,))
        else:
            self.call("wrong type", "POST", "/cdr/v1/clinic/", raw=b"name=x", ctype="text/plain", want=(415,))

    def step(self):
        r = self.rng.random()
        if len(self.clinics) < 3 or (r < 0.03 and len(self.clinics) < self.MAX_CLINICS):
            return self.op_post_clinic()
        if len(self.doctors) < 3 or (r < 0.06 and len(self.doctors) < self.MAX_DOCS):
            return self.op_post_doctor()
        if len(self.users) < 5:
            return self.op_post_user()
        if r < 0.08:
            if len(self.doctors) > 5:
                return self.op_delete("doctor", self.doctors)
            return self.op_patch_doctor()
        if r < 0.10:
            if len(self.clinics) > 5:
                return self.op_delete("clinic", self.clinics)
            return self.op_patch_clinic()
        if r < 0.13:
            return self.op_patch_doctor()
        if r < 0.16:
            return self.op_patch_clinic()
        if r < 0.20:
            return self.op_get_other()
        if r < 0.26:
            return self.op_list()
        if r < 0.30:
            return self.op_bad()
        if r < 0.32 and self.deleted:
            return self.op_get_deleted()
        if r < 0.47:
            if len(self.users) >= self.MAX_USERS:
                return self.op_delete("ekauser", self.users)
            return self.op_post_user()
        if r < 0.57:
            return self.op_delete("ekauser", self.users)
        if r < 0.75:
            return self.op_patch_user()
        return self.op_get_user()

    def run(self):
        due = time.time()
        while not self.stop.is_set():
            self.step()
            if self.gap:
                due += self.gap
                delay = due - time.time()
                if delay > 0:
                    self.stop.wait(delay)
                else:
                    due = time.time()
        if self.conn:
            self.conn.close()


DB_FILES_PER_CONN = 3


def proc_sample(pid):
    rss = anon = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1]) * 1024
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, anon, fds


def fd_kinds(pid, data_dir):
    """The server's descriptors by what they hold: client and listening sockets, files of its
    database (each worker thread opens its own connection, lazily, on its first request), and
    everything else (the thread pool's wake-up descriptors, stdio, the log)."""
    kinds = {"socket": 0, "database": 0, "other": 0}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:"):
            kinds["socket"] += 1
        elif target.startswith(data_dir):
            kinds["database"] += 1
        else:
            kinds["other"] += 1
    return kinds


def fd_leaks(before, after, max_db):
    """What grew between two idle moments. Sockets and other descriptors must come back to the
    baseline; database files may have grown only because a worker opened its connection during
    the load (the baseline cannot tell which workers the warm-up reached), never past max_db."""
    out = []
    for kind in ("socket", "other"):
        if after[kind] > before[kind]:
            out.append("%s descriptors: %d before the load, %d once the clients had gone"
                       % (kind, before[kind], after[kind]))
    if after["database"] > max(before["database"], max_db):
        out.append("database descriptors: %d before the load, %d once the clients had gone (at most %d: "
                   "one connection per worker thread)" % (before["database"], after["database"], max_db))
    return out


def thirds(xs):
    n = len(xs)
    return xs[: n // 3], xs[n // 3: 2 * n // 3], xs[2 * n // 3:]


def fmt_mib(b):
    return "%.1f" % (b / MIB)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--workers", type=int, default=4, help="client threads, spread over the tenants")
    ap.add_argument("--threads", type=int, default=None, help="server --threads")
    ap.add_argument("--max-rps", type=float, default=0, help="cap on the total request rate (0: none)")
    ap.add_argument("--interval", type=float, default=None, help="seconds between samples")
    ap.add_argument("--rss-pct", type=float, default=20.0)
    ap.add_argument("--rss-mib", type=float, default=8.0)
    ap.add_argument("--fd-slack", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--bin", default=os.environ.get("HIPUSERS_BIN", harness.BIN))
    args = ap.parse_args(argv)
    harness.BIN = args.bin
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    interval = args.interval or max(0.5, min(5.0, args.duration / 120))
    env = {}
    asan = is_asan(args.bin)
    if asan:
        # Under ASan, resident memory says little about the program's heap (quarantine, size-class
        # regions and redzones; it climbs to a few hundred MiB and plateaus): the leak verdict is
        # LeakSanitizer's report at the clean exit, and the RSS check is only reported.
        opts = os.environ.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=16"
    srv_args = []
    if args.threads:
        srv_args += ["--threads", str(args.threads)]
    srv = harness.Server(env=env, args=srv_args)
    srv.start()
    failures = []
    notes = []
    stats = Stats()
    try:
        pid = srv.proc.pid
        tenants = ["6%015d" % (i + 1) for i in range(args.tenants)]
        # Warm the server once (workers, database connections) and take the idle fd baseline.
        for t in tenants:
            r = srv.request("GET", "/cdr/v1/ekauser/", token=harness.make_token(t))
            if r.status != 200:
                failures.append("warm-up GET answered %s" % r)
        data_dir = os.path.realpath(srv.data_dir)
        fd_idle_before = fd_kinds(pid, data_dir)
        # each connection holds the database, its WAL and its shared-memory index: one per
        # worker thread, one for the revocation reader and one spare
        max_db = DB_FILES_PER_CONN * ((args.threads or os.cpu_count() or 1) + 2)

        stop = threading.Event()
        workers = [Worker(i, tenants[i % len(tenants)], srv.port, stats, stop, seed + i,
                          args.max_rps / args.workers) for i in range(args.workers)]
        t0 = time.time()
        for w in workers:
            w.start()
        samples = []  # (t, rss, anon, fds, requests)
        while True:
            now = time.time()
            if now - t0 >= args.duration:
                break
            if srv.proc.poll() is not None:
                failures.append("the server exited with %s during the soak" % srv.proc.returncode)
                break
            try:
                rss, anon, fds = proc_sample(pid)
                samples.append((now - t0, rss, anon, fds, stats.requests))
            except OSError:
                pass
            time.sleep(min(interval, max(0.0, args.duration - (time.time() - t0))))
        stop.set()
        for w in workers:
            w.join(60)
        elapsed = time.time() - t0

        # After the clients have gone, the server's fds come back to the idle baseline.
        fd_idle_after = None
        if srv.proc.poll() is None:
            deadline = time.time() + 30
            while True:
                fd_idle_after = fd_kinds(pid, data_dir)
                if not fd_leaks(fd_idle_before, fd_idle_after, max_db) or time.time() > deadline:
                    break
                time.sleep(0.2)

        # ---- verdicts ----------------------------------------------------------------
        if stats.fail_count:
            failures.append("%d bad answers (5xx, unexpected status or connection error); first: %s"
                            % (stats.fail_count, "; ".join(stats.failures[:5])))
        five = sum(n for s, n in stats.by_status.items() if s >= 500)
        if five:
            failures.append("%d responses were 5xx" % five)
        if len(samples) >= 6:
            _, mid, last = thirds(samples)
            rss_mid = statistics.median(s[1] for s in mid)
            rss_last = statistics.median(s[1] for s in last)
            if rss_last > rss_mid * (1 + args.rss_pct / 100) and rss_last > rss_mid + args.rss_mib * MIB:
                (notes if asan else failures).append("resident memory keeps growing: median %s MiB in the middle third, %s MiB in the "
                                "last (tolerance +%g%% and +%g MiB)"
                                % (fmt_mib(rss_mid), fmt_mib(rss_last), args.rss_pct, args.rss_mib))
            fd_mid = statistics.median(s[3] for s in mid)
            fd_last = statistics.median(s[3] for s in last)
            if fd_last > fd_mid + args.fd_slack:
                failures.append("open fds keep growing: median %g in the middle third, %g in the last"
                                % (fd_mid, fd_last))
        else:
            failures.append("too few samples (%d) to judge memory and fds" % len(samples))
        if fd_idle_after is not None:
            failures.extend("fd leak: " + why for why in fd_leaks(fd_idle_before, fd_idle_after, max_db))
        if stats.requests == 0:
            failures.append("no request was answered")

        # ---- summary ------------------------------------------------------------------
        print("soak: %.0f s, %d workers over %d tenants, seed %d%s" % (
            elapsed, args.workers, args.tenants, seed, " (ASan build)" if asan else ""))
        print("requests: %d (%.0f/s); statuses %s" % (stats.requests, stats.requests / max(elapsed, 1e-9),
                                                       dict(sorted(stats.by_status.items()))))
        print("operations: %s" % dict(sorted(stats.by_op.items())))
        if samples:
            step = max(1, len(samples) // 12)
            shown = samples[::step]
            if shown[-1] is not samples[-1]:
                shown.append(samples[-1])
            print("RSS MiB (t s: VmRSS/RssAnon): " + ", ".join(
                "%.0f: %s/%s" % (s[0], fmt_mib(s[1]), fmt_mib(s[2] or 0)) for s in shown))
            for name, part in zip(("warm-up", "middle", "last"), thirds(samples)):
                if part:
                    print("  %-7s third: RSS median %s MiB (min %s, max %s); fds median %g (max %d)" % (
                        name, fmt_mib(statistics.median(s[1] for s in part)), fmt_mib(min(s[1] for s in part)),
                        fmt_mib(max(s[1] for s in part)), statistics.median(s[3] for s in part),
                        max(s[3] for s in part)))
        print("fds idle: %s before the load, %s after" % (fd_idle_before, fd_idle_after))
    finally:
        rc = srv.stop(timeout=30)
        log = srv.log()
        srv.cleanup()
    if rc != 0:
        failures.append("the server did not stop cleanly on SIGTERM: exit code %s; log tail:\n%s" % (rc, log[-3000:]))
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        if marker in log:
            i = log.index(marker)
            failures.append("sanitizer report in the server log:\n" + log[max(0, i - 200): i + 3000])
    print("server exit code: %s" % rc)
    for n in notes:
        print("note (not a failure under ASan, where LeakSanitizer judges leaks): " + n)
    if failures:
        print("FAIL")
        for f in failures:
            print("  - " + f)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
