/* Admin commands against the same database as `serve`: businesses, API clients and
 * sharing keys. Secrets are printed once and stored only as hashes. */
#ifndef HIP_ADMIN_H
#define HIP_ADMIN_H

int cmd_business(const char *db, int argc, char **argv);
int cmd_client(const char *db, int argc, char **argv);
int cmd_sharing_key(const char *db, int argc, char **argv);

#endif
