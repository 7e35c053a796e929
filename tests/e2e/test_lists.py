#!/usr/bin/env python3
"""List paging and filters (issue 10, part 3), end to end against the real binary.

Opt-in: without parameters a list answers as before (every record, no next_cursor). `limit`
pages in creation order with an opaque `next_cursor` (absent on the last page); `cursor`
continues after the last record returned, keyset (records created or deleted meanwhile never
make a page skip or repeat one), and is bound to its tenant, list and filters. Filters
(partner_id, mobile, email, auth_userid, clinic_id, doctor_id, updated_since) combine with each
other and with paging; whatever does not apply, is unknown, repeated or malformed is a 400 naming
the parameter.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_lists.py
"""
import itertools
import os
import sys
import unittest
import urllib.parse
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DB, ServerTestCase, make_token, undo_migration_11, undo_migration_12, undo_migration_9  # noqa: E402

PATHS = {"clinic": "/cdr/v1/clinic/", "doctor": "/cdr/v1/doctor/", "ekauser": "/cdr/v1/ekauser/",
         "hipusers": "/cdr/v1/hipusers/"}
MANY = {"clinic": "clinics", "doctor": "doctors", "ekauser": "users", "hipusers": "users"}
NOT_A_CURSOR = "Not a cursor of this list"

_tenants = itertools.count(1)
_n = itertools.count(1)


def qs(**params):
    return "?" + urllib.parse.urlencode(params) if params else ""


def iso(ms_text, delta_ms=0):
    t = datetime.strptime(ms_text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    t += timedelta(milliseconds=delta_ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


class Lists(ServerTestCase):

    def tenant(self):
        return make_token("61%014d" % next(_tenants))

    def create(self, kind, tok, **kw):
        n = next(_n)
        body = {"clinic": {"name": "Clinic %d" % n, "address": "%d Main Street" % n},
                "doctor": {"firstname": "Doc%d" % n, "lastname": "Rao", "gender": "F"},
                "ekauser": {"firstname": "User%d" % n, "lastname": "Kumar", "gender": "M", "dob": "1990-05-15",
                            "auth_userid": "sso-%d" % n}}[kind]
        body.update(kw)
        r = self.req("POST", PATHS[kind], body, token=tok)
        self.assertEqual(r.status, 201, r)
        return r.json["ekaid"]

    def get(self, kind, tok, query=""):
        r = self.req("GET", PATHS[kind] + query, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "success", r)
        self.assertEqual(set(r.json) - {"status", MANY[kind], "next_cursor"}, set(), r)
        return r.json

    def ids(self, kind, tok, query=""):
        return [x["id"] for x in self.get(kind, tok, query)[MANY[kind]]]

    def pages(self, kind, tok, limit, **filters):
        """Every page of `limit` with the filters: the ids, page by page."""
        out, cursor = [], None
        for _ in range(1000):
            params = dict(filters, limit=limit)
            if cursor:
                params["cursor"] = cursor
            js = self.get(kind, tok, qs(**params))
            page = [x["id"] for x in js[MANY[kind]]]
            self.assertLessEqual(len(page), limit)
            out.append(page)
            cursor = js.get("next_cursor")
            if cursor is None:
                return out
            self.assertEqual(len(page), limit, js)  # only a full page can have a next one
            self.assertIsInstance(cursor, str)
        self.fail("no last page")

    def check(self, kind, query, want, tok=None):
        tok = tok or self.tok
        self.assertEqual(self.ids(kind, tok, query), want, query)
        # and page by page, one record at a time, the same
        params = dict(urllib.parse.parse_qsl(query.lstrip("?"), keep_blank_values=True))
        self.assertEqual(sum(self.pages(kind, tok, 1, **params), []), want, query)

    def assert400(self, kind, tok, query, param, why=None):
        before = self.ids(kind, tok)
        r = self.req("GET", PATHS[kind] + query, token=tok)
        self.assertEqual(r.status, 400, (query, r))
        self.assertEqual(r.json["status"], "error", r)
        self.assertIsInstance(r.json["message"], str, r)
        self.assertIn(param, r.json.get("errors", {}), (query, r))
        self.assertTrue(r.json["message"].startswith(param + ": ") or len(r.json["errors"]) > 1, r)
        if why:
            self.assertIn(why, r.json["errors"][param][0], r)
        self.assertEqual(r.headers.get("content-type"), "application/json; charset=utf-8")
        self.assertEqual(self.ids(kind, tok), before)
        return r


class PagingTests(Lists):

    def test_without_parameters_lists_answer_as_today(self):
        tok = self.tenant()
        made = [self.create("clinic", tok) for _ in range(70)]  # more than one internal batch
        js = self.get("clinic", tok)
        self.assertEqual([c["id"] for c in js["clinics"]], made)
        self.assertNotIn("next_cursor", js)
        self.assertEqual(self.get("clinic", self.tenant()), {"status": "success", "clinics": []})

    def test_pages_in_creation_order_with_a_cursor_until_the_last(self):
        for kind in ("clinic", "doctor", "ekauser", "hipusers"):
            with self.subTest(kind=kind):
                tok = self.tenant()
                made = [self.create("ekauser" if kind == "hipusers" else kind, tok) for _ in range(7)]
                self.assertEqual(self.pages(kind, tok, 3), [made[0:3], made[3:6], made[6:7]])
                self.assertEqual(self.pages(kind, tok, 7), [made])       # exact: no cursor on the last page
                self.assertEqual(self.pages(kind, tok, 1), [[m] for m in made])
                self.assertEqual(self.pages(kind, tok, 1000), [made])
                # the page's records are the full ones, as the list shows them
                full = self.get(kind, tok)[MANY[kind]]
                self.assertEqual(self.get(kind, tok, qs(limit=2))[MANY[kind]], full[:2])
        self.assertEqual(self.pages("clinic", self.tenant(), 5), [[]])

    def test_cursor_continues_without_limit(self):
        tok = self.tenant()
        made = [self.create("doctor", tok) for _ in range(5)]
        cur = self.get("doctor", tok, qs(limit=2))["next_cursor"]
        self.assertEqual(self.ids("doctor", tok, qs(cursor=cur)), made[2:])

    def test_records_created_or_deleted_meanwhile_never_skip_or_repeat(self):
        tok = self.tenant()
        made = [self.create("clinic", tok) for _ in range(9)]
        js = self.get("clinic", tok, qs(limit=3))
        seen = [c["id"] for c in js["clinics"]]
        # meanwhile: a record of the first page and one of the next are deleted, new ones come
        for gone in (made[1], made[4]):
            self.assertEqual(self.req("DELETE", PATHS["clinic"] + gone + "/", token=tok).status, 200)
        late = [self.create("clinic", tok) for _ in range(2)]
        cursor = js["next_cursor"]
        while cursor:
            js = self.get("clinic", tok, qs(limit=3, cursor=cursor))
            seen += [c["id"] for c in js["clinics"]]
            cursor = js.get("next_cursor")
        want = made[:3] + [m for m in made[3:] if m != made[4]] + late
        self.assertEqual(seen, want)
        self.assertEqual(len(seen), len(set(seen)))

    def test_cursor_is_bound_to_tenant_list_and_filters(self):
        a, b = self.tenant(), self.tenant()
        for tok in (a, b):
            for _ in range(3):
                self.create("ekauser", tok)
                self.create("clinic", tok)
        cur = self.get("ekauser", a, qs(limit=1))["next_cursor"]
        self.assertEqual(len(self.ids("ekauser", a, qs(limit=1, cursor=cur))), 1)
        self.assert400("ekauser", b, qs(limit=1, cursor=cur), "cursor", NOT_A_CURSOR)     # another tenant
        self.assert400("clinic", a, qs(limit=1, cursor=cur), "cursor", NOT_A_CURSOR)      # another list
        self.assert400("hipusers", a, qs(limit=1, cursor=cur), "cursor", NOT_A_CURSOR)    # the other view
        self.assert400("ekauser", a, qs(limit=1, cursor=cur, updated_since="2020-01-01T00:00:00Z"), "cursor",
                       NOT_A_CURSOR)                                                      # other filters
        forged = cur[:10] + ("A" if cur[10] != "A" else "B") + cur[11:]
        self.assert400("ekauser", a, qs(limit=1, cursor=forged), "cursor", NOT_A_CURSOR)
        self.assert400("ekauser", a, qs(limit=1, cursor="eyJyaWQiOjF9"), "cursor", NOT_A_CURSOR)
        self.assert400("ekauser", a, "?limit=1&cursor=", "cursor", NOT_A_CURSOR)
        # a cursor survives a restart (its key derives from the signing secret)
        self.srv.restart()
        self.assertEqual(len(self.ids("ekauser", a, qs(limit=1, cursor=cur))), 1)

    def test_limit_out_of_range_and_bad_parameters(self):
        tok = self.tenant()
        self.create("clinic", tok)
        for q in ("?limit=0", "?limit=1001", "?limit=-1", "?limit=", "?limit", "?limit=abc", "?limit=1.5",
                  "?limit=%201"):
            self.assert400("clinic", tok, q, "limit", "from 1 to 1000")
        self.assert400("clinic", tok, "?page=2", "page", "Unknown query parameter")
        self.assert400("clinic", tok, "?limit=2&limit=3", "limit", "more than once")
        self.assert400("clinic", tok, "?partner_id=a&partner_id=a", "partner_id", "more than once")
        self.assert400("clinic", tok, "?partner_id=%zz", "partner_id", "percent-encoding")
        self.assert400("clinic", tok, "?partner_id=%00", "partner_id", "percent-encoding")
        self.assert400("hipusers", tok, "?foo=1", "foo", "Unknown query parameter")
        # several at fault: all named
        r = self.assert400("clinic", tok, "?foo=1&limit=0", "foo")
        self.assertIn("limit", r.json["errors"])

    def test_head_of_a_page(self):
        tok = self.tenant()
        for _ in range(3):
            self.create("clinic", tok)
        get = self.req("GET", PATHS["clinic"] + "?limit=2", token=tok)
        head = self.req("HEAD", PATHS["clinic"] + "?limit=2", token=tok)
        self.assertEqual(head.status, 200)
        self.assertEqual(head.raw, b"")
        self.assertEqual(int(head.headers["content-length"]), len(get.raw))
        self.assertEqual(self.req("HEAD", PATHS["clinic"] + "?limit=0", token=tok).status, 400)


class FilterTests(Lists):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        t = cls.tok = make_token("6200000000000001")
        cls.other = make_token("6200000000000002")
        mk = cls.make
        cls.c1 = mk("clinic", t, name="North", address="1 A St", partner_id="clinic-north")
        cls.c2 = mk("clinic", t, name="South", address="2 B St")
        cls.d1 = mk("doctor", t, firstname="Asha", lastname="Rao", gender="F", mobile="9000000001",
                    email="Asha.Rao@Clinic.in", clinic_ids=[cls.c1, cls.c2], partner_id="doc-1")
        cls.d2 = mk("doctor", t, firstname="Ravi", lastname="Iyer", gender="M", mobile="+919000000001",
                    clinic_ids=[cls.c2])
        cls.d3 = mk("doctor", t, firstname="Meera", lastname="Nair", gender="F", email="asha.rao@clinic.IN")
        cls.u1 = mk("ekauser", t, firstname="Amit", lastname="K", gender="M", dob="1990-05-15",
                    mobile="9876543210", email="\u00c4rzte@Klinik.in", auth_userid="sso-amit",
                    partner_id="user-1", doctor_ids=[cls.d1], clinic_ids=[cls.c1])
        cls.u2 = mk("ekauser", t, firstname="Bina", lastname="K", gender="F", dob="1991-05-15",
                    mobile="9876543211", doctor_ids=[cls.d1, cls.d2], clinic_ids=[cls.c2])
        cls.u3 = mk("ekauser", t, firstname="Chetan", lastname="K", gender="M", dob="1992-05-15",
                    auth_userid="sso chetan", clinic_ids=[cls.c1, cls.c2])
        # the same values in another tenant never match
        cls.ou = mk("ekauser", cls.other, firstname="O", lastname="T", gender="M", dob="1990-05-15",
                    mobile="9876543210", auth_userid="sso-amit", partner_id="user-1")
        cls.od = mk("doctor", cls.other, firstname="O", lastname="T", gender="M", mobile="9000000001")

    @classmethod
    def make(cls, kind, tok, **body):
        r = cls.srv.request("POST", PATHS[kind], body=body, token=tok)
        assert r.status == 201, r
        return r.json["ekaid"]

    def test_partner_id(self):
        self.check("ekauser", qs(partner_id="user-1"), [self.u1])
        self.check("hipusers", qs(partner_id="user-1"), [self.u1])
        self.check("doctor", qs(partner_id="doc-1"), [self.d1])
        self.check("clinic", qs(partner_id="clinic-north"), [self.c1])
        self.check("clinic", qs(partner_id="nobody"), [])
        self.check("ekauser", qs(partner_id="user-1"), [self.ou], tok=self.other)

    def test_mobile_in_any_accepted_form(self):
        for form in ("9876543210", "+919876543210", "919876543210"):
            self.check("ekauser", qs(mobile=form), [self.u1])
            self.check("hipusers", qs(mobile=form), [self.u1])
        for form in ("9000000001", "+919000000001", "919000000001"):
            self.check("doctor", qs(mobile=form), [self.d1, self.d2])
        self.check("ekauser", qs(mobile="9999999999"), [])
        # a '+' sent as is reads as a space (form encoding): a clear 400
        self.assert400("ekauser", self.tok, "?mobile=+919876543210", "mobile", "%2B")
        self.assert400("ekauser", self.tok, qs(mobile="98765"), "mobile", "10-digit")

    def test_email_normalised(self):
        for form in ("\u00c4rzte@Klinik.in", "\u00e4rzte@klinik.in", "A\u0308RZTE@KLINIK.IN"):
            self.check("ekauser", qs(email=form), [self.u1])
        for form in ("asha.rao@clinic.in", "ASHA.RAO@CLINIC.IN"):
            self.check("doctor", qs(email=form), [self.d1, self.d3])
        self.assert400("ekauser", self.tok, qs(email="not an email"), "email", "valid email")
        self.assert400("ekauser", self.tok, qs(email="a\u200b@x.in"), "email", "valid email")

    def test_auth_userid(self):
        self.check("ekauser", qs(auth_userid="sso-amit"), [self.u1])
        self.check("ekauser", qs(auth_userid="sso chetan"), [self.u3])  # %20 or '+' for the space
        self.check("ekauser", "?auth_userid=sso%20chetan", [self.u3])
        self.check("ekauser", qs(auth_userid="SSO-AMIT"), [])  # exact, as stored

    def test_links(self):
        self.check("ekauser", qs(clinic_id=self.c1), [self.u1, self.u3])
        self.check("ekauser", qs(clinic_id=self.c2), [self.u2, self.u3])
        self.check("ekauser", qs(doctor_id=self.d1), [self.u1, self.u2])
        self.check("ekauser", qs(doctor_id=self.d1, clinic_id=self.c2), [self.u2])
        self.check("doctor", qs(clinic_id=self.c2), [self.d1, self.d2])
        self.check("clinic", qs(doctor_id=self.d1), [self.c1, self.c2])
        self.check("clinic", qs(doctor_id=self.d3), [])
        # an id of another tenant, or one that does not exist, links nothing
        self.check("doctor", qs(clinic_id=self.c1), [], tok=self.other)
        self.check("doctor", qs(clinic_id="c-0123456789abcdef01234567"), [])
        self.assert400("doctor", self.tok, qs(clinic_id="clinic-north"), "clinic_id", "Eka id of a clinic")
        self.assert400("clinic", self.tok, qs(doctor_id="doc-1"), "doctor_id", "Eka id of a doctor")

    def test_combined_filters_and_paging(self):
        self.check("doctor", qs(mobile="9000000001", clinic_id=self.c1), [self.d1])
        self.check("doctor", qs(email="asha.rao@clinic.in", mobile="9000000001"), [self.d1])
        self.check("ekauser", qs(clinic_id=self.c1, auth_userid="sso chetan"), [self.u3])
        self.check("ekauser", qs(clinic_id=self.c2, updated_since="2000-01-01T00:00:00Z"), [self.u2, self.u3])
        js = self.get("ekauser", self.tok, qs(clinic_id=self.c2, limit=1))
        self.assertEqual([u["id"] for u in js["users"]], [self.u2])
        js = self.get("ekauser", self.tok, qs(clinic_id=self.c2, limit=1, cursor=js["next_cursor"]))
        self.assertEqual([u["id"] for u in js["users"]], [self.u3])
        self.assertNotIn("next_cursor", js)

    def test_filters_that_do_not_apply_are_400(self):
        for kind, param, value in (("clinic", "mobile", "9876543210"), ("clinic", "email", "a@x.in"),
                                   ("clinic", "auth_userid", "x"), ("doctor", "auth_userid", "x"),
                                   ("clinic", "clinic_id", "c-0123456789abcdef01234567"),
                                   ("doctor", "doctor_id", "do1234567890123")):
            self.assert400(kind, self.tok, qs(**{param: value}), param, "Not a filter of this list")

    def test_updated_since_inclusive(self):
        tok = self.tenant()
        a = self.create("clinic", tok)
        b = self.create("clinic", tok)
        ra = self.get("clinic", tok)["clinics"]
        t_a, t_b = ra[0]["updated_at"], ra[1]["updated_at"]
        self.check("clinic", qs(updated_since=t_a), [a, b], tok=tok)
        self.check("clinic", qs(updated_since=t_b), [b] if t_b > t_a else [a, b], tok=tok)
        self.check("clinic", qs(updated_since=iso(t_b, 1)), [], tok=tok)
        # instants past the last millisecond of 9999 (a fraction rounded up, an offset west of
        # UTC) are after every record, not before them
        for late in ("9999-12-31T23:59:59.9999Z", "9999-12-31T20:00:00-05:00"):
            self.check("clinic", qs(updated_since=late), [], tok=tok)
        # the same instant with an offset (the '+' encoded)
        ist = datetime.strptime(t_a, "%Y-%m-%dT%H:%M:%S.%fZ") + timedelta(hours=5, minutes=30)
        self.check("clinic", qs(updated_since=ist.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+05:30"), [a, b], tok=tok)
        # a change brings a record back
        self.assertEqual(self.req("PATCH", PATHS["clinic"] + a + "/", {"city": "Pune"}, token=tok).status, 200)
        t_patch = self.req("GET", PATHS["clinic"] + a + "/", token=tok).json["clinic"]["updated_at"]
        self.check("clinic", qs(updated_since=t_patch), [a], tok=tok)
        for bad in ("yesterday", "2024-05-01", "2024-05-01T10:00:00", "2024-02-30T00:00:00Z", ""):
            self.assert400("clinic", tok, qs(updated_since=bad), "updated_since", "RFC 3339")
        self.assert400("clinic", tok, "?updated_since=2024-05-01T10:00:00+05:30", "updated_since", "%2B")

    def test_deleted_records_and_links_leave_the_filters(self):
        tok = self.tenant()
        c = self.create("clinic", tok)
        d = self.create("doctor", tok, clinic_ids=[c], mobile="9111111111")
        u = self.create("ekauser", tok, clinic_ids=[c], mobile="9111111111")
        self.check("doctor", qs(mobile="9111111111"), [d], tok=tok)
        self.check("ekauser", qs(clinic_id=c), [u], tok=tok)
        self.assertEqual(self.req("DELETE", PATHS["clinic"] + c + "/", token=tok).status, 200)
        self.check("ekauser", qs(clinic_id=c), [], tok=tok)
        self.check("doctor", qs(clinic_id=c), [], tok=tok)
        self.assertEqual(self.req("DELETE", PATHS["doctor"] + d + "/", token=tok).status, 200)
        self.check("doctor", qs(mobile="9111111111"), [], tok=tok)


class MigrationTests(Lists):
    """A version-5 database: doctors' emails get their keys, so the email filter finds them."""

    def test_doctor_emails_of_an_old_database_are_found(self):
        tok = make_token("6300000000000001")
        self.srv.stop()
        db = DB(self.srv)
        db.executescript(
            undo_migration_12() + undo_migration_11() + "DROP TABLE login_throttle;" +  # migration 10 (the login throttle's counters), then 9, 8, 7
            undo_migration_9() + "DROP TABLE idempotency_key; DROP INDEX ekauser_updated; DROP INDEX doctor_updated;"
            "DROP INDEX clinic_updated; DROP INDEX doctor_mobile; DROP INDEX doctor_email_key;"
            "ALTER TABLE doctor DROP COLUMN email_key; PRAGMA user_version=6;")
        db.execute("INSERT INTO doctor (id, b_id, firstname, lastname, gender, dob, email, created_at, updated_at)"
                   " VALUES ('do1760000000001', '6300000000000001', 'Old', 'Doc', 'F', '1990-01-01',"
                   " 'Dr.\u00c4rzte@X.in', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z')")
        db.commit()
        db.close()
        self.srv.start()
        self.check("doctor", qs(email="dr.\u00e4rzte@x.in"), ["do1760000000001"], tok=tok)
        self.check("doctor", qs(updated_since="2024-01-01T00:00:00Z"), ["do1760000000001"], tok=tok)
        self.check("doctor", qs(updated_since="2024-01-01T00:00:00.001Z"), [], tok=tok)


if __name__ == "__main__":
    unittest.main()
