/* hipusers copy: a whole SQLite deployment into a PostgreSQL database, every table of the
 * schema, verified by counts per table and per business before it commits. */
#ifndef HIP_COPY_H
#define HIP_COPY_H

int cmd_copy(int argc, char **argv);

#endif
