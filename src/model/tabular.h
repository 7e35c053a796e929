/* Records as CSV rows, for `hipusers import` and `export`: which columns a resource has, a
 * row's cells to the JSON create body the import decodes (so a CSV line and a JSON line go
 * through one path), and an exported record back to cells. Pure: the CSV syntax itself
 * (RFC 4180 quoting) is libcsv's, in src/cli/bulk.c.
 *
 * A cell of a list field (specialisations, qualifications, doctor_ids...) holds its items
 * separated by ';'; inside an item, "\;" is a ';' and "\\" a '\' (any other '\' is itself).
 * An empty unquoted cell (NULL here) is an absent value; a quoted empty cell ("") is an
 * empty string, or for a list field the empty list. */
#ifndef HIP_TABULAR_H
#define HIP_TABULAR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "model/field.h"
#include "util/arena.h"

/* Columns beside the fields that only an import may set. */
#define TABULAR_MAX_COLUMNS (MAX_FIELDS + 3)

/* The export's columns in order: "id", every field but the partner-id link twins, then
 * "created_at" and "updated_at". Returns how many (at most TABULAR_MAX_COLUMNS). */
size_t tabular_columns(const struct resource *r, const char **out);

/* Is name a column an import of r takes (a field of r, or id/created_at/updated_at)? */
bool tabular_known(const struct resource *r, const char *name);

/* One row to the object the import decodes: the cell under a boolean field "true"/"false"
 * becomes a JSON boolean (anything else stays a string, for the field's rule to refuse),
 * a list field's cell an array of its items, every other cell a string; NULL cells are
 * left out. cells[i] has lens[i] bytes. NULL when a cell is not UTF-8 (*bad: its index). */
json_t *tabular_to_json(const struct resource *r, const char *const *names, const char *const *cells,
                        const size_t *lens, size_t n, size_t *bad);

/* One exported object (model_export) to the cells of tabular_columns' columns, in the arena:
 * NULL for a value the record does not have. A list is joined with ';' and escaped; the
 * empty list is "" (which must be written quoted to stay a list). */
void tabular_cells(const struct resource *r, json_t *exported, struct arena *a, const char **cells, size_t ncols);

/* A list cell's items, joined and escaped, and split back (NULL: an item is not UTF-8). */
char *tabular_join(json_t *items, struct arena *a);
json_t *tabular_split(const char *s, size_t len);

#endif
