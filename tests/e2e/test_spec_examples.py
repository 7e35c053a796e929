"""Each request example of the spec (shared/spec/eka-cdr-onboarding.openapi.yaml and the seed,
shared/spec/seed-update-ekauser.md) succeeds when sent with its ids swapped for ones that exist,
and a GET afterwards shows the values sent.

The example bodies below are copied verbatim from the spec. The ids in them are swapped for the
Eka ids of records created first; partner ids (Part_clinic_1, Part_Doc_1, ...) are kept and records
with those partner_ids are created first.

The three POST examples (doctor, clinic, Eka User) each carry both an Eka-id list and its partner_*
form (clinic_ids and partner_clinic_ids, ...). The issue (decision 6) makes that a 400 with
"Only one of ... should be provided, not both.", and the issue wins over the spec: so the example as
written is checked to be that 400 (changing nothing), and it is sent twice more, once keeping only
the Eka-id lists and once keeping only the partner_* lists; both must succeed.

Black-box: starts the real binary (HIPUSERS_BIN) through the shared harness.
"""
import copy
import itertools
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, make_token  # noqa: E402

# ---- the spec's request examples, verbatim ------------------------------------------------------

DOCTOR_POST = {
    "firstname": "Rajesh",
    "lastname": "Sharma",
    "mobile": "0000011111",
    "dob": "1999-01-01",
    "email": "dr.rajesh@example.com",
    "gender": "M",
    "specialisations": ["Cardiology", "Internal Medicine"],
    "qualifications": ["MBBS", "MD", "DM"],
    "about": "Dr. Rajesh Sharma is a renowned cardiologist with over 15 years of experience in "
             "interventional cardiology.",
    "profile_image_url": "https://example.com/images/dr-rajesh.jpg",
    "clinic_ids": ["c-ab2c-34f2d-2gwd-2g2g"],
    "partner_clinic_ids": ["Part_clinic_1"],
    "partner_id": "Part_doc",
}

DOCTOR_PATCH = {
    "about": "Updated bio for the doctor",
    "specialisations": ["Cardiology"],
    "clinic_ids": ["c-ab2c-34f2d-2gwd-2g2g"],
}

CLINIC_POST = {
    "name": "Sunrise Clinic",
    "address": "123 Main Street, Block A",
    "partner_id": "Clinic_321_Indore",
    "pincode": "560001",
    "contact": "9876543210",
    "doctor_ids": ["171266028552522", "171266028552523"],
    "partner_doctor_ids": ["Part_Doc_1", "Part_Doc_2"],
    "city": "Bangalore",
    "state": "Karnataka",
}

CLINIC_PATCH = {
    "address": "456 New Street, Block B",
    "contact": "9876543210",
    "doctor_ids": ["do1769174683513"],
}

EKAUSER_POST = {
    "firstname": "Amit",
    "lastname": "Kumar",
    "mobile": "9876543210",
    "email": "amit.kumar@example.com",
    "auth_userid": "Prateek_@_123",
    "gender": "M",
    "dob": "1990-05-15",
    "is_admin": False,
    "seat_type": "b",
    "persona": "D",
    "doctor_ids": ["171266028552522", "171266028552523"],
    "clinic_ids": ["c-314086a34253rd", "c-415197b45364se"],
    "partner_doctor_ids": ["Part_doc_1", "Part_doc_2"],
    "partner_clinic_ids": ["Part_clinic_1", "Part_clinic_2"],
}

# The seed (seed-update-ekauser.md) and the spec's PATCH /cdr/v1/ekauser/{user_id}/ share this example.
EKAUSER_PATCH = {
    "is_admin": True,
    "seat_type": "p",
    "clinic_ids": ["c-ab2c-34f2d-2gwd-2g2g"],
}

BOTH_DOCTORS = "Only one of doctor_ids or partner_doctor_ids should be provided, not both."
BOTH_CLINICS = "Only one of clinic_ids or partner_clinic_ids should be provided, not both."

_tenants = itertools.count(1)


def q(s):
    return urllib.parse.quote(s, safe="")


def swap(body, ids):
    """A copy of body with every id found in `ids` (example id -> real id) replaced in its lists."""
    out = copy.deepcopy(body)
    for k, v in out.items():
        if isinstance(v, list):
            out[k] = [ids.get(x, x) for x in v]
    return out


def without(body, *keys):
    return {k: v for k, v in body.items() if k not in keys}


class SpecExamples(ServerTestCase):

    def tenant(self):
        return make_token("44%014d" % next(_tenants))

    def create(self, kind, body, tok):
        r = self.req("POST", "/cdr/v1/%s/" % kind, body, token=tok)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json.get("status"), "success", r)
        return r.json["ekaid"]

    def doctor(self, tok, n, **kw):
        return self.create("doctor", dict({"firstname": "Doc%d" % n, "lastname": "Test", "gender": "F"},
                                          **kw), tok)

    def clinic(self, tok, n, **kw):
        return self.create("clinic", dict({"name": "Clinic %d" % n, "address": "%d Lake Road" % n},
                                          **kw), tok)

    def get(self, kind, ident, tok):
        r = self.req("GET", "/cdr/v1/%s/%s/" % (kind, q(ident)), token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json.get("status"), "success", r)
        return r.json[{"doctor": "doctor", "clinic": "clinic", "ekauser": "user"}[kind]]

    def snapshot(self, tok):
        out = {}
        for kind, key in (("doctor", "doctors"), ("clinic", "clinics"), ("ekauser", "users")):
            r = self.req("GET", "/cdr/v1/%s/" % kind, token=tok)
            self.assertEqual(r.status, 200, r)
            out[key] = r.json[key]
        return out

    def ids(self, entries):
        return {e["id"] for e in entries}

    def assertSentValues(self, obj, body, skip=()):
        for k, v in body.items():
            if k in skip or k.endswith("_ids"):
                continue
            self.assertEqual(obj[k], v, k)

    def send_example(self, method, path, body, tok, status):
        r = self.req(method, path, body, token=tok)
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json.get("status"), "success", r)
        self.assertIsInstance(r.json.get("ekaid"), str, r)
        return r.json["ekaid"]

    # ---- doctor -----------------------------------------------------------------------------

    def doctor_tenant(self):
        """A tenant holding the clinics DOCTOR_POST refers to; returns (token, id map, partner clinic)."""
        t = self.tenant()
        c_eka = self.clinic(t, 1)
        c_part = self.clinic(t, 2, partner_id="Part_clinic_1")
        return t, {"c-ab2c-34f2d-2gwd-2g2g": c_eka}, c_part

    def check_doctor(self, t, did, clinics):
        d = self.get("doctor", did, t)
        self.assertSentValues(d, DOCTOR_POST)
        self.assertEqual(d["id"], did)
        self.assertEqual(d["specialisation"], "Cardiology")
        self.assertEqual(self.ids(d["clinics"]), clinics)
        self.assertEqual(self.get("doctor", "Part_doc", t)["id"], did)
        for c in clinics:
            self.assertIn(did, self.ids(self.get("clinic", c, t)["doctors"]))
        return d

    def test_doctor_post_example_as_written_is_both_forms_400(self):
        t, ids, _ = self.doctor_tenant()
        before = self.snapshot(t)
        r = self.req("POST", "/cdr/v1/doctor/", swap(DOCTOR_POST, ids), token=t)
        self.assertError(r, 400)
        self.assertEqual(r.json["message"], [BOTH_CLINICS])  # the spec's 400: a list of strings
        self.assertEqual(self.snapshot(t), before)

    def test_doctor_post_example_with_clinic_ids(self):
        t, ids, _ = self.doctor_tenant()
        body = without(swap(DOCTOR_POST, ids), "partner_clinic_ids")
        did = self.send_example("POST", "/cdr/v1/doctor/", body, t, 201)
        self.check_doctor(t, did, {ids["c-ab2c-34f2d-2gwd-2g2g"]})

    def test_doctor_post_example_with_partner_clinic_ids(self):
        t, ids, c_part = self.doctor_tenant()
        body = without(swap(DOCTOR_POST, ids), "clinic_ids")
        did = self.send_example("POST", "/cdr/v1/doctor/", body, t, 201)
        self.check_doctor(t, did, {c_part})

    def test_doctor_patch_example(self):
        t, ids, c_part = self.doctor_tenant()
        did = self.send_example("POST", "/cdr/v1/doctor/", without(DOCTOR_POST, "clinic_ids"), t, 201)
        before = self.get("doctor", did, t)
        got = self.send_example("PATCH", "/cdr/v1/doctor/%s/" % did, swap(DOCTOR_PATCH, ids), t, 200)
        self.assertEqual(got, did)
        d = self.get("doctor", did, t)
        self.assertEqual(d["about"], "Updated bio for the doctor")
        self.assertEqual(d["specialisations"], ["Cardiology"])
        self.assertEqual(d["specialisation"], "Cardiology")
        # clinic_ids ADD on a doctor
        self.assertEqual(self.ids(d["clinics"]), {c_part, ids["c-ab2c-34f2d-2gwd-2g2g"]})
        for k in ("firstname", "lastname", "mobile", "dob", "email", "gender", "qualifications",
                  "profile_image_url", "partner_id", "created_at"):
            self.assertEqual(d[k], before[k], k)

    # ---- clinic -----------------------------------------------------------------------------

    def clinic_tenant(self):
        t = self.tenant()
        ids = {"171266028552522": self.doctor(t, 1), "171266028552523": self.doctor(t, 2),
               "do1769174683513": self.doctor(t, 3)}
        part = {self.doctor(t, 4, partner_id="Part_Doc_1"), self.doctor(t, 5, partner_id="Part_Doc_2")}
        return t, ids, part

    def check_clinic(self, t, cid, doctors):
        c = self.get("clinic", cid, t)
        self.assertSentValues(c, CLINIC_POST)
        self.assertEqual(c["id"], cid)
        self.assertEqual(self.ids(c["doctors"]), doctors)
        self.assertEqual(self.get("clinic", "Clinic_321_Indore", t)["id"], cid)
        for d in doctors:
            self.assertIn(cid, self.ids(self.get("doctor", d, t)["clinics"]))
        return c

    def test_clinic_post_example_as_written_is_both_forms_400(self):
        t, ids, _ = self.clinic_tenant()
        before = self.snapshot(t)
        r = self.req("POST", "/cdr/v1/clinic/", swap(CLINIC_POST, ids), token=t)
        self.assertError(r, 400)
        self.assertEqual(r.json["message"], [BOTH_DOCTORS])
        self.assertEqual(self.snapshot(t), before)

    def test_clinic_post_example_with_doctor_ids(self):
        t, ids, _ = self.clinic_tenant()
        cid = self.send_example("POST", "/cdr/v1/clinic/",
                                without(swap(CLINIC_POST, ids), "partner_doctor_ids"), t, 201)
        self.check_clinic(t, cid, {ids["171266028552522"], ids["171266028552523"]})

    def test_clinic_post_example_with_partner_doctor_ids(self):
        t, ids, part = self.clinic_tenant()
        cid = self.send_example("POST", "/cdr/v1/clinic/",
                                without(swap(CLINIC_POST, ids), "doctor_ids"), t, 201)
        self.check_clinic(t, cid, part)

    def test_clinic_patch_example(self):
        t, ids, part = self.clinic_tenant()
        cid = self.send_example("POST", "/cdr/v1/clinic/", without(CLINIC_POST, "doctor_ids"), t, 201)
        before = self.get("clinic", cid, t)
        got = self.send_example("PATCH", "/cdr/v1/clinic/%s/" % cid, swap(CLINIC_PATCH, ids), t, 200)
        self.assertEqual(got, cid)
        c = self.get("clinic", cid, t)
        self.assertEqual(c["address"], "456 New Street, Block B")
        self.assertEqual(c["contact"], "9876543210")
        # doctor_ids ADD on a clinic
        self.assertEqual(self.ids(c["doctors"]), part | {ids["do1769174683513"]})
        for k in ("name", "pincode", "city", "state", "partner_id", "created_at"):
            self.assertEqual(c[k], before[k], k)

    # ---- Eka User ---------------------------------------------------------------------------

    def user_tenant(self):
        t = self.tenant()
        ids = {"171266028552522": self.doctor(t, 1), "171266028552523": self.doctor(t, 2),
               "c-314086a34253rd": self.clinic(t, 1), "c-415197b45364se": self.clinic(t, 2),
               "c-ab2c-34f2d-2gwd-2g2g": self.clinic(t, 3)}
        part_d = {self.doctor(t, 3, partner_id="Part_doc_1"), self.doctor(t, 4, partner_id="Part_doc_2")}
        part_c = {self.clinic(t, 4, partner_id="Part_clinic_1"), self.clinic(t, 5, partner_id="Part_clinic_2")}
        return t, ids, part_d, part_c

    def check_user(self, t, uid, doctors, clinics):
        u = self.get("ekauser", uid, t)
        self.assertSentValues(u, EKAUSER_POST, skip=("mobile",))
        self.assertEqual(u["id"], uid)
        self.assertEqual(u["mobile"], "+919876543210")
        self.assertEqual(self.ids(u["doctors"]), doctors)
        self.assertEqual(self.ids(u["clinics"]), clinics)
        return u

    def test_ekauser_post_example_as_written_is_both_forms_400(self):
        t, ids, _, _ = self.user_tenant()
        before = self.snapshot(t)
        r = self.req("POST", "/cdr/v1/ekauser/", swap(EKAUSER_POST, ids), token=t)
        self.assertError(r, 400)
        self.assertIn(r.json["message"], ([BOTH_DOCTORS], [BOTH_CLINICS]), r)
        self.assertEqual(self.snapshot(t), before)

    def test_ekauser_post_example_with_eka_ids(self):
        t, ids, _, _ = self.user_tenant()
        body = without(swap(EKAUSER_POST, ids), "partner_doctor_ids", "partner_clinic_ids")
        uid = self.send_example("POST", "/cdr/v1/ekauser/", body, t, 201)
        self.assertRegex(uid, r"^[0-9]{15}$")
        self.check_user(t, uid, {ids["171266028552522"], ids["171266028552523"]},
                        {ids["c-314086a34253rd"], ids["c-415197b45364se"]})

    def test_ekauser_post_example_with_partner_ids(self):
        t, ids, part_d, part_c = self.user_tenant()
        body = without(swap(EKAUSER_POST, ids), "doctor_ids", "clinic_ids")
        uid = self.send_example("POST", "/cdr/v1/ekauser/", body, t, 201)
        self.check_user(t, uid, part_d, part_c)

    def test_ekauser_post_example_mixed_forms(self):
        """doctor_ids with partner_clinic_ids (and the reverse) is one form per relation: fine."""
        t, ids, part_d, part_c = self.user_tenant()
        body = without(swap(EKAUSER_POST, ids), "partner_doctor_ids", "clinic_ids")
        uid = self.send_example("POST", "/cdr/v1/ekauser/", body, t, 201)
        self.check_user(t, uid, {ids["171266028552522"], ids["171266028552523"]}, part_c)

    def test_ekauser_patch_example_the_seed(self):
        t, ids, _, _ = self.user_tenant()
        body = without(swap(EKAUSER_POST, ids), "partner_doctor_ids", "partner_clinic_ids")
        uid = self.send_example("POST", "/cdr/v1/ekauser/", body, t, 201)
        before = self.get("ekauser", uid, t)
        r = self.req("PATCH", "/cdr/v1/ekauser/%s/" % uid, swap(EKAUSER_PATCH, ids), token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "success", "ekaid": uid})
        u = self.get("ekauser", uid, t)
        self.assertIs(u["is_admin"], True)
        self.assertEqual(u["seat_type"], "p")
        # clinic_ids REPLACE on an Eka User
        self.assertEqual([e["id"] for e in u["clinics"]], [ids["c-ab2c-34f2d-2gwd-2g2g"]])
        self.assertEqual(self.ids(u["doctors"]), self.ids(before["doctors"]))
        for k in ("firstname", "lastname", "mobile", "email", "auth_userid", "gender", "dob",
                  "persona", "partner_id", "created_at"):
            if k in before:
                self.assertEqual(u[k], before[k], k)

    def test_ekauser_patch_example_on_a_minimal_user(self):
        t, ids, _, _ = self.user_tenant()
        uid = self.create("ekauser", {"firstname": "Amit", "lastname": "Kumar", "gender": "M",
                                      "dob": "1990-05-15", "mobile": "9876543210"}, t)
        u = self.get("ekauser", uid, t)
        self.assertIs(u["is_admin"], False)
        self.assertEqual(u["seat_type"], "b")
        self.assertEqual(u["clinics"], [])
        self.send_example("PATCH", "/cdr/v1/ekauser/%s/" % uid, swap(EKAUSER_PATCH, ids), t, 200)
        u = self.get("ekauser", uid, t)
        self.assertIs(u["is_admin"], True)
        self.assertEqual(u["seat_type"], "p")
        self.assertEqual([e["id"] for e in u["clinics"]], [ids["c-ab2c-34f2d-2gwd-2g2g"]])


if __name__ == "__main__":
    unittest.main()
