#!/usr/bin/env python3
"""End-to-end tests of the Eka User resource (/cdr/v1/ekauser/): create, read, list,
the seed's PATCH and every patchable field, validation, soft delete, uniqueness,
persistence across a restart and concurrent creates.

Run alone: HIPUSERS_BIN=build/hipusers python3 tests/e2e/test_ekauser.py
"""
import datetime
import http.client
import itertools
import json
import os
import signal
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, make_token  # noqa: E402

BASE = "/cdr/v1/ekauser/"
USER_FIELDS = {"id", "firstname", "lastname", "mobile", "email", "is_admin", "seat_type",
               "persona", "gender", "dob", "auth_userid", "partner_id", "doctors", "clinics",
               "created_at", "updated_at"}
# Shown on every user; the other fields are omitted (never null) when the user has no value.
USER_ALWAYS = {"id", "firstname", "lastname", "gender", "dob", "is_admin", "seat_type", "persona",
               "doctors", "clinics", "created_at", "updated_at"}

_seq = itertools.count(1)
_tenant_seq = itertools.count(1)


def uniq():
    """A number unique within this test process (mixed with the pid so reruns differ too)."""
    return next(_seq)


def fresh_tenant_token():
    return make_token("3%03d%011d" % (os.getpid() % 1000, next(_tenant_seq)))


def user_body(**over):
    """A valid create body with mobile, email and auth_userid unique in this run."""
    n = uniq()
    body = {
        "firstname": "Amit",
        "lastname": "Kumar",
        "mobile": "9%09d" % n,
        "email": "user%d@example.com" % n,
        "auth_userid": "auth_%d" % n,
        "gender": "M",
        "dob": "1990-05-15",
    }
    for k, v in over.items():
        if v is _DROP:
            body.pop(k, None)
        else:
            body[k] = v
    return body


_DROP = object()


def companion(field):
    """A valid change to send next to a bad value of field, to show nothing is applied."""
    return {"lastname": "Changed"} if field != "lastname" else {"firstname": "Changed"}


def user_path(uid):
    return BASE + urllib.parse.quote(uid, safe="") + "/"


class EkaUserCase(ServerTestCase):
    """Helpers shared by the Eka User tests."""

    def create(self, body=None, token="default", **over):
        if body is None:
            body = user_body(**over)
        r = self.req("POST", BASE, body, token=token)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(set(r.json), {"status", "ekaid"}, r)
        self.assertEqual(r.json["status"], "success", r)
        self.assertRegex(r.json["ekaid"], r"^\d{15}$", r)
        return r.json["ekaid"]

    def get(self, uid, token="default"):
        r = self.req("GET", user_path(uid), token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json.get("status"), "success", r)
        user = r.json["user"]
        self.assertTrue(USER_ALWAYS <= set(user), "missing fields: %s" % (USER_ALWAYS - set(user)))
        self.assertTrue(set(user) <= USER_FIELDS, "unexpected fields: %s" % (set(user) - USER_FIELDS))
        self.assertNotIn(None, user.values(), user)
        return user

    def list_users(self, token="default"):
        r = self.req("GET", BASE, token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json.get("status"), "success", r)
        self.assertIsInstance(r.json.get("users"), list, r)
        return r.json["users"]

    def patch(self, uid, body, token="default"):
        return self.req("PATCH", user_path(uid), body, token=token)

    def patch_ok(self, uid, body, expect_id=None, token="default"):
        r = self.patch(uid, body, token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "ekaid": expect_id or uid}, r)
        return self.get(expect_id or uid, token=token)

    def create_clinic(self, name=None, token="default", **extra):
        body = {"name": name or "Clinic %d" % uniq(), "address": "1 MG Road, Bengaluru"}
        body.update(extra)
        r = self.req("POST", "/cdr/v1/clinic/", body, token=token)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json.get("status"), "success", r)
        self.assertRegex(r.json["ekaid"], r"^c-[0-9a-f]{24}$", r)
        return r.json["ekaid"], body["name"]

    def create_doctor(self, token="default", **extra):
        body = {"firstname": "Rajesh", "lastname": "Sharma %d" % uniq(), "gender": "M"}
        body.update(extra)
        r = self.req("POST", "/cdr/v1/doctor/", body, token=token)
        self.assertEqual(r.status, 201, r)
        self.assertRegex(r.json["ekaid"], r"^do\d{13}$", r)
        return r.json["ekaid"], body

    def assertFieldError(self, r, field, status=400):
        """The error body names the field, in the message and as a key of errors."""
        self.assertError(r, status, field=field)
        self.assertIn(field, self.msg(r), r)
        msgs = r.json["errors"][field]
        self.assertIsInstance(msgs, list, r)
        self.assertTrue(msgs and all(isinstance(m, str) and m for m in msgs), r)

    def assertUnchanged(self, uid, before, token="default"):
        self.assertEqual(self.get(uid, token=token), before)

    def assertNotFound(self, r):
        self.assertError(r, 404)
        self.assertEqual(self.msg(r), "EkaUser not found", r)


# ---------------------------------------------------------------------------------------
class CreateTests(EkaUserCase):

    def test_create_full_spec_example_without_links(self):
        tok = fresh_tenant_token()  # the spec's literal values; own tenant so they never clash
        body = {"firstname": "Amit", "lastname": "Kumar", "mobile": "9876543210",
                "email": "amit.kumar@example.com", "auth_userid": "Prateek_@_123", "gender": "M",
                "dob": "1990-05-15", "is_admin": False, "seat_type": "b", "persona": "D"}
        r = self.req("POST", BASE, body, token=tok)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(set(r.json), {"status", "ekaid"}, r)
        self.assertEqual(r.json["status"], "success")
        uid = r.json["ekaid"]
        self.assertRegex(uid, r"^\d{15}$")
        self.assertTrue(r.headers.get("content-type", "").lower().startswith("application/json"), r.headers)
        u = self.get(uid, token=tok)
        expect = {"id": uid, "firstname": "Amit", "lastname": "Kumar", "mobile": "+919876543210",
                  "email": "amit.kumar@example.com", "is_admin": False, "seat_type": "b",
                  "persona": "D", "gender": "M", "dob": "1990-05-15",
                  "auth_userid": "Prateek_@_123", "doctors": [], "clinics": []}
        for k, v in expect.items():
            self.assertEqual(u[k], v, k)
        self.assertNotIn("partner_id", u)  # never set: omitted
        self.assertIsInstance(u["created_at"], str)
        self.assertIsInstance(u["updated_at"], str)

    def test_defaults(self):
        uid = self.create()
        u = self.get(uid)
        self.assertIs(u["is_admin"], False)
        self.assertEqual(u["seat_type"], "b")
        self.assertEqual(u["persona"], "D")
        self.assertNotIn("partner_id", u)
        self.assertEqual(u["doctors"], [])
        self.assertEqual(u["clinics"], [])

    def test_non_default_values_stored(self):
        uid = self.create(is_admin=True, seat_type="p", persona="S", gender="O", dob="2000-02-29")
        u = self.get(uid)
        self.assertIs(u["is_admin"], True)
        self.assertEqual((u["seat_type"], u["persona"], u["gender"], u["dob"]), ("p", "S", "O", "2000-02-29"))

    def test_ids_are_unique_15_digits(self):
        ids = {self.create() for _ in range(5)}
        self.assertEqual(len(ids), 5)

    def test_one_of_mobile_email_auth_userid_is_enough(self):
        b = user_body()
        for keep in ("mobile", "email", "auth_userid"):
            body = {k: v for k, v in b.items() if k not in {"mobile", "email", "auth_userid"} - {keep}}
            uid = self.create(body)
            u = self.get(uid)
            for other in {"mobile", "email", "auth_userid"} - {keep}:
                self.assertNotIn(other, u, (keep, other, u))
            self.assertIn(keep, u)

    def test_none_of_mobile_email_auth_userid(self):
        before = self.list_users()
        for body in (user_body(mobile=_DROP, email=_DROP, auth_userid=_DROP),
                     user_body(mobile=None, email=None, auth_userid=None)):
            r = self.req("POST", BASE, body)
            self.assertError(r, 400)
            text = self.msg(r) + " " + " ".join(r.json.get("errors", {}))
            self.assertTrue(any(f in text for f in ("mobile", "email", "auth_userid")), r)
        self.assertEqual(self.list_users(), before)

    def test_missing_required_fields(self):
        before = self.list_users()
        for field in ("firstname", "lastname", "gender", "dob"):
            with self.subTest(field=field):
                self.assertFieldError(self.req("POST", BASE, user_body(**{field: _DROP})), field)
                self.assertFieldError(self.req("POST", BASE, user_body(**{field: None})), field)
        self.assertEqual(self.list_users(), before)

    def test_partner_id_accepted_on_create(self):
        pid = "Part_user_%d" % uniq()
        uid = self.create(partner_id=pid)
        self.assertEqual(self.get(uid)["partner_id"], pid)
        self.assertEqual(self.get(pid)["id"], uid)

    def test_names_trimmed(self):
        uid = self.create(firstname="  Amit ", lastname="   Kumar  ")
        u = self.get(uid)
        self.assertEqual((u["firstname"], u["lastname"]), ("Amit", "Kumar"))

    def test_name_lengths_in_characters(self):
        u = self.get(self.create(firstname="a" * 100, lastname="é" * 100))
        self.assertEqual(u["firstname"], "a" * 100)
        self.assertEqual(u["lastname"], "é" * 100)
        u = self.get(self.create(firstname="अमित", lastname="कुमार"))
        self.assertEqual((u["firstname"], u["lastname"]), ("अमित", "कुमार"))

    def test_mobile_forms_stored_as_10_digits(self):
        for given, shown in (("9876500001", "+919876500001"), ("+919876500002", "+919876500002"),
                             ("919876500003", "+919876500003"), ("9123456789", "+919123456789"),
                             ("0000011111", "+910000011111")):
            with self.subTest(given=given):
                uid = self.create(mobile=given)
                self.assertEqual(self.get(uid)["mobile"], shown)

    def test_links_on_create(self):
        cid, cname = self.create_clinic()
        did, dbody = self.create_doctor()
        uid = self.create(clinic_ids=[cid, cid], doctor_ids=[did])  # duplicates collapse
        u = self.get(uid)
        self.assertEqual(u["clinics"], [{"id": cid, "name": cname}])
        self.assertEqual(u["doctors"], [{"id": did, "firstname": dbody["firstname"], "lastname": dbody["lastname"]}])

    def test_create_rejects_unknown_linked_ids(self):
        before = self.list_users()
        cid, _ = self.create_clinic()
        for field, val in (("clinic_ids", ["c-" + "0" * 24]), ("clinic_ids", [cid, "c-" + "f" * 24]),
                           ("doctor_ids", ["do0000000000000"]), ("partner_clinic_ids", ["nope_%d" % uniq()]),
                           ("partner_doctor_ids", ["nope_%d" % uniq()])):
            with self.subTest(field=field, val=val):
                self.assertFieldError(self.req("POST", BASE, user_body(**{field: val})), field)
        self.assertEqual(self.list_users(), before)

    def test_both_id_forms_rejected(self):
        before = self.list_users()
        pc, pd = "pc_%d" % uniq(), "pd_%d" % uniq()
        cid, _ = self.create_clinic(partner_id=pc)
        did, _ = self.create_doctor(partner_id=pd)
        r = self.req("POST", BASE, user_body(doctor_ids=[did], partner_doctor_ids=[pd]))
        self.assertError(r, 400)
        self.assertIn("Only one of doctor_ids or partner_doctor_ids should be provided, not both.", r.raw.decode())
        r = self.req("POST", BASE, user_body(clinic_ids=[cid], partner_clinic_ids=[pc]))
        self.assertError(r, 400)
        self.assertIn("clinic_ids", r.raw.decode())
        self.assertIn("partner_clinic_ids", r.raw.decode())
        self.assertEqual(self.list_users(), before)

    def test_create_rejects_bad_values(self):
        before = self.list_users()
        for field, val in BAD_VALUES + WRONG_TYPES:
            with self.subTest(field=field, val=val):
                self.assertFieldError(self.req("POST", BASE, user_body(**{field: val})), field)
        self.assertEqual(self.list_users(), before)

    def test_create_rejects_bad_escapes(self):
        before = self.list_users()
        for field, val in BAD_ESCAPES:
            with self.subTest(field=field, val=val):
                self.assertError(self.req("POST", BASE, user_body(**{field: val})), 400)
        self.assertEqual(self.list_users(), before)

    def test_create_rejects_unknown_field(self):
        before = self.list_users()
        r = self.req("POST", BASE, user_body(nickname="Ami"))
        self.assertFieldError(r, "nickname")
        self.assertEqual(self.list_users(), before)

    def test_create_rejects_non_object_body(self):
        before = self.list_users()
        for raw in (b"[]", b'"x"', b"1", b"null", b"true", b"{}"):
            with self.subTest(raw=raw):
                self.assertError(self.req("POST", BASE, raw=raw), 400)
        self.assertEqual(self.list_users(), before)


today = datetime.date.today()
BAD_VALUES = [
    ("firstname", ""), ("firstname", "   "), ("firstname", "a" * 101), ("firstname", "é" * 101),
    ("firstname", "Am\x01it"), ("firstname", "A\nB"), ("firstname", "A\x1bB"), ("firstname", "A\x7fB"),
    ("lastname", ""), ("lastname", " \t "), ("lastname", "b" * 101), ("lastname", "K\tumar"),
    ("mobile", "12345"), ("mobile", "abcdefghij"), ("mobile", "+449876543210"), ("mobile", "98765432100"),
    ("mobile", ""), ("mobile", "+91987654321"), ("mobile", "+9198765432100"), ("mobile", "987654321a"),
    ("email", "plainaddress"), ("email", "@example.com"), ("email", "a@"), ("email", "a@example"),
    ("email", "a@@example.com"), ("email", "a@b@example.com"), ("email", ""),
    ("email", "a" * 250 + "@ex.com"), ("email", "a\n@example.com"),
    ("dob", "2023-02-30"), ("dob", "1990-13-01"), ("dob", "1990-00-10"), ("dob", "1990-01-32"),
    ("dob", "1990-5-15"), ("dob", "15-05-1990"), ("dob", "1990/05/15"), ("dob", ""), ("dob", "1900-02-29"),
    ("dob", (today + datetime.timedelta(days=2)).isoformat()), ("dob", "2999-01-01"),
    ("dob", "1990-05-15T00:00:00"),
    ("gender", "m"), ("gender", "X"), ("gender", "Male"), ("gender", ""), ("gender", "MF"),
    ("seat_type", "B"), ("seat_type", "x"), ("seat_type", ""), ("seat_type", "premium"),
    ("persona", "d"), ("persona", "s"), ("persona", "A"), ("persona", ""),
    ("partner_id", "p" * 129),
    ("clinic_ids", [""]), ("doctor_ids", [""]),
]
# Escapes the JSON layer itself may refuse (NUL, a lone surrogate): 400 either way, the
# message need not name the field.
BAD_ESCAPES = [("firstname", "A\x00B"), ("firstname", "\ud800"), ("lastname", "\udc00x"),
               ("email", "a\x00@example.com")]
WRONG_TYPES = [
    ("firstname", 123), ("firstname", True), ("firstname", []), ("firstname", {}), ("firstname", ["Amit"]),
    ("lastname", 5), ("mobile", 9876543210), ("mobile", ["9876543210"]), ("email", 1), ("email", {}),
    ("auth_userid", 12), ("auth_userid", []), ("gender", 1), ("gender", ["M"]), ("dob", 19900515),
    ("dob", ["1990-05-15"]), ("is_admin", "true"), ("is_admin", 1), ("is_admin", 0), ("is_admin", "yes"),
    ("is_admin", []), ("seat_type", 1), ("seat_type", True), ("persona", 0), ("partner_id", 123),
    ("partner_id", ["p"]), ("clinic_ids", "c-abc"), ("clinic_ids", {}), ("clinic_ids", [1]),
    ("clinic_ids", [None]), ("clinic_ids", [["x"]]), ("clinic_ids", 7), ("doctor_ids", "do1"),
    ("doctor_ids", [1, 2]), ("doctor_ids", [{}]), ("partner_clinic_ids", [True]),
    ("partner_doctor_ids", "x"),
]


# ---------------------------------------------------------------------------------------
class ReadTests(EkaUserCase):

    def test_get_by_id_and_partner_id(self):
        pid = "Part_user_%d" % uniq()
        uid = self.create(partner_id=pid)
        a, b = self.get(uid), self.get(pid)
        self.assertEqual(a, b)
        self.assertEqual(a["id"], uid)

    def test_get_unknown(self):
        for ident in ("000000000000000", "nope", "Part_user_nonexistent", "x" * 129, "1" * 300):
            with self.subTest(ident=ident):
                self.assertNotFound(self.req("GET", user_path(ident)))

    def test_partner_id_equal_to_an_eka_id_is_refused(self):
        # A partner id with the shape of an Eka User id would make {id} match two users
        # (issue 7); the Eka id still wins for rows written before the rule (test_text.py).
        a = self.create()
        before = self.list_users()
        r = self.req("POST", BASE, user_body(partner_id=a))
        self.assertError(r, 400, "partner_id", field="partner_id")
        b = self.create()
        before_b = self.get(b)
        r = self.patch(b, {"partner_id": a})
        self.assertError(r, 400, "partner_id", field="partner_id")
        self.assertUnchanged(b, before_b)
        self.assertEqual(len(self.list_users()), len(before) + 1)
        self.assertEqual(self.get(a)["id"], a)

    def test_path_percent_decoded(self):
        pid = "part user é+%d" % uniq()
        uid = self.create(partner_id=pid)
        r = self.req("GET", BASE + urllib.parse.quote(pid, safe="") + "/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["user"]["id"], uid)
        r = self.req("PATCH", BASE + urllib.parse.quote(pid, safe=""), {"lastname": "Decoded"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "ekaid": uid})
        # the Eka id itself, every digit percent-encoded
        enc = "".join("%%%02X" % ord(c) for c in uid)
        r = self.req("GET", BASE + enc + "/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["user"]["id"], uid)
        self.assertEqual(r.json["user"]["lastname"], "Decoded")

    def test_list_in_creation_order_matches_get(self):
        tok = fresh_tenant_token()
        self.assertEqual(self.list_users(token=tok), [])
        ids = [self.create(token=tok, firstname="U%d" % i) for i in range(6)]
        users = self.list_users(token=tok)
        self.assertEqual([u["id"] for u in users], ids)
        for u in users:
            self.assertEqual(u, self.get(u["id"], token=tok))
        # order is creation order, not update order
        self.patch_ok(ids[0], {"firstname": "Zed"}, token=tok)
        self.assertEqual([u["id"] for u in self.list_users(token=tok)], ids)


    def test_large_list(self):
        tok = fresh_tenant_token()
        cid, cname = self.create_clinic(token=tok)
        ids = [self.create(token=tok, clinic_ids=[cid]) if i % 50 == 0 else self.create(token=tok)
               for i in range(300)]
        users = self.list_users(token=tok)
        self.assertEqual([u["id"] for u in users], ids)
        self.assertEqual(users[50]["clinics"], [{"id": cid, "name": cname}])
        self.assertEqual(users[51]["clinics"], [])


# ---------------------------------------------------------------------------------------
class PatchTests(EkaUserCase):

    def test_seed_patch(self):
        cid, cname = self.create_clinic(name="Sunrise Clinic")
        pid = "Part_user_%d" % uniq()
        uid = self.create(partner_id=pid)
        before = self.get(uid)
        r = self.patch(uid, {"is_admin": True, "seat_type": "p", "clinic_ids": [cid]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "ekaid": uid})
        after = self.get(uid)
        self.assertIs(after["is_admin"], True)
        self.assertEqual(after["seat_type"], "p")
        self.assertEqual(after["clinics"], [{"id": cid, "name": cname}])
        for k in USER_FIELDS - {"is_admin", "seat_type", "clinics", "updated_at"}:
            self.assertEqual(after.get(k), before.get(k), k)
        self.assertGreaterEqual(after["updated_at"], before["updated_at"])
        # idempotent, and the same through the partner id (answer carries the Eka id)
        r = self.patch(pid, {"is_admin": True, "seat_type": "p", "clinic_ids": [cid]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "ekaid": uid})
        again = self.get(uid)
        self.assertEqual({k: again[k] for k in USER_FIELDS - {"updated_at"}},
                         {k: after[k] for k in USER_FIELDS - {"updated_at"}})

    def test_each_field_patchable(self):
        uid = self.create(partner_id="pp_%d" % uniq())
        n = uniq()
        changes = [
            ("firstname", "  Sita ", "firstname", "Sita"),
            ("lastname", "Rao", "lastname", "Rao"),
            ("mobile", "+918%09d" % n, "mobile", "+918%09d" % n),
            ("mobile", "918%09d" % (n + 1), "mobile", "+918%09d" % (n + 1)),
            ("email", "new%d@example.org" % n, "email", "new%d@example.org" % n),
            ("auth_userid", "sso_%d" % n, "auth_userid", "sso_%d" % n),
            ("gender", "F", "gender", "F"),
            ("dob", "1985-12-31", "dob", "1985-12-31"),
            ("is_admin", True, "is_admin", True),
            ("is_admin", False, "is_admin", False),
            ("seat_type", "p", "seat_type", "p"),
            ("persona", "S", "persona", "S"),
            ("partner_id", "np_%d" % n, "partner_id", "np_%d" % n),
        ]
        for field, val, out, shown in changes:
            with self.subTest(field=field, val=val):
                before = self.get(uid)
                after = self.patch_ok(uid, {field: val})
                self.assertEqual(after[out], shown)
                for k in USER_FIELDS - {out, "updated_at"}:
                    self.assertEqual(after.get(k), before.get(k), k)
        self.assertEqual(self.get("np_%d" % n)["id"], uid)

    def test_patch_same_values_is_not_a_clash(self):
        b = user_body(partner_id="self_%d" % uniq())
        uid = self.create(b)
        self.patch_ok(uid, {k: b[k] for k in ("mobile", "email", "auth_userid", "partner_id")})
        self.patch_ok(uid, {"email": b["email"].upper(), "mobile": "+91" + b["mobile"]})

    def test_null_clears_optional(self):
        pid = "pn_%d" % uniq()
        uid = self.create(partner_id=pid)
        u = self.patch_ok(uid, {"email": None})
        self.assertNotIn("email", u)
        self.assertIn("mobile", u)
        u = self.patch_ok(uid, {"auth_userid": None})
        self.assertNotIn("auth_userid", u)
        u = self.patch_ok(uid, {"partner_id": None})
        self.assertNotIn("partner_id", u)
        self.assertNotFound(self.req("GET", user_path(pid)))
        u = self.patch_ok(uid, {"email": "back%d@example.com" % uniq(), "mobile": None})
        self.assertNotIn("mobile", u)
        self.assertIn("email", u)

    def test_null_on_required_rejected(self):
        uid = self.create()
        before = self.get(uid)
        for field in ("firstname", "lastname", "gender", "dob"):
            with self.subTest(field=field):
                self.assertFieldError(self.patch(uid, {field: None}), field)
                self.assertUnchanged(uid, before)

    def test_cannot_leave_none_of_mobile_email_auth_userid(self):
        only_email = self.create(user_body(mobile=_DROP, auth_userid=_DROP))
        all_three = self.create()
        for uid, body in ((only_email, {"email": None}),
                          (all_three, {"email": None, "mobile": None, "auth_userid": None}),
                          (all_three, {"email": None, "mobile": None, "auth_userid": None, "lastname": "X"})):
            with self.subTest(body=body):
                before = self.get(uid)
                r = self.patch(uid, body)
                self.assertError(r, 400)
                text = self.msg(r) + " " + " ".join(r.json.get("errors", {}))
                self.assertTrue(any(f in text for f in ("mobile", "email", "auth_userid")), r)
                self.assertUnchanged(uid, before)
        # swapping one for another in the same request is fine
        u = self.patch_ok(only_email, {"email": None, "auth_userid": "swap_%d" % uniq()})
        self.assertNotIn("email", u)

    def test_empty_object_rejected(self):
        uid = self.create()
        before = self.get(uid)
        self.assertError(self.patch(uid, {}), 400)
        self.assertUnchanged(uid, before)

    def test_non_object_body_rejected(self):
        uid = self.create()
        before = self.get(uid)
        for raw in (b"[]", b'"x"', b"1", b"null", b'[{"firstname":"A"}]'):
            with self.subTest(raw=raw):
                self.assertError(self.req("PATCH", user_path(uid), raw=raw), 400)
                self.assertUnchanged(uid, before)

    def test_unknown_field_rejected_and_nothing_applied(self):
        uid = self.create()
        before = self.get(uid)
        for body in ({"nickname": "x"}, {"firstname": "Changed", "nickname": "x"}, {"id": "123456789012345"},
                     {"created_at": "2020-01-01"}, {"doctors": []}):
            with self.subTest(body=body):
                field = [k for k in body if k != "firstname"][0]
                self.assertFieldError(self.patch(uid, body), field)
                self.assertUnchanged(uid, before)

    def test_bad_values_and_types_rejected(self):
        uid = self.create()
        before = self.get(uid)
        for field, val in BAD_VALUES + WRONG_TYPES:
            with self.subTest(field=field, val=val):
                self.assertFieldError(self.patch(uid, {field: val}), field)
                # a valid change next to it is not applied either
                self.assertFieldError(self.patch(uid, dict(companion(field), **{field: val})), field)
                self.assertUnchanged(uid, before)

    def test_bad_escapes_rejected(self):
        uid = self.create()
        before = self.get(uid)
        for field, val in BAD_ESCAPES:
            with self.subTest(field=field, val=val):
                self.assertError(self.patch(uid, dict(companion(field), **{field: val})), 400)
                self.assertUnchanged(uid, before)

    def test_unknown_linked_ids_rejected(self):
        cid, _ = self.create_clinic()
        uid = self.create(clinic_ids=[cid])
        before = self.get(uid)
        for field, val in (("clinic_ids", ["c-" + "0" * 24]), ("clinic_ids", [cid, "c-" + "e" * 24]),
                           ("doctor_ids", ["do0000000000001"]), ("partner_clinic_ids", ["missing"]),
                           ("partner_doctor_ids", ["missing"])):
            with self.subTest(field=field, val=val):
                self.assertFieldError(self.patch(uid, {field: val, "lastname": "Changed"}), field)
                self.assertUnchanged(uid, before)

    def test_both_id_forms_rejected_on_patch(self):
        pc, pd = "pc_%d" % uniq(), "pd_%d" % uniq()
        cid, _ = self.create_clinic(partner_id=pc)
        did, _ = self.create_doctor(partner_id=pd)
        uid = self.create()
        before = self.get(uid)
        r = self.patch(uid, {"doctor_ids": [did], "partner_doctor_ids": [pd]})
        self.assertError(r, 400)
        self.assertIn("Only one of doctor_ids or partner_doctor_ids should be provided, not both.", r.raw.decode())
        r = self.patch(uid, {"clinic_ids": [cid], "partner_clinic_ids": [pc]})
        self.assertError(r, 400)
        self.assertIn("partner_clinic_ids", r.raw.decode())
        self.assertUnchanged(uid, before)

    def test_deleted_clinic_cannot_be_linked(self):
        cid, _ = self.create_clinic()
        r = self.req("DELETE", "/cdr/v1/clinic/%s/" % cid)
        self.assertEqual(r.status, 200, r)
        uid = self.create()
        before = self.get(uid)
        self.assertFieldError(self.patch(uid, {"clinic_ids": [cid]}), "clinic_ids")
        self.assertUnchanged(uid, before)

    def test_links_replace(self):
        c1, n1 = self.create_clinic()
        c2, n2 = self.create_clinic()
        p3 = "pc_%d" % uniq()
        c3, n3 = self.create_clinic(partner_id=p3)
        d1, b1 = self.create_doctor()
        uid = self.create(clinic_ids=[c1, c2], doctor_ids=[d1])
        self.assertEqual(sorted(c["id"] for c in self.get(uid)["clinics"]), sorted([c1, c2]))
        u = self.patch_ok(uid, {"clinic_ids": [c2]})
        self.assertEqual(u["clinics"], [{"id": c2, "name": n2}])
        self.assertEqual([d["id"] for d in u["doctors"]], [d1])  # doctors untouched
        u = self.patch_ok(uid, {"partner_clinic_ids": [p3]})
        self.assertEqual(u["clinics"], [{"id": c3, "name": n3}])
        u = self.patch_ok(uid, {"clinic_ids": []})
        self.assertEqual(u["clinics"], [])
        u = self.patch_ok(uid, {"doctor_ids": []})
        self.assertEqual(u["doctors"], [])

    def test_patch_collection_path(self):
        uid = self.create()
        before = self.get(uid)
        for path in (BASE, BASE.rstrip("/")):
            with self.subTest(path=path):
                r = self.req("PATCH", path, {"firstname": "X"})
                self.assertError(r, 400)
                self.assertEqual(r.json["message"], "EkaUser ID is required for PATCH")
        self.assertUnchanged(uid, before)

    def test_patch_unknown_id(self):
        self.assertNotFound(self.patch("000000000000000", {"firstname": "X"}))
        self.assertNotFound(self.patch("no_such_partner", {"firstname": "X"}))


# ---------------------------------------------------------------------------------------
class DeleteTests(EkaUserCase):

    def test_soft_delete(self):
        b = user_body(partner_id="pd_%d" % uniq())
        uid = self.create(b)
        keep = self.create()
        r = self.req("DELETE", user_path(uid))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "message": "EkaUser Deleted Successfully"})
        self.assertNotFound(self.req("GET", user_path(uid)))
        self.assertNotFound(self.req("GET", user_path(b["partner_id"])))
        self.assertNotFound(self.patch(uid, {"firstname": "X"}))
        self.assertNotFound(self.req("DELETE", user_path(uid)))
        self.assertNotFound(self.req("DELETE", user_path(b["partner_id"])))
        ids = [u["id"] for u in self.list_users()]
        self.assertNotIn(uid, ids)
        self.assertIn(keep, ids)
        # its unique values are free again, and the new record gets a new id
        b2 = dict(b, email=b["email"].upper(), mobile="+91" + b["mobile"])
        uid2 = self.create(b2)
        self.assertNotEqual(uid2, uid)
        self.assertEqual(self.get(b["partner_id"])["id"], uid2)
        self.assertNotFound(self.req("GET", user_path(uid)))

    def test_delete_by_partner_id(self):
        pid = "pdel_%d" % uniq()
        uid = self.create(partner_id=pid)
        r = self.req("DELETE", user_path(pid))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "message": "EkaUser Deleted Successfully"})
        self.assertNotFound(self.req("GET", user_path(uid)))

    def test_delete_unknown(self):
        before = self.list_users()
        self.assertNotFound(self.req("DELETE", user_path("000000000000000")))
        self.assertEqual(self.list_users(), before)

    def test_deleted_clinic_disappears_from_user(self):
        c1, _ = self.create_clinic()
        c2, n2 = self.create_clinic()
        uid = self.create(clinic_ids=[c1, c2])
        self.assertEqual(self.req("DELETE", "/cdr/v1/clinic/%s/" % c1).status, 200)
        self.assertEqual(self.get(uid)["clinics"], [{"id": c2, "name": n2}])


# ---------------------------------------------------------------------------------------
class UniquenessTests(EkaUserCase):

    def assertClash(self, r, field):
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json.get("status"), "error", r)
        self.assertEqual(r.json.get("message"), "%s already in use" % field, r)

    def test_create_clashes(self):
        b = user_body(partner_id="pu_%d" % uniq(), mobile="9%09d" % uniq())
        self.create(b)
        before = self.list_users()
        fresh = lambda **kw: user_body(**kw)  # noqa: E731
        cases = [
            ("email", fresh(email=b["email"])),
            ("email", fresh(email=b["email"].upper())),
            ("mobile", fresh(mobile=b["mobile"])),
            ("mobile", fresh(mobile="+91" + b["mobile"])),
            ("mobile", fresh(mobile="91" + b["mobile"])),
            ("auth_userid", fresh(auth_userid=b["auth_userid"])),
            ("partner_id", fresh(partner_id=b["partner_id"])),
        ]
        for field, body in cases:
            with self.subTest(field=field, val=body[field]):
                self.assertClash(self.req("POST", BASE, body), field)
        self.assertEqual(self.list_users(), before)

    def test_patch_clashes(self):
        a = user_body(partner_id="pa_%d" % uniq())
        self.create(a)
        uid = self.create()
        before = self.get(uid)
        for field, val in (("email", a["email"].upper()), ("mobile", "+91" + a["mobile"]),
                           ("auth_userid", a["auth_userid"]), ("partner_id", a["partner_id"])):
            with self.subTest(field=field):
                self.assertClash(self.patch(uid, {field: val}), field)
                self.assertClash(self.patch(uid, {field: val, "firstname": "Changed"}), field)
                self.assertUnchanged(uid, before)

    def test_unique_values_free_across_tenants(self):
        b = user_body()
        self.create(b)
        # another tenant may reuse every unique value
        tok = fresh_tenant_token()
        self.create(dict(b), token=tok)


# ---------------------------------------------------------------------------------------
class PersistenceTests(EkaUserCase):

    def test_restart_keeps_data(self):
        cid, _ = self.create_clinic()
        a = self.create(partner_id="pr_%d" % uniq(), clinic_ids=[cid])
        b = self.create()
        c = self.create()
        self.patch_ok(b, {"is_admin": True, "seat_type": "p", "lastname": "Persisted"})
        self.assertEqual(self.req("DELETE", user_path(c)).status, 200)
        users = self.list_users()
        snapshot = {u: self.get(u) for u in (a, b)}
        self.srv.restart()
        self.assertEqual(self.list_users(), users)
        for u, v in snapshot.items():
            self.assertEqual(self.get(u), v)
        self.assertEqual(self.get(snapshot[a]["partner_id"])["id"], a)
        self.assertNotFound(self.req("GET", user_path(c)))
        # ids are never reused after a restart
        d = self.create()
        self.assertNotIn(d, (a, b, c))
        # SIGINT is a clean stop too
        self.srv.stop(sig=signal.SIGINT)
        self.srv.start()
        self.assertEqual(self.get(d)["id"], d)


# ---------------------------------------------------------------------------------------
class ConcurrencyTests(EkaUserCase):

    def _race(self, bodies, tok):
        barrier = threading.Barrier(len(bodies))
        results = [None] * len(bodies)

        def run(i):
            conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
            conn.connect()
            data = json.dumps(bodies[i]).encode()
            barrier.wait()
            try:
                conn.request("POST", BASE, body=data, headers={"auth": tok, "Content-Type": "application/json"})
                resp = conn.getresponse()
                results[i] = (resp.status, resp.read())
            except Exception as e:  # pragma: no cover - reported below
                results[i] = (None, repr(e).encode())
            finally:
                conn.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return results

    def test_simultaneous_creates_same_email(self):
        tok = fresh_tenant_token()
        for rnd in range(6):
            email = "race%d@example.com" % uniq()
            bodies = [user_body(email=email if i % 2 == 0 else email.upper()) for i in range(2 if rnd < 3 else 6)]
            results = self._race(bodies, tok)
            codes = sorted(s for s, _ in results)
            self.assertEqual(codes, [201] + [409] * (len(bodies) - 1), results)
            for s, raw in results:
                if s == 409:
                    body = json.loads(raw)
                    self.assertEqual((body["status"], body["message"]), ("error", "email already in use"))
            same = [u for u in self.list_users(token=tok) if u.get("email", "").lower() == email]
            self.assertEqual(len(same), 1, same)

    def test_simultaneous_creates_same_mobile_different_forms(self):
        tok = fresh_tenant_token()
        m = "8%09d" % uniq()
        bodies = [user_body(mobile=f) for f in (m, "+91" + m, "91" + m, m)]
        results = self._race(bodies, tok)
        self.assertEqual(sorted(s for s, _ in results), [201, 409, 409, 409], results)
        same = [u for u in self.list_users(token=tok) if u["mobile"] == "+91" + m]
        self.assertEqual(len(same), 1)

    def test_simultaneous_patches_to_same_email(self):
        tok = fresh_tenant_token()
        for _ in range(4):
            a, b = self.create(token=tok), self.create(token=tok)
            email = "prace%d@example.com" % uniq()
            barrier = threading.Barrier(2)
            results = {}

            def run(uid):
                conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
                conn.connect()
                barrier.wait()
                conn.request("PATCH", user_path(uid), body=json.dumps({"email": email}),
                             headers={"auth": tok, "Content-Type": "application/json"})
                resp = conn.getresponse()
                results[uid] = (resp.status, resp.read())
                conn.close()

            ts = [threading.Thread(target=run, args=(u,)) for u in (a, b)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            self.assertEqual(sorted(st for st, _ in results.values()), [200, 409], results)
            emails = [self.get(u, token=tok)["email"] for u in (a, b)]
            self.assertEqual(emails.count(email), 1, emails)

    def test_parallel_distinct_creates_all_succeed(self):
        tok = fresh_tenant_token()
        bodies = [user_body() for _ in range(16)]
        results = self._race(bodies, tok)
        self.assertEqual([s for s, _ in results], [201] * 16, results)
        ids = {json.loads(raw)["ekaid"] for _, raw in results}
        self.assertEqual(len(ids), 16)
        self.assertEqual({u["id"] for u in self.list_users(token=tok)}, ids)


if __name__ == "__main__":
    unittest.main()
