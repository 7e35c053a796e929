/* CSV as `hipusers import` reads it and `export` writes it.
 *
 * Input: the first byte picks the resource, the rest is CSV parsed with the import's libcsv
 * settings (strict, RFC 4180 spaces, empty unquoted cell = absent). Each row's cells go
 * through tabular_to_json under the resource's export columns and the API's decoder.
 *
 * Invariants: a row written back the way export quotes it parses to the same cells (bytes,
 * and absent vs empty); every list a row gives (of items without NUL, which no field takes)
 * survives tabular_join then tabular_split. */
#include "fuzz_common.h"

#include <csv.h>

#include "model/tabular.h"
#include "util/arena.h"

#define MAX_CELLS 64

struct row {
    char *cells[MAX_CELLS];
    size_t lens[MAX_CELLS], n;
    int rows;
    bool overflow;
};

static void cell_cb(void *s, size_t len, void *ctx)
{
    struct row *r = ctx;
    if (r->n == MAX_CELLS) {
        r->overflow = true;
        return;
    }
    char *c = NULL;
    if (s) {
        c = malloc(len + 1);
        FUZZ_CHECK(c != NULL);
        memcpy(c, s, len);
        c[len] = '\0';
    }
    r->cells[r->n] = c;
    r->lens[r->n++] = len;
}

static void clear(struct row *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->cells[i]);
    r->n = 0;
    r->overflow = false;
}

static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static void init(struct csv_parser *p)
{
    FUZZ_CHECK(csv_init(p, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL) == 0);
    csv_set_space_func(p, no_space);
}

/* The row as export writes it, parsed again. */
static void check_requote(const struct row *r)
{
    if (r->n == 1 && !r->cells[0])
        return; /* an empty line: no row at all, in any CSV */
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    FUZZ_CHECK(f != NULL);
    for (size_t i = 0; i < r->n; i++) {
        if (i)
            fputc(',', f);
        const char *c = r->cells[i];
        if (!c)
            continue;
        if (r->lens[i] == 0 || memchr(c, ',', r->lens[i]) || memchr(c, '"', r->lens[i]) ||
            memchr(c, '\r', r->lens[i]) || memchr(c, '\n', r->lens[i]))
            csv_fwrite(f, c, r->lens[i]);
        else
            fwrite(c, 1, r->lens[i], f);
    }
    fputs("\r\n", f);
    fclose(f);
    struct csv_parser p;
    init(&p);
    struct row again = {0};
    FUZZ_CHECK(csv_parse(&p, buf, blen, cell_cb, NULL, &again) == blen);
    FUZZ_CHECK(csv_fini(&p, cell_cb, NULL, &again) == 0);
    csv_free(&p);
    free(buf);
    FUZZ_CHECK(again.n == r->n);
    for (size_t i = 0; i < r->n; i++) {
        FUZZ_CHECK(!again.cells[i] == !r->cells[i]);
        FUZZ_CHECK(again.lens[i] == r->lens[i]);
        FUZZ_CHECK(!r->cells[i] || memcmp(again.cells[i], r->cells[i], r->lens[i]) == 0);
    }
    clear(&again);
}

/* A list cell is text: an item with a NUL (which every field rule refuses) cannot be
 * written back as one. */
static bool has_nul(json_t *arr)
{
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it) if (memchr(json_string_value(it), 0, json_string_length(it))) return true;
    return false;
}

struct ctx {
    struct row row; /* first: cell_cb takes the context as a row */
    const struct resource *res;
};

static void row_cb(int term, void *vctx)
{
    (void)term;
    struct ctx *c = vctx;
    struct row *r = &c->row;
    if (!r->overflow) {
        check_requote(r);
        const char *cols[TABULAR_MAX_COLUMNS];
        size_t ncols = tabular_columns(c->res, cols), n = r->n < ncols ? r->n : ncols, bad;
        json_t *body = tabular_to_json(c->res, cols, (const char *const *)r->cells, r->lens, n, &bad);
        FUZZ_CHECK(body || bad < n);
        if (body) {
            struct arena a;
            arena_init(&a);
            const char *k;
            json_t *v;
            json_object_foreach(body, k, v) if (json_is_array(v) && !has_nul(v))
            {
                char *joined = tabular_join(v, &a);
                json_t *back = tabular_split(joined, strlen(joined));
                FUZZ_CHECK(back && json_equal(back, v));
                json_decref(back);
            }
            json_object_del(body, "id");
            json_object_del(body, "created_at");
            json_object_del(body, "updated_at");
            struct fval vals[MAX_FIELDS];
            struct herr e = {0};
            model_decode(c->res, body, true, FUZZ_TODAY, &a, vals, &e);
            arena_release(&a);
            json_decref(body);
        }
    }
    clear(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct ctx c = {.res = resource_get((enum rkind)(data[0] % R_COUNT))};
    struct csv_parser p;
    init(&p);
    size_t done = csv_parse(&p, data + 1, size - 1, cell_cb, row_cb, &c);
    if (done == size - 1)
        csv_fini(&p, cell_cb, row_cb, &c);
    clear(&c.row);
    csv_free(&p);
    return 0;
}
