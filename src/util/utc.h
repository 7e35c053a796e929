/* Dates and times in UTC as the API writes them, without the C library's gmtime_r (which
 * takes glibc's process-wide time zone lock) or printf: every write formats its time, and
 * every create and PATCH today's date. */
#ifndef HIP_UTC_H
#define HIP_UTC_H

#include <stdint.h>

#include "util/arena.h"

/* The first and last milliseconds of the years 0000-9999, the times four digits of a year
 * can show. */
#define UTC_MS_MIN INT64_C(-62167219200000)
#define UTC_MS_MAX INT64_C(253402300799999)

/* ms since the epoch as YYYY-MM-DDTHH:MM:SS.mmmZ (24 characters and a NUL); a time outside
 * UTC_MS_MIN..UTC_MS_MAX is written as the nearer of the two, so the texts sort as the times. */
void utc_format_ms(int64_t ms, char out[32]);
/* The day of secs (since the epoch) as YYYY-MM-DD (10 characters and a NUL), held the same way. */
void utc_format_date(int64_t secs, char out[11]);
/* Today's date (the system clock's) as YYYY-MM-DD, in a (NULL without memory). */
const char *utc_today(struct arena *a);

#endif
