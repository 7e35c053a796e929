/* Does an SQL statement on a tenant's table name the tenant? The rule a table
 * distributed by b_id needs (docs/scaling.md): every SELECT, UPDATE and DELETE
 * constrains b_id of every tenant table it reads, and every INSERT into one
 * sets b_id.
 *
 * A small tokeniser, not a parser; it knows the shapes hipusers writes and
 * refuses anything it cannot see is constrained:
 *  - a table reference is the word after FROM, JOIN, INTO or UPDATE, with its
 * alias (the next word, after an optional AS, unless it is a keyword); a
 * parenthesis opens a scope, and a reference belongs to the scope it is written
 * in;
 *  - INSERT INTO t (cols ...): cols must name b_id (an INSERT without a column
 * list fails);
 *  - otherwise the reference must be constrained: an equality `a.b_id =
 * <parameter>` (or bare `b_id` when it is the only table of its scope), written
 * after WHERE or ON in the reference's scope, or `a.b_id = x.b_id` with x
 * constrained (a join, or a correlated subquery naming an outer table); the
 * qualifier is looked up in the scope, then outward;
 *  - an OR anywhere in a scope makes none of that scope's equalities count, and
 * an equality before the scope's WHERE/ON (a SET, a SELECT list) never counts.
 * tenant_sql_check answers NULL when the statement passes, else why not (static
 * text in buf). */
#ifndef HIP_TEST_TENANT_SQL_H
#define HIP_TEST_TENANT_SQL_H

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The tables holding a tenant's rows, each with its b_id column. */
static const char *const TENANT_TABLES[] = {"ekauser",     "doctor",      "clinic",
                                            "user_doctor", "user_clinic", "doctor_clinic",
                                            "change_log",  "change_seq",  "idempotency_key"};
#define N_TENANT_TABLES (sizeof TENANT_TABLES / sizeof TENANT_TABLES[0])

enum tq_kind { TQ_WORD, TQ_PARAM, TQ_STR, TQ_NUM, TQ_PUNCT };

struct tq_tok {
    enum tq_kind k;
    char s[48]; /* words lower-cased; punctuation: its one character */
    int scope;  /* the innermost parenthesis the token is in (0: none) */
    bool opens; /* '(' : scope is the one it opens */
};

#define TQ_MAX_TOKS 1500
#define TQ_MAX_SCOPES 64
#define TQ_MAX_REFS 32

struct tq {
    struct tq_tok t[TQ_MAX_TOKS];
    int n;
    int parent[TQ_MAX_SCOPES];
    int nscopes;
};

static bool tq_tokenise(const char *sql, struct tq *q)
{
    int stack[TQ_MAX_SCOPES], depth = 0;
    q->n = 0;
    q->nscopes = 1;
    q->parent[0] = -1;
    stack[0] = 0;
    for (const char *p = sql; *p;) {
        if (isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        if (q->n == TQ_MAX_TOKS)
            return false;
        struct tq_tok *k = &q->t[q->n++];
        memset(k, 0, sizeof *k);
        k->scope = stack[depth];
        size_t len = 0;
        if (isalpha((unsigned char)*p) || *p == '_') {
            k->k = TQ_WORD;
            while (isalnum((unsigned char)*p) || *p == '_') {
                if (len + 1 < sizeof k->s)
                    k->s[len++] = (char)tolower((unsigned char)*p);
                p++;
            }
        } else if ((*p == '?' || *p == '$') && (p[1] == '\0' || isdigit((unsigned char)p[1]) || *p == '?')) {
            k->k = TQ_PARAM;
            k->s[len++] = *p++;
            while (isdigit((unsigned char)*p))
                p++;
        } else if (isdigit((unsigned char)*p)) {
            k->k = TQ_NUM;
            while (isalnum((unsigned char)*p) || *p == '.')
                p++;
        } else if (*p == '\'' || *p == '"') { /* a string, or a quoted identifier:
                                                 never a table here */
            char quote = *p++;
            k->k = TQ_STR;
            while (*p && !(*p == quote && p[1] != quote))
                p += *p == quote ? 2 : 1;
            if (*p)
                p++;
        } else {
            k->k = TQ_PUNCT;
            k->s[0] = *p++;
            if (k->s[0] == '(') {
                if (q->nscopes == TQ_MAX_SCOPES || depth + 1 == TQ_MAX_SCOPES)
                    return false;
                q->parent[q->nscopes] = stack[depth];
                stack[++depth] = q->nscopes++;
                k->opens = true;
            } else if (k->s[0] == ')') {
                if (depth == 0)
                    return false;
                depth--;
            }
        }
    }
    return depth == 0;
}

static bool tq_is(const struct tq *q, int i, const char *s)
{
    return i >= 0 && i < q->n && strcmp(q->t[i].s, s) == 0 && q->t[i].k != TQ_STR;
}

static bool tq_keyword(const char *w)
{
    static const char *const KW[] = {"where",  "join",    "cross",     "inner", "left",  "on",    "order",
                                     "limit",  "set",     "indexed",   "group", "using", "union", "values",
                                     "select", "natural", "returning", "and",   "or",    "for",   "default"};
    for (size_t i = 0; i < sizeof KW / sizeof KW[0]; i++)
        if (strcmp(w, KW[i]) == 0)
            return true;
    return false;
}

static int tq_tenant_table(const char *w)
{
    for (size_t i = 0; i < N_TENANT_TABLES; i++)
        if (strcmp(w, TENANT_TABLES[i]) == 0)
            return (int)i;
    return -1;
}

struct tq_ref {
    int table;     /* index in TENANT_TABLES, -1: another table */
    char name[48]; /* the alias, or the table's name */
    int scope;
    bool insert, constrained;
};

/* The reference qualifier q names, seen from scope s: that scope's first, then
 * outward. */
static int tq_resolve(const struct tq *q, const struct tq_ref *refs, int nrefs, int s, const char *name)
{
    for (; s >= 0; s = q->parent[s])
        for (int r = 0; r < nrefs; r++)
            if (refs[r].scope == s && strcmp(refs[r].name, name) == 0)
                return r;
    return -1;
}

/* The only reference of scope s (bare b_id), -1 when none or several. */
static int tq_only_ref(const struct tq_ref *refs, int nrefs, int s)
{
    int found = -1;
    for (int r = 0; r < nrefs; r++)
        if (refs[r].scope == s && !refs[r].insert) {
            if (found >= 0)
                return -1;
            found = r;
        }
    return found;
}

/* An operand at token i of scope s: -2 a parameter, >= 0 the reference whose
 * b_id it is, -1 anything else. *len gets its length in tokens. */
static int tq_operand(const struct tq *q, const struct tq_ref *refs, int nrefs, int i, int s, int *len)
{
    *len = 1;
    if (i < 0 || i >= q->n)
        return -1;
    if (q->t[i].k == TQ_PARAM)
        return -2;
    if (q->t[i].k != TQ_WORD)
        return -1;
    if (tq_is(q, i + 1, ".") && tq_is(q, i + 2, "b_id")) {
        *len = 3;
        return tq_resolve(q, refs, nrefs, s, q->t[i].s);
    }
    if (strcmp(q->t[i].s, "b_id") == 0 && !tq_is(q, i + 1, "."))
        return tq_only_ref(refs, nrefs, s);
    return -1;
}

static const char *tenant_sql_check(const char *sql, char *buf, size_t cap)
{
    static struct tq q; /* large: kept off the stack; the check runs on one thread */
    struct tq_ref refs[TQ_MAX_REFS];
    int nrefs = 0;
    if (!tq_tokenise(sql, &q)) {
        snprintf(buf, cap, "cannot tokenise (unbalanced or too long)");
        return buf;
    }
    /* the table references */
    for (int i = 0; i + 1 < q.n; i++) {
        if (q.t[i].k != TQ_WORD ||
            !(tq_is(&q, i, "from") || tq_is(&q, i, "join") || tq_is(&q, i, "into") || tq_is(&q, i, "update")))
            continue;
        if (q.t[i + 1].k != TQ_WORD || tq_keyword(q.t[i + 1].s))
            continue; /* FROM (subquery), DO UPDATE SET, FOR UPDATE */
        if (nrefs == TQ_MAX_REFS) {
            snprintf(buf, cap, "too many table references");
            return buf;
        }
        struct tq_ref *r = &refs[nrefs++];
        memset(r, 0, sizeof *r);
        r->table = tq_tenant_table(q.t[i + 1].s);
        r->scope = q.t[i + 1].scope;
        r->insert = tq_is(&q, i, "into");
        snprintf(r->name, sizeof r->name, "%s", q.t[i + 1].s);
        int j = i + 2;
        if (tq_is(&q, j, "as"))
            j++;
        if (!r->insert && j < q.n && q.t[j].k == TQ_WORD && !tq_keyword(q.t[j].s))
            snprintf(r->name, sizeof r->name, "%s", q.t[j].s);
        if (r->insert && r->table >= 0) {
            /* INSERT INTO t (cols): b_id among the words right inside the parenthesis
             */
            bool named = false;
            if (tq_is(&q, i + 2, "(")) {
                int inner = i + 3 < q.n ? q.t[i + 3].scope : -1;
                for (int k = i + 3; k < q.n && q.t[k].scope != q.t[i + 2].scope; k++)
                    if (q.t[k].scope == inner && tq_is(&q, k, "b_id"))
                        named = true;
            }
            r->constrained = named;
        }
    }
    /* which scopes have an OR, and where each scope's WHERE/ON starts */
    bool has_or[TQ_MAX_SCOPES] = {false};
    int cond_from[TQ_MAX_SCOPES];
    for (int s = 0; s < TQ_MAX_SCOPES; s++)
        cond_from[s] = -1;
    for (int i = 0; i < q.n; i++) {
        int s = q.t[i].scope;
        if (tq_is(&q, i, "or"))
            has_or[s] = true;
        if ((tq_is(&q, i, "where") || tq_is(&q, i, "on")) && cond_from[s] < 0)
            cond_from[s] = i;
    }
    /* the equalities: parameter pins, and joins between references, to a fixpoint
     */
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < q.n; i++) {
            if (!tq_is(&q, i, "="))
                continue;
            int s = q.t[i].scope;
            if (has_or[s] || cond_from[s] < 0 || i < cond_from[s])
                continue;
            /* the left operand ends at i-1: a.b_id (3 tokens), b_id or a parameter
             * (1) */
            int llen, l;
            if (i >= 3 && tq_is(&q, i - 1, "b_id") && tq_is(&q, i - 2, "."))
                l = tq_operand(&q, refs, nrefs, i - 3, s, &llen);
            else
                l = tq_operand(&q, refs, nrefs, i - 1, s, &llen);
            int rlen, r = tq_operand(&q, refs, nrefs, i + 1, s, &rlen);
            int pairs[2][2] = {{l, r}, {r, l}};
            for (int k = 0; k < 2; k++) {
                int a = pairs[k][0], b = pairs[k][1];
                if (a < 0 || refs[a].constrained)
                    continue;
                if (b == -2 || (b >= 0 && refs[b].constrained)) {
                    refs[a].constrained = true;
                    changed = true;
                }
            }
        }
    }
    for (int r = 0; r < nrefs; r++) {
        if (refs[r].table < 0 || refs[r].constrained)
            continue;
        snprintf(buf, cap,
                 refs[r].insert ? "INSERT INTO %s does not set b_id" : "%s (as %s) is not constrained by b_id",
                 TENANT_TABLES[refs[r].table], refs[r].name);
        return buf;
    }
    return NULL;
}

/* Which tenant tables a statement names (bit i: TENANT_TABLES[i]). */
static unsigned tenant_sql_tables(const char *sql)
{
    static struct tq q;
    unsigned mask = 0;
    if (!tq_tokenise(sql, &q))
        return 0;
    for (int i = 0; i + 1 < q.n; i++)
        if (q.t[i].k == TQ_WORD &&
            (tq_is(&q, i, "from") || tq_is(&q, i, "join") || tq_is(&q, i, "into") || tq_is(&q, i, "update")) &&
            q.t[i + 1].k == TQ_WORD && tq_tenant_table(q.t[i + 1].s) >= 0)
            mask |= 1u << tq_tenant_table(q.t[i + 1].s);
    return mask;
}

#endif
