/* A list's query string: splitting and decoding as the HTTP adapter does, then
 * list_query_parse for every list, and cursors.
 *
 * Input: byte 0 % 4 picks the list (ekauser, doctor, clinic, hipusers); the rest is the raw
 * query string (after '?'), split at '&' and at the first '=' of each piece, '+' read as a
 * space, then percent-decoded by query_decode (a piece that does not decode is "bad").
 *
 * Invariants: an accepted query has a limit in 0..1000, only filters that apply to the list,
 * every value in its stored shape (mobile 10 digits, updated_since a 24-character stored
 * time, link ids in their Eka id shapes, an email key that is its own key), and a binding; a
 * cursor sealed for that binding opens to the same position, and not for another binding;
 * a refused query is a 400 with a message that is valid UTF-8 and names a parameter in
 * "errors". The raw input opened as a cursor never opens. */
#include "fuzz_common.h"

#include "api/list_query.h"
#include "auth/cursor.h"
#include "model/ids.h"
#include "model/validate.h"

static struct keyring KEYS;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init();
    const char *k = "fuzz-list-query-secret-0123456789abcdef";
    keyring_add(&KEYS, k, strlen(k));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const LISTS[] = {"ekauser", "doctor", "clinic", "hipusers"};
    static const enum rkind KINDS[] = {R_EKAUSER, R_DOCTOR, R_CLINIC, R_EKAUSER};
    int which = data[0] % 4;
    const struct resource *r = resource_get(KINDS[which]);
    struct arena a;
    arena_init(&a);
    char *query = fuzz_cstr(data + 1, size - 1);

    struct query_param params[64];
    size_t n = 0;
    for (char *save = NULL, *piece = strtok_r(query, "&", &save); piece && n < 64; piece = strtok_r(NULL, "&", &save)) {
        for (char *c = piece; *c; c++)
            if (*c == '+')
                *c = ' ';
        char *eq = strchr(piece, '=');
        if (eq)
            *eq = '\0';
        const char *raw_value = eq ? eq + 1 : "";
        struct query_param *p = &params[n++];
        p->name = query_decode(piece, &a);
        p->value = query_decode(raw_value, &a);
        p->bad = !p->name || !p->value;
        if (p->bad) {
            p->name = piece;
            p->value = raw_value;
        }
    }

    struct list_query q;
    struct herr e = {0};
    if (list_query_parse(r, LISTS[which], "1000000000000001", params, n, &KEYS, &a, &q, &e)) {
        FUZZ_CHECK(e.status == 0);
        FUZZ_CHECK(q.limit >= 0 && q.limit <= LIST_LIMIT_MAX);
        FUZZ_CHECK(q.after >= 0);
        FUZZ_CHECK(q.bind != NULL);
        const struct list_filter *f = &q.f;
        if (f->mobile) {
            FUZZ_CHECK(field_index(r, "mobile") >= 0);
            FUZZ_CHECK(strlen(f->mobile) == 10 && digits_only(f->mobile, 10));
        }
        if (f->email_key) {
            char *again = text_fold_key(f->email_key, strlen(f->email_key));
            FUZZ_CHECK(again && strcmp(again, f->email_key) == 0);
            free(again);
        }
        if (f->auth_userid)
            FUZZ_CHECK(r->kind == R_EKAUSER);
        if (f->clinic_id)
            FUZZ_CHECK(r->kind != R_CLINIC && id_has_shape(R_CLINIC, f->clinic_id, strlen(f->clinic_id)));
        if (f->doctor_id)
            FUZZ_CHECK(r->kind != R_DOCTOR && id_has_shape(R_DOCTOR, f->doctor_id, strlen(f->doctor_id)));
        if (f->updated_since)
            FUZZ_CHECK(strlen(f->updated_since) == 24 && f->updated_since[23] == 'Z');
        if (f->partner_id)
            FUZZ_CHECK(text_codepoints(f->partner_id, strlen(f->partner_id)) > 0);
        char cur[CURSOR_TEXT_MAX];
        int64_t pos = -1;
        FUZZ_CHECK(cursor_seal(&KEYS, q.bind, 123456789, cur));
        FUZZ_CHECK(cursor_open(&KEYS, q.bind, cur, &pos) && pos == 123456789);
        FUZZ_CHECK(!cursor_open(&KEYS, "another list", cur, &pos));
    } else {
        FUZZ_CHECK(e.status == 400);
        FUZZ_CHECK(e.message && text_codepoints(e.message, strlen(e.message)) >= 0);
        FUZZ_CHECK(e.fields && json_object_size(e.fields) > 0);
    }
    /* whatever was sent, a cursor cannot be guessed */
    int64_t pos;
    char *raw = fuzz_cstr(data + 1, size - 1);
    FUZZ_CHECK(!cursor_open(&KEYS, q.bind ? q.bind : "x", raw, &pos));
    free(raw);
    free(query);
    arena_release(&a);
    return 0;
}
