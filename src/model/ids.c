#include "model/ids.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* An n-digit decimal number without a leading zero; the modulo bias of 64 random bits
 * over at most 9e14 values is below 1e-4, irrelevant for identifiers. */
static void digits(const uint8_t rnd[8], int n, char *out)
{
    uint64_t r, lo = 1, span;
    memcpy(&r, rnd, sizeof r);
    for (int i = 1; i < n; i++)
        lo *= 10;
    span = lo * 9;
    snprintf(out, (size_t)n + 1, "%llu", (unsigned long long)(lo + r % span));
}

void id_format(enum rkind kind, const uint8_t rnd[16], char out[ID_MAX])
{
    switch (kind) {
    case R_EKAUSER:
        digits(rnd, 15, out);
        break;
    case R_DOCTOR:
        memcpy(out, "do", 2);
        digits(rnd, 13, out + 2);
        break;
    default:
        memcpy(out, "c-", 2);
        for (size_t i = 0; i < 12; i++)
            snprintf(out + 2 + 2 * i, 3, "%02x", rnd[i]);
        break;
    }
}

void id_generate(enum rkind kind, char out[ID_MAX])
{
    uint8_t rnd[16];
    randombytes_buf(rnd, sizeof rnd);
    id_format(kind, rnd, out);
}

/* n decimal digits, the first not 0 (as digits() writes them). */
static bool is_digits(const char *s, size_t n)
{
    if (s[0] < '1' || s[0] > '9')
        return false;
    for (size_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool id_has_shape(enum rkind kind, const char *s, size_t len)
{
    switch (kind) {
    case R_EKAUSER:
        return len == 15 && is_digits(s, 15);
    case R_DOCTOR:
        return len == 15 && memcmp(s, "do", 2) == 0 && is_digits(s + 2, 13);
    default:
        if (len != 26 || memcmp(s, "c-", 2) != 0)
            return false;
        for (size_t i = 2; i < 26; i++)
            if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                return false;
        return true;
    }
}

const char *id_shape_text(enum rkind kind)
{
    switch (kind) {
    case R_EKAUSER:
        return "15 digits";
    case R_DOCTOR:
        return "\"do\" and 13 digits";
    default:
        return "\"c-\" and 24 hexadecimal digits";
    }
}
