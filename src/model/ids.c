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
