/* Where the signing secrets come from: the environment, else files in the data
 * directory, created (mode 0600) on first start. */
#ifndef HIP_SECRET_H
#define HIP_SECRET_H

#include "auth/token.h"

/* Loads HIPUSERS_JWT_SECRET (or <dir>/jwt-secret, created when create is true) and
 * the optional previous secret (HIPUSERS_JWT_SECRET_PREVIOUS or <dir>/jwt-secret.previous).
 * Any of them outside KEY_MIN..KEY_MAX bytes is an error naming it: nothing starts. */
bool secrets_load(struct keyring *k, const char *data_dir, bool create, char *err, size_t errlen);

#endif
