/* hipusers import and export: a tenant's Eka Users, doctors or clinics from and to JSON Lines
 * or CSV, through the store's units of work (so any backend), each record through the same
 * decoding and rules as the API. */
#ifndef HIP_BULK_H
#define HIP_BULK_H

/* db: the database named by HIPUSERS_DB (or the default); --db overrides it. */
int cmd_import(const char *db, int argc, char **argv);
int cmd_export(const char *db, int argc, char **argv);

#endif
