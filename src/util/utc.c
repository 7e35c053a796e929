#include "util/utc.h"

#include <time.h>

/* The civil date of a day counted from 1970-01-01 (the proleptic Gregorian calendar; eras of
 * 400 years, each of 146,097 days, with March as the first month so that a leap day is the
 * last day of its year). */
static void civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468; /* from 0000-03-01 */
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);                       /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* [0, 11], March first */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

static char *date_at(char *p, int64_t days)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    p = digits(p, (unsigned)y, 4); /* [0, 9999]: the callers hold the time to that range */
    *p++ = '-';
    p = digits(p, m, 2);
    *p++ = '-';
    return digits(p, d, 2);
}

/* ms held to the years four digits show: a time outside them is written as the nearest that
 * is not, so the texts still sort as the times do. */
static int64_t held(int64_t ms) { return ms < UTC_MS_MIN ? UTC_MS_MIN : ms > UTC_MS_MAX ? UTC_MS_MAX : ms; }

void utc_format_date(int64_t secs, char out[11])
{
    secs = secs < UTC_MS_MIN / 1000 ? UTC_MS_MIN / 1000 : secs > UTC_MS_MAX / 1000 ? UTC_MS_MAX / 1000 : secs;
    char *p = date_at(out, floor_div(secs, 86400));
    *p = '\0';
}

void utc_format_ms(int64_t ms, char out[32])
{
    ms = held(ms);
    int64_t secs = floor_div(ms, 1000);
    unsigned milli = (unsigned)(ms - secs * 1000);
    int64_t days = floor_div(secs, 86400);
    unsigned sod = (unsigned)(secs - days * 86400);
    char *p = date_at(out, days);
    *p++ = 'T';
    p = digits(p, sod / 3600, 2);
    *p++ = ':';
    p = digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = digits(p, sod % 60, 2);
    *p++ = '.';
    p = digits(p, milli, 3);
    *p++ = 'Z';
    *p = '\0';
}

const char *utc_today(struct arena *a)
{
    char *out = arena_alloc(a, 11);
    if (out)
        utc_format_date((int64_t)time(NULL), out);
    return out;
}
