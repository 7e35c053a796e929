"""Identifiers and text (issue 7, part 4), end to end against the real binary:

- email uniqueness compares NFC + full Unicode case folding, also for rows written before
  the rule (migration 4), and survives a restart;
- invisible and format characters make an email invalid;
- length limits count characters, not bytes;
- partner_id refuses '/', white space around it, "." / ".." and the shape of an Eka id of
  the same resource;
- text fields refuse bidi controls, line/paragraph separators, noncharacters and tag
  characters, and values with nothing visible; ZWJ/ZWNJ are kept; names are trimmed of
  Unicode white space;
- a JSON body declared in another charset than UTF-8 is a 415.

Every refusal is checked for its status, its JSON error naming the field, and that nothing
changed.
"""
import itertools
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import BACKEND, DB, Server, ServerTestCase, make_token, undo_migration_11, undo_migration_12, undo_migration_9  # noqa: E402

USERS, DOCTORS, CLINICS = "/cdr/v1/ekauser/", "/cdr/v1/doctor/", "/cdr/v1/clinic/"
_seq = itertools.count(os.getpid() % 1000 * 100000)
_tenants = itertools.count(1)


def uniq():
    return next(_seq)


def fresh_token():
    return make_token("4%03d%011d" % (os.getpid() % 1000, next(_tenants)))


def user_body(**over):
    n = uniq()
    body = {"firstname": "Amit", "lastname": "Kumar", "gender": "M", "dob": "1990-05-15",
            "mobile": "8%09d" % n}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def doctor_body(**over):
    body = {"firstname": "Asha", "lastname": "Rao", "gender": "F"}
    body.update(over)
    return body


def clinic_body(**over):
    body = {"name": "City Clinic", "address": "12 MG Road"}
    body.update(over)
    return body


def item(base, ident):
    return base + urllib.parse.quote(ident, safe="") + "/"


class TextCase(ServerTestCase):
    def create(self, base, body, tok):
        r = self.req("POST", base, body, token=tok)
        self.assertEqual(r.status, 201, r)
        return r.json["ekaid"]

    def get(self, base, ident, tok):
        r = self.req("GET", item(base, ident), token=tok)
        self.assertEqual(r.status, 200, r)
        return r.json[{USERS: "user", DOCTORS: "doctor", CLINICS: "clinic"}[base]]

    def snapshot(self, tok):
        out = {}
        for base, key in ((USERS, "users"), (DOCTORS, "doctors"), (CLINICS, "clinics")):
            r = self.req("GET", base, token=tok)
            self.assertEqual(r.status, 200, r)
            out[key] = r.json[key]
        return out

    def assertFieldError(self, r, field, status=400, contains=None):
        self.assertError(r, status, field=field)
        self.assertIn(field, self.msg(r), r)
        if contains is not None:
            self.assertTrue(any(contains in why for why in r.json["errors"][field]), r)

    def refused(self, method, path, body, tok, field, contains=None):
        """The request is a 400 naming field, and the tenant's data is unchanged."""
        before = self.snapshot(tok)
        r = self.req(method, path, body, token=tok)
        self.assertFieldError(r, field, 400, contains)
        self.assertEqual(self.snapshot(tok), before)
        return r

    def conflict(self, method, path, body, tok):
        """The request is a 409 for the email, and the tenant's data is unchanged."""
        before = self.snapshot(tok)
        r = self.req(method, path, body, token=tok)
        self.assertError(r, 409)
        self.assertEqual(r.json["message"], "email already in use", r)
        self.assertEqual(self.snapshot(tok), before)
        return r


class EmailKeyTests(TextCase):
    """Two emails that differ only in case or in Unicode spelling are one address."""

    def test_case_and_normalisation_variants_conflict(self):
        t, other = fresh_token(), fresh_token()
        n = uniq()
        typed = "\u00c4rzte.%d@Klinik.in" % n          # precomposed capital A with diaeresis
        first = self.create(USERS, user_body(email=typed), t)
        variants = [
            "\u00e4rzte.%d@klinik.in" % n,              # precomposed small
            "a\u0308rzte.%d@klinik.in" % n,             # decomposed: a + U+0308
            "A\u0308RZTE.%d@KLINIK.IN" % n,             # decomposed capital, all upper
            "\u00c4RZTE.%d@klinik.IN" % n,
        ]
        for v in variants:
            with self.subTest(email=v):
                self.conflict("POST", USERS, user_body(email=v), t)
        # PATCH of another user to a variant: 409, that user unchanged
        second = self.create(USERS, user_body(email="second.%d@klinik.in" % n), t)
        before = self.get(USERS, second, t)
        self.conflict("PATCH", item(USERS, second), {"email": variants[1]}, t)
        self.assertEqual(self.get(USERS, second, t), before)
        # the address is shown exactly as it was typed
        self.assertEqual(self.get(USERS, first, t)["email"], typed)
        # another tenant is another namespace
        self.create(USERS, user_body(email=variants[0]), other)
        # a user may change the case of their own address
        r = self.req("PATCH", item(USERS, first), {"email": variants[2]}, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.get(USERS, first, t)["email"], variants[2])
        # once the user is deleted the address is free again
        self.assertEqual(self.req("DELETE", item(USERS, first), token=t).status, 200)
        self.create(USERS, user_body(email=variants[0]), t)

    def test_kelvin_sign_is_k(self):
        t = fresh_token()
        n = uniq()
        self.create(USERS, user_body(email="k.rao.%d@x.in" % n), t)
        self.conflict("POST", USERS, user_body(email="\u212a.rao.%d@x.in" % n), t)
        # and the other way round
        self.create(USERS, user_body(email="\u212a.iyer.%d@x.in" % n), t)
        self.conflict("POST", USERS, user_body(email="K.IYER.%d@X.IN" % n), t)

    def test_full_case_folding(self):
        t = fresh_token()
        n = uniq()
        self.create(USERS, user_body(email="stra\u00dfe.%d@x.de" % n), t)     # sharp s
        self.conflict("POST", USERS, user_body(email="STRASSE.%d@X.DE" % n), t)
        self.create(USERS, user_body(email="\ufb01le.%d@x.in" % n), t)        # the fi ligature
        self.conflict("POST", USERS, user_body(email="FILE.%d@x.in" % n), t)

    def test_conflict_survives_a_restart(self):
        t = fresh_token()
        n = uniq()
        self.create(USERS, user_body(email="\u00d8ystein.%d@x.no" % n), t)
        self.srv.restart()
        self.conflict("POST", USERS, user_body(email="\u00f8YSTEIN.%d@x.no" % n), t)

    def test_invisible_and_format_characters_make_an_email_invalid(self):
        t = fresh_token()
        uid = self.create(USERS, user_body(email="plain.%d@x.in" % uniq()), t)
        did = self.create(DOCTORS, doctor_body(), t)
        for bad in ("ami\u200bt@x.in",       # ZERO WIDTH SPACE
                    "amit@x\u2060.in",       # WORD JOINER
                    "\ufeffamit@x.in",       # BOM
                    "am\u00adit@x.in",       # SOFT HYPHEN
                    "amit\u200d@x.in",       # ZWJ
                    "amit@x.in\u200e",       # LEFT-TO-RIGHT MARK
                    "am\u00a0it@x.in",       # NO-BREAK SPACE
                    "am\U000e0041it@x.in"):  # a tag character
            with self.subTest(email=ascii(bad)):
                self.refused("POST", USERS, user_body(email=bad), t, "email")
                self.refused("PATCH", item(USERS, uid), {"email": bad}, t, "email")
                self.refused("PATCH", item(DOCTORS, did), {"email": bad}, t, "email")


class MigrationTests(unittest.TestCase):
    """A database written before migration 4 (emails unique under ASCII-only NOCASE) gets
    its keys on the next start; users that already collided keep working."""

    def setUp(self):
        self.srv = Server().start()
        self.addCleanup(self.srv.cleanup)
        self.tok = make_token("1000000000000001")

    def req(self, *a, **kw):
        kw.setdefault("token", self.tok)
        return self.srv.request(*a, **kw)

    def create(self, body):
        r = self.req("POST", USERS, body)
        self.assertEqual(r.status, 201, r)
        return r.json["ekaid"]

    def get(self, ident):
        r = self.req("GET", item(USERS, ident))
        self.assertEqual(r.status, 200, r)
        return r.json["user"]

    def to_version_3(self, extra_rows):
        """The schema as it was at version 3, plus rows that schema let in."""
        self.srv.stop()
        db = DB(self.srv)
        db.executescript(
            undo_migration_12() + undo_migration_11() + "DROP TABLE login_throttle;" +  # undo migration 10 (the login throttle's counters) ...
            undo_migration_9() +  # ... migration 9 (the tenant in every key) ...
            # ... migration 7 (list filter indexes, doctors' email keys, idempotency keys) ...
            "DROP TABLE idempotency_key; DROP INDEX ekauser_updated; DROP INDEX doctor_updated;"
            "DROP INDEX clinic_updated; DROP INDEX doctor_mobile; DROP INDEX doctor_email_key;"
            "ALTER TABLE doctor DROP COLUMN email_key;"
            "DROP TABLE change_log; DROP TABLE change_seq;" +  # ... migration 6 (the change log) ...
            # ... migration 5 (the link tables' per-side order columns) ...
            "".join("ALTER TABLE %s DROP COLUMN ord0; ALTER TABLE %s DROP COLUMN ord1;" % (t, t)
                    for t in ("user_doctor", "user_clinic", "doctor_clinic")) +
            # ... and migration 4 (users' email keys): back to the ASCII-only case-insensitive index
            "DROP INDEX ekauser_uq_email_key; ALTER TABLE ekauser DROP COLUMN email_key;" +
            ("CREATE UNIQUE INDEX ekauser_uq_email ON ekauser (b_id, lower(email COLLATE \"C\"))"
             if BACKEND == "postgresql" else
             "CREATE UNIQUE INDEX ekauser_uq_email ON ekauser(b_id, email COLLATE NOCASE)") +
            "  WHERE deleted_at IS NULL AND email IS NOT NULL;"
            "PRAGMA user_version=3;")
        for row in extra_rows:
            db.execute("INSERT INTO ekauser (%s, created_at, updated_at) VALUES (%s, "
                       "'2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z')"
                       % (", ".join(row), ", ".join("?" * len(row))), list(row.values()))
        db.commit()
        db.close()

    def test_backfill_and_old_collisions(self):
        u1 = self.create(user_body(email="\u00c4rzte@x.in", partner_id="P1"))
        u2 = self.create(user_body(email="k.rao@x.in"))
        legacy = {"id": "176000000000004", "b_id": "1000000000000001", "firstname": "Old",
                  "lastname": "Twin", "gender": "F", "dob": "1980-01-01", "email": "\u00e4rzte@x.in"}
        # a row from before the partner_id rule: its partner id is u2's Eka id
        shadow = {"id": "176000000000005", "b_id": "1000000000000001", "firstname": "Shadow",
                  "lastname": "Row", "gender": "F", "dob": "1980-01-01", "mobile": "7000000005",
                  "partner_id": u2}
        self.to_version_3([legacy, shadow])
        self.srv.start()
        self.assertIn("not unique-checked", self.srv.log())
        # every user reads back as before
        self.assertEqual(self.get(u1)["email"], "\u00c4rzte@x.in")
        self.assertEqual(self.get(legacy["id"])["email"], "\u00e4rzte@x.in")
        self.assertEqual(self.get("P1")["id"], u1)
        # the keys were filled in: variants of old addresses are taken
        before = self.req("GET", USERS).json["users"]
        for email in ("\u00c4RZTE@X.IN", "a\u0308rzte@x.in", "\u212a.rao@x.in", "K.Rao@x.in"):
            with self.subTest(email=email):
                r = self.req("POST", USERS, user_body(email=email))
                self.assertEqual(r.status, 409, r)
                self.assertEqual(r.json["message"], "email already in use", r)
        self.assertEqual(self.req("GET", USERS).json["users"], before)
        # the Eka id wins over an old partner id equal to it, and the old row is still reachable
        self.assertEqual(self.get(u2)["id"], u2)
        self.assertEqual(self.get(shadow["id"])["partner_id"], u2)
        # the older user kept the key; once it is gone and the newer one re-saves its
        # address, the newer one holds it
        self.assertEqual(self.req("DELETE", item(USERS, u1)).status, 200)
        r = self.req("PATCH", item(USERS, legacy["id"]), {"email": "\u00e4rzte@x.in"})
        self.assertEqual(r.status, 200, r)
        r = self.req("POST", USERS, user_body(email="\u00c4rzte@x.in"))
        self.assertEqual(r.status, 409, r)
        # a second start does not migrate again
        self.srv.restart()
        self.assertEqual(self.get(legacy["id"])["email"], "\u00e4rzte@x.in")
        self.assertEqual(self.req("POST", USERS, user_body(email="\u00c4RZTE@x.in")).status, 409)


class LengthTests(TextCase):
    """Limits count characters (code points), as their messages say."""

    def test_ids_count_characters(self):
        t = fresh_token()
        pid = "\u00e9" * 127 + str(uniq() % 10)                  # 128 characters, 255 bytes
        uid = self.create(USERS, user_body(partner_id=pid, auth_userid="\U0001f600" * 128), t)
        got = self.get(USERS, pid, t)
        self.assertEqual(got["id"], uid)
        self.assertEqual(got["partner_id"], pid)
        self.assertEqual(got["auth_userid"], "\U0001f600" * 128)
        cid = self.create(CLINICS, clinic_body(partner_id="\u0939" * 128), t)
        self.assertEqual(self.get(CLINICS, "\u0939" * 128, t)["id"], cid)
        self.refused("POST", USERS, user_body(partner_id="\u00e9" * 129), t, "partner_id",
                     "no more than 128 characters")
        self.refused("POST", DOCTORS, doctor_body(partner_id="\U0001f600" * 129), t, "partner_id",
                     "no more than 128 characters")

    def test_email_counts_characters(self):
        t = fresh_token()
        local = "\u00e9" * 60 + "%04d" % (uniq() % 10000)        # 64 characters, 124 bytes
        email = local + "@example.in"
        uid = self.create(USERS, user_body(email=email), t)
        self.assertEqual(self.get(USERS, uid, t)["email"], email)
        self.refused("POST", USERS, user_body(email="\u00e9" + email), t, "email")
        # 254 characters in all
        long_email = "u@" + "\u00e9" * 248 + ".com"
        self.assertEqual(len(long_email), 254)
        did = self.create(DOCTORS, doctor_body(email=long_email), t)
        self.assertEqual(self.get(DOCTORS, did, t)["email"], long_email)
        self.refused("POST", DOCTORS, doctor_body(email="u@" + "\u00e9" * 249 + ".com"), t, "email")

    def test_url_counts_characters(self):
        t = fresh_token()
        url = "https://x.in/" + "\u00e9" * 1000 + "a" * (2048 - 1013)
        self.assertEqual(len(url), 2048)
        did = self.create(DOCTORS, doctor_body(profile_image_url=url), t)
        self.assertEqual(self.get(DOCTORS, did, t)["profile_image_url"], url)
        self.refused("POST", DOCTORS, doctor_body(profile_image_url=url + "a"), t, "profile_image_url")

    def test_text_counts_characters(self):
        t = fresh_token()
        cid = self.create(CLINICS, clinic_body(name="\U0001f3e5" * 100, address="\u0939" * 500,
                                               city="\u00e9" * 100), t)
        got = self.get(CLINICS, cid, t)
        self.assertEqual((got["name"], got["address"], got["city"]),
                         ("\U0001f3e5" * 100, "\u0939" * 500, "\u00e9" * 100))
        did = self.create(DOCTORS, doctor_body(about="\u0d15" * 2000, qualifications=["\u00e9" * 100]), t)
        self.assertEqual(self.get(DOCTORS, did, t)["qualifications"], ["\u00e9" * 100])
        self.refused("POST", CLINICS, clinic_body(name="\U0001f3e5" * 101), t, "name", "100 characters")
        self.refused("POST", CLINICS, clinic_body(address="\u0939" * 501), t, "address", "500 characters")


class PartnerIdTests(TextCase):
    """partner_id is the other key in /{id}: it must reach the router unchanged and never be
    read as an Eka id of the same resource."""

    CASES = [("a/b", "'/'"), ("/", "'/'"), (" p1", "white space"), ("p1 ", "white space"),
             ("p1\u00a0", "white space"), ("\u3000p1", "white space"), (".", '".."'), ("..", '".."'),
             ("p\u001b", "control")]

    def test_path_breaking_partner_ids_refused(self):
        t = fresh_token()
        uid = self.create(USERS, user_body(partner_id="keep-u-%d" % uniq()), t)
        did = self.create(DOCTORS, doctor_body(partner_id="keep-d-%d" % uniq()), t)
        cid = self.create(CLINICS, clinic_body(partner_id="keep-c-%d" % uniq()), t)
        for bad, why in self.CASES:
            with self.subTest(partner_id=bad):
                self.refused("POST", USERS, user_body(partner_id=bad), t, "partner_id", why)
                self.refused("POST", DOCTORS, doctor_body(partner_id=bad), t, "partner_id", why)
                self.refused("POST", CLINICS, clinic_body(partner_id=bad), t, "partner_id", why)
                self.refused("PATCH", item(USERS, uid), {"partner_id": bad}, t, "partner_id", why)
                self.refused("PATCH", item(DOCTORS, did), {"partner_id": bad}, t, "partner_id", why)
                self.refused("PATCH", item(CLINICS, cid), {"partner_id": bad}, t, "partner_id", why)

    def test_eka_id_shapes_refused_on_their_own_resource(self):
        t = fresh_token()
        uid = self.create(USERS, user_body(), t)
        did = self.create(DOCTORS, doctor_body(), t)
        cid = self.create(CLINICS, clinic_body(), t)
        self.refused("POST", USERS, user_body(partner_id="123456789012345"), t, "partner_id", "15 digits")
        self.refused("POST", USERS, user_body(partner_id=uid), t, "partner_id", "15 digits")
        self.refused("PATCH", item(USERS, uid), {"partner_id": "987654321098765"}, t, "partner_id")
        self.refused("POST", DOCTORS, doctor_body(partner_id="do1234567890123"), t, "partner_id", "13 digits")
        self.refused("PATCH", item(DOCTORS, did), {"partner_id": did}, t, "partner_id", "13 digits")
        self.refused("POST", CLINICS, clinic_body(partner_id="c-" + "0a" * 12), t, "partner_id", "hexadecimal")
        self.refused("PATCH", item(CLINICS, cid), {"partner_id": cid}, t, "partner_id", "hexadecimal")

    def test_near_misses_and_other_resources_shapes_accepted(self):
        t = fresh_token()
        for base, body, pid in ((USERS, user_body, "do%013d" % uniq()),
                                (USERS, user_body, "0%014d" % uniq()),
                                (DOCTORS, doctor_body, "1%014d" % uniq()),
                                (DOCTORS, doctor_body, "DO1%012d" % uniq()),
                                (CLINICS, clinic_body, "c-" + ("%024d" % uniq()).replace("0", "A")),
                                (CLINICS, clinic_body, "Clinic 321 Indore %d" % uniq()),
                                (USERS, user_body, "a..%d.b" % uniq())):
            with self.subTest(partner_id=pid):
                ident = self.create(base, body(partner_id=pid), t)
                self.assertEqual(self.get(base, pid, t)["id"], ident)


REFUSED_CHARS = "bidi controls, line and paragraph separators, noncharacters and tag characters"


class TextRuleTests(TextCase):
    def test_hidden_characters_refused_in_every_text_field(self):
        t = fresh_token()
        uid = self.create(USERS, user_body(), t)
        did = self.create(DOCTORS, doctor_body(), t)
        cases = [
            (USERS, user_body(firstname="Amit\u202egnp.exe"), "firstname", "U+202E"),
            (USERS, user_body(lastname="\u2066Kumar\u2069"), "lastname", "U+2066"),
            (USERS, user_body(auth_userid="u\u202a1"), "auth_userid", "U+202A"),
            (USERS, user_body(partner_id="p\U0001ffff"), "partner_id", "U+1FFFF"),
            (DOCTORS, doctor_body(about="line one\u2028line two"), "about", "U+2028"),
            (DOCTORS, doctor_body(about="para\u2029"), "about", "U+2029"),
            (DOCTORS, doctor_body(qualifications=["MBBS", "MD\U000e0041"]), "qualifications", "U+E0041"),
            (DOCTORS, doctor_body(specialisations=["\u2067ENT"]), "specialisations", "U+2067"),
            (CLINICS, clinic_body(city="Pune\ufdd0"), "city", "U+FDD0"),
            (CLINICS, clinic_body(name="Clinic\ufffe"), "name", "U+FFFE"),
            (CLINICS, clinic_body(state="Kerala\U0001f3f4\U000e0067\U000e0062\U000e007f"), "state", "U+E0067"),
        ]
        for base, body, field, cp in cases:
            with self.subTest(field=field, cp=cp):
                r = self.refused("POST", base, body, t, field, cp)
                self.assertIn(REFUSED_CHARS, self.msg(r), r)
        self.refused("PATCH", item(USERS, uid), {"firstname": "A\u202eB"}, t, "firstname", "U+202E")
        self.refused("PATCH", item(DOCTORS, did), {"lastname": "R\u2028ao"}, t, "lastname", "U+2028")

    def test_values_with_nothing_visible_are_blank(self):
        t = fresh_token()
        for blank in ("\u200b", "\u3000", "\u00a0 \u3000", "\u3164", "\u200d", "\u200c\u200d", "\ufeff", "\u2060"):
            with self.subTest(value=ascii(blank)):
                self.refused("POST", USERS, user_body(firstname=blank), t, "firstname", "blank")
                self.refused("POST", CLINICS, clinic_body(address=blank), t, "address", "blank")
                self.refused("POST", DOCTORS, doctor_body(qualifications=[blank]), t, "qualifications", "blank")

    def test_indic_names_with_zwj_and_zwnj_round_trip(self):
        t = fresh_token()
        kiran = "\u0d15\u0d3f\u0d30\u0d23\u0d4d\u200d"                # Malayalam, chillu by ZWJ
        arjun = "\u0d05\u0d30\u0d4d\u200d\u0d1c\u0d41\u0d28\u0d4d\u200d"
        lakshmi = "\u0932\u0915\u094d\u200d\u0937\u094d\u092e\u0940"  # Hindi, half KA by ZWJ
        uid = self.create(USERS, user_body(firstname=kiran, lastname=arjun), t)
        got = self.get(USERS, uid, t)
        self.assertEqual((got["firstname"], got["lastname"]), (kiran, arjun))
        did = self.create(DOCTORS, doctor_body(firstname=lakshmi, lastname="\u0915\u094d\u200c\u0937"), t)
        got = self.get(DOCTORS, did, t)
        self.assertEqual((got["firstname"], got["lastname"]), (lakshmi, "\u0915\u094d\u200c\u0937"))

    def test_names_trimmed_of_unicode_white_space(self):
        t = fresh_token()
        uid = self.create(USERS, user_body(firstname="\u00a0Amit\u3000", lastname="\u2003Kumar "), t)
        got = self.get(USERS, uid, t)
        self.assertEqual((got["firstname"], got["lastname"]), ("Amit", "Kumar"))
        r = self.req("PATCH", item(USERS, uid), {"firstname": "\u3000\u0d15\u0d3f\u0d30\u0d23\u0d4d\u200d\u00a0"},
                     token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.get(USERS, uid, t)["firstname"], "\u0d15\u0d3f\u0d30\u0d23\u0d4d\u200d")
        cid = self.create(CLINICS, clinic_body(name="\u3000Sunrise\u00a0Clinic\u3000"), t)
        self.assertEqual(self.get(CLINICS, cid, t)["name"], "Sunrise\u00a0Clinic")


class BusinessNameTests(unittest.TestCase):
    """The operator's business name (shown by get_business_info) follows the text rules."""

    def test_business_name_rules(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        for bad in ("Sunrise\u202e Health", "\u3000\u200b", "Line\u2028Two", "\U000e0041"):
            with self.subTest(name=ascii(bad)):
                r = srv.cli("business", "create", "--name", bad)
                self.assertEqual(r.returncode, 2, r.stderr)
        r = srv.cli("business", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "")
        r = srv.cli("business", "create", "--name", "\u0d15\u0d3f\u0d30\u0d23\u0d4d\u200d Clinics")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("\u0d15\u0d3f\u0d30\u0d23\u0d4d\u200d Clinics", srv.cli("business", "list").stdout)


class CharsetTests(TextCase):
    """JSON is UTF-8: a body declared in another charset would be misread, so it is a 415."""

    def test_other_charsets_are_415(self):
        t = fresh_token()
        uid = self.create(USERS, user_body(), t)
        before = self.snapshot(t)
        for ct in ("application/json; charset=latin1", 'application/json; charset="ISO-8859-1"',
                   "application/json;charset=iso-8859-1", "application/json; Charset=UTF-16",
                   "APPLICATION/JSON; CHARSET=windows-1252", "application/json; charset=us-ascii",
                   "application/json; charset=", 'application/json; charset=""',
                   "application/json; charset=utf-8; charset=latin1"):
            with self.subTest(content_type=ct):
                for method, path, body in (("POST", USERS, user_body()), ("POST", CLINICS, clinic_body()),
                                           ("PATCH", item(USERS, uid), {"lastname": "Changed"})):
                    r = self.req(method, path, body, token=t, content_type=ct)
                    self.assertError(r, 415, "charset")
                    self.assertEqual(r.headers.get("content-type"), "application/json; charset=utf-8", r)
        # a real Latin-1 body, declared as such
        r = self.req("POST", CLINICS, None, token=t, raw=b'{"name":"\xc4rzte","address":"x"}',
                     content_type="application/json; charset=latin1")
        self.assertError(r, 415, "charset")
        self.assertEqual(self.snapshot(t), before)

    def test_login_with_other_charset_is_415_in_its_own_shape(self):
        r = self.srv.request("POST", "/connect-auth/v1/account/login", {"client_id": "x", "client_secret": "y"},
                             content_type="application/json; charset=latin1")
        self.assertEqual(r.status, 415, r)
        self.assertEqual(r.json["code"], 415, r)
        self.assertIn("charset", r.json["error"], r)

    def test_utf8_and_absent_charset_accepted(self):
        t = fresh_token()
        for ct in ("application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8",
                   'application/json; charset="utf-8"', 'application/json; charset="UTF-8"',
                   "application/json; charset=utf8", "Application/Json ; Charset = Utf-8",
                   "application/json; foo=bar; charset=utf-8"):
            with self.subTest(content_type=ct):
                r = self.req("POST", USERS, user_body(firstname="\u00c4rzte"), token=t, content_type=ct)
                self.assertEqual(r.status, 201, r)
                self.assertEqual(self.get(USERS, r.json["ekaid"], t)["firstname"], "\u00c4rzte")


if __name__ == "__main__":
    unittest.main()
