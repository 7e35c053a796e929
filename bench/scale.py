#!/usr/bin/env python3
"""A million users in one tenant (issue 9): `make bench-scale`.

    python3 bench/scale.py [--users 1000000] [--small 10000] [--mid 100000] [--repeat 3]
                           [--duration 5] [--bin build/hipusers] [--cache build/bench-scale]
                           [--only get,list,create,rss] [--markdown]

Seeds one tenant with USERS Eka Users (and SMALL, and MID for the memory figure) through the
store: `hipusers import` of generated JSON Lines (every record through the API's decoder and
rules), then `hipusers export` for their Eka ids. No SQL is written here. Each seeded database
is kept in CACHE/schema-V/users-N (V: the schema version `hipusers migrate` reports), so a
second run skips the seeding; delete that folder to seed again.

Then, at SMALL and at USERS users, in this run, each the median of REPEAT runs, on a copy of
the cached database served by the real server (`serve --no-access-log`):
  get     wrk -t1 -c64 for DURATION s (after 2 s of warm-up): GET by id, an id drawn at random
          from every seeded id per request (bench/wrk/scale_get.lua); p50, p99, req/s
  list    one GET /cdr/v1/ekauser/ (no limit: the whole tenant, streamed) read by curl, each
          run on a freshly started server; MB/s (10^6 bytes) and the server's RSS growth
          (VmRSS sampled every 50 ms, peak minus the value just before the request)
  create  wrk -t1 -c64 for DURATION s of POSTs with unique bodies (the harness's create.lua,
          no links), each run on a fresh copy of the cached database; req/s
  rss     the server's peak RSS during the get runs at MID users
Prints each figure beside its target and says met / not met.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
TENANT = "7200000000000001"
SECRET = "bench-scale-secret-0123456789abcdef0123456789abcdef"
FIRST = ["Amit", "Priya", "Rahul", "Sneha", "Vikram", "Anjali", "Rohan", "Kavya", "Arjun", "Meera"]
LAST = ["Kumar", "Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Singh", "Menon", "Das"]


def log(msg):
    print("[bench-scale] " + msg, file=sys.stderr, flush=True)


def env():
    e = dict(os.environ)
    e["HIPUSERS_JWT_SECRET"] = SECRET
    e.pop("HIPUSERS_DB", None)
    return e


def schema_version(binary, scratch):
    probe = os.path.join(scratch, "probe.db")
    for f in (probe, probe + "-wal", probe + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    out = subprocess.run([binary, "migrate", "--db", probe], env=env(), check=True, capture_output=True,
                         text=True).stdout
    m = re.search(r"schema version (\d+)", out)
    if not m:
        raise SystemExit("could not read the schema version from: " + out)
    return int(m.group(1))


def user(i):
    """A create body shaped like the harness's (its bodies without links); mobiles start with 9
    and emails are @seed.example.com, so they never meet the create workload's."""
    fn, ln = FIRST[i % len(FIRST)], LAST[(i // 10) % len(LAST)]
    return {"firstname": fn, "lastname": ln, "gender": "MFO"[i % 3],
            "dob": "%04d-%02d-%02d" % (1950 + i % 54, 1 + i % 12, 1 + i % 28),
            "mobile": "9%09d" % i, "email": "%s.%s%d@seed.example.com" % (fn.lower(), ln.lower(), i),
            "is_admin": i % 10 == 0, "seat_type": "bp"[i % 2], "persona": "SD"[i % 2]}


def seed(binary, folder, n):
    """The cached database of n users in folder (seeded now unless a complete one is there)."""
    db, ids, done = (os.path.join(folder, f) for f in ("hipusers.db", "ids.txt", "seeded.json"))
    if os.path.exists(done):
        with open(done) as f:
            info = json.load(f)
        log("%d users: cached database %s (seeded earlier in %.0f s; delete the folder to reseed)"
            % (n, folder, info["seconds"]))
        return db, ids
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    t0 = time.monotonic()
    src = os.path.join(folder, "users.jsonl")
    with open(src, "w") as f:
        for i in range(n):
            f.write(json.dumps(user(i), separators=(",", ":")) + "\n")
    t1 = time.monotonic()
    log("%d users: generated %s in %.1f s; importing" % (n, src, t1 - t0))
    subprocess.run([binary, "import", "--db", db, "--b-id", TENANT, "--kind", "ekauser", "--file", src,
                    "--progress-interval", "15"], env=env(), check=True)
    t2 = time.monotonic()
    count = 0
    with open(ids + ".tmp", "w") as out:
        p = subprocess.Popen([binary, "export", "--db", db, "--b-id", TENANT, "--kind", "ekauser"], env=env(),
                             stdout=subprocess.PIPE, text=True)
        for line in p.stdout:
            out.write(json.loads(line)["id"] + "\n")
            count += 1
        if p.wait() != 0:
            raise SystemExit("export failed")
    if count != n:
        raise SystemExit("seeded %d users, the export has %d" % (n, count))
    os.rename(ids + ".tmp", ids)
    os.remove(src)
    t3 = time.monotonic()
    info = {"users": n, "seconds": t3 - t0, "import_seconds": t2 - t1, "import_rate": n / (t2 - t1)}
    with open(done, "w") as f:
        json.dump(info, f)
    log("%d users: seeded in %.0f s (import %.0f s, %.0f records/s; ids exported in %.0f s)"
        % (n, t3 - t0, t2 - t1, n / (t2 - t1), t3 - t2))
    return db, ids


def copy_db(src, dst):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(dst + suffix):
            os.remove(dst + suffix)
    for suffix in ("", "-wal"):
        if os.path.exists(src + suffix):
            shutil.copyfile(src + suffix, dst + suffix)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SERVE_ARGS = []


class Server:
    def __init__(self, binary, db):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = open(db + ".server.log", "w")
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--db", db,
                                      "--no-access-log"] + SERVE_ARGS, env=env(), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise SystemExit("the server exited (%d); see %s" % (self.proc.returncode, self.log.name))
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not answer /healthz within 120 s")
            time.sleep(0.05)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


class RssSampler:
    """Samples the server's VmRSS every 50 ms in a thread: the peak, and the value at start."""

    def __init__(self, srv):
        self.srv, self.start_kib = srv, srv.rss_kib()
        self.peak, self.stop_ev = self.start_kib, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.wait(0.05):
            self.peak = max(self.peak, self.srv.rss_kib())

    def finish(self):
        self.stop_ev.set()
        self.t.join()
        self.peak = max(self.peak, self.srv.rss_kib())
        return self.peak


def token(binary, db):
    return subprocess.run([binary, "token", "--db", db, "--b-id", TENANT, "--ttl", "86400"], env=env(), check=True,
                          capture_output=True, text=True).stdout.strip()


def wrk(url, script, tok, seconds, extra_env):
    e = dict(os.environ, BENCH_TOKEN=tok, BENCH_NO_LINKS="1", **extra_env)
    cmd = ["wrk", "-t1", "-c64", "-d%ds" % seconds, "--timeout=5s", "-s", script, url]
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"^BENCH_RESULT (.*)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise SystemExit("wrk failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
    r = dict(kv.split("=", 1) for kv in m.group(1).split())
    res = {"rps": int(r["requests"]) / (int(r["duration_us"]) / 1e6), "p50": int(r["p50_us"]) / 1000.0,
           "p99": int(r["p99_us"]) / 1000.0,
           "errors": int(r["non2xx"]) + sum(int(r[k]) for k in ("connect", "read", "write", "timeout")),
           "statuses": r["statuses"]}
    return res


def median_run(runs, key):
    """The run whose `key` is the median (REPEAT is odd; for even counts the lower middle)."""
    return sorted(runs, key=lambda r: r[key])[(len(runs) - 1) // 2]


def measure_get(args, srv, tok, ids, label):
    wrk_env = {"BENCH_IDS": ids, "BENCH_WRK": args.harness_wrk}
    script = os.path.join(ROOT, "bench", "wrk", "scale_get.lua")
    wrk(srv.url, script, tok, 2, wrk_env)  # warm-up, unmeasured
    runs, sampler = [], RssSampler(srv)
    for i in range(args.repeat):
        runs.append(wrk(srv.url, script, tok, args.duration, wrk_env))
        log("%s get run %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d" % (
            label, i + 1, runs[-1]["rps"], runs[-1]["p50"], runs[-1]["p99"], runs[-1]["errors"]))
    peak = sampler.finish()
    return {"runs": runs, "p50": statistics.median(r["p50"] for r in runs),
            "p99": statistics.median(r["p99"] for r in runs), "rps": statistics.median(r["rps"] for r in runs),
            "errors": sum(r["errors"] for r in runs), "rss_peak_mib": peak / 1024.0}


def list_once(srv, tok, n):
    """One full streamed list read by curl; the records counted as the bytes go by."""
    marker = b'"created_at":'
    sampler = RssSampler(srv)
    t0 = time.monotonic()
    p = subprocess.Popen(["curl", "-sS", "--fail", "-H", "auth: " + tok, srv.url + "/cdr/v1/ekauser/"],
                         stdout=subprocess.PIPE)
    total, count, tail = 0, 0, b""
    while True:
        chunk = p.stdout.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        data = tail + chunk
        count += data.count(marker) - tail.count(marker)
        tail = data[-(len(marker) - 1):]
    rc = p.wait()
    secs = time.monotonic() - t0
    peak = sampler.finish()
    if rc != 0 or count != n:
        raise SystemExit("the list gave %d records of %d (curl exit %d)" % (count, n, rc))
    return {"mbps": total / 1e6 / secs, "seconds": secs, "bytes": total,
            "growth_mib": (peak - sampler.start_kib) / 1024.0, "rss_mib": peak / 1024.0}


def measure_list(args, db, n, label):
    """Each run on a freshly started server: its RSS growth then includes filling its caches."""
    runs = []
    for i in range(args.repeat):
        srv = Server(args.bin, db)
        try:
            runs.append(list_once(srv, token(args.bin, db), n))
        finally:
            srv.stop()
        log("%s list run %d: %d records, %.1f MB in %.2f s = %.1f MB/s, RSS +%.2f MiB" % (
            label, i + 1, n, runs[-1]["bytes"] / 1e6, runs[-1]["seconds"], runs[-1]["mbps"],
            runs[-1]["growth_mib"]))
    return {"runs": runs, "mbps": statistics.median(r["mbps"] for r in runs),
            "seconds": statistics.median(r["seconds"] for r in runs),
            "growth_mib": statistics.median(r["growth_mib"] for r in runs),
            "growth_max_mib": max(r["growth_mib"] for r in runs), "mb": runs[0]["bytes"] / 1e6}


def measure_create(args, cached_db, work_db, label):
    script = os.path.join(args.harness_wrk, "create.lua")
    runs = []
    for i in range(args.repeat):
        copy_db(cached_db, work_db)  # every run starts from the seeded size
        srv = Server(args.bin, work_db)
        try:
            tok = token(args.bin, work_db)
            runs.append(wrk(srv.url, script, tok, args.duration, {}))
        finally:
            srv.stop()
        log("%s create run %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d" % (
            label, i + 1, runs[-1]["rps"], runs[-1]["p50"], runs[-1]["p99"], runs[-1]["errors"]))
    return {"runs": runs, "rps": statistics.median(r["rps"] for r in runs),
            "p50": statistics.median(r["p50"] for r in runs), "p99": statistics.median(r["p99"] for r in runs),
            "errors": sum(r["errors"] for r in runs)}


def load_note():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1000000)
    ap.add_argument("--small", type=int, default=10000)
    ap.add_argument("--mid", type=int, default=100000, help="users for the RSS-under-load figure (0: skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "hipusers"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "build", "bench-scale"))
    ap.add_argument("--harness", default=os.path.join(ROOT, "..", "shared", "bench"))
    ap.add_argument("--only", default="get,list,create,rss")
    ap.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    ap.add_argument("--serve-args", default="", help="more arguments for `hipusers serve`, e.g. \"--cache-mb 0\"")
    args = ap.parse_args()
    SERVE_ARGS.extend(args.serve_args.split())
    args.bin = os.path.abspath(args.bin)
    args.harness_wrk = os.path.abspath(os.path.join(args.harness, "wrk"))
    only = set(args.only.split(","))
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: run ../shared/bench/setup (or apt-get install wrk)")
    os.makedirs(args.cache, exist_ok=True)
    version = schema_version(args.bin, args.cache)
    base = os.path.join(args.cache, "schema-%d" % version)
    work = os.path.join(args.cache, "work")
    os.makedirs(work, exist_ok=True)
    if args.small >= args.users:
        raise SystemExit("--small must be fewer users than --users")
    main_sizes = [args.small, args.users]  # get, list and create are compared between these
    sizes = list(main_sizes)
    if "rss" in only and args.mid and args.mid not in sizes:
        sizes.append(args.mid)  # (a size of the two: its GET runs give the RSS figure)
    dbs = {n: seed(args.bin, os.path.join(base, "users-%d" % n), n) for n in sorted(set(sizes))}
    load_before = load_note()
    t_start = time.monotonic()
    res = {}
    for n in sizes:
        label = "%d users:" % n
        cached, ids = dbs[n]
        work_db = os.path.join(work, "users-%d.db" % n)
        r = res.setdefault(n, {})
        main = n in main_sizes
        want_get = ("get" in only and main) or ("rss" in only and n == args.mid)
        want_list = "list" in only and main
        if want_get or want_list:
            copy_db(cached, work_db)
        if want_get:
            srv = Server(args.bin, work_db)
            try:
                r["get"] = measure_get(args, srv, token(args.bin, work_db), ids, label)
            finally:
                srv.stop()
        if want_list:
            r["list"] = measure_list(args, work_db, n, label)
        if "create" in only and main:
            r["create"] = measure_create(args, cached, work_db, label)
        for f in (work_db, work_db + "-wal", work_db + "-shm"):
            if os.path.exists(f):
                os.remove(f)
    report(args, res, load_before, load_note(), time.monotonic() - t_start)


def report(args, res, load_before, load_after, secs):
    small, big, mid = res.get(args.small, {}), res.get(args.users, {}), res.get(args.mid, {})
    S, B = "{:,}".format(args.small), "{:,}".format(args.users)
    rows = []  # figure, value, target, verdict

    def verdict(ok):
        return "met" if ok else "NOT MET"

    if "get" in small and "get" in big:
        g0, g1 = small["get"], big["get"]
        ratio = g1["p50"] / g0["p50"]
        rows.append(("GET by id p50, %s / %s users" % (B, S), "%.2f / %.2f ms = %.2fx" % (g1["p50"], g0["p50"], ratio),
                     "<= 1.5x", verdict(ratio <= 1.5)))
    if "list" in big:
        lb = big["list"]
        rows.append(("full list of %s users, throughput" % B, "%.1f MB/s (%.0f MB in %.1f s)" % (
            lb["mbps"], lb["mb"], lb["seconds"]), ">= 50 MB/s", verdict(lb["mbps"] >= 50)))
        rows.append(("full list, server RSS growth", "%.2f MiB (largest of the runs %.2f)" % (
            lb["growth_mib"], lb["growth_max_mib"]), "< 8 MiB", verdict(lb["growth_max_mib"] < 8)))
    if "create" in small and "create" in big:
        c0, c1 = small["create"], big["create"]
        ratio = c1["rps"] / c0["rps"]
        rows.append(("create req/s, %s / %s users" % (B, S), "%.0f / %.0f = %.2fx" % (c1["rps"], c0["rps"], ratio),
                     ">= 0.70x", verdict(ratio >= 0.7)))
    if "get" in mid:
        rows.append(("server RSS under GET load, {:,} users".format(args.mid), "%.1f MiB (peak)" % mid["get"][
            "rss_peak_mib"], "<= 32 MiB", verdict(mid["get"]["rss_peak_mib"] <= 32)))

    detail = []  # users, measure, median, runs
    for n in sorted(res):
        for k, r in res[n].items():
            if k == "get":
                detail.append((n, "GET by id", "%.0f req/s, p50 %.2f ms, p99 %.2f ms, peak RSS %.1f MiB" % (
                    r["rps"], r["p50"], r["p99"], r["rss_peak_mib"]),
                    "/".join("%.0f" % x["rps"] for x in r["runs"]) + " req/s; p50 " +
                    "/".join("%.2f" % x["p50"] for x in r["runs"]), r["errors"]))
            elif k == "list":
                detail.append((n, "full list (streamed)", "%.1f MB/s, %.1f s, RSS +%.2f MiB" % (
                    r["mbps"], r["seconds"], r["growth_mib"]),
                    "/".join("%.1f" % x["mbps"] for x in r["runs"]) + " MB/s; RSS +" +
                    "/".join("%.2f" % x["growth_mib"] for x in r["runs"]) + " MiB", 0))
            elif k == "create":
                detail.append((n, "create", "%.0f req/s, p50 %.2f ms, p99 %.2f ms" % (r["rps"], r["p50"], r["p99"]),
                               "/".join("%.0f" % x["rps"] for x in r["runs"]) + " req/s", r["errors"]))
    print()
    print("bench-scale: %d runs of each, wrk -t1 -c64 -d%ds; load average %s before, %s after; %.0f s"
          % (args.repeat, args.duration, load_before, load_after, secs))
    print()
    for n, what, med, runs, err in detail:
        print("%10s users  %-21s %s   [runs: %s; errors %d]" % ("{:,}".format(n), what, med, runs, err))
    print()
    for fig, val, tgt, v in rows:
        print("%-42s %-40s target %-10s %s" % (fig, val, tgt, v))
    if args.markdown:
        print()
        print("| users | measure | median | runs | errors |")
        print("|---:|---|---|---|---:|")
        for n, what, med, runs, err in detail:
            print("| {:,} | {} | {} | {} | {} |".format(n, what, med, runs, err))
        print()
        print("| figure | measured | target | |")
        print("|---|---|---|---|")
        for row in rows:
            print("| %s | %s | %s | %s |" % row)


if __name__ == "__main__":
    main()
