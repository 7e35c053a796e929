/* Where the signing secrets come from: the environment, else files in the data
 * directory, created (mode 0600) on first start. */
#ifndef HIP_SECRET_H
#define HIP_SECRET_H

#include "auth/token.h"

/* Loads HIPUSERS_JWT_SECRET, else the file secret_file, else <data_dir>/jwt-secret (created
 * when create is true; data_dir is NULL on PostgreSQL, where a secret must be given), and
 * the optional previous secret (HIPUSERS_JWT_SECRET_PREVIOUS, else the secret's file name
 * with ".previous" appended). Any of them outside KEY_MIN..KEY_MAX bytes is an error
 * naming it: nothing starts. */
bool secrets_load(struct keyring *k, const char *data_dir, const char *secret_file, bool create, char *err,
                  size_t errlen);

#endif
