#include "store/migrations.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/validate.h"
#include "store/sqlite_int.h"
#include "util/log.h"

/* Each entry moves the schema one version forward; never edit one that has shipped. */
static const char *const MIGRATIONS[] = {
    /* 1: the onboarding resources and their links */
    "CREATE TABLE ekauser ("
    "  rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, b_id TEXT NOT NULL,"
    "  firstname TEXT NOT NULL, lastname TEXT NOT NULL, mobile TEXT, email TEXT, auth_userid TEXT,"
    "  gender TEXT NOT NULL, dob TEXT NOT NULL, is_admin INTEGER NOT NULL DEFAULT 0,"
    "  seat_type TEXT NOT NULL DEFAULT 'b', persona TEXT NOT NULL DEFAULT 'D', partner_id TEXT,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, deleted_at TEXT);"
    "CREATE INDEX ekauser_live ON ekauser(b_id, rid) WHERE deleted_at IS NULL;"
    "CREATE UNIQUE INDEX ekauser_uq_partner_id ON ekauser(b_id, partner_id)"
    "  WHERE deleted_at IS NULL AND partner_id IS NOT NULL;"
    "CREATE UNIQUE INDEX ekauser_uq_mobile ON ekauser(b_id, mobile)"
    "  WHERE deleted_at IS NULL AND mobile IS NOT NULL;"
    "CREATE UNIQUE INDEX ekauser_uq_email ON ekauser(b_id, email COLLATE NOCASE)"
    "  WHERE deleted_at IS NULL AND email IS NOT NULL;"
    "CREATE UNIQUE INDEX ekauser_uq_auth_userid ON ekauser(b_id, auth_userid)"
    "  WHERE deleted_at IS NULL AND auth_userid IS NOT NULL;"
    "CREATE TABLE doctor ("
    "  rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, b_id TEXT NOT NULL,"
    "  firstname TEXT NOT NULL, lastname TEXT NOT NULL, gender TEXT NOT NULL, dob TEXT NOT NULL,"
    "  mobile TEXT, email TEXT, about TEXT, profile_image_url TEXT, specialisations TEXT,"
    "  qualifications TEXT, partner_id TEXT,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, deleted_at TEXT);"
    "CREATE INDEX doctor_live ON doctor(b_id, rid) WHERE deleted_at IS NULL;"
    "CREATE UNIQUE INDEX doctor_uq_partner_id ON doctor(b_id, partner_id)"
    "  WHERE deleted_at IS NULL AND partner_id IS NOT NULL;"
    "CREATE TABLE clinic ("
    "  rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, b_id TEXT NOT NULL,"
    "  name TEXT NOT NULL, address TEXT NOT NULL, pincode TEXT, contact TEXT, city TEXT, state TEXT,"
    "  partner_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, deleted_at TEXT);"
    "CREATE INDEX clinic_live ON clinic(b_id, rid) WHERE deleted_at IS NULL;"
    "CREATE UNIQUE INDEX clinic_uq_partner_id ON clinic(b_id, partner_id)"
    "  WHERE deleted_at IS NULL AND partner_id IS NOT NULL;"
    "CREATE TABLE user_doctor (pos INTEGER PRIMARY KEY, user_id TEXT NOT NULL, doctor_id TEXT NOT NULL,"
    "  UNIQUE(user_id, doctor_id));"
    "CREATE INDEX user_doctor_rev ON user_doctor(doctor_id);"
    "CREATE TABLE user_clinic (pos INTEGER PRIMARY KEY, user_id TEXT NOT NULL, clinic_id TEXT NOT NULL,"
    "  UNIQUE(user_id, clinic_id));"
    "CREATE INDEX user_clinic_rev ON user_clinic(clinic_id);"
    "CREATE TABLE doctor_clinic (pos INTEGER PRIMARY KEY, doctor_id TEXT NOT NULL, clinic_id TEXT NOT NULL,"
    "  UNIQUE(doctor_id, clinic_id));"
    "CREATE INDEX doctor_clinic_rev ON doctor_clinic(clinic_id);",
    /* 2: business login: businesses, API clients, sharing keys, login sessions and refresh tokens */
    "CREATE TABLE business (b_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);"
    "CREATE TABLE client (client_id TEXT PRIMARY KEY, b_id TEXT NOT NULL REFERENCES business(b_id),"
    "  name TEXT, secret_hash TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);"
    "CREATE INDEX client_revoked ON client(revoked_at) WHERE revoked_at IS NOT NULL;"
    "CREATE TABLE sharing_key (key_id TEXT PRIMARY KEY, owner_b_id TEXT NOT NULL REFERENCES business(b_id),"
    "  key_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT);"
    "CREATE TABLE session (family TEXT PRIMARY KEY, client_id TEXT NOT NULL, b_id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, revoked_at INTEGER);"
    "CREATE INDEX session_revoked ON session(revoked_at) WHERE revoked_at IS NOT NULL;"
    "CREATE TABLE refresh_token (token_hash TEXT PRIMARY KEY, family TEXT NOT NULL REFERENCES session(family),"
    "  expires_at INTEGER NOT NULL, used_at INTEGER, created_at INTEGER NOT NULL);"
    "CREATE INDEX refresh_token_family ON refresh_token(family);",
    /* 3: a session opened with a sharing key remembers it, so revoking the key ends the session */
    "ALTER TABLE session ADD COLUMN key_id TEXT; CREATE INDEX session_key ON session(key_id) WHERE key_id IS NOT NULL;",
    /* 4: Eka User emails are unique by their normalised key (NFC + full Unicode case folding,
     * text_fold_key), not by SQLite's ASCII-only NOCASE. Existing rows get their key from the
     * C function hip_fold_key; where two live users of a tenant already share a key (NOCASE
     * let "Ä@x.in" and "ä@x.in" both in), the older keeps it and the newer is left without
     * one, so the migration never fails on old data and no third user can take the address. */
    "ALTER TABLE ekauser ADD COLUMN email_key TEXT;"
    "UPDATE ekauser SET email_key = hip_fold_key(email) WHERE email IS NOT NULL;"
    "CREATE INDEX ekauser_email_key_scan ON ekauser(b_id, email_key);"
    "UPDATE ekauser SET email_key = NULL WHERE deleted_at IS NULL AND email_key IS NOT NULL AND EXISTS ("
    "  SELECT 1 FROM ekauser o WHERE o.b_id = ekauser.b_id AND o.email_key = ekauser.email_key"
    "  AND o.deleted_at IS NULL AND o.rid < ekauser.rid);"
    "DROP INDEX ekauser_email_key_scan;"
    "DROP INDEX ekauser_uq_email;"
    "CREATE UNIQUE INDEX ekauser_uq_email_key ON ekauser(b_id, email_key)"
    "  WHERE deleted_at IS NULL AND email_key IS NOT NULL;",
    /* 5: each side of a link table keeps its own order (issue 11, import): ord0 orders the
     * links of a record on side 0 (col[0]), ord1 on side 1; NULL means "by pos", the order
     * the links were made in. A list given whole (create, a user's PATCH, an import) sets
     * its side's order to -n..-1 without moving the rows the other side sees, so importing
     * the doctor-clinic relation from both sides keeps both orders. */
    "ALTER TABLE user_doctor ADD COLUMN ord0 INTEGER; ALTER TABLE user_doctor ADD COLUMN ord1 INTEGER;"
    "ALTER TABLE user_clinic ADD COLUMN ord0 INTEGER; ALTER TABLE user_clinic ADD COLUMN ord1 INTEGER;"
    "ALTER TABLE doctor_clinic ADD COLUMN ord0 INTEGER; ALTER TABLE doctor_clinic ADD COLUMN ord1 INTEGER;",
    /* 6: the change log (issue 10): one row per write of a record, numbered per tenant in
     * commit order by the tenant's counter row, and per record by version; it serves each
     * record's history and the tenant's feed. Records written before are filled in by
     * sq_change_log_backfill (a create, and a delete for deleted ones). */
    "CREATE TABLE change_seq (b_id TEXT PRIMARY KEY, last INTEGER NOT NULL);"
    "CREATE TABLE change_log (b_id TEXT NOT NULL, seq INTEGER NOT NULL, resource TEXT NOT NULL,"
    "  id TEXT NOT NULL, version INTEGER NOT NULL, action TEXT NOT NULL, at TEXT NOT NULL,"
    "  client_id TEXT, request_id TEXT, changes TEXT NOT NULL,"
    "  PRIMARY KEY (b_id, seq), UNIQUE (b_id, resource, id, version)) WITHOUT ROWID;",
    /* 7: list filters served by indexes (each leads with b_id; SQLite appends the rowid,
     * so an equality on the indexed columns also yields creation order), doctors' emails
     * keyed like users' (compared, not unique), and the Idempotency-Keys of creates, keyed
     * by tenant and key. */
    "ALTER TABLE doctor ADD COLUMN email_key TEXT;"
    "UPDATE doctor SET email_key = hip_fold_key(email) WHERE email IS NOT NULL;"
    "CREATE INDEX ekauser_updated ON ekauser(b_id, updated_at) WHERE deleted_at IS NULL;"
    "CREATE INDEX doctor_updated ON doctor(b_id, updated_at) WHERE deleted_at IS NULL;"
    "CREATE INDEX clinic_updated ON clinic(b_id, updated_at) WHERE deleted_at IS NULL;"
    "CREATE INDEX doctor_mobile ON doctor(b_id, mobile) WHERE deleted_at IS NULL AND mobile IS NOT NULL;"
    "CREATE INDEX doctor_email_key ON doctor(b_id, email_key) WHERE deleted_at IS NULL AND email_key IS NOT NULL;"
    "CREATE TABLE idempotency_key ("
    "  b_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, holder TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('running', 'done')), status INTEGER, body TEXT,"
    "  created_ms INTEGER NOT NULL, lease_until_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (b_id, key)) WITHOUT ROWID;"
    "CREATE INDEX idempotency_key_age ON idempotency_key(b_id, created_ms);",
    /* 8: PostgreSQL's feed numbers given when read (store_feed_seal); SQLite's one writer
     * numbers entries as they are appended, so nothing changes here */
    "SELECT 1;",
    /* 9: every row of a tenant's says whose it is, so every statement names the tenant (see
     * docs/scaling.md): the link tables get b_id (from the record on side 0, else side 1; ''
     * when both are gone: in no tenant's view), and their key and reverse index lead with it,
     * as on PostgreSQL. The record tables keep their keys (rid, the rowid; id unique over all
     * tenants, which PostgreSQL keeps with its id registry): one file is never distributed,
     * and rebuilding the largest tables would buy nothing. */
    "ALTER TABLE user_doctor RENAME TO user_doctor_v7;"
    "CREATE TABLE user_doctor (pos INTEGER PRIMARY KEY, b_id TEXT NOT NULL, user_id TEXT NOT NULL, doctor_id TEXT NOT NULL,"
    "  ord0 INTEGER, ord1 INTEGER);"
    "INSERT INTO user_doctor (pos, b_id, user_id, doctor_id, ord0, ord1) SELECT pos,"
    "  coalesce((SELECT b_id FROM ekauser WHERE id = l.user_id), (SELECT b_id FROM doctor WHERE id = l.doctor_id), ''),"
    "  user_id, doctor_id, ord0, ord1 FROM user_doctor_v7 l;"
    "DROP TABLE user_doctor_v7;"
    "CREATE UNIQUE INDEX user_doctor_key ON user_doctor(b_id, user_id, doctor_id);"
    "CREATE INDEX user_doctor_rev ON user_doctor(b_id, doctor_id);"
    "ALTER TABLE user_clinic RENAME TO user_clinic_v7;"
    "CREATE TABLE user_clinic (pos INTEGER PRIMARY KEY, b_id TEXT NOT NULL, user_id TEXT NOT NULL, clinic_id TEXT NOT NULL,"
    "  ord0 INTEGER, ord1 INTEGER);"
    "INSERT INTO user_clinic (pos, b_id, user_id, clinic_id, ord0, ord1) SELECT pos,"
    "  coalesce((SELECT b_id FROM ekauser WHERE id = l.user_id), (SELECT b_id FROM clinic WHERE id = l.clinic_id), ''),"
    "  user_id, clinic_id, ord0, ord1 FROM user_clinic_v7 l;"
    "DROP TABLE user_clinic_v7;"
    "CREATE UNIQUE INDEX user_clinic_key ON user_clinic(b_id, user_id, clinic_id);"
    "CREATE INDEX user_clinic_rev ON user_clinic(b_id, clinic_id);"
    "ALTER TABLE doctor_clinic RENAME TO doctor_clinic_v7;"
    "CREATE TABLE doctor_clinic (pos INTEGER PRIMARY KEY, b_id TEXT NOT NULL, doctor_id TEXT NOT NULL, clinic_id TEXT NOT NULL,"
    "  ord0 INTEGER, ord1 INTEGER);"
    "INSERT INTO doctor_clinic (pos, b_id, doctor_id, clinic_id, ord0, ord1) SELECT pos,"
    "  coalesce((SELECT b_id FROM doctor WHERE id = l.doctor_id), (SELECT b_id FROM clinic WHERE id = l.clinic_id), ''),"
    "  doctor_id, clinic_id, ord0, ord1 FROM doctor_clinic_v7 l;"
    "DROP TABLE doctor_clinic_v7;"
    "CREATE UNIQUE INDEX doctor_clinic_key ON doctor_clinic(b_id, doctor_id, clinic_id);"
    "CREATE INDEX doctor_clinic_rev ON doctor_clinic(b_id, clinic_id);",
    /* 10: the login throttle's counters (issue 8), shared by every server of the database: one
     * row per counter, keyed by a keyed hash of (client id, address) or of the address alone
     * (never the raw values); window_start in ms; counters whose windows are over are deleted
     * oldest first (the age index). */
    "CREATE TABLE login_throttle (key TEXT PRIMARY KEY, window_start INTEGER NOT NULL,"
    "  failures INTEGER NOT NULL, pending INTEGER NOT NULL, prev_pending INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX login_throttle_age ON login_throttle(window_start);",
    /* 11: a record's history is a chain: each change log entry names the entry before it of
     * the same record (prev), each record its last entry (last_seq), so an entry costs the
     * writer no page of an index keyed by record (issue 9: that index's random page was a
     * quarter of a PATCH's WAL frames). The chain is built from the (b_id, resource, id,
     * version) key while it is still there; the table is then rebuilt without it. */
    "ALTER TABLE ekauser ADD COLUMN last_seq INTEGER;"
    "ALTER TABLE doctor ADD COLUMN last_seq INTEGER;"
    "ALTER TABLE clinic ADD COLUMN last_seq INTEGER;"
    "UPDATE ekauser SET last_seq = (SELECT max(seq) FROM change_log c"
    "  WHERE c.b_id = ekauser.b_id AND c.resource = 'ekauser' AND c.id = ekauser.id);"
    "UPDATE doctor SET last_seq = (SELECT max(seq) FROM change_log c"
    "  WHERE c.b_id = doctor.b_id AND c.resource = 'doctor' AND c.id = doctor.id);"
    "UPDATE clinic SET last_seq = (SELECT max(seq) FROM change_log c"
    "  WHERE c.b_id = clinic.b_id AND c.resource = 'clinic' AND c.id = clinic.id);"
    "CREATE TABLE change_log_v11 (b_id TEXT NOT NULL, seq INTEGER NOT NULL, resource TEXT NOT NULL,"
    "  id TEXT NOT NULL, version INTEGER NOT NULL, action TEXT NOT NULL, at TEXT NOT NULL,"
    "  client_id TEXT, request_id TEXT, changes TEXT NOT NULL, prev INTEGER,"
    "  PRIMARY KEY (b_id, seq)) WITHOUT ROWID;"
    "INSERT INTO change_log_v11 SELECT b_id, seq, resource, id, version, action, at, client_id, request_id,"
    "  changes, lag(seq) OVER (PARTITION BY b_id, resource, id ORDER BY version) FROM change_log;"
    "DROP TABLE change_log;"
    "ALTER TABLE change_log_v11 RENAME TO change_log;",
    /* 12: the record's row also keeps its last entry's version, so an entry's version costs
     * the writer no page of the change log (issue 9: that random page of a table that only
     * grows was a tenth of a PATCH's time on the writer, and a read from the disk's cache). */
    "ALTER TABLE ekauser ADD COLUMN last_version INTEGER;"
    "ALTER TABLE doctor ADD COLUMN last_version INTEGER;"
    "ALTER TABLE clinic ADD COLUMN last_version INTEGER;"
    "UPDATE ekauser SET last_version = (SELECT version FROM change_log c"
    "  WHERE c.b_id = ekauser.b_id AND c.seq = ekauser.last_seq) WHERE last_seq IS NOT NULL;"
    "UPDATE doctor SET last_version = (SELECT version FROM change_log c"
    "  WHERE c.b_id = doctor.b_id AND c.seq = doctor.last_seq) WHERE last_seq IS NOT NULL;"
    "UPDATE clinic SET last_version = (SELECT version FROM change_log c"
    "  WHERE c.b_id = clinic.b_id AND c.seq = clinic.last_seq) WHERE last_seq IS NOT NULL;",
};

/* Migration 4's backfill: the same key the model computes for new writes. */
static void sql_fold_key(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *s = (const char *)sqlite3_value_text(argv[0]);
    int n = sqlite3_value_bytes(argv[0]);
    errno = 0;
    char *key = s ? text_fold_key(s, (size_t)n) : NULL;
    if (!key) {
        if (errno == ENOMEM)
            sqlite3_result_error_nomem(ctx);
        else
            sqlite3_result_null(ctx); /* not text: no key, as for an absent email */
        return;
    }
    sqlite3_result_text(ctx, key, -1, free);
}

/* Users that migration 4 left without an email key (counted, never named). */
static void report_unkeyed_emails(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM ekauser WHERE deleted_at IS NULL AND email IS NOT NULL"
                           " AND email_key IS NULL",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
        log_line("warn", "users whose email equals an older user's when case and Unicode spelling are ignored;"
                         " their email is not unique-checked until it is changed",
                 NULL, (long)sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
}

/* The same versions for PostgreSQL, in its own dialect: each entry must do what the SQLite
 * entry of the same number does, so either backend can serve the same hipusers. */
static const struct pg_migration PG_MIGRATIONS[] = {
    /* 1: the onboarding resources and their links */
    {.sql = "CREATE TABLE ekauser ("
    "  rid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text NOT NULL UNIQUE, b_id text NOT NULL,"
    "  firstname text NOT NULL, lastname text NOT NULL, mobile text, email text, auth_userid text,"
    "  gender text NOT NULL, dob text NOT NULL, is_admin boolean NOT NULL DEFAULT false,"
    "  seat_type text NOT NULL DEFAULT 'b', persona text NOT NULL DEFAULT 'D', partner_id text,"
    "  created_at text NOT NULL, updated_at text NOT NULL, deleted_at text);"
    "CREATE INDEX ekauser_live ON ekauser (b_id, rid) WHERE deleted_at IS NULL;"
    "CREATE UNIQUE INDEX ekauser_uq_partner_id ON ekauser (b_id, partner_id)"
    "  WHERE deleted_at IS NULL AND partner_id IS NOT NULL;"
    "CREATE UNIQUE INDEX ekauser_uq_mobile ON ekauser (b_id, mobile)"
    "  WHERE deleted_at IS NULL AND mobile IS NOT NULL;"
    /* SQLite's NOCASE folds ASCII only; lower() under the C collation does the same */
    "CREATE UNIQUE INDEX ekauser_uq_email ON ekauser (b_id, lower(email COLLATE \"C\"))"
    "  WHERE deleted_at IS NULL AND email IS NOT NULL;"
    "CREATE UNIQUE INDEX ekauser_uq_auth_userid ON ekauser (b_id, auth_userid)"
    "  WHERE deleted_at IS NULL AND auth_userid IS NOT NULL;"
    "CREATE TABLE doctor ("
    "  rid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text NOT NULL UNIQUE, b_id text NOT NULL,"
    "  firstname text NOT NULL, lastname text NOT NULL, gender text NOT NULL, dob text NOT NULL,"
    "  mobile text, email text, about text, profile_image_url text, specialisations text,"
    "  qualifications text, partner_id text,"
    "  created_at text NOT NULL, updated_at text NOT NULL, deleted_at text);"
    "CREATE INDEX doctor_live ON doctor (b_id, rid) WHERE deleted_at IS NULL;"
    "CREATE UNIQUE INDEX doctor_uq_partner_id ON doctor (b_id, partner_id)"
    "  WHERE deleted_at IS NULL AND partner_id IS NOT NULL;"
    "CREATE TABLE clinic ("
    "  rid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text NOT NULL UNIQUE, b_id text NOT NULL,"
    "  name text NOT NULL, address text NOT NULL, pincode text, contact text, city text, state text,"
    "  partner_id text, created_at text NOT NULL, updated_at text NOT NULL, deleted_at text);"
    "CREATE INDEX clinic_live ON clinic (b_id, rid) WHERE deleted_at IS NULL;"
    "CREATE UNIQUE INDEX clinic_uq_partner_id ON clinic (b_id, partner_id)"
    "  WHERE deleted_at IS NULL AND partner_id IS NOT NULL;"
    "CREATE TABLE user_doctor (pos bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id text NOT NULL,"
    "  doctor_id text NOT NULL, UNIQUE (user_id, doctor_id));"
    "CREATE INDEX user_doctor_rev ON user_doctor (doctor_id);"
    "CREATE TABLE user_clinic (pos bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id text NOT NULL,"
    "  clinic_id text NOT NULL, UNIQUE (user_id, clinic_id));"
    "CREATE INDEX user_clinic_rev ON user_clinic (clinic_id);"
    "CREATE TABLE doctor_clinic (pos bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, doctor_id text NOT NULL,"
    "  clinic_id text NOT NULL, UNIQUE (doctor_id, clinic_id));"
    "CREATE INDEX doctor_clinic_rev ON doctor_clinic (clinic_id);"},
    /* 2: business login: businesses, API clients, sharing keys, login sessions and refresh tokens */
    {.sql = "CREATE TABLE business (b_id text PRIMARY KEY, name text NOT NULL, created_at text NOT NULL);"
    "CREATE TABLE client (client_id text PRIMARY KEY, b_id text NOT NULL REFERENCES business (b_id),"
    "  name text, secret_hash text NOT NULL, created_at text NOT NULL, revoked_at text);"
    "CREATE INDEX client_revoked ON client (revoked_at) WHERE revoked_at IS NOT NULL;"
    "CREATE TABLE sharing_key (key_id text PRIMARY KEY, owner_b_id text NOT NULL REFERENCES business (b_id),"
    "  key_hash text NOT NULL UNIQUE, created_at text NOT NULL, revoked_at text);"
    "CREATE TABLE session (family text PRIMARY KEY, client_id text NOT NULL, b_id text NOT NULL,"
    "  created_at bigint NOT NULL, revoked_at bigint);"
    "CREATE INDEX session_revoked ON session (revoked_at) WHERE revoked_at IS NOT NULL;"
    "CREATE TABLE refresh_token (token_hash text PRIMARY KEY, family text NOT NULL REFERENCES session (family),"
    "  expires_at bigint NOT NULL, used_at bigint, created_at bigint NOT NULL);"
    "CREATE INDEX refresh_token_family ON refresh_token (family);"},
    /* 3: a session opened with a sharing key remembers it, so revoking the key ends the session */
    {.sql = "ALTER TABLE session ADD COLUMN key_id text; CREATE INDEX session_key ON session (key_id) WHERE key_id IS NOT NULL;"},
    /* 4: emails unique by their normalised key, as SQLite's 4: the key column, filled from C
     * (text_fold_key), then the older of two live users sharing a key keeps it */
    {.sql = "ALTER TABLE ekauser ADD COLUMN email_key text;",
     .fold_table = "ekauser",
     .fold_column = "email",
     .fold_key = "email_key",
     .report_unkeyed = true,
     .after = "UPDATE ekauser SET email_key = NULL WHERE deleted_at IS NULL AND email_key IS NOT NULL AND EXISTS ("
     "  SELECT 1 FROM ekauser o WHERE o.b_id = ekauser.b_id AND o.email_key = ekauser.email_key"
     "  AND o.deleted_at IS NULL AND o.rid < ekauser.rid);"
     "DROP INDEX ekauser_uq_email;"
     "CREATE UNIQUE INDEX ekauser_uq_email_key ON ekauser (b_id, email_key)"
     "  WHERE deleted_at IS NULL AND email_key IS NOT NULL;"},
    /* 5: each side of a link table keeps its own order, as SQLite's 5 */
    {.sql = "ALTER TABLE user_doctor ADD COLUMN ord0 bigint, ADD COLUMN ord1 bigint;"
            "ALTER TABLE user_clinic ADD COLUMN ord0 bigint, ADD COLUMN ord1 bigint;"
            "ALTER TABLE doctor_clinic ADD COLUMN ord0 bigint, ADD COLUMN ord1 bigint;"},
    /* 6: the change log, as SQLite's 6; the records written before get their entries from C */
    {.sql = "CREATE TABLE change_seq (b_id text PRIMARY KEY, last bigint NOT NULL);"
            "CREATE TABLE change_log (b_id text NOT NULL, seq bigint NOT NULL, resource text NOT NULL,"
            "  id text NOT NULL, version bigint NOT NULL, action text NOT NULL, at text NOT NULL,"
            "  client_id text, request_id text, changes text NOT NULL,"
            "  PRIMARY KEY (b_id, seq), UNIQUE (b_id, resource, id, version));",
     .hook = PG_HOOK_CHANGE_LOG},
    /* 7: list filters served by indexes, doctors' email keys, Idempotency-Keys, as SQLite's 7
     * (PostgreSQL's indexes do not end with the row id: the planner sorts what it finds) */
    {.sql = "ALTER TABLE doctor ADD COLUMN email_key text;",
     .fold_table = "doctor",
     .fold_column = "email",
     .fold_key = "email_key",
     .after = "CREATE INDEX ekauser_updated ON ekauser (b_id, updated_at) WHERE deleted_at IS NULL;"
              "CREATE INDEX doctor_updated ON doctor (b_id, updated_at) WHERE deleted_at IS NULL;"
              "CREATE INDEX clinic_updated ON clinic (b_id, updated_at) WHERE deleted_at IS NULL;"
              "CREATE INDEX doctor_mobile ON doctor (b_id, mobile) WHERE deleted_at IS NULL AND mobile IS NOT NULL;"
              "CREATE INDEX doctor_email_key ON doctor (b_id, email_key)"
              "  WHERE deleted_at IS NULL AND email_key IS NOT NULL;"
              "CREATE TABLE idempotency_key ("
              "  b_id text NOT NULL, key text NOT NULL, request_hash text NOT NULL, holder text NOT NULL,"
              "  state text NOT NULL CHECK (state IN ('running', 'done')), status integer, body text,"
              "  created_ms bigint NOT NULL, lease_until_ms bigint NOT NULL, PRIMARY KEY (b_id, key));"
              "CREATE INDEX idempotency_key_age ON idempotency_key (b_id, created_ms);"},
    /* 8: the feed numbered after commit: an entry goes in without its seq (a tenant's
     * writers no longer take turns on its counter row through their commits) and gets it
     * from store_feed_seal, in the order of `ord`. Records' row numbers and entries' ord
     * come from one sequence, and a create's entry takes its record's row number, so the
     * feed shows a resource's creates in the order its list does. Each step may run again
     * (a database rewound to an older version by hand). */
    {.sql = "CREATE SEQUENCE IF NOT EXISTS hip_order;"
            "ALTER TABLE ekauser ALTER COLUMN rid DROP IDENTITY IF EXISTS;"
            "ALTER TABLE doctor ALTER COLUMN rid DROP IDENTITY IF EXISTS;"
            "ALTER TABLE clinic ALTER COLUMN rid DROP IDENTITY IF EXISTS;"
            "ALTER TABLE ekauser ALTER COLUMN rid SET DEFAULT nextval('hip_order');"
            "ALTER TABLE doctor ALTER COLUMN rid SET DEFAULT nextval('hip_order');"
            "ALTER TABLE clinic ALTER COLUMN rid SET DEFAULT nextval('hip_order');"
            "ALTER TABLE change_log DROP CONSTRAINT IF EXISTS change_log_pkey;"
            "ALTER TABLE change_log ALTER COLUMN seq DROP NOT NULL;"
            /* its key is now the record's version (seq is unique where it is set) */
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'change_log'::regclass"
            "  AND contype = 'p') THEN ALTER TABLE change_log"
            "  DROP CONSTRAINT IF EXISTS change_log_b_id_resource_id_version_key,"
            "  ADD PRIMARY KEY (b_id, resource, id, version); END IF; END $$;"
            "ALTER TABLE change_log ADD COLUMN IF NOT EXISTS ord bigint;"
            "CREATE UNIQUE INDEX IF NOT EXISTS change_log_seq ON change_log (b_id, seq);"
            "CREATE INDEX IF NOT EXISTS change_log_unsealed ON change_log (b_id, ord) WHERE seq IS NULL;"},
    /* 9: keys that a table distributed by b_id can keep (Citus: every primary and unique key
     * of a distributed table includes its distribution column): each record table's primary
     * key is (b_id, rid) and its id unique per tenant, the link tables get b_id (from the
     * record on side 0, else side 1; '' when both are gone: in no tenant's view) and their
     * keys and indexes lead with it. Ids stay unique over all tenants through eka_id, a table
     * of its own keyed by the id alone (distributed by id), which every create writes first. */
    {.sql = "ALTER TABLE ekauser DROP CONSTRAINT ekauser_pkey, ADD PRIMARY KEY (b_id, rid),"
            "  DROP CONSTRAINT ekauser_id_key, ADD UNIQUE (b_id, id);"
            "ALTER TABLE doctor DROP CONSTRAINT doctor_pkey, ADD PRIMARY KEY (b_id, rid),"
            "  DROP CONSTRAINT doctor_id_key, ADD UNIQUE (b_id, id);"
            "ALTER TABLE clinic DROP CONSTRAINT clinic_pkey, ADD PRIMARY KEY (b_id, rid),"
            "  DROP CONSTRAINT clinic_id_key, ADD UNIQUE (b_id, id);"
            "ALTER TABLE user_doctor ADD COLUMN b_id text;"
            "UPDATE user_doctor l SET b_id = coalesce((SELECT o.b_id FROM ekauser o WHERE o.id = l.user_id),"
            "  (SELECT o.b_id FROM doctor o WHERE o.id = l.doctor_id), '');"
            "ALTER TABLE user_doctor ALTER COLUMN b_id SET NOT NULL, DROP CONSTRAINT user_doctor_pkey,"
            "  ADD PRIMARY KEY (b_id, pos), DROP CONSTRAINT user_doctor_user_id_doctor_id_key, ADD UNIQUE (b_id, user_id, doctor_id);"
            "DROP INDEX user_doctor_rev; CREATE INDEX user_doctor_rev ON user_doctor (b_id, doctor_id);"
            "ALTER TABLE user_clinic ADD COLUMN b_id text;"
            "UPDATE user_clinic l SET b_id = coalesce((SELECT o.b_id FROM ekauser o WHERE o.id = l.user_id),"
            "  (SELECT o.b_id FROM clinic o WHERE o.id = l.clinic_id), '');"
            "ALTER TABLE user_clinic ALTER COLUMN b_id SET NOT NULL, DROP CONSTRAINT user_clinic_pkey,"
            "  ADD PRIMARY KEY (b_id, pos), DROP CONSTRAINT user_clinic_user_id_clinic_id_key, ADD UNIQUE (b_id, user_id, clinic_id);"
            "DROP INDEX user_clinic_rev; CREATE INDEX user_clinic_rev ON user_clinic (b_id, clinic_id);"
            "ALTER TABLE doctor_clinic ADD COLUMN b_id text;"
            "UPDATE doctor_clinic l SET b_id = coalesce((SELECT o.b_id FROM doctor o WHERE o.id = l.doctor_id),"
            "  (SELECT o.b_id FROM clinic o WHERE o.id = l.clinic_id), '');"
            "ALTER TABLE doctor_clinic ALTER COLUMN b_id SET NOT NULL, DROP CONSTRAINT doctor_clinic_pkey,"
            "  ADD PRIMARY KEY (b_id, pos), DROP CONSTRAINT doctor_clinic_doctor_id_clinic_id_key, ADD UNIQUE (b_id, doctor_id, clinic_id);"
            "DROP INDEX doctor_clinic_rev; CREATE INDEX doctor_clinic_rev ON doctor_clinic (b_id, clinic_id);"
            "CREATE TABLE eka_id (id text PRIMARY KEY, resource text NOT NULL, b_id text NOT NULL);"
            "INSERT INTO eka_id (id, resource, b_id) SELECT id, 'ekauser', b_id FROM ekauser"
            "  UNION ALL SELECT id, 'doctor', b_id FROM doctor UNION ALL SELECT id, 'clinic', b_id FROM clinic;"},
    /* 10: the login throttle's counters, as SQLite's 10 */
    {.sql = "CREATE TABLE login_throttle (key text PRIMARY KEY, window_start bigint NOT NULL,"
            "  failures integer NOT NULL, pending integer NOT NULL, prev_pending integer NOT NULL);"
            "CREATE INDEX login_throttle_age ON login_throttle (window_start);"},
    /* 11: SQLite's history chain columns, carried so `hipusers copy` finds every column it
     * copies; PostgreSQL's history reads its (b_id, resource, id, version) key instead. */
    {.sql = "ALTER TABLE ekauser ADD COLUMN last_seq bigint;"
            "ALTER TABLE doctor ADD COLUMN last_seq bigint;"
            "ALTER TABLE clinic ADD COLUMN last_seq bigint;"
            "ALTER TABLE change_log ADD COLUMN prev bigint;"},
    /* 12: SQLite's last entry's version on the record, carried for `hipusers copy` as 11 */
    {.sql = "ALTER TABLE ekauser ADD COLUMN last_version bigint;"
            "ALTER TABLE doctor ADD COLUMN last_version bigint;"
            "ALTER TABLE clinic ADD COLUMN last_version bigint;"},
};

_Static_assert(sizeof PG_MIGRATIONS / sizeof PG_MIGRATIONS[0] == sizeof MIGRATIONS / sizeof MIGRATIONS[0],
               "every migration needs its PostgreSQL twin");

const struct pg_migration *migrations_pg(int version) { return &PG_MIGRATIONS[version - 1]; }

int migrations_latest(void) { return (int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]); }

bool migrations_apply(sqlite3 *db, int target, struct herr *e)
{
    if (target <= 0 || target > migrations_latest())
        target = migrations_latest();
    /* BEGIN IMMEDIATE makes concurrent starters (several workers, several processes) take turns. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        herr_set(e, 500, "could not lock the database for migration");
        return false;
    }
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (version > migrations_latest()) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        herr_set(e, 500, "the database was written by a newer hipusers");
        return false;
    }
    if (sqlite3_create_function_v2(db, "hip_fold_key", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_fold_key,
                                   NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        herr_set(e, 500, "could not prepare the schema migration");
        return false;
    }
    for (int v = version; v < target; v++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", v + 1);
        if (sqlite3_exec(db, MIGRATIONS[v], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, pragma, NULL, NULL, NULL) != SQLITE_OK) {
            log_line("error", "schema migration failed", sqlite3_errmsg(db), v + 1);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            herr_set(e, 500, "schema migration failed");
            return false;
        }
        if (v + 1 == 4)
            report_unkeyed_emails(db);
        if (v + 1 == 6 && !sq_change_log_backfill(db)) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            herr_set(e, 500, "schema migration failed");
            return false;
        }
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        herr_set(e, 500, "schema migration could not commit");
        return false;
    }
    return true;
}
