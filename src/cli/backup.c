#include "cli/backup.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "store/backup.h"
#include "store/store.h"

static const char USAGE[] = "usage: hipusers backup [--db DB] --to FILE\n"
                            "  An online copy of the SQLite database, consistent while servers write; FILE\n"
                            "  (mode 0600) is replaced only once the copy is whole and checked.\n";

int cmd_backup(const char *db, int argc, char **argv)
{
    const char *to = NULL;
    static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                         {"to", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': db = optarg; break;
        case 't': to = optarg; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: fputs(USAGE, stderr); return 2;
        }
    }
    if (!to || !*to || optind != argc) {
        fputs(USAGE, stderr);
        return 2;
    }
    char err[1024];
    struct store_url su;
    if (!store_url_parse(db, &su, err, sizeof err)) {
        fprintf(stderr, "hipusers backup: --db: %s\n", err);
        return 2;
    }
    if (su.kind != STORE_SQLITE) {
        fprintf(stderr, "hipusers backup copies SQLite databases; back PostgreSQL up with pg_dump "
                        "(docs/deploy.md)\n");
        return 2;
    }
    struct backup_result r = {0};
    if (!sqlite_backup(su.path, to, &r, err, sizeof err)) {
        fprintf(stderr, "hipusers backup: %s\n", err);
        return 1;
    }
    printf("backed up %s to %s: %ld pages, %lld bytes, checked\n", su.path, to, r.pages, r.bytes);
    return 0;
}
