/* Unit tests of src/model/tabular.c: the CSV columns of each resource, list cells (';' and
 * the escapes), a row's cells to the import's JSON body, an exported record to cells and
 * back, and libcsv's RFC 4180 quoting of what export writes read back by import's parser
 * settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <csv.h>

#include "arena_fixture.h"
#include "model/tabular.h"

static const char *item(json_t *arr, size_t i) { return json_string_value(json_array_get(arr, i)); }

static void test_columns(void **state)
{
    (void)state;
    const char *cols[TABULAR_MAX_COLUMNS];
    size_t n = tabular_columns(resource_get(R_EKAUSER), cols);
    const char *want[] = {"id",        "firstname", "lastname",   "mobile",     "email",      "auth_userid",
                          "gender",    "dob",       "is_admin",   "seat_type",  "persona",    "partner_id",
                          "doctor_ids", "clinic_ids", "created_at", "updated_at"};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(cols[i], want[i]);
    for (int k = 0; k < R_COUNT; k++) {
        const struct resource *r = resource_get((enum rkind)k);
        n = tabular_columns(r, cols);
        assert_true(n <= TABULAR_MAX_COLUMNS);
        for (size_t i = 0; i < n; i++)
            assert_true(tabular_known(r, cols[i]));
    }
    assert_true(tabular_known(resource_get(R_DOCTOR), "partner_clinic_ids")); /* importable, never exported */
    assert_false(tabular_known(resource_get(R_DOCTOR), "doctor_ids"));
    assert_false(tabular_known(resource_get(R_CLINIC), "shoe_size"));
    assert_false(tabular_known(resource_get(R_CLINIC), ""));
}

static void test_list_cells(void **state)
{
    struct arena *a = *state;
    const char *items[] = {"plain", "with;semicolon", "back\\slash", "end\\", "\\;", ";", "ünï 診"};
    json_t *arr = json_array();
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        json_array_append_new(arr, json_string(items[i]));
    char *cell = tabular_join(arr, a);
    assert_string_equal(cell, "plain;with\\;semicolon;back\\\\slash;end\\\\;\\\\\\;;\\;;ünï 診");
    json_t *back = tabular_split(cell, strlen(cell));
    assert_true(json_equal(arr, back));
    json_decref(back);
    json_decref(arr);
    /* written by hand: a lone backslash is itself, empty items stay (the rule refuses them) */
    back = tabular_split("C:\\x;a;;b", 9);
    assert_int_equal(json_array_size(back), 4);
    assert_string_equal(item(back, 0), "C:\\x");
    assert_string_equal(item(back, 2), "");
    json_decref(back);
    back = tabular_split("", 0);
    assert_int_equal(json_array_size(back), 0);
    json_decref(back);
    arr = json_array();
    assert_string_equal(tabular_join(arr, a), "");
    json_decref(arr);
    assert_null(tabular_split("ok;\xff", 4)); /* not UTF-8 */
}

static void test_row_to_json(void **state)
{
    (void)state;
    const struct resource *u = resource_get(R_EKAUSER);
    const char *names[] = {"firstname", "is_admin", "doctor_ids", "email", "seat_type", "clinic_ids"};
    const char *cells[] = {"Amit", "true", "do1234567890123;do2234567890123", NULL, "", "yes"};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = cells[i] ? strlen(cells[i]) : 0;
    size_t bad = 99;
    json_t *o = tabular_to_json(u, names, cells, lens, 6, &bad);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "firstname")), "Amit");
    assert_true(json_is_true(json_object_get(o, "is_admin")));
    assert_int_equal(json_array_size(json_object_get(o, "doctor_ids")), 2);
    assert_null(json_object_get(o, "email"));                                      /* NULL: absent */
    assert_string_equal(json_string_value(json_object_get(o, "seat_type")), "");  /* "" stays a string */
    assert_string_equal(item(json_object_get(o, "clinic_ids"), 0), "yes");
    json_decref(o);
    const char *bools[] = {"TRUE"};
    size_t blen[] = {4};
    const char *bname[] = {"is_admin"};
    o = tabular_to_json(u, bname, bools, blen, 1, &bad);
    assert_true(json_is_string(json_object_get(o, "is_admin"))); /* the rule says "Must be a boolean." */
    json_decref(o);
    const char *badcells[] = {"ok", "\xc3\x28"};
    size_t badlens[] = {2, 2};
    const char *badnames[] = {"firstname", "lastname"};
    assert_null(tabular_to_json(u, badnames, badcells, badlens, 2, &bad));
    assert_int_equal(bad, 1);
    /* a NUL inside a cell reaches the rules (which refuse control characters) */
    const char nul[] = {'a', 0, 'b'};
    const char *nulcells[] = {nul};
    size_t nullen[] = {3};
    o = tabular_to_json(u, badnames, nulcells, nullen, 1, &bad);
    assert_int_equal(json_string_length(json_object_get(o, "firstname")), 3);
    json_decref(o);
}

/* Export's cells, quoted as export quotes them, read back with import's parser settings. */
struct parsed {
    char *cells[TABULAR_MAX_COLUMNS];
    size_t lens[TABULAR_MAX_COLUMNS], n;
    int rows;
};

static void cell_cb(void *s, size_t len, void *ctx)
{
    struct parsed *p = ctx;
    p->cells[p->n] = s ? strndup(s, len) : NULL;
    p->lens[p->n++] = len;
}

static void row_cb(int c, void *ctx)
{
    (void)c;
    ((struct parsed *)ctx)->rows++;
}

static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static void test_record_to_cells_and_back(void **state)
{
    struct arena *a = *state;
    const struct resource *d = resource_get(R_DOCTOR);
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s, s], s:[], s:[s], s:s, s:s}", "id", "do1234567890123",
                            "firstname", "Asha", "lastname", "Rao, \"Dr\"", "gender", "F", "about",
                            " spaced\ttext ", "specialisations", "Cardiology; adult", "x\\y", "qualifications",
                            "clinic_ids", "c-0123456789abcdef01234567", "created_at", "2024-05-01T12:34:56.789Z",
                            "updated_at", "2024-05-01T12:34:56.789Z");
    const char *cells[TABULAR_MAX_COLUMNS], *cols[TABULAR_MAX_COLUMNS];
    size_t n = tabular_columns(d, cols);
    tabular_cells(d, rec, a, cells, n);
    /* the line export writes */
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        if (cells[i] && (!*cells[i] || strpbrk(cells[i], ",\"\r\n")))
            csv_fwrite(f, cells[i], strlen(cells[i]));
        else if (cells[i])
            fputs(cells[i], f);
    }
    fputs("\r\n", f);
    fclose(f);
    struct csv_parser p;
    assert_int_equal(csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL), 0);
    csv_set_space_func(&p, no_space);
    struct parsed got = {0};
    assert_int_equal(csv_parse(&p, buf, blen, cell_cb, row_cb, &got), blen);
    assert_int_equal(csv_fini(&p, cell_cb, row_cb, &got), 0);
    csv_free(&p);
    free(buf);
    assert_int_equal(got.rows, 1);
    assert_int_equal(got.n, n);
    size_t bad;
    json_t *body = tabular_to_json(d, cols, (const char *const *)got.cells, got.lens, n, &bad);
    assert_non_null(body);
    assert_true(json_equal(body, rec)); /* every member back, the empty list included */
    json_decref(body);
    for (size_t i = 0; i < got.n; i++)
        free(got.cells[i]);
    json_decref(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns),
        cmocka_unit_test_setup_teardown(test_list_cells, setup_arena, teardown_arena),
        cmocka_unit_test(test_row_to_json),
        cmocka_unit_test_setup_teardown(test_record_to_cells_and_back, setup_arena, teardown_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
