"""End-to-end tests of the doctor endpoints (/cdr/v1/doctor/ and /cdr/v1/doctor/{doc_id}/).

Black-box: starts the real binary (HIPUSERS_BIN) through the shared harness.
Every test works in a tenant of its own (a fresh b_id), so tests never see each other's data.
Every rejected request is checked for its status, its error body, and that nothing changed.
"""
import datetime
import itertools
import os
import re
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, make_token  # noqa: E402

DOCTOR_ID = re.compile(r"^do[0-9]{13}$")
DOCTOR_KEYS = {"id", "firstname", "lastname", "gender", "dob", "mobile", "email", "about",
               "profile_image_url", "specialisation", "specialisations", "qualifications",
               "clinics", "partner_id", "created_at", "updated_at"}
# What a doctor shows when none of its optional fields is set: those are omitted, never null.
DOCTOR_MIN_KEYS = {"id", "firstname", "lastname", "gender", "dob", "clinics", "created_at", "updated_at"}

MINIMAL = {"firstname": "Rajesh", "lastname": "Sharma", "gender": "M"}
FULL = {
    "firstname": "Rajesh",
    "lastname": "Sharma",
    "gender": "M",
    "dob": "1985-06-15",
    "mobile": "+919876543210",
    "email": "dr.rajesh@example.com",
    "about": "Cardiologist with 15 years of experience.",
    "profile_image_url": "https://example.com/images/dr-rajesh.jpg",
    "specialisations": ["Cardiology", "Internal Medicine", "Cardiology"],
    "qualifications": ["MBBS", "MD", "DM"],
    "partner_id": "Part_doc",
}

_tenants = itertools.count(1)


def q(s):
    return urllib.parse.quote(s, safe="")


class DoctorApi(ServerTestCase):
    """Helpers shared by the doctor tests."""

    def tenant(self):
        """A token for a tenant no other test uses."""
        return make_token("41%014d" % next(_tenants))

    def create(self, body, tok):
        r = self.req("POST", "/cdr/v1/doctor/", body, token=tok)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json.get("status"), "success", r)
        self.assertRegex(r.json.get("ekaid", ""), DOCTOR_ID, r)
        self.assertEqual(set(r.json), {"status", "ekaid"}, r)
        return r.json["ekaid"]

    def get(self, ident, tok):
        r = self.req("GET", "/cdr/v1/doctor/%s/" % q(ident), token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json.get("status"), "success", r)
        self.assertIsInstance(r.json.get("doctor"), dict, r)
        return r.json["doctor"]

    def listing(self, tok):
        r = self.req("GET", "/cdr/v1/doctor/", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json.get("status"), "success", r)
        self.assertIsInstance(r.json.get("doctors"), list, r)
        return r.json["doctors"]

    def snapshot(self, tok):
        """Everything the tenant can see, to compare before and after a rejected request."""
        r = self.req("GET", "/cdr/v1/clinic/", token=tok)
        clinics = r.json.get("clinics") if r.status == 200 and r.json else r.status
        return {"doctors": self.listing(tok), "clinics": clinics}

    def assertFieldError(self, r, field, status=400):
        self.assertError(r, status, field=field)
        self.assertIn(field, self.msg(r), r)

    def assertNotFound(self, r):
        self.assertError(r, 404)
        self.assertEqual(self.msg(r), "Doctor not found", r)


class TestDoctorCreateAndRead(DoctorApi):

    def test_create_minimal_defaults_and_shape(self):
        t = self.tenant()
        did = self.create(MINIMAL, t)
        d = self.get(did, t)
        self.assertEqual(set(d), DOCTOR_MIN_KEYS)
        self.assertEqual(d["id"], did)
        self.assertEqual(d["firstname"], "Rajesh")
        self.assertEqual(d["lastname"], "Sharma")
        self.assertEqual(d["gender"], "M")
        self.assertEqual(d["dob"], "1990-01-01")
        for k in ("mobile", "email", "about", "profile_image_url", "specialisation", "specialisations",
                  "qualifications", "partner_id"):
            self.assertNotIn(k, d)
        self.assertEqual(d["clinics"], [])
        self.assertIsInstance(d["created_at"], str)
        self.assertIsInstance(d["updated_at"], str)

    def test_create_full_reads_back(self):
        t = self.tenant()
        did = self.create(FULL, t)
        d = self.get(did, t)
        self.assertEqual(d["firstname"], "Rajesh")
        self.assertEqual(d["lastname"], "Sharma")
        self.assertEqual(d["gender"], "M")
        self.assertEqual(d["dob"], "1985-06-15")
        self.assertEqual(d["mobile"], "9876543210")
        self.assertEqual(d["email"], "dr.rajesh@example.com")
        self.assertEqual(d["about"], FULL["about"])
        self.assertEqual(d["profile_image_url"], FULL["profile_image_url"])
        # duplicates collapsed, order of first occurrence kept; specialisation is the first
        self.assertEqual(d["specialisations"], ["Cardiology", "Internal Medicine"])
        self.assertEqual(d["specialisation"], "Cardiology")
        self.assertEqual(d["qualifications"], ["MBBS", "MD", "DM"])
        self.assertEqual(d["partner_id"], "Part_doc")
        self.assertEqual(d["clinics"], [])
        self.assertEqual(set(d), DOCTOR_KEYS)
        # the list entry is the same object
        self.assertEqual(self.listing(t), [d])

    def test_mobile_forms_stored_as_ten_digits(self):
        t = self.tenant()
        for m in ("9876543210", "+919876543210", "919876543210", "0000011111"):
            with self.subTest(mobile=m):
                did = self.create(dict(MINIMAL, mobile=m), t)
                self.assertEqual(self.get(did, t)["mobile"], m[-10:])

    def test_valid_edge_values(self):
        t = self.tenant()
        cases = [
            {"firstname": "A" * 100, "lastname": "B" * 100},
            {"firstname": "\u00e9" * 100},              # 100 characters, 200 bytes
            {"partner_id": "P" * 128},
            {"gender": "F"}, {"gender": "O"},
            {"dob": "2000-02-29"},
            {"profile_image_url": "http://example.com/x.png"},
            {"email": "abcdef@" + ".".join(["b" * 60] * 4) + ".com"},  # 254 characters
            {"dob": (datetime.date.today() - datetime.timedelta(days=1)).isoformat()},
            {"specialisations": ["S%d" % i for i in range(1000)]},
            {"qualifications": []},
            {"firstname": "\u0930\u093e\u091c\u0947\u0936", "about": "Multi-lingual \u2713 \U0001F600"},
        ]
        for extra in cases:
            with self.subTest(extra=str(extra)[:80]):
                body = dict(MINIMAL, **extra)
                did = self.create(body, t)
                d = self.get(did, t)
                for k, v in extra.items():
                    if k == "qualifications":
                        self.assertEqual(d[k], [])
                    else:
                        self.assertEqual(d[k], v, k)

    def test_ids_unique_and_well_formed(self):
        t = self.tenant()
        ids = [self.create(MINIMAL, t) for _ in range(25)]
        self.assertEqual(len(set(ids)), 25)
        for i in ids:
            self.assertRegex(i, DOCTOR_ID)
        # never reused after a delete
        for i in ids[:5]:
            self.assertEqual(self.req("DELETE", "/cdr/v1/doctor/%s/" % i, token=t).status, 200)
        more = [self.create(MINIMAL, t) for _ in range(5)]
        self.assertFalse(set(more) & set(ids))

    def test_list_in_creation_order_and_omits_deleted(self):
        t = self.tenant()
        self.assertEqual(self.listing(t), [])
        ids = [self.create(dict(MINIMAL, firstname="Doc%d" % i), t) for i in range(6)]
        self.assertEqual([d["id"] for d in self.listing(t)], ids)
        self.assertEqual([d["firstname"] for d in self.listing(t)], ["Doc%d" % i for i in range(6)])
        self.req("DELETE", "/cdr/v1/doctor/%s/" % ids[2], token=t)
        self.assertEqual([d["id"] for d in self.listing(t)], ids[:2] + ids[3:])
        for d in self.listing(t):
            self.assertEqual(set(d), DOCTOR_MIN_KEYS, d)

    def test_trailing_slash_optional(self):
        t = self.tenant()
        r = self.req("POST", "/cdr/v1/doctor", MINIMAL, token=t)
        self.assertEqual(r.status, 201, r)
        did = r.json["ekaid"]
        r = self.req("GET", "/cdr/v1/doctor", token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([d["id"] for d in r.json["doctors"]], [did])
        r = self.req("GET", "/cdr/v1/doctor/" + did, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["doctor"]["id"], did)
        r = self.req("PATCH", "/cdr/v1/doctor/" + did, {"about": "x"}, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.get(did, t)["about"], "x")
        r = self.req("DELETE", "/cdr/v1/doctor/" + did, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.listing(t), [])

    def test_get_by_partner_id_and_percent_decoding(self):
        t = self.tenant()
        did = self.create(dict(MINIMAL, partner_id="Dr Part \u00fc+1"), t)
        d = self.get("Dr Part \u00fc+1", t)  # sent as Dr%20Part%20%C3%BC%2B1
        self.assertEqual(d["id"], did)
        # the Eka id with its first letter percent-encoded ("%64o...") is the same id
        r = self.req("GET", "/cdr/v1/doctor/%s/" % did.replace("d", "%64", 1), token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["doctor"]["id"], did)
        self.assertNotFound(self.req("GET", "/cdr/v1/doctor/Dr%20Part/", token=t))

    def test_partner_id_equal_to_an_eka_id_is_refused(self):
        # a partner id shaped like a doctor's Eka id would make {id} match two doctors
        t = self.tenant()
        d1 = self.create(dict(MINIMAL, firstname="First"), t)
        before = self.snapshot(t)
        r = self.req("POST", "/cdr/v1/doctor/", dict(MINIMAL, firstname="Second", partner_id=d1), token=t)
        self.assertEqual(r.status, 400, r)
        self.assertIn("partner_id", r.json["errors"], r)
        r = self.req("PATCH", "/cdr/v1/doctor/%s/" % d1, {"partner_id": d1}, token=t)
        self.assertEqual(r.status, 400, r)
        self.assertIn("partner_id", r.json["errors"], r)
        self.assertEqual(self.snapshot(t), before)

    def test_not_found(self):
        t = self.tenant()
        did = self.create(MINIMAL, t)
        before = self.snapshot(t)
        for ident in ("do0000000000000", "nope", "Part_doc"):
            with self.subTest(ident=ident):
                self.assertNotFound(self.req("GET", "/cdr/v1/doctor/%s/" % ident, token=t))
                self.assertNotFound(self.req("PATCH", "/cdr/v1/doctor/%s/" % ident,
                                             {"about": "x"}, token=t))
                self.assertNotFound(self.req("DELETE", "/cdr/v1/doctor/%s/" % ident, token=t))
        # an encoded / or NUL in the id never reaches another route (a plain 404 either way)
        for ident in ("x/../../clinic", "a\u0000b", "%s/" % did):
            with self.subTest(ident=ident):
                for m in ("GET", "PATCH", "DELETE"):
                    r = self.req(m, "/cdr/v1/doctor/%s/" % q(ident), {"about": "x"} if m == "PATCH" else None,
                                 token=t)
                    self.assertError(r, 404)
        self.assertEqual(self.snapshot(t), before)

    def test_wrong_method_on_item(self):
        t = self.tenant()
        did = self.create(MINIMAL, t)
        before = self.snapshot(t)
        for m in ("PUT", "POST"):
            r = self.req(m, "/cdr/v1/doctor/%s/" % did, MINIMAL, token=t)
            self.assertError(r, 405)
            allow = {a.strip().upper() for a in r.headers.get("allow", "").split(",")}
            self.assertTrue({"GET", "PATCH", "DELETE"} <= allow, r.headers)
        self.assertEqual(self.snapshot(t), before)


class TestDoctorPatchDelete(DoctorApi):

    def test_patch_changes_only_present_fields(self):
        t = self.tenant()
        did = self.create(FULL, t)
        before = self.get(did, t)
        r = self.req("PATCH", "/cdr/v1/doctor/%s/" % did,
                     {"firstname": "Raj", "about": "Updated bio", "qualifications": ["MBBS"]}, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "ekaid": did})
        after = self.get(did, t)
        expected = dict(before, firstname="Raj", about="Updated bio", qualifications=["MBBS"])
        expected["updated_at"] = after["updated_at"]
        self.assertEqual(after, expected)
        self.assertEqual(after["created_at"], before["created_at"])

    def test_patch_every_field(self):
        t = self.tenant()
        did = self.create(MINIMAL, t)
        body = {"firstname": "Anita", "lastname": "Rao", "gender": "F", "dob": "1979-12-31",
                "mobile": "919123456789", "email": "anita@example.org", "about": "ENT",
                "profile_image_url": "http://example.org/a.png",
                "specialisations": ["ENT", "Surgery", "ENT"], "qualifications": ["MS"],
                "partner_id": "anita-1"}
        r = self.req("PATCH", "/cdr/v1/doctor/%s/" % did, body, token=t)
        self.assertEqual(r.status, 200, r)
        d = self.get("anita-1", t)
        self.assertEqual(d["id"], did)
        for k in ("firstname", "lastname", "gender", "dob", "email", "about",
                  "profile_image_url", "qualifications", "partner_id"):
            self.assertEqual(d[k], body[k], k)
        self.assertEqual(d["mobile"], "9123456789")
        self.assertEqual(d["specialisations"], ["ENT", "Surgery"])
        self.assertEqual(d["specialisation"], "ENT")

    def test_patch_by_partner_id(self):
        t = self.tenant()
        did = self.create(dict(MINIMAL, partner_id="pd 7"), t)
        r = self.req("PATCH", "/cdr/v1/doctor/pd%207/", {"lastname": "Verma"}, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "ekaid": did})
        self.assertEqual(self.get(did, t)["lastname"], "Verma")

    def test_patch_null_clears_optional_fields(self):
        t = self.tenant()
        did = self.create(FULL, t)
        r = self.req("PATCH", "/cdr/v1/doctor/%s/" % did,
                     {"mobile": None, "email": None, "about": None, "profile_image_url": None,
                      "specialisations": None, "qualifications": None, "partner_id": None},
                     token=t)
        self.assertEqual(r.status, 200, r)
        d = self.get(did, t)
        for k in ("mobile", "email", "about", "profile_image_url", "partner_id", "specialisation",
                  "specialisations", "qualifications"):
            self.assertNotIn(k, d)
        self.assertEqual(set(d), DOCTOR_MIN_KEYS)
        self.assertEqual(d["firstname"], "Rajesh")
        self.assertNotFound(self.req("GET", "/cdr/v1/doctor/Part_doc/", token=t))

    def test_patch_null_on_required_field(self):
        t = self.tenant()
        did = self.create(FULL, t)
        before = self.snapshot(t)
        for f in ("firstname", "lastname", "gender"):
            with self.subTest(field=f):
                r = self.req("PATCH", "/cdr/v1/doctor/%s/" % did, {f: None, "about": "changed"}, token=t)
                self.assertFieldError(r, f)
                self.assertEqual(self.snapshot(t), before)

    def test_patch_empty_body(self):
        t = self.tenant()
        did = self.create(FULL, t)
        before = self.snapshot(t)
        r = self.req("PATCH", "/cdr/v1/doctor/%s/" % did, {}, token=t)
        self.assertError(r, 400)
        self.assertEqual(self.snapshot(t), before)

    def test_patch_unknown_field(self):
        t = self.tenant()
        did = self.create(FULL, t)
        before = self.snapshot(t)
        for f in ("specialization", "id", "clinics", "created_at"):
            with self.subTest(field=f):
                r = self.req("PATCH", "/cdr/v1/doctor/%s/" % did, {"about": "changed", f: "x"}, token=t)
                self.assertError(r, 400)
                self.assertIn(f, self.msg(r), r)
                self.assertEqual(self.snapshot(t), before)

    def test_patch_on_collection_path(self):
        t = self.tenant()
        self.create(FULL, t)
        before = self.snapshot(t)
        for path in ("/cdr/v1/doctor/", "/cdr/v1/doctor"):
            with self.subTest(path=path):
                r = self.req("PATCH", path, {"about": "changed"}, token=t)
                self.assertError(r, 400, "Doctor ID is required for PATCH")
                self.assertEqual(self.msg(r), "Doctor ID is required for PATCH")
        self.assertEqual(self.snapshot(t), before)

    def test_delete_is_soft_and_final(self):
        t = self.tenant()
        did = self.create(dict(FULL, partner_id="del-me"), t)
        keep = self.create(MINIMAL, t)
        r = self.req("DELETE", "/cdr/v1/doctor/%s/" % did, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "message": "Doctor Deleted Successfully"})
        for ident in (did, "del-me"):
            self.assertNotFound(self.req("GET", "/cdr/v1/doctor/%s/" % ident, token=t))
            self.assertNotFound(self.req("PATCH", "/cdr/v1/doctor/%s/" % ident, {"about": "x"}, token=t))
            self.assertNotFound(self.req("DELETE", "/cdr/v1/doctor/%s/" % ident, token=t))
        self.assertEqual([d["id"] for d in self.listing(t)], [keep])

    def test_delete_by_partner_id(self):
        t = self.tenant()
        did = self.create(dict(MINIMAL, partner_id="P_del"), t)
        r = self.req("DELETE", "/cdr/v1/doctor/P_del/", token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["message"], "Doctor Deleted Successfully")
        self.assertNotFound(self.req("GET", "/cdr/v1/doctor/%s/" % did, token=t))


# (field, bad value) pairs rejected on create and on PATCH alike.
BAD_VALUES = [
    ("firstname", ""), ("firstname", "   "), ("firstname", "A" * 101), ("firstname", 123),
    ("firstname", ["Rajesh"]), ("firstname", "Raj\u0001esh"),
    ("lastname", ""), ("lastname", "\t \n"), ("lastname", "B" * 101), ("lastname", True),
    ("gender", "X"), ("gender", "m"), ("gender", ""), ("gender", "Male"), ("gender", 1),
    ("dob", "2023-02-30"), ("dob", "1990-13-01"), ("dob", "1990-1-1"), ("dob", "19900101"),
    ("dob", "2999-01-01"), ("dob", ""), ("dob", 19900101), ("dob", "1900-02-29"), ("dob", "1990-04-31"),
    ("dob", (datetime.date.today() + datetime.timedelta(days=2)).isoformat()), ("dob", "1990-01-01T00:00:00"),
    ("mobile", "987654321"), ("mobile", "98765432101"), ("mobile", "98765abcde"),
    ("mobile", "+929876543210"), ("mobile", "+91987654321"), ("mobile", 9876543210), ("mobile", ""),
    ("mobile", "+91 9876543210"), ("mobile", "9198765432100"), ("mobile", "\uff19876543210"),
    ("email", "no-at-sign"), ("email", "a@b"), ("email", "@example.com"), ("email", "a@@example.com"),
    ("email", "a" * 243 + "@example.com"), ("email", 5),
    ("about", 12), ("about", "bad\u0007bell"),
    ("profile_image_url", "ftp://example.com/a.jpg"), ("profile_image_url", "example.com/a.jpg"),
    ("profile_image_url", "javascript:alert(1)"), ("profile_image_url", 1),
    ("specialisations", "Cardiology"), ("specialisations", [""]), ("specialisations", [1]),
    ("specialisations", [None]), ("specialisations", ["S%d" % i for i in range(1001)]),
    ("specialisations", {"a": "b"}),
    ("qualifications", "MBBS"), ("qualifications", ["MBBS", ""]), ("qualifications", [["MBBS"]]),
    ("partner_id", "P" * 129), ("partner_id", 42),
]
BASE = {k: v for k, v in FULL.items() if k != "partner_id"}


class TestDoctorValidation(DoctorApi):

    def test_create_rejects_bad_values(self):
        t = self.tenant()
        self.create(FULL, t)
        before = self.snapshot(t)
        for field, value in BAD_VALUES:
            with self.subTest(field=field, value=repr(value)[:40]):
                r = self.req("POST", "/cdr/v1/doctor/", dict(BASE, **{field: value}), token=t)
                self.assertFieldError(r, field)
                self.assertEqual(self.snapshot(t), before)

    def test_patch_rejects_bad_values(self):
        t = self.tenant()
        did = self.create(FULL, t)
        before = self.snapshot(t)
        for field, value in BAD_VALUES:
            with self.subTest(field=field, value=repr(value)[:40]):
                r = self.req("PATCH", "/cdr/v1/doctor/%s/" % did, {field: value}, token=t)
                self.assertFieldError(r, field)
                # a good field next to a bad one changes nothing either
                r = self.req("PATCH", "/cdr/v1/doctor/%s/" % did, {"about": "changed", field: value},
                             token=t)
                self.assertFieldError(r, field)
                self.assertEqual(self.snapshot(t), before)

    def test_create_missing_required(self):
        t = self.tenant()
        before = self.snapshot(t)
        for f in ("firstname", "lastname", "gender"):
            with self.subTest(field=f):
                body = dict(FULL)
                del body[f]
                r = self.req("POST", "/cdr/v1/doctor/", body, token=t)
                self.assertFieldError(r, f)
                r = self.req("POST", "/cdr/v1/doctor/", dict(FULL, **{f: None}), token=t)
                self.assertFieldError(r, f)
                self.assertEqual(self.snapshot(t), before)

    def test_create_unknown_field(self):
        t = self.tenant()
        before = self.snapshot(t)
        for f in ("specialization", "clinics", "id", "phone"):
            with self.subTest(field=f):
                r = self.req("POST", "/cdr/v1/doctor/", dict(MINIMAL, **{f: "x"}), token=t)
                self.assertError(r, 400)
                self.assertIn(f, self.msg(r), r)
                self.assertEqual(self.snapshot(t), before)

    def test_create_bad_json(self):
        t = self.tenant()
        before = self.snapshot(t)
        bodies = [
            b'{"firstname": "Rajesh", "lastname": "Sharma", "gender": "M"',
            b'{"firstname": "Rajesh", "lastname": "Sharma", "gender": "M",}',
            b'{"firstname": "A", "firstname": "B", "lastname": "Sharma", "gender": "M"}',
            b'{"firstname": "Raj\xff\xfe", "lastname": "Sharma", "gender": "M"}',
            b'["firstname", "lastname", "gender"]',
            b'"Rajesh"',
            b'null',
            b'',
        ]
        for raw in bodies:
            with self.subTest(raw=raw):
                r = self.req("POST", "/cdr/v1/doctor/", raw=raw, token=t)
                self.assertError(r, 400)
                self.assertEqual(self.snapshot(t), before)

    def test_patch_bad_json(self):
        t = self.tenant()
        did = self.create(FULL, t)
        before = self.snapshot(t)
        for raw in (b'{"about": "x"', b'{"about": "x", "about": "y"}', b'{"about": "\xc3\x28"}', b'[]'):
            with self.subTest(raw=raw):
                r = self.req("PATCH", "/cdr/v1/doctor/%s/" % did, raw=raw, token=t)
                self.assertError(r, 400)
                self.assertEqual(self.snapshot(t), before)


class TestDoctorUniqueness(DoctorApi):

    def test_partner_id_conflicts(self):
        t = self.tenant()
        d1 = self.create(dict(MINIMAL, partner_id="dup"), t)
        before = self.snapshot(t)
        r = self.req("POST", "/cdr/v1/doctor/", dict(FULL, partner_id="dup"), token=t)
        self.assertError(r, 409)
        self.assertEqual(self.msg(r), "partner_id already in use")
        self.assertEqual(self.snapshot(t), before)
        d2 = self.create(MINIMAL, t)
        before = self.snapshot(t)
        r = self.req("PATCH", "/cdr/v1/doctor/%s/" % d2, {"partner_id": "dup", "about": "x"}, token=t)
        self.assertError(r, 409)
        self.assertEqual(self.msg(r), "partner_id already in use")
        self.assertEqual(self.snapshot(t), before)
        # re-setting one's own partner_id is no clash
        r = self.req("PATCH", "/cdr/v1/doctor/%s/" % d1, {"partner_id": "dup"}, token=t)
        self.assertEqual(r.status, 200, r)
        # another tenant may use it
        t2 = self.tenant()
        self.create(dict(MINIMAL, partner_id="dup"), t2)
        # free after delete
        self.assertEqual(self.req("DELETE", "/cdr/v1/doctor/%s/" % d1, token=t).status, 200)
        d3 = self.create(dict(MINIMAL, partner_id="dup"), t)
        self.assertEqual(self.get("dup", t)["id"], d3)
        r = self.req("PATCH", "/cdr/v1/doctor/%s/" % d2, {"partner_id": "dup"}, token=t)
        self.assertError(r, 409)

    def test_partner_id_freed_by_patch(self):
        t = self.tenant()
        d1 = self.create(dict(MINIMAL, partner_id="moving"), t)
        self.assertEqual(self.req("PATCH", "/cdr/v1/doctor/%s/" % d1, {"partner_id": "moved"},
                                  token=t).status, 200)
        d2 = self.create(dict(MINIMAL, partner_id="moving"), t)
        self.assertEqual(self.get("moving", t)["id"], d2)
        self.assertEqual(self.get("moved", t)["id"], d1)

    def test_concurrent_creates_same_partner_id(self):
        t = self.tenant()
        results = []
        lock = threading.Lock()

        def worker():
            r = self.srv.request("POST", "/cdr/v1/doctor/", dict(MINIMAL, partner_id="race"), token=t)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        codes = sorted(r.status for r in results)
        self.assertEqual(codes, [201] + [409] * 7, results)
        for r in results:
            if r.status == 409:
                self.assertEqual(r.json, {"status": "error", "message": "partner_id already in use"})
        self.assertEqual(len(self.listing(t)), 1)


class TestDoctorTenancyAndPersistence(DoctorApi):

    def test_tenant_isolation(self):
        ta, tb = self.tenant(), self.tenant()
        did = self.create(dict(FULL, partner_id="iso"), ta)
        before_a = self.snapshot(ta)
        for ident in (did, "iso"):
            with self.subTest(ident=ident):
                self.assertNotFound(self.req("GET", "/cdr/v1/doctor/%s/" % ident, token=tb))
                self.assertNotFound(self.req("PATCH", "/cdr/v1/doctor/%s/" % ident,
                                             {"about": "hacked"}, token=tb))
                self.assertNotFound(self.req("DELETE", "/cdr/v1/doctor/%s/" % ident, token=tb))
        self.assertEqual(self.listing(tb), [])
        self.assertEqual(self.snapshot(ta), before_a)
        # the class-wide second tenant token from the harness sees nothing of it either
        self.assertNotFound(self.req("GET", "/cdr/v1/doctor/%s/" % did, token=self.tok_b))

    def test_survives_restart(self):
        t = self.tenant()
        d1 = self.create(FULL, t)
        d2 = self.create(dict(MINIMAL, firstname="Second"), t)
        self.req("PATCH", "/cdr/v1/doctor/%s/" % d2, {"about": "patched"}, token=t)
        d3 = self.create(dict(MINIMAL, firstname="Gone", partner_id="gone"), t)
        self.req("DELETE", "/cdr/v1/doctor/%s/" % d3, token=t)
        before = self.listing(t)
        self.srv.restart()
        self.assertEqual(self.listing(t), before)
        self.assertEqual([d["id"] for d in before], [d1, d2])
        self.assertEqual(self.get("Part_doc", t)["id"], d1)
        self.assertNotFound(self.req("GET", "/cdr/v1/doctor/gone/", token=t))
        # ids keep being unique after a restart
        d4 = self.create(MINIMAL, t)
        self.assertNotIn(d4, (d1, d2, d3))


if __name__ == "__main__":
    unittest.main()
