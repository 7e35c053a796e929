#include "util/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK 8192

struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used;
    max_align_t data[];
};

struct arena_defer {
    struct arena_defer *next;
    void (*fn)(void *);
    void *ptr;
};

void arena_init(struct arena *a) { memset(a, 0, sizeof *a); }

void arena_init_with(struct arena *a, void *mem, size_t size)
{
    arena_init(a);
    if (size <= sizeof(struct arena_chunk))
        return;
    struct arena_chunk *c = mem;
    c->next = NULL;
    c->cap = size - sizeof *c;
    c->used = 0;
    a->head = a->own = c;
}

void arena_release(struct arena *a)
{
    for (struct arena_defer *d = a->defers; d; d = d->next)
        d->fn(d->ptr);
    struct arena_chunk *c = a->head, *own = a->own;
    while (c) {
        struct arena_chunk *next = c->next;
        if (c != own)
            free(c);
        c = next;
    }
    if (own)
        arena_init_with(a, own, sizeof *own + own->cap);
    else
        arena_init(a);
}

/* Allocation failure is not recoverable in a request handler without a lot of
 * plumbing for no benefit on Linux with overcommit; abort loudly instead. */
static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fputs("hipusers: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *arena_alloc(struct arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    if (n > SIZE_MAX / 2) {
        fputs("hipusers: out of memory\n", stderr);
        abort();
    }
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = xmalloc(sizeof *c + cap);
        c->cap = cap;
        c->used = 0;
        /* Keep the partly used chunk at the head when a big one-off allocation comes in. */
        if (a->head && cap > ARENA_CHUNK) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    a->used_total += n;
    return p;
}

void *arena_calloc(struct arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = arena_alloc(a, n * size);
    memset(p, 0, n * size);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(struct arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)(n < 0 ? 0 : n) + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void arena_defer(struct arena *a, void (*fn)(void *), void *ptr)
{
    struct arena_defer *d = arena_alloc(a, sizeof *d);
    d->fn = fn;
    d->ptr = ptr;
    d->next = a->defers;
    a->defers = d;
}
