/* Request-scoped memory: everything a request allocates comes from here and is
 * released in one call when the response has been sent. */
#ifndef HIP_ARENA_H
#define HIP_ARENA_H

#include <stddef.h>

struct arena_chunk;
struct arena_defer;

struct arena {
    struct arena_chunk *head;
    struct arena_defer *defers;
    size_t used_total;
    struct arena_chunk *own; /* the first chunk, in the caller's memory (arena_init_with) */
};

void arena_init(struct arena *a);
/* An arena whose first chunk is the caller's memory (size bytes, aligned for max_align_t,
 * outliving the arena): a request that fits in it allocates nothing. */
void arena_init_with(struct arena *a, void *mem, size_t size);
/* Frees every chunk and runs the deferred destructors (newest first). */
void arena_release(struct arena *a);
void *arena_alloc(struct arena *a, size_t n);
void *arena_calloc(struct arena *a, size_t n, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ties the lifetime of foreign memory (a jansson value, a malloc'd string) to the arena. */
void arena_defer(struct arena *a, void (*fn)(void *), void *ptr);

#endif
