#!/usr/bin/env python3
"""Issue 10, parts 1, 4, 5 and 6: versions (ETag, If-Match, If-None-Match), each record's
history, the tenant's change feed, and restore of a deleted record, on all three resources.

Black-box: starts the real binary (HIPUSERS_BIN) through the shared harness. Every test works
in tenants of its own. Each refused request is checked for its status, its JSON error, and
that nothing changed: the record as GET shows it (and its ETag), its history, and the feed.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_versions.py
"""
import datetime
import http.client
import itertools
import json
import os
import re
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DB, Server, ServerTestCase, make_token, undo_migration_11, undo_migration_12, undo_migration_9  # noqa: E402

PRECONDITION = {"status": "error", "message": "precondition failed: the record has changed"}
KIND = {"ekauser": "user", "doctor": "doctor", "clinic": "clinic"}
LABEL = {"ekauser": "EkaUser", "doctor": "Doctor", "clinic": "Clinic"}
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
STRONG = re.compile(r'"[\x21\x23-\x7e]+"')

_tenants = itertools.count(1)
_seq = itertools.count(1)


def q(s):
    return urllib.parse.quote(s, safe="")


def new_tenant():
    b_id = "61%014d" % next(_tenants)
    return b_id, make_token(b_id)


class Api(ServerTestCase):
    """Helpers shared by the suites below: records, their ETags, history and feed."""

    def setUp(self):
        self.b_id, self.t = new_tenant()

    def req(self, method, path, body=None, token="default", **kw):
        """A request as this test's tenant unless told otherwise."""
        return self.srv.request(method, path, body=body, token=self.t if token == "default" else token, **kw)

    def path(self, kind, ident, sub=""):
        return "/cdr/v1/%s/%s/%s" % (kind, q(ident), sub)

    def create(self, kind, tok=None, rid=None, **body):
        n = next(_seq)
        base = {"ekauser": {"firstname": "User%d" % n, "lastname": "Kumar", "gender": "F", "dob": "1990-05-15",
                            "mobile": "9%09d" % n},
                "doctor": {"firstname": "Doc%d" % n, "lastname": "Rao", "gender": "M"},
                "clinic": {"name": "Clinic %d" % n, "address": "%d Main Street" % n}}[kind]
        base.update(body)
        headers = {"X-Request-Id": rid} if rid else None
        r = self.req("POST", "/cdr/v1/%s/" % kind, base, token=tok or self.t, headers=headers)
        self.assertEqual(r.status, 201, r)
        return r.json["ekaid"]

    def get(self, kind, ident, tok=None, headers=None):
        return self.req("GET", self.path(kind, ident), token=tok or self.t, headers=headers)

    def etag(self, kind, ident, tok=None):
        r = self.get(kind, ident, tok)
        self.assertEqual(r.status, 200, r)
        tag = r.headers.get("etag")
        self.assertIsNotNone(tag, r.headers)
        self.assertRegex(tag, STRONG)
        return tag

    def state(self, kind, ident, tok=None):
        """What a user sees of a record: (status, body, ETag)."""
        r = self.get(kind, ident, tok)
        return r.status, r.json, r.headers.get("etag")

    def patch(self, kind, ident, body, tok=None, headers=None):
        return self.req("PATCH", self.path(kind, ident), body, token=tok or self.t, headers=headers)

    def delete(self, kind, ident, tok=None, headers=None):
        return self.req("DELETE", self.path(kind, ident), token=tok or self.t, headers=headers)

    def restore(self, kind, ident, tok=None, headers=None):
        return self.req("POST", self.path(kind, ident, "restore"), token=tok or self.t, headers=headers)

    def history(self, kind, ident, tok=None):
        r = self.req("GET", self.path(kind, ident, "history"), token=tok or self.t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "success", r)
        return r.json["history"]

    def feed(self, tok=None, after=None, limit=None):
        """The whole feed after `after`, page by page; checks next_after on each page."""
        out = []
        cur = after
        while True:
            qs = []
            if cur is not None:
                qs.append("after=%d" % cur)
            if limit is not None:
                qs.append("limit=%d" % limit)
            r = self.req("GET", "/cdr/v1/changes/" + ("?" + "&".join(qs) if qs else ""), token=tok or self.t)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(set(r.json), {"status", "changes", "next_after"}, r)
            page = r.json["changes"]
            if page:
                self.assertEqual(r.json["next_after"], page[-1]["seq"], r)
            else:
                self.assertEqual(r.json["next_after"], cur or 0, r)
            out += page
            if not page or limit is None:
                return out
            cur = r.json["next_after"]

    def snapshot(self, records, tok=None):
        """Everything a refused request must leave alone: each record's GET (body and ETag) and
        history, and the tenant's feed."""
        return ([self.state(k, i, tok) for k, i in records],
                [self.history(k, i, tok) for k, i in records], self.feed(tok))


# ---------------------------------------------------------------- part 1: ETag and conditions

class ETagTests(Api):

    def test_get_answers_a_strong_etag_that_names_the_representation(self):
        c = self.create("clinic", partner_id="P-c-etag")
        d = self.create("doctor", partner_id="P-d-etag", clinic_ids=[c])
        u = self.create("ekauser", partner_id="P-u-etag", doctor_ids=[d], clinic_ids=[c])
        for kind, ident, pid in (("clinic", c, "P-c-etag"), ("doctor", d, "P-d-etag"), ("ekauser", u, "P-u-etag")):
            with self.subTest(kind=kind):
                tag = self.etag(kind, ident)
                # the same record by partner id, again, and by HEAD: the same tag
                self.assertEqual(self.etag(kind, pid), tag)
                self.assertEqual(self.etag(kind, ident), tag)
                h = self.req("HEAD", self.path(kind, ident))
                self.assertEqual((h.status, h.headers.get("etag"), h.raw), (200, tag, b""))
        # the Eka User read view shows the same representation, so the same tag
        r = self.req("GET", "/cdr/v1/hipusers/" + u)
        self.assertEqual(r.headers.get("etag"), self.etag("ekauser", u))
        # different records, different tags
        self.assertEqual(len({self.etag("clinic", c), self.etag("doctor", d), self.etag("ekauser", u)}), 3)
        # lists carry none (they are not one record)
        self.assertNotIn("etag", self.req("GET", "/cdr/v1/clinic/").headers)
        # a create answers the new record's tag
        r = self.req("POST", "/cdr/v1/doctor/", {"firstname": "A", "lastname": "B", "gender": "F"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers.get("etag"), self.etag("doctor", r.json["ekaid"]))

    def test_etag_changes_exactly_when_the_representation_changes(self):
        """Every kind of change the issue names moves the tag; nothing else does. Each step
        records (body, tag) of every record: equal bodies must have equal tags and different
        bodies different tags, across the whole run."""
        c1 = self.create("clinic")
        c2 = self.create("clinic")
        d1 = self.create("doctor", clinic_ids=[c1])
        d2 = self.create("doctor")
        u = self.create("ekauser", doctor_ids=[d1], clinic_ids=[c1])
        taken = "taken-%d" % next(_seq)
        other = self.create("clinic", partner_id=taken)
        recs = [("clinic", c1), ("clinic", c2), ("doctor", d1), ("doctor", d2), ("ekauser", u)]
        seen = {}  # body text -> tag

        def look():
            out = {}
            for kind, ident in recs:
                st, body, tag = self.state(kind, ident)
                if st == 200:
                    text = json.dumps(body, sort_keys=True)
                    self.assertEqual(seen.setdefault(text, tag), tag, "one body, two tags")
                    self.assertNotIn(tag, [t for b, t in seen.items() if b != text], "one tag, two bodies")
                out[(kind, ident)] = tag if st == 200 else None
            return out

        def step(change, moved):
            before = look()
            change()
            after = look()
            changed = {k for k in before if before[k] != after[k]}
            self.assertEqual(changed, set(moved), change.__doc__)

        def patch_d1_name():
            """a linked record renamed"""
            self.assertEqual(self.patch("doctor", d1, {"firstname": "Renamed"}).status, 200)

        def link_from_doctor():
            """links changed from the doctor's side"""
            self.assertEqual(self.patch("doctor", d2, {"clinic_ids": [c2]}).status, 200)

        def link_from_clinic():
            """links changed from the clinic's side"""
            self.assertEqual(self.patch("clinic", c1, {"doctor_ids": [d2]}).status, 200)

        def user_links():
            """the user's links replaced"""
            self.assertEqual(self.patch("ekauser", u, {"doctor_ids": [d2]}).status, 200)

        def unrelated():
            """another record's unrelated write, and a new record"""
            self.assertEqual(self.patch("clinic", other, {"city": "Pune"}).status, 200)
            self.create("doctor")

        def refused():
            """refused requests: 400, 409, 412, 404"""
            self.assertEqual(self.patch("clinic", c1, {"pincode": "12"}).status, 400)
            self.assertEqual(self.patch("clinic", c1, {"doctor_ids": ["do9999999999999"]}).status, 400)
            self.assertEqual(self.patch("clinic", c1, {"partner_id": taken}).status, 409)
            self.assertEqual(self.patch("ekauser", u, {"gender": "X"}).status, 400)
            self.assertEqual(self.patch("clinic", c2, {"city": "x"}, headers={"If-Match": '"stale"'}).status, 412)
            self.assertEqual(self.delete("doctor", d1, headers={"If-Match": '"stale"'}).status, 412)
            self.assertEqual(self.restore("clinic", c1).status, 404)

        def reads():
            """reads of every kind"""
            for kind, ident in recs:
                self.get(kind, ident)
                self.history(kind, ident)
            self.feed()

        def own_write():
            """a write of the record itself"""
            self.assertEqual(self.patch("clinic", c2, {"city": "Goa"}).status, 200)

        def delete_linked():
            """a linked record deleted"""
            self.assertEqual(self.delete("doctor", d2).status, 200)

        def restore_linked():
            """a linked record restored"""
            self.assertEqual(self.restore("doctor", d2).status, 200)

        step(patch_d1_name, [("doctor", d1), ("clinic", c1), ("ekauser", u)])
        step(link_from_doctor, [("doctor", d2), ("clinic", c2)])
        step(link_from_clinic, [("doctor", d2), ("clinic", c1)])
        step(user_links, [("ekauser", u)])
        step(unrelated, [])
        step(refused, [])
        step(reads, [])
        step(own_write, [("clinic", c2)])
        step(delete_linked, [("doctor", d2), ("clinic", c1), ("clinic", c2), ("ekauser", u)])
        step(restore_linked, [("doctor", d2), ("clinic", c1), ("clinic", c2), ("ekauser", u)])

    def test_delete_and_restore_give_a_new_tag(self):
        for kind in ("ekauser", "doctor", "clinic"):
            with self.subTest(kind=kind):
                ident = self.create(kind)
                tag = self.etag(kind, ident)
                self.assertEqual(self.delete(kind, ident).status, 200)
                r = self.get(kind, ident)
                self.assertEqual(r.status, 404, r)
                self.assertNotIn("etag", r.headers)
                r = self.restore(kind, ident)
                self.assertEqual(r.status, 200, r)
                new = self.etag(kind, ident)
                self.assertNotEqual(new, tag)
                self.assertEqual(r.headers.get("etag"), new)

    def test_if_none_match(self):
        for kind in ("ekauser", "doctor", "clinic"):
            with self.subTest(kind=kind):
                ident = self.create(kind, partner_id="inm-%s" % kind)
                full = self.get(kind, ident)
                tag = full.headers["etag"]
                weak = "W/" + tag
                for value in (tag, weak, "*", '"other", ' + tag, '"a",,  %s , "b"' % tag):
                    for method in ("GET", "HEAD"):
                        r = self.req(method, self.path(kind, "inm-%s" % kind), headers={"If-None-Match": value})
                        self.assertEqual(r.status, 304, (value, method, r))
                        self.assertEqual(r.raw, b"")
                        self.assertEqual(r.headers.get("etag"), tag)
                        self.assertNotIn("content-type", r.headers)
                        # a 304 may only declare the length the 200 would have had
                        self.assertIn(r.headers.get("content-length"), (None, str(len(full.raw))))
                r = self.req("GET", "/cdr/v1/hipusers/" + ident, headers={"If-None-Match": tag})
                self.assertEqual(r.status, 304 if kind == "ekauser" else 404, r)
                # another tag: the record itself
                r = self.get(kind, ident, headers={"If-None-Match": '"other", W/"x"'})
                self.assertEqual((r.status, r.raw, r.headers.get("etag")), (200, full.raw, tag))
                # after a change the old tag no longer matches
                self.assertEqual(self.patch(kind, ident, {"partner_id": "inm2-%s" % kind}).status, 200)
                r = self.get(kind, ident, headers={"If-None-Match": tag})
                self.assertEqual(r.status, 200, r)
                self.assertNotEqual(r.headers["etag"], tag)
                # a record that is not there is a 404 whatever the condition says
                r = self.get(kind, "nope-%s" % kind, headers={"If-None-Match": "*"})
                self.assertError(r, 404, "%s not found" % LABEL[kind])

    def test_if_none_match_keeps_the_connection(self):
        """A 304 has no body: the next response on the same connection must follow at once."""
        ident = self.create("clinic")
        tag = self.etag("clinic", ident)
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=15)
        try:
            for cond in (tag, None, tag):
                h = {"auth": self.t}
                if cond:
                    h["If-None-Match"] = cond
                conn.request("GET", self.path("clinic", ident), headers=h)
                r = conn.getresponse()
                body = r.read()
                self.assertEqual(r.status, 304 if cond else 200)
                self.assertEqual(body == b"", bool(cond))
        finally:
            conn.close()

    def test_if_match_on_patch_and_delete(self):
        for kind, body in (("ekauser", {"firstname": "Changed"}), ("doctor", {"about": "Changed"}),
                           ("clinic", {"city": "Changed"})):
            with self.subTest(kind=kind):
                ident = self.create(kind, partner_id="im-%s" % kind)
                tag = self.etag(kind, ident)
                before = self.snapshot([(kind, ident)])
                # a tag that is not the current one: 412 and nothing changes
                for stale in ('"stale"', "W/" + tag, '"a", "b"', '"%s"' % tag.strip('"')[:-1]):
                    for send in (lambda h: self.patch(kind, ident, body, headers=h),
                                 lambda h: self.patch(kind, "im-%s" % kind, body, headers=h),
                                 lambda h: self.delete(kind, ident, headers=h)):
                        r = send({"If-Match": stale})
                        self.assertEqual((r.status, r.json), (412, PRECONDITION), (stale, r))
                        self.assertNotIn("etag", r.headers)
                self.assertEqual(self.snapshot([(kind, ident)]), before)
                # the current tag (alone, in a list, as two header lines): applied, the new tag answered
                r = self.patch(kind, ident, body, headers={"If-Match": '"x", ' + tag})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json, {"status": "success", "ekaid": ident})
                new = r.headers.get("etag")
                self.assertEqual(new, self.etag(kind, ident))
                self.assertNotEqual(new, tag)
                # the old tag is stale now
                r = self.patch(kind, ident, {"partner_id": "im2-%s" % kind}, headers={"If-Match": tag})
                self.assertEqual(r.status, 412, r)
                # * matches any live record
                r = self.patch(kind, ident, {"partner_id": "im3-%s" % kind}, headers={"If-Match": "*"})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.headers.get("etag"), self.etag(kind, ident))
                # without the header, as before: applied whatever the tag
                r = self.patch(kind, ident, {"partner_id": "im4-%s" % kind})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.headers.get("etag"), self.etag(kind, ident))
                # DELETE with the current tag
                r = self.delete(kind, ident, headers={"If-Match": self.etag(kind, ident)})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.get(kind, ident).status, 404)
                # on a record that is not there (deleted, unknown): 404, even with *
                for cond in ("*", tag):
                    self.assertError(self.patch(kind, ident, body, headers={"If-Match": cond}), 404)
                    self.assertError(self.delete(kind, ident, headers={"If-Match": cond}), 404)

    def test_if_match_on_the_same_record_from_the_other_side(self):
        """A link set from the other side changes the record: its old tag is stale."""
        c = self.create("clinic")
        d = self.create("doctor")
        tag = self.etag("clinic", c)
        self.assertEqual(self.patch("doctor", d, {"clinic_ids": [c]}).status, 200)
        r = self.patch("clinic", c, {"city": "Pune"}, headers={"If-Match": tag})
        self.assertEqual((r.status, r.json), (412, PRECONDITION))
        self.assertEqual(self.patch("clinic", c, {"city": "Pune"},
                                    headers={"If-Match": self.etag("clinic", c)}).status, 200)

    def test_malformed_conditions_are_refused(self):
        ident = self.create("clinic")
        tag = self.etag("clinic", ident)
        before = self.snapshot([("clinic", ident)])
        for value in ("abc", tag.strip('"'), '"unterminated', 'W/abc', '* , "x"', '"a" "b"', '"a";b', ",", "w/" + tag,
                      '"a\x7f"'):
            with self.subTest(value=value):
                for name, send in (("If-Match", lambda h: self.patch("clinic", ident, {"city": "X"}, headers=h)),
                                   ("If-Match", lambda h: self.delete("clinic", ident, headers=h)),
                                   ("If-None-Match", lambda h: self.get("clinic", ident, headers=h))):
                    r = send({name: value})
                    self.assertError(r, 400, "%s must be * or a list of entity tags" % name)
        self.assertEqual(self.snapshot([("clinic", ident)]), before)

    def test_write_answers_the_tag_and_entry_of_what_get_shows_next(self):
        """The tag a create or PATCH answers is the one the next GET answers, and the write's
        history entry is the difference between the GETs before and after it, for every kind
        of value (normalised mobiles, emails as sent, lists, booleans, defaults, nulls, unique
        fields), with and without link changes on either side."""
        c1 = self.create("clinic")
        c2 = self.create("clinic", partner_id="wt-c2")
        d1 = self.create("doctor")
        link_names = {"doctor_ids": "doctors", "clinic_ids": "clinics",
                      "partner_doctor_ids": "doctors", "partner_clinic_ids": "clinics"}

        def shown(kind, body):
            """The history's view of a GET body: fields as shown, links as Eka ids."""
            rec = dict(body[KIND[kind]])
            for k in ("id", "created_at", "updated_at", "specialisation"):
                rec.pop(k, None)
            for name in ("doctors", "clinics"):
                if name in rec:
                    rec[name[:-1] + "_ids"] = [x["id"] for x in rec.pop(name)]
            return rec

        def check(kind, r, before):
            self.assertIn(r.status, (200, 201), r)
            ident = r.json["ekaid"]
            g = self.get(kind, ident)
            self.assertEqual(r.headers.get("etag"), g.headers.get("etag"), (kind, r.json))
            now = shown(kind, g.json)
            want = {}
            for k in sorted(set(before) | set(now)):
                frm, to = before.get(k), now.get(k)
                if frm != to and not (not before and to == []):
                    want[k] = {"from": frm, "to": to}
            self.assertEqual(self.history(kind, ident)[-1]["changes"], want, (kind, r.json))
            self.assertEqual(self.history(kind, ident)[-1]["at"], g.json[KIND[kind]]["updated_at"])
            return ident, now

        creates = {
            "ekauser": [{"firstname": " Asha ", "lastname": "Rao", "gender": "F", "dob": "1991-02-03",
                         "mobile": "+919876543210", "email": "Asha.Rao@Example.com"},
                        {"firstname": "Ravi", "lastname": "K", "gender": "M", "dob": "1980-12-31",
                         "auth_userid": "wt-auth-1", "is_admin": True, "seat_type": "p", "persona": "S",
                         "partner_id": "wt-u2", "doctor_ids": [d1], "partner_clinic_ids": ["wt-c2"]}],
            "doctor": [{"firstname": "Meera", "lastname": "Iyer", "gender": "F"},
                       {"firstname": "Anil", "lastname": "Shah", "gender": "M", "dob": "1975-06-07",
                        "mobile": "919812345678", "email": "anil@EXAMPLE.org", "about": "Cardiology, 20 years",
                        "profile_image_url": "https://img.example.com/a.png",
                        "specialisations": ["Cardiology", "Medicine"], "qualifications": ["MBBS", "MD"],
                        "clinic_ids": [c1, c2]}],
            "clinic": [{"name": "Sun Clinic", "address": "1 Road"},
                       {"name": "Moon Clinic", "address": "2 Road", "pincode": "560001", "contact": "08012345678",
                        "city": "Bengaluru", "state": "KA", "doctor_ids": [d1]}],
        }
        patches = {
            "ekauser": [{"firstname": "Asha Devi"}, {"email": "ASHA@example.com", "is_admin": True},
                        {"email": None, "auth_userid": "wt-auth-2"}, {"mobile": "9123456780", "seat_type": "b"},
                        {"doctor_ids": [d1]}, {"clinic_ids": [c1, c2], "lastname": "Rao-K"},
                        {"partner_doctor_ids": []}, {"partner_id": "wt-u1", "persona": "S", "dob": "1991-02-04"}],
            "doctor": [{"about": "Now with notes"}, {"specialisations": ["ENT"], "qualifications": []},
                       {"specialisations": None, "email": "x@y.in", "mobile": "+919000000001"},
                       {"clinic_ids": [c2]}, {"firstname": "Meera R", "partner_clinic_ids": ["wt-c2"]},
                       {"profile_image_url": None, "about": None, "partner_id": "wt-d1"}],
            "clinic": [{"city": "Pune"}, {"pincode": "411001", "contact": "02012345678", "state": None},
                       {"doctor_ids": [d1]}, {"name": "Sun Clinic 2", "partner_doctor_ids": []},
                       {"address": "3 Road", "partner_id": "wt-c1"}],
        }
        for kind in ("ekauser", "doctor", "clinic"):
            made = []
            for body in creates[kind]:
                with self.subTest(kind=kind, create=body):
                    made.append(check(kind, self.req("POST", "/cdr/v1/%s/" % kind, body), {}))
            ident, cur = made[0]
            for body in patches[kind]:
                with self.subTest(kind=kind, patch=body):
                    cur = check(kind, self.patch(kind, ident, body), cur)[1]
                    for k in body:  # each field named shows what was sent (links by their Eka ids)
                        if k in link_names:
                            self.assertIn(link_names[k][:-1] + "_ids", cur)

    def test_two_patches_with_the_same_tag_one_wins(self):
        """Two integrators holding the same ETag PATCH at once: one 200, one 412, and the
        record is the winner's, with one history entry."""
        for kind, field in (("ekauser", "firstname"), ("doctor", "lastname"), ("clinic", "name")):
            for rnd in range(5):
                with self.subTest(kind=kind, round=rnd):
                    ident = self.create(kind)
                    tag = self.etag(kind, ident)
                    n_hist = len(self.history(kind, ident))
                    barrier = threading.Barrier(2)
                    results = [None, None]

                    def go(i):
                        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
                        body = json.dumps({field: "Racer%d" % i}).encode()
                        h = {"auth": self.t, "Content-Type": "application/json", "If-Match": tag,
                             "X-Request-Id": "race-%d-%d-%s" % (rnd, i, kind)}
                        conn.connect()
                        barrier.wait()
                        conn.request("PATCH", self.path(kind, ident), body=body, headers=h)
                        r = conn.getresponse()
                        results[i] = (r.status, r.read())
                        conn.close()

                    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join(60)
                    statuses = sorted(s for s, _ in results)
                    self.assertEqual(statuses, [200, 412], results)
                    winner = next(i for i in range(2) if results[i][0] == 200)
                    loser = 1 - winner
                    self.assertEqual(json.loads(results[loser][1]), PRECONDITION)
                    self.assertEqual(self.get(kind, ident).json[KIND[kind]][field], "Racer%d" % winner)
                    hist = self.history(kind, ident)
                    self.assertEqual(len(hist), n_hist + 1)
                    self.assertEqual(hist[-1]["request_id"], "race-%d-%d-%s" % (rnd, winner, kind))


# ---------------------------------------------------------------- part 4: history

class HistoryTests(Api):

    def check_entry(self, e, version, action, request_id=None, client_id="e2e", b_id=None):
        self.assertEqual(set(e), {"version", "action", "at", "actor", "request_id", "changes"}, e)
        self.assertEqual((e["version"], e["action"]), (version, action), e)
        self.assertRegex(e["at"], RFC3339)
        datetime.datetime.fromisoformat(e["at"])
        self.assertEqual(e["actor"], {"client_id": client_id, "b_id": b_id or self.b_id})
        if request_id is not None:
            self.assertEqual(e["request_id"], request_id)
        self.assertIsInstance(e["changes"], dict)

    def test_a_user_from_create_to_restore(self):
        d1 = self.create("doctor", partner_id="H-doc-1")
        d2 = self.create("doctor")
        c = self.create("clinic")
        u = self.create("ekauser", rid="h-create", firstname="Amit", email="amit.h@example.com", mobile="9876543210",
                        partner_id="H-user", partner_doctor_ids=["H-doc-1"], clinic_ids=[c])
        h = self.history("ekauser", u)
        self.assertEqual(len(h), 1)
        self.check_entry(h[0], 1, "create", "h-create")
        got = self.get("ekauser", u).json["user"]
        # every set field with from null, as GET shows it (mobile with +91, defaults too); links as Eka ids
        want = {k: {"from": None, "to": got[k]} for k in got
                if k not in ("id", "doctors", "clinics", "created_at", "updated_at")}
        want["doctor_ids"] = {"from": None, "to": [d1]}
        want["clinic_ids"] = {"from": None, "to": [c]}
        self.assertEqual(h[0]["changes"], want)
        self.assertEqual(h[0]["changes"]["mobile"], {"from": None, "to": "+919876543210"})
        self.assertEqual(h[0]["changes"]["is_admin"], {"from": None, "to": False})
        self.assertEqual(h[0]["at"], got["created_at"])

        r = self.patch("ekauser", u, {"firstname": "Amitabh", "email": None, "seat_type": "p",
                                       "doctor_ids": [d2, d1], "clinic_ids": []},
                       headers={"X-Request-Id": "h-patch"})
        self.assertEqual(r.status, 200, r)
        h = self.history("ekauser", u)
        self.assertEqual(len(h), 2)
        self.check_entry(h[1], 2, "update", "h-patch")
        self.assertEqual(h[1]["changes"], {
            "firstname": {"from": "Amit", "to": "Amitabh"},
            "email": {"from": "amit.h@example.com", "to": None},
            "seat_type": {"from": "b", "to": "p"},
            "doctor_ids": {"from": [d1], "to": [d2, d1]},
            "clinic_ids": {"from": [c], "to": []}})
        self.assertEqual(h[1]["at"], self.get("ekauser", u).json["user"]["updated_at"])
        # a PATCH that sets what is there already is still a write (updated_at), with no changes
        self.assertEqual(self.patch("ekauser", u, {"firstname": "Amitabh"}).status, 200)
        self.assertEqual(self.history("ekauser", u)[2]["changes"], {})

        self.assertEqual(self.delete("ekauser", u, headers={"X-Request-Id": "h-delete"}).status, 200)
        # a deleted record's history: by Eka id and by partner id
        h = self.history("ekauser", u)
        self.assertEqual(self.history("ekauser", "H-user"), h)
        self.check_entry(h[3], 4, "delete", "h-delete")
        self.assertEqual(h[3]["changes"], {})
        self.assertEqual(self.restore("ekauser", u, headers={"X-Request-Id": "h-restore"}).status, 200)
        h = self.history("ekauser", u)
        self.assertEqual([e["version"] for e in h], [1, 2, 3, 4, 5])
        self.check_entry(h[4], 5, "restore", "h-restore")
        # oldest first
        self.assertEqual([e["at"] for e in h], sorted(e["at"] for e in h))
        # HEAD: GET's length, no body
        g = self.req("GET", self.path("ekauser", u, "history"))
        r = self.req("HEAD", self.path("ekauser", u, "history"))
        self.assertEqual((r.status, r.raw, r.headers["content-length"]), (200, b"", str(len(g.raw))))

    def test_doctor_and_clinic_histories(self):
        c = self.create("clinic", rid="hc-c", name="Sunrise", address="1 Road", partner_id="HC")
        h = self.history("clinic", c)
        self.assertEqual(h[0]["changes"], {"name": {"from": None, "to": "Sunrise"},
                                           "address": {"from": None, "to": "1 Road"},
                                           "partner_id": {"from": None, "to": "HC"}})
        d = self.create("doctor", rid="hc-d", firstname="Rajesh", lastname="Sharma", gender="M",
                        specialisations=["Cardiology", "Surgery"], partner_clinic_ids=["HC"])
        h = self.history("doctor", d)
        self.assertEqual(h[0]["changes"], {"firstname": {"from": None, "to": "Rajesh"},
                                           "lastname": {"from": None, "to": "Sharma"},
                                           "gender": {"from": None, "to": "M"},
                                           "dob": {"from": None, "to": "1990-01-01"},
                                           "specialisations": {"from": None, "to": ["Cardiology", "Surgery"]},
                                           "clinic_ids": {"from": None, "to": [c]}})
        # the link the doctor set is an entry of the clinic too, by the same request
        h = self.history("clinic", c)
        self.assertEqual(len(h), 2)
        self.check_entry(h[1], 2, "update", "hc-d")
        self.assertEqual(h[1]["changes"], {"doctor_ids": {"from": [], "to": [d]}})
        # from the clinic's side: an entry of the doctor
        c2 = self.create("clinic")
        self.assertEqual(self.patch("clinic", c2, {"doctor_ids": [d], "city": "Pune"},
                                    headers={"X-Request-Id": "hc-c2"}).status, 200)
        h = self.history("doctor", d)
        self.check_entry(h[-1], 2, "update", "hc-c2")
        self.assertEqual(h[-1]["changes"], {"clinic_ids": {"from": [c], "to": [c, c2]}})
        self.assertEqual(self.history("clinic", c2)[-1]["changes"], {"city": {"from": None, "to": "Pune"},
                                                                     "doctor_ids": {"from": [], "to": [d]}})
        # a link made again changes nothing on the other side: no entry there
        n = len(self.history("clinic", c))
        self.assertEqual(self.patch("doctor", d, {"clinic_ids": [c]}).status, 200)
        self.assertEqual(len(self.history("clinic", c)), n)
        # a doctor's view does not show users: a user's link is no entry of the doctor
        n = len(self.history("doctor", d))
        self.create("ekauser", doctor_ids=[d])
        self.assertEqual(len(self.history("doctor", d)), n)
        # null clears; the derived specialisation is not a field of its own
        self.assertEqual(self.patch("doctor", d, {"specialisations": None}).status, 200)
        self.assertEqual(self.history("doctor", d)[-1]["changes"],
                         {"specialisations": {"from": ["Cardiology", "Surgery"], "to": None}})

    def test_actor_is_the_login_client(self):
        r = self.srv.cli("business", "create", "--name", "History Group")
        self.assertEqual(r.returncode, 0, r)
        b_id = r.stdout.strip()
        r = self.srv.cli("client", "create", "--b-id", b_id, "--name", "his")
        kv = dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
        r = self.srv.request("POST", "/connect-auth/v1/account/login",
                             {"client_id": kv["client_id"], "client_secret": kv["client_secret"]})
        self.assertEqual(r.status, 200, r)
        tok = r.json["access_token"]
        c = self.create("clinic", tok=tok)
        h = self.history("clinic", c, tok=tok)
        self.assertEqual(h[0]["actor"], {"client_id": kv["client_id"], "b_id": b_id})
        # a request id the server made up is the one it answered with
        r = self.req("PATCH", self.path("clinic", c), {"city": "Pune"}, token=tok)
        self.assertEqual(self.history("clinic", c, tok=tok)[-1]["request_id"], r.headers["x-request-id"])

    def test_refused_requests_leave_no_entry(self):
        c = self.create("clinic", partner_id="RF-c")
        d = self.create("doctor", clinic_ids=[c])
        u = self.create("ekauser", email="rf@example.com", doctor_ids=[d])
        self.create("ekauser", email="rf2@example.com", partner_id="RF-taken")
        recs = [("clinic", c), ("doctor", d), ("ekauser", u)]
        before = self.snapshot(recs)
        refused = [
            ("PATCH", self.path("ekauser", u), {"partner_id": "RF-taken"}, 409),
            ("PATCH", self.path("ekauser", u), {"email": None, "mobile": None}, 400),
            ("PATCH", self.path("doctor", d), {"clinic_ids": [c, "c-0123456789abcdef01234567"]}, 400),
            ("PATCH", self.path("clinic", c), {"doctor_ids": [d], "pincode": "1"}, 400),
            ("POST", "/cdr/v1/doctor/", {"firstname": "X", "lastname": "Y", "gender": "M",
                                        "clinic_ids": [c, "c-0123456789abcdef01234567"]}, 400),
            ("POST", "/cdr/v1/clinic/", {"name": "Dup", "address": "x", "partner_id": "RF-c"}, 409),
            ("POST", self.path("clinic", c, "restore"), None, 404),
            ("DELETE", self.path("doctor", "nope"), None, 404),
        ]
        for method, path, body, status in refused:
            with self.subTest(method=method, path=path):
                r = self.req(method, path, body)
                self.assertEqual(r.status, status, r)
        self.assertEqual(self.snapshot(recs), before)

    def test_history_is_tenant_scoped(self):
        _, other = new_tenant()
        live = self.create("clinic", partner_id="TS-live")
        gone = self.create("clinic", partner_id="TS-gone")
        self.assertEqual(self.delete("clinic", gone).status, 200)
        nothing = self.req("GET", self.path("clinic", "c-0123456789abcdef01234567", "history"))
        self.assertError(nothing, 404, "Clinic not found")
        for ident in (live, gone, "TS-live", "TS-gone"):
            r = self.req("GET", self.path("clinic", ident, "history"), token=other)
            self.assertEqual((r.status, r.json), (404, nothing.json), ident)
        # the wrong resource is a 404 too
        r = self.req("GET", self.path("doctor", live, "history"))
        self.assertError(r, 404, "Doctor not found")
        # the Eka User's 404 keeps its shape
        r = self.req("GET", self.path("ekauser", "nope", "history"))
        self.assertEqual(r.json["error"]["code"], "NOT_FOUND")

    def test_history_by_partner_id_prefers_the_live_record(self):
        old = self.create("doctor", partner_id="PID-reused")
        self.assertEqual(self.delete("doctor", old).status, 200)
        self.assertEqual(self.history("doctor", "PID-reused")[-1]["action"], "delete")
        new = self.create("doctor", partner_id="PID-reused")
        h = self.history("doctor", "PID-reused")
        self.assertEqual([e["action"] for e in h], ["create"])
        self.assertEqual(self.history("doctor", new), h)
        self.assertEqual([e["action"] for e in self.history("doctor", old)], ["create", "delete"])
        # of two deleted ones, the later deleted
        self.assertEqual(self.delete("doctor", new).status, 200)
        self.assertEqual(self.history("doctor", "PID-reused"), self.history("doctor", new))

    def test_methods(self):
        ident = self.create("clinic")
        for method in ("POST", "PATCH", "DELETE", "PUT"):
            r = self.req(method, self.path("clinic", ident, "history"), {} if method != "DELETE" else None)
            self.assertError(r, 405, "Method not allowed")
            self.assertEqual(r.headers.get("allow"), "GET")
        for path in ("/cdr/v1/clinic/%s/histories" % ident, "/cdr/v1/clinic/%s/history/x" % ident,
                     "/cdr/v1/hipusers/%s/history" % ident, "/cdr/v1/clinic//history"):
            self.assertError(self.req("GET", path), 404, "Not found")
        self.assertEqual(self.req("GET", self.path("clinic", ident, "history"), token=None).status, 401)


# ---------------------------------------------------------------- part 5: the change feed

class FeedTests(Api):

    def test_every_write_in_order(self):
        self.assertEqual(self.feed(), [])
        c = self.create("clinic")
        d = self.create("doctor", clinic_ids=[c])
        u = self.create("ekauser", doctor_ids=[d])
        self.assertEqual(self.patch("ekauser", u, {"firstname": "Feed"}).status, 200)
        self.assertEqual(self.delete("doctor", d).status, 200)
        self.assertEqual(self.restore("doctor", d).status, 200)
        self.assertEqual(self.patch("ekauser", u, {"gender": "X"}).status, 400)  # refused: no entry
        feed = self.feed()
        self.assertEqual([(e["resource"], e["id"], e["action"]) for e in feed], [
            ("clinic", c, "create"), ("doctor", d, "create"), ("clinic", c, "update"), ("ekauser", u, "create"),
            ("ekauser", u, "update"), ("doctor", d, "delete"), ("doctor", d, "restore")])
        self.assertEqual([e["seq"] for e in feed], list(range(1, len(feed) + 1)))
        for e in feed:
            self.assertEqual(set(e), {"seq", "resource", "id", "action", "at"})
            self.assertRegex(e["at"], RFC3339)
        self.assertEqual([e["at"] for e in feed], sorted(e["at"] for e in feed))
        # each entry is the history's entry of that record
        for kind, ident in (("clinic", c), ("doctor", d), ("ekauser", u)):
            mine = [e for e in feed if e["id"] == ident]
            self.assertEqual([(e["action"], e["at"]) for e in mine],
                             [(h["action"], h["at"]) for h in self.history(kind, ident)])
        # after and limit page through the same list
        for limit in (1, 2, 3, 1000):
            self.assertEqual(self.feed(limit=limit), feed)
        self.assertEqual(self.feed(after=3), feed[3:])
        self.assertEqual(self.feed(after=0), feed)
        self.assertEqual(self.feed(after=len(feed)), [])
        self.assertEqual(self.feed(after=10 ** 15), [])
        r = self.req("GET", "/cdr/v1/changes?after=2&limit=1")
        self.assertEqual(r.json, {"status": "success", "changes": feed[2:3], "next_after": 3})
        # tenant-scoped: another tenant sees none of it, and numbers its own from 1
        b, other = new_tenant()
        self.assertEqual(self.feed(tok=other), [])
        oc = self.create("clinic", tok=other)
        self.assertEqual([(e["seq"], e["id"]) for e in self.feed(tok=other)], [(1, oc)])
        self.assertEqual(self.feed(), feed)
        # HEAD
        g = self.req("GET", "/cdr/v1/changes/")
        r = self.req("HEAD", "/cdr/v1/changes/")
        self.assertEqual((r.status, r.raw, r.headers["content-length"]), (200, b"", str(len(g.raw))))

    def test_default_and_maximum_page(self):
        for _ in range(3):
            self.create("clinic")
        body = {"name": "Bulk", "address": "x"}
        for _ in range(105):
            self.assertEqual(self.req("POST", "/cdr/v1/clinic/", body).status, 201)
        r = self.req("GET", "/cdr/v1/changes/")
        self.assertEqual(len(r.json["changes"]), 100)
        self.assertEqual(r.json["next_after"], 100)
        r = self.req("GET", "/cdr/v1/changes/?limit=1000")
        self.assertEqual(len(r.json["changes"]), 108)

    def test_bad_parameters(self):
        self.create("clinic")
        before = self.feed()
        for qs, message in (("after=-1", "after must be"), ("after=abc", "after must be"), ("after=1.5", "after must be"),
                            ("after=", "after must be"), ("after", "after must be"), ("after=%2B1", "after must be"),
                            ("after=+1", "after must be"), ("after=99999999999999999999", "after must be"),
                            ("after=0x10", "after must be"), ("after=%201", "after must be"),
                            ("limit=0", "limit must be"), ("limit=1001", "limit must be"), ("limit=-5", "limit must be"),
                            ("limit=ten", "limit must be"), ("limit=", "limit must be"),
                            ("after=1&after=2", "after: give it once"), ("limit=1&limit=1", "limit: give it once"),
                            ("since=1", "Unknown query parameter"), ("after=1&Limit=2", "Unknown query parameter"),
                            ("=1", "Unknown query parameter")):
            with self.subTest(qs=qs):
                r = self.req("GET", "/cdr/v1/changes/?" + qs)
                self.assertError(r, 400, message)
        # percent-encoded digits are digits
        self.assertEqual(self.req("GET", "/cdr/v1/changes/?after=%30").json["changes"], before)
        self.assertEqual(self.feed(), before)

    def test_methods_and_paths(self):
        for method in ("POST", "PATCH", "DELETE", "PUT"):
            r = self.req(method, "/cdr/v1/changes/", {} if method != "DELETE" else None)
            self.assertError(r, 405, "Method not allowed")
            self.assertEqual(r.headers.get("allow"), "GET")
        for path in ("/cdr/v1/changes/1", "/cdr/v1/changes/x/", "/cdr/v1/change/", "/cdr/v1/Changes/"):
            self.assertError(self.req("GET", path), 404, "Not found")
        self.assertEqual(self.req("GET", "/cdr/v1/changes/", token=None).status, 401)

    def test_concurrent_writers_never_miss_or_reorder(self):
        """Writers on several connections while a reader follows the feed with after=next_after:
        the reader sees every acknowledged write exactly once, in the order of the final feed,
        whose numbers run 1..N without a gap, and each record's entries in version order."""
        clinics = [self.create("clinic") for _ in range(3)]
        acked = []  # (resource, id, action) of every acknowledged write
        lock = threading.Lock()
        stop = threading.Event()
        errors = []

        def writer(w):
            try:
                mine = []
                for i in range(12):
                    if not mine or i % 3 == 0:
                        r = self.req("POST", "/cdr/v1/doctor/", {"firstname": "W%d" % w, "lastname": "N%d" % i,
                                                                 "gender": "F", "clinic_ids": [clinics[i % 3]]})
                        if r.status != 201:
                            errors.append(r)
                            return
                        mine.append(r.json["ekaid"])
                        with lock:
                            acked.append(("doctor", r.json["ekaid"], "create"))
                            acked.append(("clinic", clinics[i % 3], "update"))
                    else:
                        d = mine[i % len(mine)]
                        r = self.patch("doctor", d, {"about": "w%d i%d" % (w, i)})
                        if r.status != 200:
                            errors.append(r)
                            return
                        with lock:
                            acked.append(("doctor", d, "update"))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        seen = []

        def reader():
            after = 0
            while True:
                last = stop.is_set()
                r = self.req("GET", "/cdr/v1/changes/?after=%d&limit=7" % after)
                if r.status != 200:
                    errors.append(r)
                    return
                seen.extend(r.json["changes"])
                after = r.json["next_after"]
                if last and not r.json["changes"]:
                    return

        base = len(self.feed())
        rt = threading.Thread(target=reader)
        rt.start()
        ws = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
        for t in ws:
            t.start()
        for t in ws:
            t.join(120)
        stop.set()
        rt.join(120)
        self.assertEqual(errors, [])
        final = self.feed()
        self.assertEqual([e["seq"] for e in final], list(range(1, len(final) + 1)))
        self.assertEqual(seen, final)
        new = final[base:]
        self.assertEqual(sorted((e["resource"], e["id"], e["action"]) for e in new), sorted(acked))
        # per record, the feed's order is its history's order
        for e in {(e["resource"], e["id"]) for e in new}:
            mine = [(x["action"], x["at"]) for x in final if (x["resource"], x["id"]) == e]
            self.assertEqual(mine, [(h["action"], h["at"]) for h in self.history(*e)])


class TwoServersTests(unittest.TestCase):
    """Two server processes on one database: the feed still numbers writes in commit order."""

    def setUp(self):
        self.a = Server().start()
        self.addCleanup(self.a.cleanup)
        self.b = Server(data_dir=self.a.data_dir).start()
        self.addCleanup(self.b.stop)
        self.b_id, self.tok = new_tenant()

    def test_feed_across_processes(self):
        acked = []
        lock = threading.Lock()
        errors = []

        def writer(srv, w):
            for i in range(15):
                r = srv.request("POST", "/cdr/v1/clinic/", {"name": "S%d-%d" % (w, i), "address": "x"}, token=self.tok)
                if r.status != 201:
                    errors.append(r)
                    return
                with lock:
                    acked.append(r.json["ekaid"])

        ts = [threading.Thread(target=writer, args=(srv, w)) for w, srv in enumerate([self.a, self.b] * 2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(errors, [])
        for srv in (self.a, self.b):
            r = srv.request("GET", "/cdr/v1/changes/?limit=1000", token=self.tok)
            feed = r.json["changes"]
            self.assertEqual([e["seq"] for e in feed], list(range(1, 61)))
            self.assertEqual(sorted(e["id"] for e in feed), sorted(acked))
            # commit order is creation order: the list shows the clinics in the feed's order
            listed = [c["id"] for c in srv.request("GET", "/cdr/v1/clinic/", token=self.tok).json["clinics"]]
            self.assertEqual([e["id"] for e in feed], listed)


# ---------------------------------------------------------------- part 6: restore

class RestoreTests(Api):

    def test_restore_brings_back_fields_links_and_place(self):
        c1 = self.create("clinic")
        c2 = self.create("clinic")
        d1 = self.create("doctor", clinic_ids=[c1])
        d2 = self.create("doctor", clinic_ids=[c1, c2])
        first = self.create("ekauser")
        u = self.create("ekauser", email="rs@example.com", auth_userid="rs-auth", partner_id="RS",
                        doctor_ids=[d1, d2], clinic_ids=[c2, c1], is_admin=True)
        last = self.create("ekauser")
        before = self.get("ekauser", u).json["user"]
        order = [x["id"] for x in self.req("GET", "/cdr/v1/ekauser/").json["users"]]
        self.assertEqual(order[-3:], [first, u, last])
        self.assertEqual(self.delete("ekauser", u).status, 200)
        # meanwhile a linked doctor is deleted
        self.assertEqual(self.delete("doctor", d1).status, 200)
        r = self.restore("ekauser", u)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "ekaid": u})
        after = self.get("ekauser", u).json["user"]
        # the same record, but the doctor deleted meanwhile stays hidden
        want = dict(before, doctors=[x for x in before["doctors"] if x["id"] != d1],
                    updated_at=after["updated_at"])
        self.assertEqual(after, want)
        self.assertGreater(after["updated_at"], before["updated_at"])
        self.assertEqual([x["id"] for x in self.req("GET", "/cdr/v1/ekauser/").json["users"]], order)
        self.assertEqual(self.get("ekauser", "RS").json["user"]["id"], u)
        # the doctor comes back too, and with it the link
        self.assertEqual(self.restore("doctor", d1).status, 200)
        self.assertEqual(self.get("ekauser", u).json["user"]["doctors"], before["doctors"])
        self.assertEqual([x["id"] for x in self.get("clinic", c1).json["clinic"]["doctors"]], [d1, d2])
        # restored records can be changed and deleted again; the state survives a restart
        self.assertEqual(self.patch("ekauser", u, {"firstname": "Again"}).status, 200)
        self.srv.restart()
        self.assertEqual(self.get("ekauser", u).json["user"]["firstname"], "Again")
        self.assertEqual(self.delete("ekauser", u).status, 200)
        self.assertEqual(self.restore("ekauser", u).status, 200)

    def test_restore_doctor_and_clinic(self):
        c = self.create("clinic", partner_id="RDC-c", pincode="560001")
        d = self.create("doctor", partner_id="RDC-d", clinic_ids=[c], specialisations=["ENT"])
        for kind, ident in (("clinic", c), ("doctor", d)):
            with self.subTest(kind=kind):
                before = self.get(kind, ident).json[KIND[kind]]
                self.assertEqual(self.delete(kind, ident).status, 200)
                other = "doctor" if kind == "clinic" else "clinic"
                oid = d if kind == "clinic" else c
                self.assertEqual(self.get(other, oid).json[KIND[other]][kind + "s"], [])
                r = self.restore(kind, ident)
                self.assertEqual((r.status, r.json), (200, {"status": "success", "ekaid": ident}))
                after = self.get(kind, ident).json[KIND[kind]]
                self.assertEqual(after, dict(before, updated_at=after["updated_at"]))
                self.assertEqual([x["id"] for x in self.get(other, oid).json[KIND[other]][kind + "s"]], [ident])

    def test_a_unique_value_taken_meanwhile_is_a_409_naming_it(self):
        cases = [("ekauser", {"mobile": "9123450001"}, "mobile"),
                 ("ekauser", {"email": "Taken@Example.com"}, "email"),
                 ("ekauser", {"auth_userid": "taken-auth"}, "auth_userid"),
                 ("ekauser", {"partner_id": "taken-user"}, "partner_id"),
                 ("doctor", {"partner_id": "taken-doc"}, "partner_id"),
                 ("clinic", {"partner_id": "taken-clinic"}, "partner_id")]
        for kind, value, field in cases:
            with self.subTest(kind=kind, field=field):
                body = dict(value)
                if kind == "ekauser" and field != "mobile":
                    body["mobile"] = "9%09d" % next(_seq)
                ident = self.create(kind, **body)
                self.assertEqual(self.delete(kind, ident).status, 200)
                taker_body = dict(value)
                if field == "email":
                    taker_body["email"] = "taken@example.COM"  # the same address in another case
                taker = self.create(kind, **taker_body)
                recs = [(kind, ident), (kind, taker)]
                before = self.snapshot(recs)
                r = self.restore(kind, ident)
                self.assertError(r, 409, "%s already in use" % field)
                self.assertEqual(self.snapshot(recs), before)
                # once the value is free again, the restore goes through
                self.assertEqual(self.delete(kind, taker).status, 200)
                self.assertEqual(self.restore(kind, ident).status, 200)
                self.assertEqual(self.get(kind, ident).status, 200)

    def test_404s(self):
        _, other = new_tenant()
        for kind in ("ekauser", "doctor", "clinic"):
            with self.subTest(kind=kind):
                live = self.create(kind, partner_id="R404-%s" % kind)
                gone = self.create(kind, partner_id="R404g-%s" % kind)
                self.assertEqual(self.delete(kind, gone).status, 200)
                mine_in_other = self.create(kind, tok=other)
                self.assertEqual(self.delete(kind, mine_in_other, tok=other).status, 200)
                recs = [(kind, live)]
                before = self.snapshot(recs)
                before_other = self.feed(tok=other)
                never = {"ekauser": "176000000000009", "doctor": "do1760000000009",
                         "clinic": "c-0123456789abcdef01234567"}[kind]
                for ident in (never, live, mine_in_other, "R404g-%s" % kind, "R404-%s" % kind):
                    r = self.restore(kind, ident)
                    self.assertError(r, 404, "%s not found" % LABEL[kind])
                # the other tenant's deleted record, asked from here, and ours from there
                r = self.restore(kind, gone, tok=other)
                self.assertError(r, 404, "%s not found" % LABEL[kind])
                self.assertEqual(self.get(kind, gone).status, 404)
                self.assertEqual(self.snapshot(recs), before)
                self.assertEqual(self.feed(tok=other), before_other)
                # the wrong resource
                self.assertEqual(self.restore("clinic" if kind != "clinic" else "doctor", gone).status, 404)

    def test_methods(self):
        ident = self.create("clinic")
        self.assertEqual(self.delete("clinic", ident).status, 200)
        for method in ("GET", "HEAD", "PATCH", "DELETE", "PUT"):
            r = self.req(method, self.path("clinic", ident, "restore"), {} if method in ("PATCH", "PUT") else None)
            self.assertEqual(r.status, 405, r)
            self.assertEqual(r.headers.get("allow"), "POST")
            if method != "HEAD":
                self.assertError(r, 405, "Method not allowed")
        self.assertEqual(self.get("clinic", ident).status, 404)
        self.assertEqual(self.req("POST", self.path("clinic", ident, "restore"), token=None).status, 401)
        self.assertEqual(self.get("clinic", ident).status, 404)
        # a body, if any, is ignored: restore takes none
        r = self.req("POST", self.path("clinic", ident, "restore"), raw=b"anything", content_type="text/plain")
        self.assertEqual(r.status, 200, r)


class BackfillTests(unittest.TestCase):
    """A database written before the change log (migration 6) gets an entry for every record:
    a create as the record is now, dated created_at, and a delete for deleted ones."""

    def test_records_from_before_the_log(self):
        srv = Server().start()
        self.addCleanup(srv.cleanup)
        b_id, tok = new_tenant()
        rq = lambda *a, **kw: srv.request(*a, token=tok, **kw)  # noqa: E731
        c = rq("POST", "/cdr/v1/clinic/", {"name": "Old", "address": "1 Road", "partner_id": "OLD-c"}).json["ekaid"]
        d = rq("POST", "/cdr/v1/doctor/", {"firstname": "Old", "lastname": "Doc", "gender": "M",
                                          "clinic_ids": [c]}).json["ekaid"]
        u = rq("POST", "/cdr/v1/ekauser/", {"firstname": "Old", "lastname": "User", "gender": "F",
                                           "dob": "1990-01-01", "mobile": "9000000001", "doctor_ids": [d]}).json["ekaid"]
        gone = rq("POST", "/cdr/v1/clinic/", {"name": "Gone", "address": "2 Road"}).json["ekaid"]
        self.assertEqual(rq("DELETE", "/cdr/v1/clinic/%s/" % gone).status, 200)
        views = {k: rq("GET", "/cdr/v1/%s/%s/" % k) for k in (("clinic", c), ("doctor", d), ("ekauser", u))}
        views = {k: (r.json, r.headers["etag"]) for k, r in views.items()}
        srv.stop()
        db = DB(srv)
        # migrations 10 (throttle counters), 9 (tenant keys), 7 (list indexes, idempotency keys), 6 (the log) undone
        db.executescript(
            undo_migration_12() + undo_migration_11() + "DROP TABLE login_throttle;" +
            undo_migration_9() + "DROP TABLE idempotency_key; DROP INDEX ekauser_updated; DROP INDEX doctor_updated;"
            "DROP INDEX clinic_updated; DROP INDEX doctor_mobile; DROP INDEX doctor_email_key;"
            "ALTER TABLE doctor DROP COLUMN email_key;"
            "DROP TABLE change_log; DROP TABLE change_seq; PRAGMA user_version=5;")
        db.close()
        srv.start()
        feed = rq("GET", "/cdr/v1/changes/").json["changes"]
        # in time order (records made in the same millisecond in any order)
        self.assertEqual([e["seq"] for e in feed], [1, 2, 3, 4, 5])
        self.assertEqual([e["at"] for e in feed], sorted(e["at"] for e in feed))
        self.assertEqual(sorted((e["resource"], e["id"], e["action"]) for e in feed), sorted([
            ("clinic", c, "create"), ("doctor", d, "create"), ("ekauser", u, "create"),
            ("clinic", gone, "create"), ("clinic", gone, "delete")]))
        self.assertEqual([e["action"] for e in feed if e["id"] == gone], ["create", "delete"])
        h = rq("GET", "/cdr/v1/doctor/%s/history" % d).json["history"]
        self.assertEqual(h, [{"version": 1, "action": "create", "at": views[("doctor", d)][0]["doctor"]["created_at"],
                              "actor": {"client_id": None, "b_id": b_id}, "request_id": None,
                              "changes": {"firstname": {"from": None, "to": "Old"},
                                          "lastname": {"from": None, "to": "Doc"},
                                          "gender": {"from": None, "to": "M"},
                                          "dob": {"from": None, "to": "1990-01-01"},
                                          "clinic_ids": {"from": None, "to": [c]}}}])
        self.assertEqual(rq("GET", "/cdr/v1/ekauser/%s/history" % u).json["history"][0]["changes"]["doctor_ids"],
                         {"from": None, "to": [d]})
        # the records read as before, with the same tags; new writes follow on
        for k, view in views.items():
            r = rq("GET", "/cdr/v1/%s/%s/" % k)
            self.assertEqual((r.json, r.headers["etag"]), view)
        self.assertEqual(rq("PATCH", "/cdr/v1/clinic/%s/" % c, {"city": "Pune"}).status, 200)
        h = rq("GET", "/cdr/v1/clinic/%s/history" % c).json["history"]
        self.assertEqual([e["version"] for e in h], [1, 2])
        self.assertEqual(rq("GET", "/cdr/v1/changes/?after=5").json["changes"][0]["seq"], 6)
        self.assertEqual(rq("POST", "/cdr/v1/clinic/%s/restore" % gone).status, 200)
        # a second start does not fill it again
        srv.restart()
        self.assertEqual(len(rq("GET", "/cdr/v1/changes/").json["changes"]), 7)


class ChainMigrationTests(unittest.TestCase):
    """Migrations 11 and 12 keep each record's history as a chain from its row: a database written
    before them answers the same histories, feed and tags after, and new writes follow on."""

    def test_histories_written_before_the_chain(self):
        """Schema 10 (versions only in the change log's key) migrated to the latest."""
        self.histories_across_migration(undo_migration_12() + undo_migration_11(), 10)

    def test_versions_kept_before_the_record_held_them(self):
        """Schema 11 (the chain, the last version only in the change log) migrated to 12."""
        self.histories_across_migration(undo_migration_12(), 11)

    def histories_across_migration(self, undo, version):
        srv = Server().start()
        self.addCleanup(srv.cleanup)
        b_id, tok = new_tenant()
        rq = lambda *a, **kw: srv.request(*a, token=tok, **kw)  # noqa: E731
        c = rq("POST", "/cdr/v1/clinic/", {"name": "Chain", "address": "1 Road"}).json["ekaid"]
        u = rq("POST", "/cdr/v1/ekauser/", {"firstname": "Chain", "lastname": "User", "gender": "F",
                                           "dob": "1990-01-01", "mobile": "9000000002"}).json["ekaid"]
        other = rq("POST", "/cdr/v1/ekauser/", {"firstname": "Other", "lastname": "User", "gender": "M",
                                               "dob": "1990-01-01", "mobile": "9000000003"}).json["ekaid"]
        for i, name in enumerate(("Two", "Three")):
            self.assertEqual(rq("PATCH", "/cdr/v1/ekauser/%s/" % u, {"firstname": name}).status, 200)
            self.assertEqual(rq("PATCH", "/cdr/v1/clinic/%s/" % c, {"city": "City%d" % i}).status, 200)
        self.assertEqual(rq("DELETE", "/cdr/v1/ekauser/%s/" % other).status, 200)
        paths = ["/cdr/v1/ekauser/%s/history" % u, "/cdr/v1/clinic/%s/history" % c,
                 "/cdr/v1/ekauser/%s/history" % other, "/cdr/v1/changes/"]
        before = [rq("GET", p).json for p in paths]
        tag = rq("GET", "/cdr/v1/ekauser/%s/" % u).headers["etag"]
        self.assertEqual([e["version"] for e in before[0]["history"]], [1, 2, 3])
        srv.stop()
        db = DB(srv)
        db.executescript(undo + "PRAGMA user_version=%d;" % version)
        db.close()
        srv.start()
        self.assertEqual([rq("GET", p).json for p in paths], before)
        self.assertEqual(rq("GET", "/cdr/v1/ekauser/%s/" % u).headers["etag"], tag)
        # new writes follow on from the migrated chain: versions 4 and 5, the feed numbers on
        r = rq("PATCH", "/cdr/v1/ekauser/%s/" % u, {"lastname": "Four"})
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(r.headers["etag"], tag)
        self.assertEqual(rq("POST", "/cdr/v1/ekauser/%s/restore" % other).status, 200)
        h = rq("GET", paths[0]).json["history"]
        self.assertEqual([e["version"] for e in h], [1, 2, 3, 4])
        self.assertEqual(h[:3], before[0]["history"])
        self.assertEqual(h[3]["changes"], {"lastname": {"from": "User", "to": "Four"}})
        h = rq("GET", paths[2]).json["history"]
        self.assertEqual([e["action"] for e in h], ["create", "delete", "restore"])
        seqs = [e["seq"] for e in rq("GET", "/cdr/v1/changes/").json["changes"]]
        self.assertEqual(seqs, list(range(1, len(before[3]["changes"]) + 3)))
        srv.restart()  # and it stays so
        self.assertEqual([e["version"] for e in rq("GET", paths[0]).json["history"]], [1, 2, 3, 4])


if __name__ == "__main__":
    unittest.main()
