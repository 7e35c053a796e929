/* Shared by the PostgreSQL store's files: statement helpers. */
#ifndef HIP_PG_INT_H
#define HIP_PG_INT_H

#include <libpq-fe.h>

#include "store/backend.h"

#define PG_SQL_MAX 4096

/* Runs sql (prepared once per connection) with n text parameters (NULL: SQL NULL). The
 * result (PQclear it) or NULL with the failure recorded on tx. */
PGresult *pg_exec(struct store_tx *tx, const char *sql, int n, const char *const *vals);
/* A cell as text in the unit's arena; NULL for SQL NULL. */
const char *pg_text(const struct store_tx *tx, const PGresult *r, int row, int col);
/* A number as a parameter, in the unit's arena. */
const char *pg_num(const struct store_tx *tx, int64_t v);

enum store_status pg_business_create(struct store_tx *tx, const char *b_id, const char *name);
enum store_status pg_business_get(struct store_tx *tx, const char *b_id, const char **name_out);
enum store_status pg_business_list(struct store_tx *tx, store_cols_fn fn, void *ctx);
enum store_status pg_client_create(struct store_tx *tx, const char *client_id, const char *b_id, const char *name,
                                   const char *secret_hash);
enum store_status pg_client_get(struct store_tx *tx, const char *client_id, struct client_row *out);
enum store_status pg_client_list(struct store_tx *tx, const char *b_id, store_cols_fn fn, void *ctx);
enum store_status pg_client_revoke(struct store_tx *tx, const char *client_id);
enum store_status pg_sharing_key_create(struct store_tx *tx, const char *key_id, const char *owner,
                                        const char *key_hash);
enum store_status pg_sharing_key_owner(struct store_tx *tx, const char *key_hash, const char **owner_out,
                                       const char **key_id_out);
enum store_status pg_sharing_key_revoke(struct store_tx *tx, const char *key_id);
enum store_status pg_session_create(struct store_tx *tx, const char *family, const char *client_id,
                                    const char *b_id, const char *key_id);
enum store_status pg_refresh_insert(struct store_tx *tx, const char *token_hash, const char *family,
                                    int64_t expires_at);
enum store_status pg_refresh_take(struct store_tx *tx, const char *token_hash, struct session_row *out);
enum store_status pg_session_revoke(struct store_tx *tx, const char *family);
enum store_status pg_revocations(struct store_tx *tx, int64_t since, const char ***clients, size_t *nclients,
                                 const char ***sessions, size_t *nsessions);

/* Idempotency-Keys (pg_idem.c). */
enum store_status pg_idem_get(struct store_tx *tx, const char *tenant, const char *key, struct idem_record *out);
enum store_status pg_idem_claim(struct store_tx *tx, const char *tenant, const char *key,
                                const struct idem_record *replaces, const struct idem_record *rec);
enum store_status pg_idem_finish(struct store_tx *tx, const char *tenant, const char *key, const char *holder,
                                 int status, const char *body);
enum store_status pg_idem_release(struct store_tx *tx, const char *tenant, const char *key, const char *holder);
enum store_status pg_idem_purge(struct store_tx *tx, const char *tenant, int64_t before_ms, int max, int *purged);

/* The login throttle's counters (pg_throttle.c). */
enum store_status pg_throttle_lock(struct store_tx *tx, const char *key, bool create, struct throttle_row *out);
enum store_status pg_throttle_put(struct store_tx *tx, const char *key, const struct throttle_row *row);
enum store_status pg_throttle_purge(struct store_tx *tx, int64_t before_ms, int max);

#endif
