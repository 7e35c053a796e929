#!/usr/bin/env python3
"""Regenerates tests/fuzz/corpus/ and tests/fuzz/dict/ (run from anywhere).

The request bodies are the request examples of the onboarding spec
(eka-cdr-onboarding.openapi.yaml: doctor, clinic and Eka User create and patch; the
seed's PATCH body), copied here verbatim so the repository does not need the spec,
plus a few variants that get past the checks (so rendering is reached) or sit right
on an edge. Paths and tokens are the spec's samples and their neighbours.
Each seed is small; the whole corpus is a few dozen files.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
DICT = os.path.join(HERE, "dict")

# ---- the spec's request examples, verbatim ------------------------------------------
DOCTOR_POST = {"firstname": "Rajesh", "lastname": "Sharma", "mobile": "0000011111", "dob": "1999-01-01",
               "email": "dr.rajesh@example.com", "gender": "M",
               "specialisations": ["Cardiology", "Internal Medicine"], "qualifications": ["MBBS", "MD", "DM"],
               "about": "Dr. Rajesh Sharma is a renowned cardiologist with over 15 years of experience in "
                        "interventional cardiology.",
               "profile_image_url": "https://example.com/images/dr-rajesh.jpg",
               "clinic_ids": ["c-ab2c-34f2d-2gwd-2g2g"], "partner_clinic_ids": ["Part_clinic_1"],
               "partner_id": "Part_doc"}
DOCTOR_PATCH = {"about": "Updated bio for the doctor", "specialisations": ["Cardiology"],
                "clinic_ids": ["c-ab2c-34f2d-2gwd-2g2g"]}
CLINIC_POST = {"name": "Sunrise Clinic", "address": "123 Main Street, Block A", "partner_id": "Clinic_321_Indore",
               "pincode": "560001", "contact": "9876543210", "doctor_ids": ["171266028552522", "171266028552523"],
               "partner_doctor_ids": ["Part_Doc_1", "Part_Doc_2"], "city": "Bangalore", "state": "Karnataka"}
CLINIC_PATCH = {"address": "456 New Street, Block B", "contact": "9876543210", "doctor_ids": ["do1769174683513"]}
EKAUSER_POST = {"firstname": "Amit", "lastname": "Kumar", "mobile": "9876543210", "email": "amit.kumar@example.com",
                "auth_userid": "Prateek_@_123", "gender": "M", "dob": "1990-05-15", "is_admin": False,
                "seat_type": "b", "persona": "D", "doctor_ids": ["171266028552522", "171266028552523"],
                "clinic_ids": ["c-314086a34253rd", "c-415197b45364se"],
                "partner_doctor_ids": ["Part_doc_1", "Part_doc_2"],
                "partner_clinic_ids": ["Part_clinic_1", "Part_clinic_2"]}
EKAUSER_PATCH = {"is_admin": True, "seat_type": "p", "clinic_ids": ["c-ab2c-34f2d-2gwd-2g2g"]}  # also the seed's

SPEC_TOKEN = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJiX2lkIjoiMTIzNDU2IiwiY2xpZW50X2lkIjoiNzg5MCIsImV4dHJhX2ZpZWxk"
              "IjoiZXh0cmFfZmllbGRfZGF0YSJ9.q9KzBI6f4l3OyM_EkB5Quq0l9EEMFh5JS-fx3F_PHUM")

# fuzz_jwt.c's keyring and clock
KEY0 = b"fuzz-current-signing-key-0123456789abcdef"
KEY1 = b"fuzz-previous-key-32-bytes-long!"
NOW = 1769000000


def without(d, *keys):
    return {k: v for k, v in d.items() if k not in keys}


def compact(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(header, payload, key):
    h = header if isinstance(header, bytes) else compact(header)
    p = payload if isinstance(payload, bytes) else compact(payload)
    si = b64url(h) + "." + b64url(p)
    return si + "." + b64url(hmac.new(key, si.encode(), hashlib.sha256).digest())


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def decode_corpus():
    t = "fuzz_decode"
    # selector: byte % 3 = resource (0 ekauser, 1 doctor, 2 clinic); byte / 3 even = create, odd = patch
    ek_c, dr_c, cl_c, ek_p, dr_p, cl_p = b"0", b"1", b"2", b"3", b"4", b"5"
    write(t, "ekauser_create_spec", ek_c + compact(EKAUSER_POST))
    write(t, "ekauser_create_valid", ek_c + compact(without(EKAUSER_POST, "partner_doctor_ids", "partner_clinic_ids")))
    write(t, "ekauser_patch_seed", ek_p + compact(EKAUSER_PATCH))
    write(t, "ekauser_patch_nulls", ek_p + compact({"email": None, "mobile": "+919876543210", "persona": None,
                                                    "doctor_ids": None, "partner_id": "p-1"}))
    write(t, "ekauser_create_edges", ek_c + compact({"firstname": "  \u0905\u092e\u093f\u0924  ", "lastname": "K",
                                                     "mobile": "919876543210", "gender": "O", "dob": "2000-02-29",
                                                     "is_admin": True}))
    write(t, "doctor_create_spec", dr_c + compact(DOCTOR_POST))
    write(t, "doctor_create_valid", dr_c + compact(without(DOCTOR_POST, "partner_clinic_ids")))
    write(t, "doctor_patch_spec", dr_p + compact(DOCTOR_PATCH))
    write(t, "clinic_create_spec", cl_c + compact(CLINIC_POST))
    write(t, "clinic_create_valid", cl_c + compact(without(CLINIC_POST, "partner_doctor_ids")))
    write(t, "clinic_patch_spec", cl_p + compact(CLINIC_PATCH))
    write(t, "ekauser_patch_dupkey", ek_p + b'{"is_admin":true,"is_admin":false}')
    write(t, "doctor_patch_badtypes", dr_p + b'{"dob":"2099-12-31","mobile":1e400,"specialisations":[1,"",null]}')
    write(t, "clinic_patch_unknown", cl_p + b'{"name":"\\u0000x","pincode":"56000","zzz":[]}')
    write(t, "raw_string_email", ek_p + b"dr.rajesh@example.com")
    # identifiers and text (issue 7 part 4): folded emails, partner_id shapes, hidden characters
    write(t, "ekauser_create_text", ek_c + compact({"firstname": "\u00a0\u0d15\u0d3f\u0d30\u0d23\u0d4d\u200d\u3000",
                                                    "lastname": "\u0932\u0915\u094d\u200d\u0937\u094d\u092e\u0940",
                                                    "email": "A\u0308rzte.\u212a@Klinik.in", "gender": "F",
                                                    "dob": "1990-05-15", "partner_id": "do1763380326920"}))
    write(t, "ekauser_patch_hidden", ek_p + compact({"firstname": "A\u202eB", "email": "a\u200b@x.in",
                                                     "partner_id": "176338032692057", "auth_userid": "\u3164"}))
    write(t, "doctor_patch_path_key", dr_p + compact({"partner_id": " a/b ", "qualifications": ["\u200d", "MD\U000e0041"],
                                                      "about": "x\u2028y\ufdd0"}))
    write(t, "clinic_patch_shape", cl_p + compact({"partner_id": "c-0123456789abcdef01234567", "city": "..",
                                                   "name": "\ufeff"}))


def router_corpus():
    t = "fuzz_router"
    paths = {
        "ekauser_collection": "/cdr/v1/ekauser/",
        "ekauser_item": "/cdr/v1/ekauser/176338032692057/",
        "doctor_item": "/cdr/v1/doctor/do1769174683513/",
        "clinic_item": "/cdr/v1/clinic/c-ab2c-34f2d-2gwd-2g2g/",
        "hipusers": "/cdr/v1/hipusers/",
        "hipuser": "/cdr/v1/hipusers/176338032692057",
        "business_info": "/cdr/v1/get_business_info/",
        "login": "/connect-auth/v1/account/login",
        "refresh_token": "/connect-auth/v1/account/refresh-token",
        "refresh": "/connect-auth/v1/account/refresh",
        "escaped_id": "/cdr/v1/clinic/c-%41b%2d%c3%a9/",
        "escaped_slash": "/cdr/v1/doctor/..%2F..%2Fekauser/",
        "escaped_nul": "/cdr/v1/ekauser/17633803%00/",
        "truncated_escape": "/cdr/v1/ekauser/abc%4",
        "double_slash": "/cdr/v1//ekauser/1/",
        "history": "/cdr/v1/doctor/do1769174683513/history",
        "restore": "/cdr/v1/clinic/c-ab2c-34f2d-2gwd-2g2g/restore/",
        "changes": "/cdr/v1/changes/",
    }
    for name, p in paths.items():
        write(t, name, p)


def etag_corpus():
    t = "fuzz_etag"
    fields = {
        "strong": '"HLh2n0ZBlLvYZRz1IsMsxg"',
        "weak": 'W/"HLh2n0ZBlLvYZRz1IsMsxg"',
        "star": "*",
        "list": '"a", W/"b",, "HLh2n0ZBlLvYZRz1IsMsxg" ',
        "unquoted": "HLh2n0ZBlLvYZRz1IsMsxg",
        "unterminated": '"abc',
        "star_and_tag": '*, "x"',
        "obs_text": '"\u00e9t\u00e9"',
    }
    for name, f in fields.items():
        write(t, name, f)


def list_query_corpus():
    t = "fuzz_list_query"
    # byte 0 % 4: 0 ekauser, 1 doctor, 2 clinic, 3 hipusers; then the raw query string
    queries = {
        "0_page": "0limit=100",
        "0_filters": "0partner_id=Part_user_1&mobile=%2B919876543210&email=A%CC%88rzte%40Klinik.in"
                     "&auth_userid=Prateek_%40_123&clinic_id=c-0123456789abcdef01234567&doctor_id=do1769174683513"
                     "&updated_since=2024-05-01T18%3A04%3A56.789%2B05%3A30&limit=2",
        "1_doctor": "1mobile=9000011111&email=dr.rajesh%40example.com&clinic_id=c-0123456789abcdef01234567",
        "2_clinic": "2doctor_id=do1769174683513&updated_since=2024-05-01T00:00:00Z&partner_id=Clinic_321_Indore",
        "3_hipusers": "3limit=1&cursor=ARhosnQVsHRRLUVfNYannOIv0E0iQLM1oWygOruPHfFUew6vOnHxAdB6Ht7OettEag",
        "0_bad": "0limit=0&limit=1001&foo=1&%zz=1&mobile=+91987&updated_since=2024-02-30T00:00:00Z",
        "2_not_applicable": "2mobile=9876543210&auth_userid=x&clinic_id=c-0123456789abcdef01234567",
        "1_empty": "1partner_id=&email&&=x&cursor=",
    }
    for name, q in queries.items():
        write(t, name, q)


def jwt_corpus():
    t = "fuzz_jwt"
    hs = {"alg": "HS256", "typ": "JWT"}
    claims = {"b_id": "123456", "client_id": "7890", "iat": NOW - 60, "exp": NOW + 3600, "jti": "j-1", "sid": "s-1"}
    # mode 0: a token as sent
    write(t, "m0_spec_sample", "0" + SPEC_TOKEN)
    write(t, "m0_valid_key0", "0" + jwt(hs, claims, KEY0))
    write(t, "m0_valid_key1_bdash", "0" + jwt(dict(hs, kid="0011223344556677"),
                                                  {"b-id": "123456", "exp": NOW + 60}, KEY1))
    write(t, "m0_expired", "0" + jwt(hs, dict(claims, exp=NOW - 1), KEY0))
    write(t, "m0_alg_none", "0" + b64url(compact({"alg": "none"})) + "." + b64url(compact(claims)) + ".")
    write(t, "m0_hs512", "0" + jwt({"alg": "HS512", "typ": "JWT"}, claims, KEY0))
    write(t, "m0_malformed", "0a.b.c")
    # mode 1: claims signed by the fuzzer (byte 1: '0' current key, '1' previous, '2' foreign)
    write(t, "m1_claims_key0", "10" + compact(claims).decode())
    write(t, "m1_claims_key1", "11" + compact({"b_id": "b", "exp": NOW + 1}).decode())
    write(t, "m1_claims_foreign", "12" + compact(claims).decode())
    write(t, "m1_exp_string", "10" + compact(dict(claims, exp="2000000000")).decode())
    write(t, "m1_exp_real", "10" + '{"b_id":"123456","exp":1769000000.0}')
    write(t, "m1_exp_real_future", "11" + '{"b_id":"123456","exp":1769003600.5,"iat":1.7689e9}')
    write(t, "m1_no_b_id", "10" + compact({"client_id": "7890", "b_id": 5}).decode())
    write(t, "m1_long_b_id", "10" + compact({"b_id": "x" * 129}).decode())
    # mode 2: header \n payload, both signed as given
    write(t, "m2_none_alg", "20" + '{"alg":"none"}\n' + compact(claims).decode())
    write(t, "m2_kid", "21" + '{"alg":"HS256","kid":"../../etc/passwd"}\n' + compact(claims).decode())
    write(t, "m2_alg_lower", "20" + '{"alg":"hs256"}\n' + compact(claims).decode())
    write(t, "m2_crit", "20" + '{"alg":"HS256","crit":["exp"]}\n' + compact(claims).decode())
    write(t, "m2_dup_header", "20" + '{"alg":"none","alg":"HS256"}\n' + compact(claims).decode())
    write(t, "m1_dup_claim", "10" + '{"b_id":"a","b_id":"b","exp":1769003600}')
    write(t, "m1_nbf_future", "10" + compact(dict(claims, nbf=NOW + 61)).decode())
    write(t, "m1_nbf_leeway", "10" + compact(dict(claims, nbf=NOW + 60)).decode())
    # mode 3: token_sign round trip: ttl byte, then b_id NUL client_id NUL jti NUL sid
    write(t, "m3_round_trip", b"3\x3c123456\x007890\x00jti-1\x00sid-1")
    write(t, "m3_empty_b_id", b"3\x01\x00client")


def json_body_corpus():
    t = "fuzz_json_body"
    write(t, "seed_patch", compact(EKAUSER_PATCH))
    write(t, "seed_patch_charset", b"CT:application/json; charset=utf-8\n" + compact(EKAUSER_PATCH))
    write(t, "seed_patch_ct_case", b"CT:  Application/JSON\t\n" + compact(EKAUSER_PATCH))
    write(t, "no_content_type", b"CT!\n" + compact(EKAUSER_PATCH))
    write(t, "text_plain", b"CT:text/plain\n" + compact(EKAUSER_PATCH))
    write(t, "ekauser_post_as_patch", compact(EKAUSER_POST))
    write(t, "depth_32", b"{\"doctor_ids\":" + b"[" * 31 + b"]" * 31 + b"}")
    write(t, "depth_33", b"{\"doctor_ids\":" + b"[" * 32 + b"]" * 32 + b"}")
    write(t, "brackets_in_string", b'{"firstname":"[[[[{{{{\\"\\\\"}')
    write(t, "duplicate_keys", b'{"email":"a@b.co","email":"c@d.co"}')
    write(t, "truncated", b'{"is_admin":tr')
    write(t, "empty_object", b"{}")
    write(t, "not_object", b'["is_admin"]')
    write(t, "charset_latin1", b"CT:application/json; charset=latin1\n" + compact(EKAUSER_PATCH))
    write(t, "charset_quoted", b'CT:application/json; charset="UTF-8"; x=y\n' + compact(EKAUSER_PATCH))


def login_corpus():
    """Seeds for the login body target the lead adds (fuzz_login.c): POST
    /connect-auth/v1/account/login bodies per eka-connect-auth.openapi.yaml
    (AccountConnectLoginRequest: client_id, client_secret, optional sharing_key).
    Plain JSON bodies; the runner ignores this directory until fuzz_login is built."""
    t = "fuzz_login"
    write(t, "login", compact({"client_id": "7890", "client_secret": "s3cr3t-client-secret"}))
    write(t, "login_sharing_key", compact({"client_id": "7890", "client_secret": "s3cr3t-client-secret",
                                           "sharing_key": "sk-123456"}))
    write(t, "login_missing_secret", compact({"client_id": "7890"}))
    write(t, "login_wrong_types", b'{"client_id":7890,"client_secret":null,"sharing_key":[]}')
    write(t, "login_dup_key", b'{"client_id":"a","client_id":"b","client_secret":"x"}')


DICT_JSON = [
    # field names of the three resources
    "firstname", "lastname", "mobile", "email", "auth_userid", "gender", "dob", "is_admin", "seat_type", "persona",
    "partner_id", "doctor_ids", "partner_doctor_ids", "clinic_ids", "partner_clinic_ids", "about",
    "profile_image_url", "specialisations", "qualifications", "name", "address", "pincode", "contact", "city",
    "state",
    # values and JSON pieces
    "+91", "91", "@", "https://", "http://", "-02-29", "1900-01-01", "null", "true", "false", "\\u0000",
    "\\ud800", "\\u00e9", "1e400", "\":\"", "\":[", "\",\"", "\\\"",
    # hidden, format and white-space characters; folding; Eka id shapes in partner ids
    "\\u202e", "\\u2066", "\\u2069", "\\u2028", "\\u2029", "\\u200b", "\\u200c", "\\u200d", "\\u2060",
    "\\ufeff", "\\u00a0", "\\u3000", "\\u3164", "\\u00ad", "\\ufdd0", "\\uffff", "\\udb40\\udc41", "\\u212a",
    "\\u0308", "\\u00df", "do", "c-", "/", "..", "176338032692057",
]
DICT_JWT = ["b_id", "b-id", "client_id", "jti", "sid", "iat", "exp", "iss", "alg", "HS256", "HS512", "none", "typ",
            "JWT", "kid", "eyJ", ".", "1769000000", "1769000000.5", "e+30", "E-7", "-", "null", "true", "[]", "{}",
            "\\u0000", "nbf", "crit", "hs256", "1769000060"]
DICT_PATH = ["/cdr/v1/", "ekauser", "doctor", "clinic", "hipusers", "get_business_info", "/connect-auth/v1/account/",
             "login", "refresh-token", "refresh", "%2F", "%2f", "%00", "%25", "/", "history", "restore", "changes"]
DICT_ETAG = ['"', "W/", "*", ",", " ", "\t", '"HLh2n0ZBlLvYZRz1IsMsxg"']


def write_dict(name, words):
    os.makedirs(DICT, exist_ok=True)
    with open(os.path.join(DICT, name + ".dict"), "w") as f:
        for w in words:
            f.write('"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"\n')


if __name__ == "__main__":
    shutil.rmtree(CORPUS, ignore_errors=True)
    shutil.rmtree(DICT, ignore_errors=True)
    decode_corpus()
    router_corpus()
    list_query_corpus()
    jwt_corpus()
    json_body_corpus()
    login_corpus()
    etag_corpus()
    write_dict("fuzz_decode", DICT_JSON)
    write_dict("fuzz_json_body", DICT_JSON + ["CT:", "CT!", "application/json", "; charset=utf-8", "charset",
                                              "=\"", "latin1", "utf8"])
    write_dict("fuzz_jwt", DICT_JWT)
    write_dict("fuzz_router", DICT_PATH)
    write_dict("fuzz_etag", DICT_ETAG)
    write_dict("fuzz_list_query", ["limit=", "cursor=", "partner_id=", "mobile=", "email=", "auth_userid=",
                                   "clinic_id=", "doctor_id=", "updated_since=", "&", "%2B", "%40", "%00", "+91",
                                   "c-0123456789abcdef01234567", "do1769174683513", "2024-05-01T00:00:00",
                                   ".123", "Z", "+05:30", "1000"])
