#include "http/router.h"

#include <string.h>

/* Longer than any stored id can be: such a path is still the resource's, and simply finds nothing. */
#define ROUTE_ID_MAX 1024

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *percent_decode(const char *src, size_t len, struct arena *a)
{
    char *out = arena_alloc(a, len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return NULL;
            int h = hexval(src[i + 1]), l = hexval(src[i + 2]);
            if (h < 0 || l < 0)
                return NULL;
            c = (char)(h * 16 + l);
            if (c == '\0' || c == '/')
                return NULL;
            i += 2;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

char *query_decode(const char *src, struct arena *a)
{
    size_t len = strlen(src);
    char *out = arena_alloc(a, len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return NULL;
            int h = hexval(src[i + 1]), l = hexval(src[i + 2]);
            if (h < 0 || l < 0)
                return NULL;
            c = (char)(h * 16 + l);
            if (c == '\0')
                return NULL;
            i += 2;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

/* Splits "a/b/c/" into at most max segments; a single trailing slash is allowed,
 * an empty segment anywhere else is not. */
static int split(const char *p, const char **seg, size_t *len, int max)
{
    int n = 0;
    while (*p) {
        const char *s = strchr(p, '/');
        size_t l = s ? (size_t)(s - p) : strlen(p);
        if (l == 0 || n == max)
            return -1;
        seg[n] = p;
        len[n] = l;
        n++;
        if (!s)
            break;
        p = s + 1;
    }
    return n;
}

static bool is(const char *seg, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(seg, word, len) == 0;
}

/* The API's own reference: /openapi.json, /docs and the page's files /docs/{file}. A file
 * name is a plain segment (letters, digits, '.', '-', '_'), never decoded. */
static bool reference_match(const char *path, struct arena *a, struct route *out)
{
    if (strcmp(path, "/openapi.json") == 0) {
        out->kind = RT_OPENAPI;
        return true;
    }
    if (strncmp(path, "/docs", 5) != 0)
        return false;
    const char *rest = path + 5;
    if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
        out->kind = RT_DOCS;
        return true;
    }
    if (rest[0] != '/')
        return false;
    size_t n = strlen(++rest);
    if (n == 0 || n > 64 || strspn(rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != n)
        return false;
    out->kind = RT_DOCS_FILE;
    out->id = arena_strndup(a, rest, n);
    return true;
}

bool route_match(const char *path, struct arena *a, struct route *out)
{
    memset(out, 0, sizeof *out);
    const char *seg[6];
    size_t len[6];
    if (path[0] != '/')
        return false;
    if (reference_match(path, a, out))
        return true;
    int n = split(path + 1, seg, len, 6);
    if (n == 1) { /* the operations endpoints */
        static const struct {
            const char *word;
            enum route_kind kind;
        } ops[] = {{"metrics", RT_METRICS}, {"healthz", RT_HEALTHZ}, {"readyz", RT_READYZ}};
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
            if (is(seg[0], len[0], ops[i].word))
                out->kind = ops[i].kind;
        return out->kind != RT_NOT_FOUND;
    }
    if (n < 3)
        return false;
    if (is(seg[0], len[0], "connect-auth") && is(seg[1], len[1], "v1") && n == 4 && is(seg[2], len[2], "account")) {
        if (is(seg[3], len[3], "login"))
            out->kind = RT_LOGIN;
        else if (is(seg[3], len[3], "refresh-token"))
            out->kind = RT_REFRESH_TOKEN;
        else if (is(seg[3], len[3], "refresh"))
            out->kind = RT_REFRESH;
        return out->kind != RT_NOT_FOUND;
    }
    if (!is(seg[0], len[0], "cdr") || !is(seg[1], len[1], "v1") || n > 5)
        return false;
    if (n == 3 && is(seg[2], len[2], "get_business_info")) {
        out->kind = RT_BUSINESS_INFO;
        return true;
    }
    if (n == 3 && is(seg[2], len[2], "changes")) {
        out->kind = RT_CHANGES;
        return true;
    }
    enum route_kind sub = RT_ITEM; /* what follows the id: nothing, history or restore */
    if (n == 5) {
        if (is(seg[4], len[4], "history"))
            sub = RT_HISTORY;
        else if (is(seg[4], len[4], "restore"))
            sub = RT_RESTORE;
        else
            return false;
    }
    const struct resource *res = resource_by_path(seg[2], len[2]);
    bool hip = is(seg[2], len[2], "hipusers");
    if (!res && !(hip && n < 5))
        return false;
    if (n == 3) {
        out->kind = hip ? RT_HIPUSERS : RT_COLLECTION;
        out->res = hip ? resource_get(R_EKAUSER) : res;
        return true;
    }
    char *id = percent_decode(seg[3], len[3], a);
    if (!id || !*id || strlen(id) > ROUTE_ID_MAX)
        return false;
    out->kind = hip ? RT_HIPUSER : sub;
    out->res = hip ? resource_get(R_EKAUSER) : res;
    out->id = id;
    return true;
}

const char *route_allow(enum route_kind kind)
{
    switch (kind) {
    case RT_COLLECTION:
        return "GET, POST";
    case RT_ITEM:
        return "GET, PATCH, DELETE";
    case RT_BUSINESS_INFO:
    case RT_HIPUSERS:
    case RT_HIPUSER:
    case RT_METRICS:
    case RT_HEALTHZ:
    case RT_READYZ:
    case RT_HISTORY:
    case RT_CHANGES:
    case RT_OPENAPI:
    case RT_DOCS:
    case RT_DOCS_FILE:
        return "GET";
    case RT_RESTORE:
        return "POST";
    case RT_LOGIN:
    case RT_REFRESH_TOKEN:
    case RT_REFRESH:
        return "POST";
    default:
        return "";
    }
}

enum metric_route route_metric(const struct route *rt)
{
    static const enum metric_route collection[R_COUNT] = {
        [R_EKAUSER] = MR_EKAUSER_COLLECTION, [R_DOCTOR] = MR_DOCTOR_COLLECTION, [R_CLINIC] = MR_CLINIC_COLLECTION};
    static const enum metric_route item[R_COUNT] = {
        [R_EKAUSER] = MR_EKAUSER_ITEM, [R_DOCTOR] = MR_DOCTOR_ITEM, [R_CLINIC] = MR_CLINIC_ITEM};
    static const enum metric_route history[R_COUNT] = {
        [R_EKAUSER] = MR_EKAUSER_HISTORY, [R_DOCTOR] = MR_DOCTOR_HISTORY, [R_CLINIC] = MR_CLINIC_HISTORY};
    static const enum metric_route restore[R_COUNT] = {
        [R_EKAUSER] = MR_EKAUSER_RESTORE, [R_DOCTOR] = MR_DOCTOR_RESTORE, [R_CLINIC] = MR_CLINIC_RESTORE};
    switch (rt->kind) {
    case RT_NOT_FOUND: return MR_UNROUTED;
    case RT_COLLECTION: return rt->res && rt->res->kind < R_COUNT ? collection[rt->res->kind] : MR_OTHER;
    case RT_ITEM: return rt->res && rt->res->kind < R_COUNT ? item[rt->res->kind] : MR_OTHER;
    case RT_HISTORY: return rt->res && rt->res->kind < R_COUNT ? history[rt->res->kind] : MR_OTHER;
    case RT_RESTORE: return rt->res && rt->res->kind < R_COUNT ? restore[rt->res->kind] : MR_OTHER;
    case RT_CHANGES: return MR_CHANGES;
    case RT_BUSINESS_INFO: return MR_BUSINESS_INFO;
    case RT_HIPUSERS: return MR_HIPUSERS_COLLECTION;
    case RT_HIPUSER: return MR_HIPUSERS_ITEM;
    case RT_LOGIN: return MR_LOGIN;
    case RT_REFRESH_TOKEN: return MR_REFRESH_TOKEN;
    case RT_REFRESH: return MR_REFRESH;
    case RT_METRICS: return MR_METRICS;
    case RT_HEALTHZ: return MR_HEALTHZ;
    case RT_READYZ: return MR_READYZ;
    case RT_OPENAPI: return MR_OPENAPI;
    case RT_DOCS:
    case RT_DOCS_FILE: return MR_DOCS;
    default: return MR_OTHER;
    }
}
