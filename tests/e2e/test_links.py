"""End-to-end tests of the links: doctor-clinic (one many-to-many relation, settable from either
side, ADDED by doctor/clinic PATCH), user-doctors and user-clinics (REPLACED by Eka User PATCH).

Black-box: starts the real binary (HIPUSERS_BIN) through the shared harness.
Every test works in a tenant of its own (a fresh b_id).
Every rejected request is checked for its status, its error body, and that nothing changed.
"""
import itertools
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, make_token  # noqa: E402

BOTH_DOCTORS = "Only one of doctor_ids or partner_doctor_ids should be provided, not both."
BOTH_CLINICS = "Only one of clinic_ids or partner_clinic_ids should be provided, not both."
MISSING_CLINIC = "c-0123456789abcdef01234567"
MISSING_DOCTOR = "do9999999999999"

_tenants = itertools.count(1)
_seq = itertools.count(1)

KIND = {"doctor": ("doctor", "doctors"), "clinic": ("clinic", "clinics"), "ekauser": ("user", "users")}


def q(s):
    return urllib.parse.quote(s, safe="")


class LinkApi(ServerTestCase):

    def tenant(self):
        return make_token("43%014d" % next(_tenants))

    # -- creation -----------------------------------------------------------------------------
    def create(self, kind, body, tok):
        r = self.req("POST", "/cdr/v1/%s/" % kind, body, token=tok)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json.get("status"), "success", r)
        return r.json["ekaid"]

    def doctor(self, tok, **kw):
        n = next(_seq)
        body = {"firstname": "Doc%d" % n, "lastname": "Last%d" % n, "gender": "M"}
        body.update(kw)
        return self.create("doctor", body, tok)

    def clinic(self, tok, **kw):
        n = next(_seq)
        body = {"name": "Clinic %d" % n, "address": "%d Main Street" % n}
        body.update(kw)
        return self.create("clinic", body, tok)

    def user(self, tok, **kw):
        n = next(_seq)
        body = {"firstname": "User%d" % n, "lastname": "Kumar", "gender": "F", "dob": "1990-05-15",
                "email": "user%d@example.com" % n}
        body.update(kw)
        return self.create("ekauser", body, tok)

    # -- reading ------------------------------------------------------------------------------
    def get(self, kind, ident, tok):
        one = KIND[kind][0]
        r = self.req("GET", "/cdr/v1/%s/%s/" % (kind, q(ident)), token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json.get("status"), "success", r)
        return r.json[one]

    def listing(self, kind, tok):
        many = KIND[kind][1]
        r = self.req("GET", "/cdr/v1/%s/" % kind, token=tok)
        self.assertEqual(r.status, 200, r)
        return r.json[many]

    def snapshot(self, tok):
        return {k: self.listing(k, tok) for k in ("doctor", "clinic", "ekauser")}

    def clinics_of(self, kind, ident, tok):
        """Ids of the clinics shown on a doctor or user; checks each entry's shape."""
        entries = self.get(kind, ident, tok)["clinics"]
        self.assertIsInstance(entries, list)
        for e in entries:
            self.assertIn("id", e)
            self.assertIn("name", e)
        ids = [e["id"] for e in entries]
        self.assertEqual(len(ids), len(set(ids)), entries)
        return set(ids)

    def doctors_of(self, kind, ident, tok):
        """Ids of the doctors shown on a clinic or user; checks each entry's shape."""
        entries = self.get(kind, ident, tok)["doctors"]
        self.assertIsInstance(entries, list)
        for e in entries:
            self.assertIn("id", e)
            self.assertIn("firstname", e)
            self.assertIn("lastname", e)
        ids = [e["id"] for e in entries]
        self.assertEqual(len(ids), len(set(ids)), entries)
        return set(ids)

    def patch(self, kind, ident, body, tok):
        r = self.req("PATCH", "/cdr/v1/%s/%s/" % (kind, q(ident)), body, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json.get("status"), "success", r)
        return r

    def assertRejected(self, r, tok, before, mention=None, status=400):
        self.assertError(r, status)
        if mention is not None:
            self.assertIn(mention, self.msg(r), r)
        self.assertEqual(self.snapshot(tok), before)


class TestDoctorClinicLinks(LinkApi):

    def test_doctor_created_with_clinic_ids_shows_from_both_sides(self):
        t = self.tenant()
        c1, c2, c3 = self.clinic(t, name="Sunrise"), self.clinic(t), self.clinic(t)
        d = self.doctor(t, clinic_ids=[c1, c2])
        self.assertEqual(self.clinics_of("doctor", d, t), {c1, c2})
        self.assertEqual(self.doctors_of("clinic", c1, t), {d})
        self.assertEqual(self.doctors_of("clinic", c2, t), {d})
        self.assertEqual(self.doctors_of("clinic", c3, t), set())
        doc = self.get("doctor", d, t)
        self.assertIn({"id": c1, "name": "Sunrise"},
                      [{"id": e["id"], "name": e["name"]} for e in doc["clinics"]])
        cl = self.get("clinic", c1, t)
        self.assertEqual([{k: e[k] for k in ("id", "firstname", "lastname")} for e in cl["doctors"]],
                         [{"id": d, "firstname": doc["firstname"], "lastname": doc["lastname"]}])
        # the lists carry the same links
        ld = {x["id"]: x for x in self.listing("doctor", t)}
        self.assertEqual({e["id"] for e in ld[d]["clinics"]}, {c1, c2})
        lc = {x["id"]: x for x in self.listing("clinic", t)}
        self.assertEqual({e["id"] for e in lc[c2]["doctors"]}, {d})

    def test_doctor_created_with_partner_clinic_ids(self):
        t = self.tenant()
        c1 = self.clinic(t, partner_id="Part_clinic_1")
        c2 = self.clinic(t, partner_id="Part clinic 2")
        d = self.doctor(t, partner_clinic_ids=["Part_clinic_1", "Part clinic 2"])
        self.assertEqual(self.clinics_of("doctor", d, t), {c1, c2})
        self.assertEqual(self.doctors_of("clinic", "Part_clinic_1", t), {d})

    def test_clinic_created_with_doctor_ids_and_partner_doctor_ids(self):
        t = self.tenant()
        d1, d2 = self.doctor(t), self.doctor(t, partner_id="Part_Doc_2")
        c1 = self.clinic(t, doctor_ids=[d1, d2])
        self.assertEqual(self.doctors_of("clinic", c1, t), {d1, d2})
        c2 = self.clinic(t, partner_doctor_ids=["Part_Doc_2"])
        self.assertEqual(self.doctors_of("clinic", c2, t), {d2})
        self.assertEqual(self.clinics_of("doctor", d1, t), {c1})
        self.assertEqual(self.clinics_of("doctor", d2, t), {c1, c2})

    def test_doctor_patch_adds_clinics(self):
        t = self.tenant()
        c1, c2, c3 = self.clinic(t), self.clinic(t), self.clinic(t, partner_id="pc3")
        d = self.doctor(t, clinic_ids=[c1], about="keep me")
        r = self.patch("doctor", d, {"clinic_ids": [c2]}, t)
        self.assertEqual(r.json, {"status": "success", "ekaid": d})
        self.assertEqual(self.clinics_of("doctor", d, t), {c1, c2})
        self.patch("doctor", d, {"partner_clinic_ids": ["pc3"]}, t)
        self.assertEqual(self.clinics_of("doctor", d, t), {c1, c2, c3})
        # re-adding an existing link is no duplicate; an empty list removes nothing
        self.patch("doctor", d, {"clinic_ids": [c1, c1]}, t)
        self.patch("doctor", d, {"clinic_ids": []}, t)
        self.assertEqual(self.clinics_of("doctor", d, t), {c1, c2, c3})
        self.assertEqual(self.get("doctor", d, t)["about"], "keep me")
        for c in (c1, c2, c3):
            self.assertEqual(self.doctors_of("clinic", c, t), {d})

    def test_clinic_patch_adds_doctors(self):
        t = self.tenant()
        d1, d2, d3 = self.doctor(t), self.doctor(t, partner_id="pd2"), self.doctor(t)
        c = self.clinic(t, doctor_ids=[d1], city="Pune")
        r = self.patch("clinic", c, {"partner_doctor_ids": ["pd2"]}, t)
        self.assertEqual(r.json, {"status": "success", "ekaid": c})
        self.assertEqual(self.doctors_of("clinic", c, t), {d1, d2})
        self.patch("clinic", c, {"doctor_ids": [d3, d1]}, t)
        self.assertEqual(self.doctors_of("clinic", c, t), {d1, d2, d3})
        self.assertEqual(self.get("clinic", c, t)["city"], "Pune")
        for d in (d1, d2, d3):
            self.assertEqual(self.clinics_of("doctor", d, t), {c})

    def test_one_relation_from_either_side(self):
        t = self.tenant()
        d, c = self.doctor(t), self.clinic(t)
        self.patch("clinic", c, {"doctor_ids": [d]}, t)
        self.patch("doctor", d, {"clinic_ids": [c]}, t)
        self.assertEqual(len(self.get("clinic", c, t)["doctors"]), 1)
        self.assertEqual(len(self.get("doctor", d, t)["clinics"]), 1)

    def test_duplicates_collapsed_on_create(self):
        t = self.tenant()
        c = self.clinic(t, partner_id="pc")
        d = self.doctor(t, clinic_ids=[c, c, c])
        self.assertEqual(len(self.get("doctor", d, t)["clinics"]), 1)
        d2 = self.doctor(t, partner_clinic_ids=["pc", "pc"])
        self.assertEqual(self.clinics_of("doctor", d2, t), {c})
        self.assertEqual(self.doctors_of("clinic", c, t), {d, d2})

    def test_link_reads_follow_renames(self):
        t = self.tenant()
        c = self.clinic(t, name="Old Name")
        d = self.doctor(t, firstname="Old", lastname="Doc", clinic_ids=[c])
        u = self.user(t, doctor_ids=[d], clinic_ids=[c])
        self.patch("doctor", d, {"firstname": "New", "lastname": "Doctor"}, t)
        self.patch("clinic", c, {"name": "New Name"}, t)
        self.assertEqual([(e["id"], e["firstname"], e["lastname"]) for e in self.get("clinic", c, t)["doctors"]],
                         [(d, "New", "Doctor")])
        self.assertEqual([(e["id"], e["name"]) for e in self.get("doctor", d, t)["clinics"]],
                         [(c, "New Name")])
        usr = self.get("ekauser", u, t)
        self.assertEqual([(e["id"], e["firstname"], e["lastname"]) for e in usr["doctors"]],
                         [(d, "New", "Doctor")])
        self.assertEqual([(e["id"], e["name"]) for e in usr["clinics"]], [(c, "New Name")])


class TestUserLinks(LinkApi):

    def test_user_created_with_links(self):
        t = self.tenant()
        d1, d2 = self.doctor(t), self.doctor(t, partner_id="Part_doc_2")
        c1, c2 = self.clinic(t), self.clinic(t, partner_id="Part_clinic_2")
        u1 = self.user(t, doctor_ids=[d1, d2], clinic_ids=[c1])
        self.assertEqual(self.doctors_of("ekauser", u1, t), {d1, d2})
        self.assertEqual(self.clinics_of("ekauser", u1, t), {c1})
        u2 = self.user(t, partner_doctor_ids=["Part_doc_2"], partner_clinic_ids=["Part_clinic_2"])
        self.assertEqual(self.doctors_of("ekauser", u2, t), {d2})
        self.assertEqual(self.clinics_of("ekauser", u2, t), {c2})
        u3 = self.user(t)
        self.assertEqual(self.get("ekauser", u3, t)["doctors"], [])
        self.assertEqual(self.get("ekauser", u3, t)["clinics"], [])
        # user links are not doctor-clinic links
        self.assertEqual(self.clinics_of("doctor", d1, t), set())
        self.assertEqual(self.doctors_of("clinic", c1, t), set())

    def test_user_patch_replaces_links(self):
        t = self.tenant()
        d1, d2, d3 = self.doctor(t), self.doctor(t), self.doctor(t, partner_id="pd3")
        c1, c2 = self.clinic(t), self.clinic(t, partner_id="pc2")
        u = self.user(t, doctor_ids=[d1, d2], clinic_ids=[c1])
        r = self.patch("ekauser", u, {"doctor_ids": [d3]}, t)
        self.assertEqual(r.json, {"status": "success", "ekaid": u})
        self.assertEqual(self.doctors_of("ekauser", u, t), {d3})
        self.assertEqual(self.clinics_of("ekauser", u, t), {c1})   # untouched
        self.patch("ekauser", u, {"partner_clinic_ids": ["pc2"]}, t)
        self.assertEqual(self.clinics_of("ekauser", u, t), {c2})
        self.assertEqual(self.doctors_of("ekauser", u, t), {d3})
        self.patch("ekauser", u, {"partner_doctor_ids": ["pd3"], "clinic_ids": [c1, c2, c1]}, t)
        self.assertEqual(self.doctors_of("ekauser", u, t), {d3})
        self.assertEqual(self.clinics_of("ekauser", u, t), {c1, c2})
        self.patch("ekauser", u, {"doctor_ids": [], "clinic_ids": []}, t)
        self.assertEqual(self.get("ekauser", u, t)["doctors"], [])
        self.assertEqual(self.get("ekauser", u, t)["clinics"], [])
        # the doctors and clinics themselves are untouched
        self.assertEqual(len(self.listing("doctor", t)), 3)
        self.assertEqual(len(self.listing("clinic", t)), 2)

    def test_user_patch_other_fields_keeps_links(self):
        t = self.tenant()
        d, c = self.doctor(t), self.clinic(t)
        u = self.user(t, doctor_ids=[d], clinic_ids=[c])
        self.patch("ekauser", u, {"lastname": "Verma", "seat_type": "p"}, t)
        self.assertEqual(self.doctors_of("ekauser", u, t), {d})
        self.assertEqual(self.clinics_of("ekauser", u, t), {c})

    def test_user_list_shows_links(self):
        t = self.tenant()
        d, c = self.doctor(t), self.clinic(t)
        u1 = self.user(t, doctor_ids=[d])
        u2 = self.user(t, clinic_ids=[c])
        users = self.listing("ekauser", t)
        self.assertEqual([x["id"] for x in users], [u1, u2])
        self.assertEqual([[e["id"] for e in x["doctors"]] for x in users], [[d], []])
        self.assertEqual([[e["id"] for e in x["clinics"]] for x in users], [[], [c]])


class TestLinkErrors(LinkApi):

    def test_both_forms_rejected(self):
        t = self.tenant()
        d = self.doctor(t, partner_id="pd")
        c = self.clinic(t, partner_id="pc")
        u = self.user(t)
        before = self.snapshot(t)
        cases = [
            ("POST", "/cdr/v1/doctor/", {"firstname": "A", "lastname": "B", "gender": "M",
                                         "clinic_ids": [c], "partner_clinic_ids": ["pc"]}, BOTH_CLINICS),
            ("PATCH", "/cdr/v1/doctor/%s/" % d, {"clinic_ids": [c], "partner_clinic_ids": ["pc"]},
             BOTH_CLINICS),
            ("POST", "/cdr/v1/clinic/", {"name": "X", "address": "Y",
                                         "doctor_ids": [d], "partner_doctor_ids": ["pd"]}, BOTH_DOCTORS),
            ("PATCH", "/cdr/v1/clinic/%s/" % c, {"doctor_ids": [d], "partner_doctor_ids": ["pd"]},
             BOTH_DOCTORS),
            ("POST", "/cdr/v1/ekauser/", {"firstname": "A", "lastname": "B", "gender": "M",
                                          "dob": "1990-01-01", "email": "both@example.com",
                                          "doctor_ids": [d], "partner_doctor_ids": ["pd"]}, BOTH_DOCTORS),
            ("POST", "/cdr/v1/ekauser/", {"firstname": "A", "lastname": "B", "gender": "M",
                                          "dob": "1990-01-01", "email": "both@example.com",
                                          "clinic_ids": [c], "partner_clinic_ids": ["pc"]}, BOTH_CLINICS),
            ("PATCH", "/cdr/v1/ekauser/%s/" % u, {"doctor_ids": [d], "partner_doctor_ids": ["pd"]},
             BOTH_DOCTORS),
            ("PATCH", "/cdr/v1/ekauser/%s/" % u, {"clinic_ids": [c], "partner_clinic_ids": ["pc"]},
             BOTH_CLINICS),
        ]
        for method, path, body, msg in cases:
            with self.subTest(method=method, path=path, body=sorted(body)):
                r = self.req(method, path, body, token=t)
                self.assertError(r, 400)
                # the spec's 400 of a create carries its message in a list
                self.assertEqual(r.json["message"], [msg] if method == "POST" else msg, r)
                self.assertEqual(self.snapshot(t), before)

    def test_unknown_ids_rejected_and_nothing_changes(self):
        t = self.tenant()
        d = self.doctor(t, partner_id="pd")
        c = self.clinic(t, partner_id="pc")
        c2 = self.clinic(t)
        d2 = self.doctor(t)
        u = self.user(t, doctor_ids=[d], clinic_ids=[c])
        before = self.snapshot(t)
        doc = {"firstname": "A", "lastname": "B", "gender": "M"}
        cli = {"name": "X", "address": "Y"}
        usr = {"firstname": "A", "lastname": "B", "gender": "M", "dob": "1990-01-01",
               "email": "new@example.com"}
        cases = [
            ("POST", "/cdr/v1/doctor/", dict(doc, clinic_ids=[c, MISSING_CLINIC]), MISSING_CLINIC),
            ("POST", "/cdr/v1/doctor/", dict(doc, partner_clinic_ids=["pc", "no-such-pc"]), "no-such-pc"),
            ("PATCH", "/cdr/v1/doctor/%s/" % d, {"clinic_ids": [c2, MISSING_CLINIC]}, MISSING_CLINIC),
            ("PATCH", "/cdr/v1/doctor/%s/" % d, {"about": "x", "partner_clinic_ids": ["no-such-pc"]},
             "no-such-pc"),
            ("POST", "/cdr/v1/clinic/", dict(cli, doctor_ids=[d, MISSING_DOCTOR]), MISSING_DOCTOR),
            ("POST", "/cdr/v1/clinic/", dict(cli, partner_doctor_ids=["no-such-pd"]), "no-such-pd"),
            ("PATCH", "/cdr/v1/clinic/%s/" % c2, {"doctor_ids": [d2, MISSING_DOCTOR]}, MISSING_DOCTOR),
            ("PATCH", "/cdr/v1/clinic/%s/" % c2, {"city": "x", "partner_doctor_ids": ["pd", "no-such-pd"]},
             "no-such-pd"),
            ("POST", "/cdr/v1/ekauser/", dict(usr, doctor_ids=[MISSING_DOCTOR]), MISSING_DOCTOR),
            ("POST", "/cdr/v1/ekauser/", dict(usr, clinic_ids=[c, MISSING_CLINIC]), MISSING_CLINIC),
            ("POST", "/cdr/v1/ekauser/", dict(usr, partner_doctor_ids=["no-such-pd"]), "no-such-pd"),
            ("PATCH", "/cdr/v1/ekauser/%s/" % u, {"doctor_ids": [d2, MISSING_DOCTOR]}, MISSING_DOCTOR),
            ("PATCH", "/cdr/v1/ekauser/%s/" % u, {"clinic_ids": [c2, MISSING_CLINIC], "lastname": "Z"},
             MISSING_CLINIC),
            ("PATCH", "/cdr/v1/ekauser/%s/" % u, {"partner_clinic_ids": ["no-such-pc"]}, "no-such-pc"),
            # a clinic id given as a doctor id and the other way round
            ("PATCH", "/cdr/v1/clinic/%s/" % c2, {"doctor_ids": [c]}, c),
            ("PATCH", "/cdr/v1/doctor/%s/" % d2, {"clinic_ids": [d]}, d),
        ]
        for method, path, body, mention in cases:
            with self.subTest(method=method, path=path, body=str(body)[:90]):
                r = self.req(method, path, body, token=t)
                self.assertRejected(r, t, before, mention)
                field = [k for k in body if k.endswith("_ids")][0]
                self.assertIn(field, r.json.get("errors", {}), r)

    def test_partner_forms_resolve_by_partner_id_only(self):
        """clinic_ids take Eka ids, partner_clinic_ids take partner ids; no cross-over."""
        t = self.tenant()
        c = self.clinic(t, partner_id="pc-only")
        d = self.doctor(t, partner_id="pd-only")
        target_d, target_c = self.doctor(t), self.clinic(t)
        before = self.snapshot(t)
        cases = [
            ("/cdr/v1/doctor/%s/" % target_d, {"partner_clinic_ids": [c]}, c),
            ("/cdr/v1/doctor/%s/" % target_d, {"clinic_ids": ["pc-only"]}, "pc-only"),
            ("/cdr/v1/clinic/%s/" % target_c, {"partner_doctor_ids": [d]}, d),
            ("/cdr/v1/clinic/%s/" % target_c, {"doctor_ids": ["pd-only"]}, "pd-only"),
        ]
        for path, body, mention in cases:
            with self.subTest(path=path, body=body):
                self.assertRejected(self.req("PATCH", path, body, token=t), t, before, mention)

    def test_deleted_ids_rejected(self):
        t = self.tenant()
        dead_d = self.doctor(t, partner_id="dead-d")
        dead_c = self.clinic(t, partner_id="dead-c")
        for kind, i in (("doctor", dead_d), ("clinic", dead_c)):
            self.assertEqual(self.req("DELETE", "/cdr/v1/%s/%s/" % (kind, i), token=t).status, 200)
        d, c = self.doctor(t), self.clinic(t)
        u = self.user(t, doctor_ids=[d], clinic_ids=[c])
        before = self.snapshot(t)
        cases = [
            ("PATCH", "/cdr/v1/doctor/%s/" % d, {"clinic_ids": [dead_c]}, dead_c),
            ("PATCH", "/cdr/v1/doctor/%s/" % d, {"partner_clinic_ids": ["dead-c"]}, "dead-c"),
            ("PATCH", "/cdr/v1/clinic/%s/" % c, {"doctor_ids": [dead_d]}, dead_d),
            ("PATCH", "/cdr/v1/clinic/%s/" % c, {"partner_doctor_ids": ["dead-d"]}, "dead-d"),
            ("PATCH", "/cdr/v1/ekauser/%s/" % u, {"doctor_ids": [dead_d]}, dead_d),
            ("PATCH", "/cdr/v1/ekauser/%s/" % u, {"clinic_ids": [dead_c]}, dead_c),
            ("POST", "/cdr/v1/doctor/", {"firstname": "A", "lastname": "B", "gender": "M",
                                         "clinic_ids": [dead_c]}, dead_c),
            ("POST", "/cdr/v1/clinic/", {"name": "X", "address": "Y", "doctor_ids": [dead_d]}, dead_d),
        ]
        for method, path, body, mention in cases:
            with self.subTest(method=method, path=path, body=body):
                self.assertRejected(self.req(method, path, body, token=t), t, before, mention)

    def test_other_tenants_ids_rejected(self):
        ta, tb = self.tenant(), self.tenant()
        da = self.doctor(ta, partner_id="shared-pd")
        ca = self.clinic(ta, partner_id="shared-pc")
        db, cb = self.doctor(tb), self.clinic(tb)
        ub = self.user(tb)
        before_a, before_b = self.snapshot(ta), self.snapshot(tb)
        cases = [
            ("PATCH", "/cdr/v1/doctor/%s/" % db, {"clinic_ids": [ca]}, ca),
            ("PATCH", "/cdr/v1/doctor/%s/" % db, {"partner_clinic_ids": ["shared-pc"]}, "shared-pc"),
            ("PATCH", "/cdr/v1/clinic/%s/" % cb, {"doctor_ids": [da]}, da),
            ("PATCH", "/cdr/v1/clinic/%s/" % cb, {"partner_doctor_ids": ["shared-pd"]}, "shared-pd"),
            ("PATCH", "/cdr/v1/ekauser/%s/" % ub, {"doctor_ids": [da]}, da),
            ("PATCH", "/cdr/v1/ekauser/%s/" % ub, {"clinic_ids": [ca]}, ca),
            ("POST", "/cdr/v1/doctor/", {"firstname": "A", "lastname": "B", "gender": "M",
                                         "clinic_ids": [ca]}, ca),
            ("POST", "/cdr/v1/clinic/", {"name": "X", "address": "Y", "doctor_ids": [da]}, da),
            ("POST", "/cdr/v1/ekauser/", {"firstname": "A", "lastname": "B", "gender": "M",
                                          "dob": "1990-01-01", "email": "x@example.com",
                                          "partner_clinic_ids": ["shared-pc"]}, "shared-pc"),
        ]
        for method, path, body, mention in cases:
            with self.subTest(method=method, path=path, body=body):
                self.assertRejected(self.req(method, path, body, token=tb), tb, before_b, mention)
        self.assertEqual(self.snapshot(ta), before_a)
        # the harness's own tenant B token cannot link to tenant A's records either
        r = self.req("POST", "/cdr/v1/doctor/", {"firstname": "A", "lastname": "B", "gender": "M",
                                                 "clinic_ids": [ca]}, token=self.tok_b)
        self.assertError(r, 400)

    def test_partner_ids_resolve_within_the_tenant(self):
        """Two tenants with the same partner_id: each link goes to the caller's own record."""
        ta, tb = self.tenant(), self.tenant()
        da = self.doctor(ta, partner_id="same-pd")
        ca = self.clinic(ta, partner_id="same-pc")
        db = self.doctor(tb, partner_id="same-pd")
        cb = self.clinic(tb, partner_id="same-pc")
        c = self.clinic(tb, partner_doctor_ids=["same-pd"])
        d = self.doctor(tb, partner_clinic_ids=["same-pc"])
        u = self.user(tb, partner_doctor_ids=["same-pd"], partner_clinic_ids=["same-pc"])
        self.assertEqual(self.doctors_of("clinic", c, tb), {db})
        self.assertEqual(self.clinics_of("doctor", d, tb), {cb})
        self.assertEqual(self.doctors_of("ekauser", u, tb), {db})
        self.assertEqual(self.clinics_of("ekauser", u, tb), {cb})
        self.assertEqual(self.clinics_of("doctor", da, ta), set())
        self.assertEqual(self.doctors_of("clinic", ca, ta), set())

    def test_bad_link_arrays(self):
        t = self.tenant()
        d, c = self.doctor(t), self.clinic(t)
        u = self.user(t)
        before = self.snapshot(t)
        bad = ["c-x", [""], [1], [None], [[c]], "x" * 10, {"id": c}, ["c" * 129]]
        for kind, ident, field in (("doctor", d, "clinic_ids"), ("doctor", d, "partner_clinic_ids"),
                                   ("clinic", c, "doctor_ids"), ("clinic", c, "partner_doctor_ids"),
                                   ("ekauser", u, "doctor_ids"), ("ekauser", u, "clinic_ids")):
            for value in bad:
                with self.subTest(kind=kind, field=field, value=str(value)[:30]):
                    r = self.req("PATCH", "/cdr/v1/%s/%s/" % (kind, ident), {field: value}, token=t)
                    self.assertRejected(r, t, before)
                    if not (isinstance(value, list) and value and isinstance(value[0], str)
                            and len(value[0]) > 128):
                        self.assertIn(field, r.json.get("errors", {}), r)
        too_many = ["c-%024x" % i for i in range(1001)]
        r = self.req("PATCH", "/cdr/v1/doctor/%s/" % d, {"clinic_ids": too_many}, token=t)
        self.assertRejected(r, t, before)


class TestDeletesAndLinks(LinkApi):

    def test_deleted_doctor_disappears_from_clinics_and_users(self):
        t = self.tenant()
        c1, c2 = self.clinic(t), self.clinic(t)
        d1 = self.doctor(t, clinic_ids=[c1, c2])
        d2 = self.doctor(t, clinic_ids=[c1])
        u = self.user(t, doctor_ids=[d1, d2], clinic_ids=[c1])
        self.assertEqual(self.req("DELETE", "/cdr/v1/doctor/%s/" % d1, token=t).status, 200)
        self.assertEqual(self.doctors_of("clinic", c1, t), {d2})
        self.assertEqual(self.doctors_of("clinic", c2, t), set())
        self.assertEqual(self.doctors_of("ekauser", u, t), {d2})
        for cl in self.listing("clinic", t):
            self.assertNotIn(d1, [e["id"] for e in cl["doctors"]])
        for us in self.listing("ekauser", t):
            self.assertNotIn(d1, [e["id"] for e in us["doctors"]])
        # the clinics and the user are otherwise intact
        self.assertEqual(self.clinics_of("ekauser", u, t), {c1})
        self.assertEqual(self.clinics_of("doctor", d2, t), {c1})

    def test_deleted_clinic_disappears_from_doctors_and_users(self):
        t = self.tenant()
        c1, c2 = self.clinic(t), self.clinic(t)
        d = self.doctor(t, clinic_ids=[c1, c2])
        u = self.user(t, doctor_ids=[d], clinic_ids=[c1, c2])
        self.assertEqual(self.req("DELETE", "/cdr/v1/clinic/%s/" % c1, token=t).status, 200)
        self.assertEqual(self.clinics_of("doctor", d, t), {c2})
        self.assertEqual(self.clinics_of("ekauser", u, t), {c2})
        for doc in self.listing("doctor", t):
            self.assertNotIn(c1, [e["id"] for e in doc["clinics"]])
        for us in self.listing("ekauser", t):
            self.assertNotIn(c1, [e["id"] for e in us["clinics"]])
        self.assertEqual(self.doctors_of("ekauser", u, t), {d})

    def test_deleted_user_leaves_doctors_and_clinics(self):
        t = self.tenant()
        d, c = self.doctor(t), self.clinic(t)
        u = self.user(t, doctor_ids=[d], clinic_ids=[c])
        self.assertEqual(self.req("DELETE", "/cdr/v1/ekauser/%s/" % u, token=t).status, 200)
        self.assertEqual([x["id"] for x in self.listing("doctor", t)], [d])
        self.assertEqual([x["id"] for x in self.listing("clinic", t)], [c])
        u2 = self.user(t, doctor_ids=[d], clinic_ids=[c])
        self.assertEqual(self.doctors_of("ekauser", u2, t), {d})

    def test_reused_partner_id_links_the_live_record(self):
        t = self.tenant()
        old = self.doctor(t, partner_id="pd-reuse")
        c0 = self.clinic(t, doctor_ids=[old])
        self.assertEqual(self.req("DELETE", "/cdr/v1/doctor/%s/" % old, token=t).status, 200)
        new = self.doctor(t, partner_id="pd-reuse")
        c = self.clinic(t, partner_doctor_ids=["pd-reuse"])
        self.assertEqual(self.doctors_of("clinic", c, t), {new})
        self.assertEqual(self.doctors_of("clinic", c0, t), set())
        self.assertEqual(self.clinics_of("doctor", new, t), {c})

    def test_links_survive_restart(self):
        t = self.tenant()
        c1, c2 = self.clinic(t, partner_id="r-c1"), self.clinic(t)
        d1 = self.doctor(t, clinic_ids=[c1])
        d2 = self.doctor(t, partner_id="r-d2")
        self.patch("clinic", c2, {"doctor_ids": [d1, d2]}, t)
        u = self.user(t, doctor_ids=[d2], partner_clinic_ids=["r-c1"])
        before = self.snapshot(t)
        self.srv.restart()
        self.assertEqual(self.snapshot(t), before)
        self.assertEqual(self.clinics_of("doctor", d1, t), {c1, c2})
        self.assertEqual(self.doctors_of("clinic", c2, t), {d1, d2})
        self.assertEqual(self.doctors_of("ekauser", u, t), {d2})
        self.assertEqual(self.clinics_of("ekauser", u, t), {c1})


if __name__ == "__main__":
    unittest.main()
