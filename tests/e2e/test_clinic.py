"""End-to-end tests of the clinic endpoints (/cdr/v1/clinic/ and /cdr/v1/clinic/{clinic_id}/).

Black-box: starts the real binary (HIPUSERS_BIN) through the shared harness.
Every test works in a tenant of its own (a fresh b_id), so tests never see each other's data.
Every rejected request is checked for its status, its error body, and that nothing changed.
"""
import itertools
import os
import re
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, make_token  # noqa: E402

CLINIC_ID = re.compile(r"^c-[0-9a-f]{24}$")
CLINIC_KEYS = {"id", "name", "address", "pincode", "contact", "city", "state", "partner_id",
               "doctors", "created_at", "updated_at"}
# What a clinic shows when none of its optional fields is set: those are omitted, never null.
CLINIC_MIN_KEYS = {"id", "name", "address", "doctors", "created_at", "updated_at"}

MINIMAL = {"name": "Sunrise Clinic", "address": "123 Main Street, Block A"}
FULL = {
    "name": "Sunrise Clinic",
    "address": "123 Main Street, Block A",
    "partner_id": "Clinic_321_Indore",
    "pincode": "560001",
    "contact": "9876543210",
    "city": "Bangalore",
    "state": "Karnataka",
}
BASE = {k: v for k, v in FULL.items() if k != "partner_id"}

_tenants = itertools.count(1)


def q(s):
    return urllib.parse.quote(s, safe="")


class ClinicApi(ServerTestCase):
    """Helpers shared by the clinic tests."""

    def tenant(self):
        return make_token("42%014d" % next(_tenants))

    def create(self, body, tok):
        r = self.req("POST", "/cdr/v1/clinic/", body, token=tok)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json.get("status"), "success", r)
        self.assertRegex(r.json.get("ekaid", ""), CLINIC_ID, r)
        self.assertEqual(set(r.json), {"status", "ekaid"}, r)
        return r.json["ekaid"]

    def get(self, ident, tok):
        r = self.req("GET", "/cdr/v1/clinic/%s/" % q(ident), token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json.get("status"), "success", r)
        self.assertIsInstance(r.json.get("clinic"), dict, r)
        return r.json["clinic"]

    def listing(self, tok):
        r = self.req("GET", "/cdr/v1/clinic/", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json.get("status"), "success", r)
        self.assertIsInstance(r.json.get("clinics"), list, r)
        return r.json["clinics"]

    def snapshot(self, tok):
        r = self.req("GET", "/cdr/v1/doctor/", token=tok)
        doctors = r.json.get("doctors") if r.status == 200 and r.json else r.status
        return {"clinics": self.listing(tok), "doctors": doctors}

    def assertFieldError(self, r, field, status=400):
        self.assertError(r, status, field=field)
        self.assertIn(field, self.msg(r), r)

    def assertNotFound(self, r):
        self.assertError(r, 404)
        self.assertEqual(self.msg(r), "Clinic not found", r)


class TestClinicCreateAndRead(ClinicApi):

    def test_create_minimal_shape(self):
        t = self.tenant()
        cid = self.create(MINIMAL, t)
        c = self.get(cid, t)
        self.assertEqual(set(c), CLINIC_MIN_KEYS)
        self.assertEqual(c["id"], cid)
        self.assertEqual(c["name"], "Sunrise Clinic")
        self.assertEqual(c["address"], "123 Main Street, Block A")
        for k in ("pincode", "contact", "city", "state", "partner_id"):
            self.assertNotIn(k, c)
        self.assertEqual(c["doctors"], [])
        self.assertIsInstance(c["created_at"], str)
        self.assertIsInstance(c["updated_at"], str)

    def test_create_full_reads_back(self):
        t = self.tenant()
        cid = self.create(FULL, t)
        c = self.get(cid, t)
        for k, v in FULL.items():
            self.assertEqual(c[k], v, k)
        self.assertEqual(set(c), CLINIC_KEYS)
        self.assertEqual(c["doctors"], [])
        self.assertEqual(self.listing(t), [c])

    def test_valid_edge_values(self):
        t = self.tenant()
        cases = [
            {"contact": "08012345678"},                     # 11 digits
            {"contact": "0000000000"},
            {"pincode": "000000"},
            {"name": "N" * 100},
            {"name": "\u0938\u0942\u0930\u094d\u092f\u094b\u0926\u092f \u0915\u094d\u0932\u093f\u0928\u093f\u0915"},
            {"partner_id": "P" * 128},
            {"city": "M\u00fcnchen", "state": "Bayern"},
        ]
        for extra in cases:
            with self.subTest(extra=str(extra)[:60]):
                cid = self.create(dict(MINIMAL, **extra), t)
                c = self.get(cid, t)
                for k, v in extra.items():
                    self.assertEqual(c[k], v, k)

    def test_ids_unique_and_well_formed(self):
        t = self.tenant()
        ids = [self.create(MINIMAL, t) for _ in range(25)]
        self.assertEqual(len(set(ids)), 25)
        for i in ids:
            self.assertRegex(i, CLINIC_ID)
        for i in ids[:5]:
            self.assertEqual(self.req("DELETE", "/cdr/v1/clinic/%s/" % i, token=t).status, 200)
        more = [self.create(MINIMAL, t) for _ in range(5)]
        self.assertFalse(set(more) & set(ids))

    def test_list_in_creation_order_and_omits_deleted(self):
        t = self.tenant()
        self.assertEqual(self.listing(t), [])
        ids = [self.create(dict(MINIMAL, name="Clinic %d" % i), t) for i in range(6)]
        self.assertEqual([c["id"] for c in self.listing(t)], ids)
        self.assertEqual([c["name"] for c in self.listing(t)], ["Clinic %d" % i for i in range(6)])
        self.req("DELETE", "/cdr/v1/clinic/%s/" % ids[0], token=t)
        self.assertEqual([c["id"] for c in self.listing(t)], ids[1:])
        for c in self.listing(t):
            self.assertEqual(set(c), CLINIC_MIN_KEYS, c)

    def test_trailing_slash_optional(self):
        t = self.tenant()
        r = self.req("POST", "/cdr/v1/clinic", MINIMAL, token=t)
        self.assertEqual(r.status, 201, r)
        cid = r.json["ekaid"]
        r = self.req("GET", "/cdr/v1/clinic", token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([c["id"] for c in r.json["clinics"]], [cid])
        r = self.req("GET", "/cdr/v1/clinic/" + cid, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["clinic"]["id"], cid)
        r = self.req("PATCH", "/cdr/v1/clinic/" + cid, {"city": "Pune"}, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.get(cid, t)["city"], "Pune")
        r = self.req("DELETE", "/cdr/v1/clinic/" + cid, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.listing(t), [])

    def test_get_by_partner_id_and_percent_decoding(self):
        t = self.tenant()
        cid = self.create(dict(MINIMAL, partner_id="Clinic 321 Indore&\u00e9"), t)
        self.assertEqual(self.get("Clinic 321 Indore&\u00e9", t)["id"], cid)
        r = self.req("GET", "/cdr/v1/clinic/%s/" % cid.replace("c-", "%63%2D", 1), token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["clinic"]["id"], cid)
        self.assertNotFound(self.req("GET", "/cdr/v1/clinic/Clinic%20321/", token=t))

    def test_partner_id_equal_to_an_eka_id_is_refused(self):
        # a partner id shaped like a clinic's Eka id would make {id} match two clinics
        t = self.tenant()
        c1 = self.create(dict(MINIMAL, name="First"), t)
        before = self.snapshot(t)
        r = self.req("POST", "/cdr/v1/clinic/", dict(MINIMAL, name="Second", partner_id=c1), token=t)
        self.assertEqual(r.status, 400, r)
        self.assertIn("partner_id", r.json["errors"], r)
        r = self.req("PATCH", "/cdr/v1/clinic/%s/" % c1, {"partner_id": c1}, token=t)
        self.assertEqual(r.status, 400, r)
        self.assertIn("partner_id", r.json["errors"], r)
        self.assertEqual(self.snapshot(t), before)

    def test_not_found(self):
        t = self.tenant()
        self.create(MINIMAL, t)
        before = self.snapshot(t)
        for ident in ("c-000000000000000000000000", "nope", "Clinic_321_Indore"):
            with self.subTest(ident=ident):
                self.assertNotFound(self.req("GET", "/cdr/v1/clinic/%s/" % ident, token=t))
                self.assertNotFound(self.req("PATCH", "/cdr/v1/clinic/%s/" % ident,
                                             {"city": "x"}, token=t))
                self.assertNotFound(self.req("DELETE", "/cdr/v1/clinic/%s/" % ident, token=t))
        self.assertEqual(self.snapshot(t), before)

    def test_wrong_method_on_item(self):
        t = self.tenant()
        cid = self.create(MINIMAL, t)
        before = self.snapshot(t)
        for m in ("PUT", "POST"):
            r = self.req(m, "/cdr/v1/clinic/%s/" % cid, MINIMAL, token=t)
            self.assertError(r, 405)
            allow = {a.strip().upper() for a in r.headers.get("allow", "").split(",")}
            self.assertTrue({"GET", "PATCH", "DELETE"} <= allow, r.headers)
        self.assertEqual(self.snapshot(t), before)


class TestClinicPatchDelete(ClinicApi):

    def test_patch_changes_only_present_fields(self):
        t = self.tenant()
        cid = self.create(FULL, t)
        before = self.get(cid, t)
        r = self.req("PATCH", "/cdr/v1/clinic/%s/" % cid,
                     {"address": "456 New Street, Block B", "contact": "08098765432"}, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "ekaid": cid})
        after = self.get(cid, t)
        expected = dict(before, address="456 New Street, Block B", contact="08098765432")
        expected["updated_at"] = after["updated_at"]
        self.assertEqual(after, expected)

    def test_patch_every_field(self):
        t = self.tenant()
        cid = self.create(MINIMAL, t)
        body = {"name": "Moonrise", "address": "9 Lake Road", "partner_id": "moon-1",
                "pincode": "411001", "contact": "02012345678", "city": "Pune", "state": "Maharashtra"}
        r = self.req("PATCH", "/cdr/v1/clinic/%s/" % cid, body, token=t)
        self.assertEqual(r.status, 200, r)
        c = self.get("moon-1", t)
        self.assertEqual(c["id"], cid)
        for k, v in body.items():
            self.assertEqual(c[k], v, k)

    def test_patch_by_partner_id(self):
        t = self.tenant()
        cid = self.create(dict(MINIMAL, partner_id="pc 9"), t)
        r = self.req("PATCH", "/cdr/v1/clinic/pc%209/", {"state": "Goa"}, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "ekaid": cid})
        self.assertEqual(self.get(cid, t)["state"], "Goa")

    def test_patch_null_clears_optional_fields(self):
        t = self.tenant()
        cid = self.create(FULL, t)
        r = self.req("PATCH", "/cdr/v1/clinic/%s/" % cid,
                     {"pincode": None, "contact": None, "city": None, "state": None, "partner_id": None},
                     token=t)
        self.assertEqual(r.status, 200, r)
        c = self.get(cid, t)
        for k in ("pincode", "contact", "city", "state", "partner_id"):
            self.assertNotIn(k, c)
        self.assertEqual(set(c), CLINIC_MIN_KEYS)
        self.assertEqual(c["name"], FULL["name"])
        self.assertEqual(c["address"], FULL["address"])
        self.assertNotFound(self.req("GET", "/cdr/v1/clinic/Clinic_321_Indore/", token=t))

    def test_patch_null_on_required_field(self):
        t = self.tenant()
        cid = self.create(FULL, t)
        before = self.snapshot(t)
        for f in ("name", "address"):
            with self.subTest(field=f):
                r = self.req("PATCH", "/cdr/v1/clinic/%s/" % cid, {f: None, "city": "Changed"}, token=t)
                self.assertFieldError(r, f)
                self.assertEqual(self.snapshot(t), before)

    def test_patch_empty_body(self):
        t = self.tenant()
        cid = self.create(FULL, t)
        before = self.snapshot(t)
        r = self.req("PATCH", "/cdr/v1/clinic/%s/" % cid, {}, token=t)
        self.assertError(r, 400)
        self.assertEqual(self.snapshot(t), before)

    def test_patch_unknown_field(self):
        t = self.tenant()
        cid = self.create(FULL, t)
        before = self.snapshot(t)
        for f in ("mobile", "id", "doctors", "phone"):
            with self.subTest(field=f):
                r = self.req("PATCH", "/cdr/v1/clinic/%s/" % cid, {"city": "Changed", f: "x"}, token=t)
                self.assertError(r, 400)
                self.assertIn(f, self.msg(r), r)
                self.assertEqual(self.snapshot(t), before)

    def test_patch_on_collection_path(self):
        t = self.tenant()
        self.create(FULL, t)
        before = self.snapshot(t)
        for path in ("/cdr/v1/clinic/", "/cdr/v1/clinic"):
            with self.subTest(path=path):
                r = self.req("PATCH", path, {"city": "Changed"}, token=t)
                self.assertError(r, 400)
                self.assertEqual(self.msg(r), "Clinic ID is required for PATCH")
        self.assertEqual(self.snapshot(t), before)

    def test_delete_is_soft_and_final(self):
        t = self.tenant()
        cid = self.create(dict(FULL, partner_id="del-me"), t)
        keep = self.create(MINIMAL, t)
        r = self.req("DELETE", "/cdr/v1/clinic/%s/" % cid, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "message": "Clinic Deleted Successfully"})
        for ident in (cid, "del-me"):
            self.assertNotFound(self.req("GET", "/cdr/v1/clinic/%s/" % ident, token=t))
            self.assertNotFound(self.req("PATCH", "/cdr/v1/clinic/%s/" % ident, {"city": "x"}, token=t))
            self.assertNotFound(self.req("DELETE", "/cdr/v1/clinic/%s/" % ident, token=t))
        self.assertEqual([c["id"] for c in self.listing(t)], [keep])

    def test_delete_by_partner_id(self):
        t = self.tenant()
        cid = self.create(dict(MINIMAL, partner_id="P_del"), t)
        r = self.req("DELETE", "/cdr/v1/clinic/P_del/", token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["message"], "Clinic Deleted Successfully")
        self.assertNotFound(self.req("GET", "/cdr/v1/clinic/%s/" % cid, token=t))


BAD_VALUES = [
    ("name", ""), ("name", "   "), ("name", "N" * 101), ("name", 7), ("name", ["Sunrise"]),
    ("name", "Sun\u001brise"),
    ("address", 123), ("address", ["123 Main Street"]), ("address", "123\u0002Main"),
    ("pincode", "56000"), ("pincode", "5600011"), ("pincode", "56000a"), ("pincode", 560001),
    ("pincode", ""), ("pincode", " 560001"),
    ("contact", "987654321"), ("contact", "987654321012"), ("contact", "+919876543210"),
    ("contact", "98765 43210"), ("contact", "98765-43210"), ("contact", 9876543210), ("contact", ""),
    ("city", 123), ("city", "Pu\u0007ne"), ("state", False), ("state", {"x": 1}),
    ("partner_id", "P" * 129), ("partner_id", 321),
]


class TestClinicValidation(ClinicApi):

    def test_create_rejects_bad_values(self):
        t = self.tenant()
        self.create(FULL, t)
        before = self.snapshot(t)
        for field, value in BAD_VALUES:
            with self.subTest(field=field, value=repr(value)[:40]):
                r = self.req("POST", "/cdr/v1/clinic/", dict(BASE, **{field: value}), token=t)
                self.assertFieldError(r, field)
                self.assertEqual(self.snapshot(t), before)

    def test_patch_rejects_bad_values(self):
        t = self.tenant()
        cid = self.create(FULL, t)
        before = self.snapshot(t)
        for field, value in BAD_VALUES:
            with self.subTest(field=field, value=repr(value)[:40]):
                r = self.req("PATCH", "/cdr/v1/clinic/%s/" % cid, {field: value}, token=t)
                self.assertFieldError(r, field)
                r = self.req("PATCH", "/cdr/v1/clinic/%s/" % cid, {"city": "Changed", field: value},
                             token=t)
                self.assertFieldError(r, field)
                self.assertEqual(self.snapshot(t), before)

    def test_nul_character_is_a_field_error(self):
        """A \\u0000 escape is valid JSON; a string holding it fails the no-control-characters rule
        of its field (issue decision 10), so the 400 carries errors.<field> like any other."""
        t = self.tenant()
        cid = self.create(FULL, t)
        before = self.snapshot(t)
        r = self.req("POST", "/cdr/v1/clinic/", dict(BASE, name="Sun\u0000rise"), token=t)
        self.assertFieldError(r, "name")
        self.assertEqual(self.snapshot(t), before)
        r = self.req("PATCH", "/cdr/v1/clinic/%s/" % cid, {"city": "Pu\u0000ne"}, token=t)
        self.assertFieldError(r, "city")
        self.assertEqual(self.snapshot(t), before)

    def test_create_missing_required(self):
        t = self.tenant()
        before = self.snapshot(t)
        for f in ("name", "address"):
            with self.subTest(field=f):
                body = dict(BASE)
                del body[f]
                self.assertFieldError(self.req("POST", "/cdr/v1/clinic/", body, token=t), f)
                self.assertFieldError(self.req("POST", "/cdr/v1/clinic/", dict(BASE, **{f: None}),
                                               token=t), f)
                self.assertEqual(self.snapshot(t), before)

    def test_create_unknown_field(self):
        t = self.tenant()
        before = self.snapshot(t)
        for f in ("mobile", "doctors", "id", "phone"):
            with self.subTest(field=f):
                r = self.req("POST", "/cdr/v1/clinic/", dict(MINIMAL, **{f: "x"}), token=t)
                self.assertError(r, 400)
                self.assertIn(f, self.msg(r), r)
                self.assertEqual(self.snapshot(t), before)

    def test_create_bad_json(self):
        t = self.tenant()
        before = self.snapshot(t)
        bodies = [
            b'{"name": "Sunrise", "address": "1 Main"',
            b'{"name": "Sunrise" "address": "1 Main"}',
            b'{"name": "Sunrise", "address": "1 Main", "name": "Other"}',
            b'{"name": "Sun\xe2\x28\xa1", "address": "1 Main"}',
            b'[{"name": "Sunrise", "address": "1 Main"}]',
            b'42',
        ]
        for raw in bodies:
            with self.subTest(raw=raw):
                r = self.req("POST", "/cdr/v1/clinic/", raw=raw, token=t)
                self.assertError(r, 400)
                self.assertEqual(self.snapshot(t), before)

    def test_patch_bad_json(self):
        t = self.tenant()
        cid = self.create(FULL, t)
        before = self.snapshot(t)
        for raw in (b'{"city": ', b'{"city": "A", "city": "B"}', b'{"city": "\xff"}', b'true'):
            with self.subTest(raw=raw):
                r = self.req("PATCH", "/cdr/v1/clinic/%s/" % cid, raw=raw, token=t)
                self.assertError(r, 400)
                self.assertEqual(self.snapshot(t), before)


class TestClinicUniqueness(ClinicApi):

    def test_partner_id_conflicts(self):
        t = self.tenant()
        c1 = self.create(dict(MINIMAL, partner_id="dup"), t)
        before = self.snapshot(t)
        r = self.req("POST", "/cdr/v1/clinic/", dict(FULL, partner_id="dup"), token=t)
        self.assertError(r, 409)
        self.assertEqual(self.msg(r), "partner_id already in use")
        self.assertEqual(self.snapshot(t), before)
        c2 = self.create(MINIMAL, t)
        before = self.snapshot(t)
        r = self.req("PATCH", "/cdr/v1/clinic/%s/" % c2, {"partner_id": "dup", "city": "x"}, token=t)
        self.assertError(r, 409)
        self.assertEqual(self.msg(r), "partner_id already in use")
        self.assertEqual(self.snapshot(t), before)
        r = self.req("PATCH", "/cdr/v1/clinic/%s/" % c1, {"partner_id": "dup"}, token=t)
        self.assertEqual(r.status, 200, r)
        self.create(dict(MINIMAL, partner_id="dup"), self.tenant())
        self.assertEqual(self.req("DELETE", "/cdr/v1/clinic/%s/" % c1, token=t).status, 200)
        c3 = self.create(dict(MINIMAL, partner_id="dup"), t)
        self.assertEqual(self.get("dup", t)["id"], c3)

    def test_doctor_and_clinic_partner_ids_are_separate(self):
        """partner_id is unique per resource: a doctor and a clinic may share one."""
        t = self.tenant()
        cid = self.create(dict(MINIMAL, partner_id="shared-1"), t)
        r = self.req("POST", "/cdr/v1/doctor/",
                     {"firstname": "A", "lastname": "B", "gender": "F", "partner_id": "shared-1"}, token=t)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.get("shared-1", t)["id"], cid)

    def test_concurrent_creates_same_partner_id(self):
        t = self.tenant()
        results = []
        lock = threading.Lock()

        def worker():
            r = self.srv.request("POST", "/cdr/v1/clinic/", dict(MINIMAL, partner_id="race"), token=t)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(sorted(r.status for r in results), [201] + [409] * 7, results)
        self.assertEqual(len(self.listing(t)), 1)


class TestClinicTenancyAndPersistence(ClinicApi):

    def test_tenant_isolation(self):
        ta, tb = self.tenant(), self.tenant()
        cid = self.create(dict(FULL, partner_id="iso"), ta)
        before_a = self.snapshot(ta)
        for ident in (cid, "iso"):
            with self.subTest(ident=ident):
                self.assertNotFound(self.req("GET", "/cdr/v1/clinic/%s/" % ident, token=tb))
                self.assertNotFound(self.req("PATCH", "/cdr/v1/clinic/%s/" % ident,
                                             {"city": "hacked"}, token=tb))
                self.assertNotFound(self.req("DELETE", "/cdr/v1/clinic/%s/" % ident, token=tb))
        self.assertEqual(self.listing(tb), [])
        self.assertEqual(self.snapshot(ta), before_a)
        self.assertNotFound(self.req("GET", "/cdr/v1/clinic/%s/" % cid, token=self.tok_b))

    def test_survives_restart(self):
        t = self.tenant()
        c1 = self.create(FULL, t)
        c2 = self.create(dict(MINIMAL, name="Second"), t)
        self.req("PATCH", "/cdr/v1/clinic/%s/" % c2, {"pincode": "110001"}, token=t)
        c3 = self.create(dict(MINIMAL, partner_id="gone"), t)
        self.req("DELETE", "/cdr/v1/clinic/%s/" % c3, token=t)
        before = self.listing(t)
        self.srv.restart()
        self.assertEqual(self.listing(t), before)
        self.assertEqual([c["id"] for c in before], [c1, c2])
        self.assertEqual(self.get("Clinic_321_Indore", t)["id"], c1)
        self.assertEqual(self.get(c2, t)["pincode"], "110001")
        self.assertNotFound(self.req("GET", "/cdr/v1/clinic/gone/", token=t))
        c4 = self.create(MINIMAL, t)
        self.assertNotIn(c4, (c1, c2, c3))


if __name__ == "__main__":
    unittest.main()
