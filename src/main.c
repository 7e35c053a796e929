/* The command line: serve, token, and the admin commands (business, client, sharing-key). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/app.h"
#include "api/rcache.h"
#include "auth/secret.h"
#include "cli/admin.h"
#include "cli/backup.h"
#include "cli/bulk.h"
#include "cli/copy.h"
#include "http/server.h"
#include "store/store.h"

/* serve's default --threads on PostgreSQL: this many per core, at most the maximum */
#define PG_THREADS_PER_CORE 8
#define PG_THREADS_MAX 64
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_DB "./data/hipusers.db"
#define CACHE_MB_DEFAULT 8
#define CACHE_MB_MAX 65536

static void usage(FILE *out)
{
    fprintf(out, "usage: hipusers COMMAND [OPTIONS]\n"
                 "\n"
                 "  serve [--listen HOST:PORT] [--db DB] [--threads N] [--max-connections N]\n"
                 "        [--timeout SECONDS] [--refresh-ttl SECONDS] [--refresh-reuse-grace SECONDS]\n"
                 "        [--trusted-proxy CIDR[,CIDR...]]... [--no-access-log] [--admin-listen HOST:PORT]\n"
                 "        [--no-docs] [--jwt-secret-file FILE]\n"
                 "        [--write-queue N] [--cache-mb N]\n"
                 "      Serve the API. Env: HIPUSERS_LISTEN, HIPUSERS_DB, HIPUSERS_JWT_SECRET,\n"
                 "      HIPUSERS_JWT_SECRET_PREVIOUS (secrets of 32..256 bytes). On SQLite, without a\n"
                 "      secret given, a random one is created (mode 0600) next to the database and\n"
                 "      reused; on PostgreSQL a secret must be given (HIPUSERS_JWT_SECRET or\n"
                 "      --jwt-secret-file; FILE.previous: the previous secret).\n"
                 "      DB: a SQLite file (a path or sqlite:PATH; default ./data/hipusers.db) or a\n"
                 "      PostgreSQL URL (postgresql://[user[:password]@]host[:port]/dbname[?...]).\n"
                 "      --refresh-reuse-grace: a refresh token used again within this many seconds\n"
                 "      of its first use gets a new pair (default 10; 0: any reuse ends the session).\n"
                 "      --trusted-proxy: peers whose X-Forwarded-For names the client (IPv4/IPv6).\n"
                 "      --admin-listen: serve GET /metrics, /healthz and /readyz on this address\n"
                 "      only (env HIPUSERS_ADMIN_LISTEN); without it they are on --listen.\n"
                 "      --no-docs: no GET /openapi.json (this API's OpenAPI document) and no\n"
                 "      GET /docs (its reference page); both answer 404.\n"
                 "      --write-queue: writes waiting for the writer at most (default 1024); past it\n"
                 "      a write answers 503 with Retry-After.\n"
                 "      --cache-mb: memory for answers of GET by id kept between requests, on SQLite\n"
                 "      (default 8; 0: none). A write or another process's change drops them.\n"
                 "  token --b-id ID [--client-id X] [--ttl SECONDS] [--db DB] [--jwt-secret-file FILE]\n"
                 "      Print an access token signed with the server's secret.\n"
                 "  business create --name NAME | business list\n"
                 "  client create --b-id B [--name N] | client list [--b-id B] | client revoke CLIENT_ID\n"
                 "  sharing-key create --b-id OWNER | sharing-key revoke KEY_ID\n"
                 "      Admin commands on the database named by HIPUSERS_DB (or --db DB first).\n"
                 "  import --b-id B --kind ekauser|doctor|clinic --file F [--format jsonl|csv] [--report PATH]\n"
                 "  export --b-id B --kind ekauser|doctor|clinic [--format jsonl|csv]\n"
                 "      A business's records from JSON Lines or CSV (rejected lines reported), and to\n"
                 "      standard output. Both take --db DB; see hipusers import --help.\n"
                 "  backup [--db DB] --to FILE\n"
                 "      An online copy of the SQLite database (HIPUSERS_DB), consistent while\n"
                 "      servers write; FILE (mode 0600) is replaced once the copy is whole.\n"
                 "  migrate [--db DB]\n"
                 "      Bring the database's schema up to date (serve does it at start too).\n"
                 "  copy --from SQLITE_DB --to POSTGRESQL_URL [--replace]\n"
                 "      Move a SQLite deployment to PostgreSQL: every table, in one transaction that\n"
                 "      commits once the rows per table and per business match (hipusers copy --help).\n"
                 "  --help, --version\n");
}

/* A whole number within [lo, hi], or -1. */
static long number(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || end == s || *end || v < lo || v > hi)
        return -1;
    return v;
}

#define TEN_YEARS (10L * 366 * 24 * 3600)

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* The data directory is the SQLite database's directory: the secret file lives there too. */
static const char *data_dir_of(const char *path, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", path);
    return dirname(buf);
}

/* A --db value (or HIPUSERS_DB) that is neither a file path nor a URL of a known scheme is
 * refused here, before anything is created. */
static bool db_ok(const char *db, struct store_url *u)
{
    char err[512];
    if (store_url_parse(db, u, err, sizeof err))
        return true;
    fprintf(stderr, "hipusers: --db: %s\n", err);
    return false;
}

static bool mkdirs(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return false;
        *p = '/';
    }
    return mkdir(tmp, 0700) == 0 || errno == EEXIST;
}

static int cmd_serve(int argc, char **argv)
{
    struct server_config cfg = {
        .listen = env_or("HIPUSERS_LISTEN", DEFAULT_LISTEN),
        .threads = (int)sysconf(_SC_NPROCESSORS_ONLN),
        .max_connections = 1024,
        .timeout_s = 30,
        .access_log = true,
        .admin_listen = getenv("HIPUSERS_ADMIN_LISTEN") && *getenv("HIPUSERS_ADMIN_LISTEN")
                            ? getenv("HIPUSERS_ADMIN_LISTEN")
                            : NULL,
    };
    const char *db = env_or("HIPUSERS_DB", DEFAULT_DB), *secret_file = NULL;
    long refresh_ttl = number(env_or("HIPUSERS_REFRESH_TTL", "0"), 0, TEN_YEARS);
    bool threads_given = false;
    long threads = (long)sysconf(_SC_NPROCESSORS_ONLN), max_conn = cfg.max_connections, timeout = cfg.timeout_s;
    long grace = REFRESH_GRACE_DEFAULT;
    long write_queue = STORE_WRITE_QUEUE_DEFAULT;
    long cache_mb = CACHE_MB_DEFAULT;
    struct cidrs proxies = {0};
    bool no_docs = false;
    char err[512];
    static const struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                         {"db", required_argument, 0, 'd'},
                                         {"threads", required_argument, 0, 't'},
                                         {"max-connections", required_argument, 0, 'm'},
                                         {"timeout", required_argument, 0, 'T'},
                                         {"no-access-log", no_argument, 0, 'q'},
                                         {"refresh-ttl", required_argument, 0, 'r'},
                                         {"refresh-reuse-grace", required_argument, 0, 'g'},
                                         {"trusted-proxy", required_argument, 0, 'p'},
                                         {"admin-listen", required_argument, 0, 'a'},
                                         {"no-docs", no_argument, 0, 'D'},
                                         {"write-queue", required_argument, 0, 'Q'},
                                         {"cache-mb", required_argument, 0, 'C'},
                                         {"jwt-secret-file", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'l': cfg.listen = optarg; break;
        case 'd': db = optarg; break;
        case 't':
            threads = number(optarg, 1, 256);
            threads_given = true;
            break;
        case 'm': max_conn = number(optarg, 1, 100000); break;
        case 'T': timeout = number(optarg, 1, 3600); break;
        case 'q': cfg.access_log = false; break;
        case 'a': cfg.admin_listen = optarg; break;
        case 'r': refresh_ttl = number(optarg, 1, TEN_YEARS); break;
        case 'g': grace = number(optarg, 0, REFRESH_GRACE_MAX); break;
        case 'Q': write_queue = number(optarg, 1, STORE_WRITE_QUEUE_MAX); break;
        case 'C': cache_mb = number(optarg, 0, CACHE_MB_MAX); break;
        case 'p':
            if (!cidrs_add(&proxies, optarg, err, sizeof err)) {
                fprintf(stderr, "hipusers: --trusted-proxy: %s\n", err);
                return 2;
            }
            break;
        case 'D': no_docs = true; break;
        case 's': secret_file = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (threads < 1 || max_conn < 1 || timeout < 1 || refresh_ttl < 0 || grace < 0 || write_queue < 1 || cache_mb < 0) {
        fprintf(stderr,
                "hipusers: --threads 1..256, --max-connections 1..100000, --timeout 1..3600,\n"
                "          --refresh-ttl 1..%ld seconds, --refresh-reuse-grace 0..%d seconds,\n"
                "          --write-queue 1..%d, --cache-mb 0..%d\n",
                TEN_YEARS, REFRESH_GRACE_MAX, STORE_WRITE_QUEUE_MAX, CACHE_MB_MAX);
        return 2;
    }
    cfg.max_connections = (unsigned)max_conn;
    cfg.timeout_s = (unsigned)timeout;
    struct store_url su;
    if (!db_ok(db, &su))
        return 2;
    /* On PostgreSQL a thread waits for the database through each query and commit: more of
     * them keep the database busy and let its commits share a WAL flush (group commit). */
    if (!threads_given && su.kind == STORE_POSTGRES)
        threads = threads * PG_THREADS_PER_CORE > PG_THREADS_MAX ? PG_THREADS_MAX : threads * PG_THREADS_PER_CORE;
    /* On SQLite one core is left to the store's writer thread, which every write waits for:
     * on 2 cores shared with a load generator, 1 worker answered GET 166-180k req/s with a
     * p99 under 1.1 ms, 2 workers 141-154k with a p99 of 3.9-5.3 ms, writes no slower
     * (docs/performance.md). */
    else if (!threads_given && threads > 1)
        threads -= 1;
    cfg.threads = (int)threads;
    char dirbuf[4096], shown[512];
    /* SQLite: the data directory holds the database and, unless one is given, the secret.
     * PostgreSQL: several servers share the database, so the secret must be given. */
    const char *dir = su.kind == STORE_SQLITE ? data_dir_of(su.path, dirbuf, sizeof dirbuf) : NULL;
    if (dir && !mkdirs(dir)) {
        fprintf(stderr, "hipusers: cannot create data directory %s\n", dir);
        return 1;
    }
    struct keyring keys;
    if (!secrets_load(&keys, dir, secret_file, true, err, sizeof err)) {
        fprintf(stderr, "hipusers: %s\n", err);
        return dir || secret_file ? 1 : 2;
    }
    struct app app;
    if (!app_init(&app, db, (unsigned)cfg.threads, (unsigned)write_queue, err, sizeof err)) {
        store_url_redact(db, shown, sizeof shown);
        fprintf(stderr, "hipusers: %s (%s)\n", err, shown);
        sodium_memzero(&keys, sizeof keys);
        return 1;
    }
    app.keys = keys;
    sodium_memzero(&keys, sizeof keys);
    /* the same secret on every server: the same names for the throttle's counters */
    throttle_init(&app.throttle, app.keys.keys[0].secret, app.keys.keys[0].len);
    if (refresh_ttl > 0)
        app.refresh_ttl = refresh_ttl;
    app.refresh_grace = grace;
    app.proxies = proxies;
    app.ops_on_admin = cfg.admin_listen != NULL;
    cfg.metrics = &app.metrics;
    app.no_docs = no_docs;
    /* Only a store that can tell when another process wrote it (SQLite) can have its
     * answers kept: on PostgreSQL, other servers write. (Whether it can tell just now is
     * asked at every GET: store_foreign_epoch.) */
    if (cache_mb > 0 && store_kind(app.store) == STORE_SQLITE)
        app.rcache = rcache_new((size_t)cache_mb << 20);
    int rc = server_run(api_precheck, api_handle, &app, &cfg);
    app_free(&app);
    return rc;
}

static int cmd_token(int argc, char **argv)
{
    const char *b_id = NULL, *client_id = "cli", *db = env_or("HIPUSERS_DB", DEFAULT_DB), *secret_file = NULL;
    long ttl = 3600;
    static const struct option opts[] = {{"b-id", required_argument, 0, 'b'},
                                         {"client-id", required_argument, 0, 'c'},
                                         {"ttl", required_argument, 0, 't'},
                                         {"db", required_argument, 0, 'd'},
                                         {"jwt-secret-file", required_argument, 0, 's'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'b': b_id = optarg; break;
        case 'c': client_id = optarg; break;
        case 't': ttl = number(optarg, 1, TEN_YEARS); break;
        case 'd': db = optarg; break;
        case 's': secret_file = optarg; break;
        default: usage(stderr); return 2;
        }
    }
    if (!b_id || !*b_id || strlen(b_id) > CLAIM_MAX || ttl <= 0) {
        fprintf(stderr, "hipusers token: --b-id is required (1..128 characters); --ttl 1..%ld seconds\n", TEN_YEARS);
        return 2;
    }
    struct store_url su;
    if (!db_ok(db, &su))
        return 2;
    char dirbuf[4096], err[512];
    struct keyring keys;
    const char *dir = su.kind == STORE_SQLITE ? data_dir_of(su.path, dirbuf, sizeof dirbuf) : NULL;
    if (!secrets_load(&keys, dir, secret_file, false, err, sizeof err)) {
        fprintf(stderr, "hipusers: %s\n", err);
        return 1;
    }
    char *tok = token_sign(&keys, b_id, client_id, (long)time(NULL), ttl, NULL, "hipusers", NULL);
    sodium_memzero(&keys, sizeof keys);
    if (!tok) {
        fprintf(stderr, "hipusers: signing failed\n");
        return 1;
    }
    printf("%s\n", tok);
    free(tok);
    return 0;
}

/* Brings the database's schema to this version's; `serve` does the same at start. */
static int cmd_migrate(const char *db)
{
    char err[512], shown[512];
    struct store *s = store_open(db, NULL, err, sizeof err);
    store_url_redact(db, shown, sizeof shown);
    if (!s) {
        fprintf(stderr, "hipusers: %s (%s)\n", err, shown);
        return 1;
    }
    store_close(s);
    printf("%s: schema version %d\n", shown, store_schema_version());
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "hipusers: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("hipusers %s\n", HIPUSERS_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "token"))
        return cmd_token(argc - 1, argv + 1);
    if (!strcmp(cmd, "backup"))
        return cmd_backup(env_or("HIPUSERS_DB", DEFAULT_DB), argc - 1, argv + 1);
    if (!strcmp(cmd, "copy"))
        return cmd_copy(argc - 1, argv + 1);
    const char *db = env_or("HIPUSERS_DB", DEFAULT_DB);
    if (argc > 3 && !strcmp(argv[2], "--db")) { /* hipusers client --db PATH create ... */
        db = argv[3];
        argv[3] = argv[1];
        argc -= 2;
        argv += 2;
        cmd = argv[1];
    }
    struct store_url su;
    bool admin = !strcmp(cmd, "business") || !strcmp(cmd, "client") || !strcmp(cmd, "sharing-key") ||
                 !strcmp(cmd, "import") || !strcmp(cmd, "export") || !strcmp(cmd, "migrate");
    if (admin && !db_ok(db, &su))
        return 2;
    if (!strcmp(cmd, "migrate")) {
        if (argc > 2) {
            fprintf(stderr, "usage: hipusers migrate [--db DB]\n");
            return 2;
        }
        return cmd_migrate(db);
    }
    if (!strcmp(cmd, "business"))
        return cmd_business(db, argc - 1, argv + 1);
    if (!strcmp(cmd, "client"))
        return cmd_client(db, argc - 1, argv + 1);
    if (!strcmp(cmd, "sharing-key"))
        return cmd_sharing_key(db, argc - 1, argv + 1);
    if (!strcmp(cmd, "import"))
        return cmd_import(db, argc - 1, argv + 1);
    if (!strcmp(cmd, "export"))
        return cmd_export(db, argc - 1, argv + 1);
    fprintf(stderr, "hipusers: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
