#!/usr/bin/env python3
"""Lists of a large tenant (issue 10: "a 1M-user tenant stays fast"): builds a database with
USERS Eka Users in one tenant (and a second, smaller tenant beside it), starts the real server
on it and times each list filter and a walk through the pages, as a client sees them.

    python3 bench/list_scale.py [--users 1000000] [--bin build/hipusers] [--keep DIR]

Rows are written straight into SQLite (as the server would store them) in one transaction, so
building 1M users takes about a minute; --keep DIR reuses a database built before.
Prints a Markdown table: each request's median time over 5 runs and the records it returned.
"""
import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from harness import Server, make_token  # noqa: E402

TENANT, OTHER = "7100000000000001", "7100000000000002"


def build(db_path, users):
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA journal_mode=WAL")
    rnd = random.Random(42)
    db.execute("BEGIN")
    # clinics: a small one (50 users), a big one (every 3rd user), doctors: 1000
    clinics = [("c-%024x" % i, TENANT if i < 100 else OTHER) for i in range(110)]
    db.executemany("INSERT INTO clinic (id, b_id, name, address, created_at, updated_at) VALUES"
                   " (?, ?, 'C', 'A', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z')", clinics)
    doctors = [("do%013d" % (10**12 + i), TENANT, "9%09d" % (i % 500)) for i in range(1000)]
    db.executemany("INSERT INTO doctor (id, b_id, firstname, lastname, gender, dob, mobile, created_at, updated_at)"
                   " VALUES (?, ?, 'D', 'R', 'F', '1990-01-01', ?, '2024-01-01T00:00:00.000Z',"
                   " '2024-01-01T00:00:00.000Z')", doctors)

    def rows():
        for i in range(users + users // 5):
            tenant = TENANT if i < users else OTHER
            upd = "2024-06-01T00:00:00.000Z" if i % 10000 == 0 else "2024-01-%02dT00:00:00.000Z" % (1 + i % 28)
            yield ("1%014d" % i, tenant, "F%d" % i, "K", "%010d" % (6000000000 + i), "u%d@x.in" % i,
                   "u%d@x.in" % i, "sso-%d" % i, "M", "1990-01-01", "p-%d" % i, "2024-01-01T00:00:00.000Z", upd)
    db.executemany("INSERT INTO ekauser (id, b_id, firstname, lastname, mobile, email, email_key, auth_userid,"
                   " gender, dob, partner_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows())

    def links():
        for i in range(users):
            if i < 50:
                yield ("1%014d" % (i * 997), "c-%024x" % 0)
            if i % 3 == 0:
                yield ("1%014d" % i, "c-%024x" % 1)
    db.executemany("INSERT INTO user_clinic (user_id, clinic_id) VALUES (?, ?)", links())
    db.executemany("INSERT INTO user_doctor (user_id, doctor_id) VALUES (?, ?)",
                   (("1%014d" % rnd.randrange(users), "do%013d" % (10**12 + 7)) for _ in range(30)))
    db.execute("COMMIT")
    db.close()


def timed(srv, tok, path, runs=5):
    times, n, cursor = [], 0, None
    for _ in range(runs):
        t = time.perf_counter()
        r = srv.request("GET", path, token=tok)
        times.append(time.perf_counter() - t)
        assert r.status == 200, (path, r)
        js = r.json
        n = len(js["users"])
        cursor = js.get("next_cursor")
    return statistics.median(times) * 1000, n, cursor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1000000)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "hipusers"))
    ap.add_argument("--keep")
    args = ap.parse_args()
    os.environ["HIPUSERS_BIN"] = os.path.abspath(args.bin)
    import harness
    harness.BIN = os.environ["HIPUSERS_BIN"]
    data = args.keep or tempfile.mkdtemp(prefix="hipusers-scale-")
    srv = Server(data_dir=data)
    fresh = not os.path.exists(srv.db)
    srv.start()  # creates and migrates the database
    if fresh:
        srv.stop()
        t = time.time()
        build(srv.db, args.users)
        print("built %d users in %.0f s" % (args.users, time.time() - t), file=sys.stderr)
        srv.start()
    tok = make_token(TENANT)
    u = args.users
    mid = u // 2
    big, small = "c-%024x" % 1, "c-%024x" % 0
    cases = [
        ("first page, no filter", {"limit": 1000}),
        ("partner_id", {"partner_id": "p-%d" % mid}),
        ("mobile", {"mobile": "+91%010d" % (6000000000 + mid)}),
        ("email", {"email": "U%d@X.IN" % mid}),
        ("auth_userid", {"auth_userid": "sso-%d" % mid}),
        ("clinic_id, 50 users", {"clinic_id": small}),
        ("clinic_id, 1/3 of the users, page of 1000", {"clinic_id": big, "limit": 1000}),
        ("doctor_id, 30 users", {"doctor_id": "do%013d" % (10**12 + 7)}),
        ("updated_since, 1 in 10000 match", {"updated_since": "2024-05-01T00:00:00Z"}),
        ("updated_since, half match, page of 1000", {"updated_since": "2024-01-15T00:00:00Z", "limit": 1000}),
        ("updated_since + clinic_id (big), page of 1000",
         {"updated_since": "2024-01-15T00:00:00Z", "clinic_id": big, "limit": 1000}),
        ("nothing matches", {"partner_id": "nobody"}),
    ]
    print("| request | median ms | records |")
    print("|---|---:|---:|")
    for name, params in cases:
        ms, n, _ = timed(srv, tok, "/cdr/v1/ekauser/?" + urllib.parse.urlencode(params))
        print("| %s | %.1f | %d |" % (name, ms, n))
    # a page deep inside the list (keyset: as cheap as the first)
    path = "/cdr/v1/ekauser/?limit=1000"
    cursor = None
    t = time.perf_counter()
    pages = 0
    while pages < 200:
        r = srv.request("GET", path + ("&cursor=" + cursor if cursor else ""), token=tok)
        cursor = r.json.get("next_cursor")
        pages += 1
        if not cursor:
            break
    per_page = (time.perf_counter() - t) / pages * 1000
    print("| walk: %d pages of 1000, per page | %.1f | %d |" % (pages, per_page, 1000))
    srv.stop()
    if not args.keep:
        import shutil
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
