#include "cli/admin.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/credentials.h"
#include "model/validate.h"
#include "store/store.h"

static struct store_conn *open_store(const char *db)
{
    struct herr e = {0};
    struct store_conn *c = store_sqlite_open(db, NULL, &e);
    if (!c)
        fprintf(stderr, "hipusers: %s (%s)\n", e.message, db);
    return c;
}

/* Runs fn inside one write transaction and reports a failure on stderr. */
static int finish(struct store_conn *c, bool ok, struct herr *e)
{
    if (ok)
        ok = c->ops->commit(c, e);
    else
        c->ops->rollback(c);
    if (!ok)
        fprintf(stderr, "hipusers: %s\n", e->message ? e->message : "failed");
    c->ops->close(c);
    return ok ? 0 : 1;
}

/* --name/--b-id style options after the subcommand word. */
static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static void print_cols(void *ctx, const char *const *cols, int n)
{
    (void)ctx;
    for (int i = 0; i < n; i++)
        printf("%s%s", i ? "\t" : "", cols[i] ? cols[i] : "");
    printf("\n");
}

static bool business_exists(struct store_conn *c, const char *b_id, struct herr *e)
{
    enum find_result fr = c->auth->business_get(c, b_id, NULL, NULL, e);
    if (fr == FIND_MISSING)
        herr_set(e, 404, "no such business");
    return fr == FIND_OK;
}

int cmd_business(const char *db, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    struct herr e = {0};
    struct store_conn *c;
    if (strcmp(sub, "create") == 0) {
        const char *name = opt(argc, argv, "--name");
        uint32_t cp;
        long chars = name ? text_codepoints(name, strlen(name)) : -1;
        if (!name || chars < 0 || chars > 200 || text_forbidden(name, strlen(name), &cp) ||
            !text_has_visible(name, strlen(name))) {
            fprintf(stderr, "usage: hipusers business create --name NAME (1..200 characters of text)\n");
            return 2;
        }
        if (!(c = open_store(db)))
            return 1;
        /* 16 decimal digits, the first not zero. */
        unsigned char rnd[8];
        randombytes_buf(rnd, sizeof rnd);
        unsigned long long r = 0;
        memcpy(&r, rnd, sizeof r);
        char b_id[17];
        snprintf(b_id, sizeof b_id, "%llu", 1000000000000000ull + r % 9000000000000000ull);
        bool ok = c->ops->begin(c, true, &e) && c->auth->business_create(c, b_id, name, &e);
        if (ok)
            printf("%s\n", b_id);
        return finish(c, ok, &e);
    }
    if (strcmp(sub, "list") == 0) {
        if (!(c = open_store(db)))
            return 1;
        bool ok = c->ops->begin(c, false, &e) && c->auth->business_list(c, print_cols, NULL, &e);
        return finish(c, ok, &e);
    }
    fprintf(stderr, "usage: hipusers business create --name NAME | business list\n");
    return 2;
}

int cmd_client(const char *db, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    struct herr e = {0};
    struct store_conn *c;
    if (strcmp(sub, "create") == 0) {
        const char *b_id = opt(argc, argv, "--b-id"), *name = opt(argc, argv, "--name");
        if (!b_id) {
            fprintf(stderr, "usage: hipusers client create --b-id B [--name N]\n");
            return 2;
        }
        if (!(c = open_store(db)))
            return 1;
        char client_id[32] = "EC_", secret[64], hash[SECRET_HASH_MAX];
        random_hex(client_id + 3, sizeof client_id - 3, 10);
        random_b64(secret, sizeof secret, 32); /* 256 bits */
        if (!secret_hash(secret, hash)) {
            fprintf(stderr, "hipusers: hashing failed (out of memory?)\n");
            c->ops->close(c);
            return 1;
        }
        bool ok = c->ops->begin(c, true, &e) && business_exists(c, b_id, &e) &&
                  c->auth->client_create(c, client_id, b_id, name, hash, &e);
        if (ok)
            printf("client_id=%s\nclient_secret=%s\n", client_id, secret);
        sodium_memzero(secret, sizeof secret);
        return finish(c, ok, &e);
    }
    if (strcmp(sub, "list") == 0) {
        if (!(c = open_store(db)))
            return 1;
        bool ok = c->ops->begin(c, false, &e) && c->auth->client_list(c, opt(argc, argv, "--b-id"), print_cols, NULL, &e);
        return finish(c, ok, &e);
    }
    if (strcmp(sub, "revoke") == 0 && argc > 2) {
        if (!(c = open_store(db)))
            return 1;
        bool ok = c->ops->begin(c, true, &e);
        enum find_result fr = ok ? c->auth->client_revoke(c, argv[2], &e) : FIND_ERROR;
        if (fr == FIND_MISSING)
            herr_set(&e, 404, "no such active client");
        return finish(c, fr == FIND_OK, &e);
    }
    fprintf(stderr, "usage: hipusers client create --b-id B [--name N] | client list [--b-id B] | client revoke ID\n");
    return 2;
}

int cmd_sharing_key(const char *db, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    struct herr e = {0};
    struct store_conn *c;
    if (strcmp(sub, "create") == 0) {
        const char *owner = opt(argc, argv, "--b-id");
        if (!owner) {
            fprintf(stderr, "usage: hipusers sharing-key create --b-id OWNER\n");
            return 2;
        }
        if (!(c = open_store(db)))
            return 1;
        char key_id[24] = "sk_", key[64], digest[DIGEST_HEX];
        random_hex(key_id + 3, sizeof key_id - 3, 8);
        random_b64(key, sizeof key, 32);
        token_digest(key, digest);
        bool ok = c->ops->begin(c, true, &e) && business_exists(c, owner, &e) &&
                  c->auth->sharing_key_create(c, key_id, owner, digest, &e);
        if (ok)
            printf("key_id=%s\nsharing_key=%s\n", key_id, key);
        sodium_memzero(key, sizeof key);
        return finish(c, ok, &e);
    }
    if (strcmp(sub, "revoke") == 0 && argc > 2) {
        if (!(c = open_store(db)))
            return 1;
        bool ok = c->ops->begin(c, true, &e);
        enum find_result fr = ok ? c->auth->sharing_key_revoke(c, argv[2], (int64_t)time(NULL), &e) : FIND_ERROR;
        if (fr == FIND_MISSING)
            herr_set(&e, 404, "no such active sharing key");
        return finish(c, fr == FIND_OK, &e);
    }
    fprintf(stderr, "usage: hipusers sharing-key create --b-id OWNER | sharing-key revoke KEY_ID\n");
    return 2;
}
