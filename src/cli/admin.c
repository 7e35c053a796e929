#include "cli/admin.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "auth/credentials.h"
#include "model/validate.h"
#include "store/store.h"

static struct store *open_store(const char *db)
{
    char err[512], shown[512];
    struct store *s = store_open(db, NULL, err, sizeof err);
    if (!s) {
        store_url_redact(db, shown, sizeof shown);
        fprintf(stderr, "hipusers: %s (%s)\n", err, shown);
    }
    return s;
}

/* --name/--b-id style options after the subcommand word. */
static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

/* An admin command's unit of work and what it needs to report. */
struct admin_unit {
    const char *a, *b, *c, *d; /* the command's arguments */
    const char *missing;       /* the message for STORE_NOT_FOUND or STORE_ABORT */
    /* listings: rows collected during the unit, printed after it */
    const char **cells;
    int ncols;
    size_t n, cap;
    struct arena *arena;
};

static void collect(void *ctx, const char *const *cols, int n)
{
    struct admin_unit *u = ctx;
    if (u->n + (size_t)n > u->cap) {
        size_t cap = u->cap ? 2 * u->cap : 64;
        while (cap < u->n + (size_t)n)
            cap *= 2;
        const char **bigger = arena_alloc(u->arena, cap * sizeof *bigger);
        if (u->n)
            memcpy(bigger, u->cells, u->n * sizeof *bigger);
        u->cells = bigger;
        u->cap = cap;
    }
    for (int i = 0; i < n; i++)
        u->cells[u->n++] = arena_strdup(u->arena, cols[i] ? cols[i] : "");
    u->ncols = n;
}

/* Runs fn as one unit on the database and closes it; 0 when it committed, else 1 with the
 * reason on stderr. */
static int run(const char *db, bool write, store_fn fn, struct admin_unit *au, struct arena *a)
{
    struct store *s = open_store(db);
    if (!s)
        return 1;
    au->arena = a;
    struct store_unit u = {.fn = fn, .ctx = au, .arena = a};
    enum store_status st = write ? store_write(s, &u) : store_read(s, &u);
    store_close(s);
    switch (st) {
    case STORE_OK:
        for (size_t i = 0; au->ncols && i < au->n; i++)
            printf("%s%s", au->cells[i], (i + 1) % (size_t)au->ncols ? "\t" : "\n");
        return 0;
    case STORE_NOT_FOUND:
    case STORE_ABORT:
        fprintf(stderr, "hipusers: %s\n", au->missing ? au->missing : "not found");
        return 1;
    case STORE_CONFLICT:
        fprintf(stderr, "hipusers: %s already in use\n", u.conflict ? u.conflict : "a unique value");
        return 1;
    case STORE_RETRY:
    case STORE_UNAVAILABLE:
        fprintf(stderr, "hipusers: the database is unavailable (%s); retry later\n", store_status_name(st));
        return 1;
    default:
        fprintf(stderr, "hipusers: the command failed\n");
        return 1;
    }
}

static int run_and_free(const char *db, bool write, store_fn fn, struct admin_unit *au)
{
    struct arena a;
    arena_init(&a);
    int rc = run(db, write, fn, au, &a);
    arena_release(&a);
    return rc;
}

static enum store_status business_create_fn(struct store_tx *tx, void *ctx)
{
    struct admin_unit *u = ctx;
    return store_business_create(tx, u->a, u->b);
}

static enum store_status business_list_fn(struct store_tx *tx, void *ctx)
{
    struct admin_unit *u = ctx;
    u->n = 0;
    return store_business_list(tx, collect, u);
}

/* The business must exist before anything is made for it. */
static enum store_status need_business(struct store_tx *tx, struct admin_unit *u, const char *b_id)
{
    enum store_status st = store_business_get(tx, b_id, NULL);
    if (st == STORE_NOT_FOUND) {
        u->missing = "no such business";
        return STORE_ABORT;
    }
    return st;
}

static enum store_status client_create_fn(struct store_tx *tx, void *ctx)
{
    struct admin_unit *u = ctx;
    enum store_status st = need_business(tx, u, u->b);
    return st == STORE_OK ? store_client_create(tx, u->a, u->b, u->c, u->d) : st;
}

static enum store_status client_list_fn(struct store_tx *tx, void *ctx)
{
    struct admin_unit *u = ctx;
    u->n = 0;
    return store_client_list(tx, u->a, collect, u);
}

static enum store_status client_revoke_fn(struct store_tx *tx, void *ctx)
{
    struct admin_unit *u = ctx;
    return store_client_revoke(tx, u->a);
}

static enum store_status sharing_key_create_fn(struct store_tx *tx, void *ctx)
{
    struct admin_unit *u = ctx;
    enum store_status st = need_business(tx, u, u->b);
    return st == STORE_OK ? store_sharing_key_create(tx, u->a, u->b, u->c) : st;
}

static enum store_status sharing_key_revoke_fn(struct store_tx *tx, void *ctx)
{
    struct admin_unit *u = ctx;
    return store_sharing_key_revoke(tx, u->a);
}

int cmd_business(const char *db, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "create") == 0) {
        const char *name = opt(argc, argv, "--name");
        uint32_t cp;
        long chars = name ? text_codepoints(name, strlen(name)) : -1;
        if (!name || chars < 0 || chars > 200 || text_forbidden(name, strlen(name), &cp) ||
            !text_has_visible(name, strlen(name))) {
            fprintf(stderr, "usage: hipusers business create --name NAME (1..200 characters of text)\n");
            return 2;
        }
        /* 16 decimal digits, the first not zero. */
        unsigned char rnd[8];
        randombytes_buf(rnd, sizeof rnd);
        unsigned long long r = 0;
        memcpy(&r, rnd, sizeof r);
        char b_id[17];
        snprintf(b_id, sizeof b_id, "%llu", 1000000000000000ull + r % 9000000000000000ull);
        struct admin_unit u = {.a = b_id, .b = name};
        int rc = run_and_free(db, true, business_create_fn, &u);
        if (rc == 0)
            printf("%s\n", b_id);
        return rc;
    }
    if (strcmp(sub, "list") == 0) {
        struct admin_unit u = {0};
        return run_and_free(db, false, business_list_fn, &u);
    }
    fprintf(stderr, "usage: hipusers business create --name NAME | business list\n");
    return 2;
}

int cmd_client(const char *db, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "create") == 0) {
        const char *b_id = opt(argc, argv, "--b-id"), *name = opt(argc, argv, "--name");
        if (!b_id) {
            fprintf(stderr, "usage: hipusers client create --b-id B [--name N]\n");
            return 2;
        }
        char client_id[32] = "EC_", secret[64], hash[SECRET_HASH_MAX];
        random_hex(client_id + 3, sizeof client_id - 3, 10);
        random_b64(secret, sizeof secret, 32); /* 256 bits */
        if (!secret_hash(secret, hash)) {
            fprintf(stderr, "hipusers: hashing failed (out of memory?)\n");
            return 1;
        }
        struct admin_unit u = {.a = client_id, .b = b_id, .c = name, .d = hash};
        int rc = run_and_free(db, true, client_create_fn, &u);
        if (rc == 0)
            printf("client_id=%s\nclient_secret=%s\n", client_id, secret);
        sodium_memzero(secret, sizeof secret);
        return rc;
    }
    if (strcmp(sub, "list") == 0) {
        struct admin_unit u = {.a = opt(argc, argv, "--b-id")};
        return run_and_free(db, false, client_list_fn, &u);
    }
    if (strcmp(sub, "revoke") == 0 && argc > 2) {
        struct admin_unit u = {.a = argv[2], .missing = "no such active client"};
        return run_and_free(db, true, client_revoke_fn, &u);
    }
    fprintf(stderr, "usage: hipusers client create --b-id B [--name N] | client list [--b-id B] | client revoke ID\n");
    return 2;
}

int cmd_sharing_key(const char *db, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "create") == 0) {
        const char *owner = opt(argc, argv, "--b-id");
        if (!owner) {
            fprintf(stderr, "usage: hipusers sharing-key create --b-id OWNER\n");
            return 2;
        }
        char key_id[24] = "sk_", key[64], digest[DIGEST_HEX];
        random_hex(key_id + 3, sizeof key_id - 3, 8);
        random_b64(key, sizeof key, 32);
        token_digest(key, digest);
        struct admin_unit u = {.a = key_id, .b = owner, .c = digest};
        int rc = run_and_free(db, true, sharing_key_create_fn, &u);
        if (rc == 0)
            printf("key_id=%s\nsharing_key=%s\n", key_id, key);
        sodium_memzero(key, sizeof key);
        return rc;
    }
    if (strcmp(sub, "revoke") == 0 && argc > 2) {
        struct admin_unit u = {.a = argv[2], .missing = "no such active sharing key"};
        return run_and_free(db, true, sharing_key_revoke_fn, &u);
    }
    fprintf(stderr, "usage: hipusers sharing-key create --b-id OWNER | sharing-key revoke KEY_ID\n");
    return 2;
}
