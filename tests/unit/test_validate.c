/* Unit tests of the single-value rules in src/model/validate.c and of the request
 * arena in src/util/arena.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/validate.h"
#include "util/arena.h"

/* Length-explicit helpers so embedded NULs and non-terminated spans can be tested. */
#define CP(lit) text_codepoints((lit), sizeof(lit) - 1)
#define MOBILE(lit, out) mobile_normalize((lit), sizeof(lit) - 1, (out))
#define EMAIL(lit) email_valid((lit), sizeof(lit) - 1)
#define DATE(lit, today) date_check((lit), sizeof(lit) - 1, (today))
#define DIGITS(lit) digits_only((lit), sizeof(lit) - 1)
#define URL(lit) url_valid((lit), sizeof(lit) - 1)

static const char *const TODAY = "2024-06-15";

/* ---------------------------------------------------------------- text_codepoints */

static void test_codepoints_ascii(void **state)
{
    (void)state;
    assert_int_equal(CP(""), 0);
    assert_int_equal(CP("a"), 1);
    assert_int_equal(CP("Hello, World!"), 13);
    assert_int_equal(CP(" "), 1);
    assert_int_equal(CP("~"), 1);
}

static void test_codepoints_multibyte(void **state)
{
    (void)state;
    assert_int_equal(CP("\xc3\xa9"), 1);                 /* é U+00E9 */
    assert_int_equal(CP("caf\xc3\xa9"), 4);
    assert_int_equal(CP("\xc2\xa0"), 1);                 /* U+00A0, first non-C1 2-byte */
    assert_int_equal(CP("\xdf\xbf"), 1);                 /* U+07FF, last 2-byte */
    assert_int_equal(CP("\xe0\xa0\x80"), 1);             /* U+0800, first 3-byte */
    assert_int_equal(CP("\xe0\xa4\xb9\xe0\xa4\xbf"), 2); /* Devanagari "हि" */
    assert_int_equal(CP("\xed\x9f\xbf"), 1);             /* U+D7FF, just below surrogates */
    assert_int_equal(CP("\xee\x80\x80"), 1);             /* U+E000, just above surrogates */
    assert_int_equal(CP("\xef\xbf\xbf"), 1);             /* U+FFFF */
    assert_int_equal(CP("\xf0\x90\x80\x80"), 1);         /* U+10000, first 4-byte */
    assert_int_equal(CP("\xf0\x9f\x98\x80"), 1);         /* 😀 */
    assert_int_equal(CP("\xf4\x8f\xbf\xbf"), 1);         /* U+10FFFF, the last code point */
    assert_int_equal(CP("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"), 5);
}

static void test_codepoints_control_chars(void **state)
{
    (void)state;
    assert_int_equal(text_codepoints("a\0b", 3), -1); /* embedded NUL */
    assert_int_equal(CP("\x01"), -1);
    assert_int_equal(CP("a\tb"), -1);
    assert_int_equal(CP("a\nb"), -1);
    assert_int_equal(CP("a\rb"), -1);
    assert_int_equal(CP("\x1f"), -1);
    assert_int_equal(CP("\x7f"), -1);         /* DEL */
    assert_int_equal(CP("\xc2\x80"), -1);     /* U+0080, C1 */
    assert_int_equal(CP("\xc2\x85"), -1);     /* NEL */
    assert_int_equal(CP("\xc2\x9f"), -1);     /* U+009F, last C1 */
    assert_int_equal(CP("ok\xc2\x9f"), -1);
}

static void test_codepoints_overlong(void **state)
{
    (void)state;
    assert_int_equal(CP("\xc0\x80"), -1);         /* overlong NUL */
    assert_int_equal(CP("\xc0\xaf"), -1);         /* overlong '/' */
    assert_int_equal(CP("\xc1\xbf"), -1);
    assert_int_equal(CP("\xe0\x80\xaf"), -1);     /* 3-byte overlong '/' */
    assert_int_equal(CP("\xe0\x9f\xbf"), -1);     /* 3-byte overlong U+07FF */
    assert_int_equal(CP("\xf0\x80\x80\xaf"), -1); /* 4-byte overlong '/' */
    assert_int_equal(CP("\xf0\x8f\xbf\xbf"), -1); /* 4-byte overlong U+FFFF */
}

static void test_codepoints_surrogates_and_range(void **state)
{
    (void)state;
    assert_int_equal(CP("\xed\xa0\x80"), -1);             /* U+D800 */
    assert_int_equal(CP("\xed\xbf\xbf"), -1);             /* U+DFFF */
    assert_int_equal(CP("\xed\xa0\xbd\xed\xb8\x80"), -1); /* CESU-8 pair */
    assert_int_equal(CP("\xf4\x90\x80\x80"), -1);         /* U+110000 */
    assert_int_equal(CP("\xf5\x80\x80\x80"), -1);
    assert_int_equal(CP("\xf7\xbf\xbf\xbf"), -1);
    assert_int_equal(CP("\xf8\x88\x80\x80\x80"), -1);     /* 5-byte form */
    assert_int_equal(CP("\xfc\x84\x80\x80\x80\x80"), -1); /* 6-byte form */
    assert_int_equal(CP("\xfe"), -1);
    assert_int_equal(CP("\xff"), -1);
}

static void test_codepoints_truncated_and_stray(void **state)
{
    (void)state;
    assert_int_equal(CP("\x80"), -1);         /* stray continuation */
    assert_int_equal(CP("a\xbf"), -1);
    assert_int_equal(CP("\xc3"), -1);         /* truncated 2-byte */
    assert_int_equal(CP("abc\xc3"), -1);
    assert_int_equal(CP("\xe2\x82"), -1);     /* truncated 3-byte */
    assert_int_equal(CP("\xf0\x9f\x98"), -1); /* truncated 4-byte */
    assert_int_equal(CP("\xc3" "a"), -1);     /* lead followed by ASCII */
    assert_int_equal(CP("\xe2\x82" "a"), -1);
    assert_int_equal(CP("\xf0\x9f\x98\xc3\xa9"), -1); /* lead followed by a new lead */
    /* The length is honoured: a valid 2-byte sequence cut by len is truncated. */
    assert_int_equal(text_codepoints("\xc3\xa9", 1), -1);
    assert_int_equal(text_codepoints("ab\xc3\xa9", 2), 2);
}

/* ---------------------------------------------------------------- text_trim */

static void test_trim(void **state)
{
    (void)state;
    size_t start = 99;
    assert_int_equal(text_trim("abc", 3, &start), 3);
    assert_int_equal(start, 0);
    assert_int_equal(text_trim("  abc  ", 7, &start), 3);
    assert_int_equal(start, 2);
    assert_int_equal(text_trim(" a b ", 5, &start), 3);
    assert_int_equal(start, 1);
    assert_int_equal(text_trim("abc   ", 6, &start), 3);
    assert_int_equal(start, 0);
    assert_int_equal(text_trim("   ", 3, &start), 0);
    assert_int_equal(text_trim("", 0, &start), 0);
    assert_int_equal(start, 0);
    /* only spaces are trimmed, and only within len */
    assert_int_equal(text_trim("\tx\t", 3, &start), 3);
    assert_int_equal(start, 0);
    assert_int_equal(text_trim(" x  yyy", 4, &start), 1);
    assert_int_equal(start, 1);
}

/* ---------------------------------------------------------------- mobile_normalize */

static void test_mobile_plain(void **state)
{
    (void)state;
    char out[11];
    memset(out, 'x', sizeof out);
    assert_true(MOBILE("9876543210", out));
    assert_string_equal(out, "9876543210");
    assert_true(MOBILE("9123456789", out)); /* national number that itself starts with 91 */
    assert_string_equal(out, "9123456789");
}

static void test_mobile_prefixes(void **state)
{
    (void)state;
    char out[11];
    assert_true(MOBILE("+919876543210", out));
    assert_string_equal(out, "9876543210");
    assert_true(MOBILE("919876543210", out));
    assert_string_equal(out, "9876543210");
    assert_true(MOBILE("+919123456789", out));
    assert_string_equal(out, "9123456789");
    assert_true(MOBILE("919191919191", out));
    assert_string_equal(out, "9191919191");
}

static void test_mobile_rejects(void **state)
{
    (void)state;
    char out[11] = "untouched!";
    assert_false(MOBILE("", out));
    assert_false(MOBILE("987654321", out));     /* 9 digits */
    assert_false(MOBILE("98765432101", out));   /* 11 digits */
    assert_false(MOBILE("+91987654321", out));  /* +91 and 9 digits */
    assert_false(MOBILE("+9198765432101", out)); /* +91 and 11 digits */
    assert_false(MOBILE("91987654321", out));   /* 91 and 9 digits: 11 digits */
    assert_false(MOBILE("+449876543210", out)); /* other country code */
    assert_false(MOBILE("+19876543210", out));
    assert_false(MOBILE("449876543210", out));  /* 12 digits without 91 */
    assert_false(MOBILE("+9876543210", out));   /* plus without country code */
    assert_false(MOBILE("98765-43210", out));
    assert_false(MOBILE("98765 43210", out));
    assert_false(MOBILE(" 9876543210", out));
    assert_false(MOBILE("9876543210 ", out));
    assert_false(MOBILE("987654321a", out));
    assert_false(MOBILE("+91-9876543210", out));
    assert_false(MOBILE("++919876543210", out));
    assert_false(MOBILE("\xd9\xa9\xd9\xa8\xd9\xa7\xd9\xa6\xd9\xa5", out)); /* Arabic-Indic digits */
    assert_false(mobile_normalize("98765\0" "4321", 10, out));
    assert_string_equal(out, "untouched!");
}

/* ---------------------------------------------------------------- email_valid */

static void test_email_valid(void **state)
{
    (void)state;
    assert_true(EMAIL("user@example.com"));
    assert_true(EMAIL("a@b.c"));
    assert_true(EMAIL("first.last+tag@sub.example.co.in"));
    assert_true(EMAIL("USER_1-x@EXAMPLE.COM"));
    assert_true(EMAIL("o'brien@example.ie"));
    assert_true(EMAIL("user@my-host.example.com"));
}

static void test_email_invalid_shape(void **state)
{
    (void)state;
    assert_false(EMAIL(""));
    assert_false(EMAIL("a@"));
    assert_false(EMAIL("plainaddress"));
    assert_false(EMAIL("@example.com"));
    assert_false(EMAIL("user@"));
    assert_false(EMAIL("user@localhost"));      /* no dot in the domain */
    assert_false(EMAIL("user@b.")); /* domain shorter than 3 */
    assert_false(EMAIL("a@b@example.com"));     /* two @ */
    assert_false(EMAIL("user@@example.com"));
    assert_false(EMAIL("user@.example.com"));
    assert_false(EMAIL("user@example.com."));
    assert_false(EMAIL("user@-example.com"));
    assert_false(EMAIL("user@example.com-"));
    assert_false(EMAIL("user@example..com"));
    assert_false(EMAIL(".user@example.com"));
    assert_false(EMAIL("user.@example.com"));
}

static void test_email_invalid_chars(void **state)
{
    (void)state;
    assert_false(EMAIL("us er@example.com"));
    assert_false(EMAIL("user@exa mple.com"));
    assert_false(EMAIL(" user@example.com"));
    assert_false(EMAIL("user@example.com "));
    assert_false(EMAIL("user\t@example.com"));
    assert_false(EMAIL("user@example.com\n"));
    assert_false(EMAIL("us\x7fr@example.com"));
    assert_false(email_valid("us\0r@example.com", 16));
    assert_false(EMAIL("a(b)@example.com"));
    assert_false(EMAIL("a<b>@example.com"));
    assert_false(EMAIL("a,b@example.com"));
    assert_false(EMAIL("a;b@example.com"));
    assert_false(EMAIL("a:b@example.com"));
    assert_false(EMAIL("\"ab\"@example.com"));
    assert_false(EMAIL("a\\b@example.com"));
    assert_false(EMAIL("user@[127.0.0.1]"));
}

/* RFC 5322 dot-atom: a dot may not follow a dot in the local part either (the domain
 * side already refuses "example..com"). */
static void test_email_consecutive_dots_in_local_part(void **state)
{
    (void)state;
    assert_false(EMAIL("john..doe@example.com"));
}

static void test_email_lengths(void **state)
{
    (void)state;
    char buf[300];
    /* local part: 64 allowed, 65 refused */
    memset(buf, 'a', 64);
    memcpy(buf + 64, "@example.com", 12);
    assert_true(email_valid(buf, 76));
    memset(buf, 'a', 65);
    memcpy(buf + 65, "@example.com", 12);
    assert_false(email_valid(buf, 77));
    /* whole address: 254 allowed, 255 refused */
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "user@", 5);
    memcpy(buf + 250, ".com", 4);
    assert_true(email_valid(buf, 254));
    memcpy(buf + 250, "a.com", 5);
    assert_false(email_valid(buf, 255));
    /* the span is what counts, not the NUL */
    assert_true(email_valid("user@example.comXYZ", 16));
    assert_false(email_valid("user@example.com", 6)); /* "user@e" */
}

/* ---------------------------------------------------------------- date_check */

static void test_date_valid(void **state)
{
    (void)state;
    assert_null(DATE("1990-01-01", TODAY));
    assert_null(DATE("1900-01-01", TODAY));
    assert_null(DATE("2024-06-15", TODAY)); /* today itself */
    assert_null(DATE("2024-06-14", TODAY));
    assert_null(DATE("2023-12-31", TODAY));
    assert_null(DATE("1999-12-31", TODAY));
    assert_null(DATE("2024-01-31", TODAY));
    assert_null(DATE("2023-04-30", TODAY));
    assert_null(DATE("2099-12-31", NULL)); /* no today: no future check */
}

static void test_date_leap_years(void **state)
{
    (void)state;
    assert_null(DATE("2024-02-29", TODAY));
    assert_null(DATE("2000-02-29", TODAY)); /* divisible by 400 */
    assert_null(DATE("1996-02-29", TODAY));
    assert_null(DATE("2023-02-28", TODAY));
    assert_string_equal(DATE("2023-02-29", TODAY), "Not a real calendar date.");
    assert_string_equal(DATE("1900-02-29", TODAY), "Not a real calendar date."); /* divisible by 100 */
    assert_string_equal(DATE("2100-02-29", NULL), "Not a real calendar date.");
    assert_string_equal(DATE("2024-02-30", TODAY), "Not a real calendar date.");
}

static void test_date_not_real(void **state)
{
    (void)state;
    const char *bad[] = {"2020-00-10", "2020-13-01", "2020-99-01", "2020-01-00", "2020-01-32",
                         "2020-04-31", "2020-06-31", "2020-09-31", "2020-11-31", "2020-12-32"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_string_equal(date_check(bad[i], 10, TODAY), "Not a real calendar date.");
}

static void test_date_bounds(void **state)
{
    (void)state;
    assert_string_equal(DATE("1899-12-31", TODAY), "Date must be on or after 1900-01-01.");
    assert_string_equal(DATE("0001-01-01", TODAY), "Date must be on or after 1900-01-01.");
    assert_string_equal(DATE("2024-06-16", TODAY), "Date may not be in the future.");
    assert_string_equal(DATE("2024-07-01", TODAY), "Date may not be in the future.");
    assert_string_equal(DATE("2025-01-01", TODAY), "Date may not be in the future.");
    assert_string_equal(DATE("9999-12-31", TODAY), "Date may not be in the future.");
}

static void test_date_format(void **state)
{
    (void)state;
    const char *fmt = "Date has wrong format. Use YYYY-MM-DD.";
    assert_string_equal(DATE("", TODAY), fmt);
    assert_string_equal(DATE("1990-1-01", TODAY), fmt);
    assert_string_equal(DATE("1990-01-1", TODAY), fmt);
    assert_string_equal(DATE("1990/01/01", TODAY), fmt);
    assert_string_equal(DATE("01-01-1990", TODAY), fmt);
    assert_string_equal(DATE("19900101", TODAY), fmt);
    assert_string_equal(DATE("1990-01-01T00:00:00", TODAY), fmt);
    assert_string_equal(DATE("1990-01-01 ", TODAY), fmt);
    assert_string_equal(DATE(" 1990-01-01", TODAY), fmt);
    assert_string_equal(DATE("199a-01-01", TODAY), fmt);
    assert_string_equal(DATE("1990-0a-01", TODAY), fmt);
    assert_string_equal(DATE("1990-01-0a", TODAY), fmt);
    assert_string_equal(DATE("+990-01-01", TODAY), fmt);
    assert_string_equal(DATE("1990--1-01", TODAY), fmt);
    assert_string_equal(DATE("1990-01--1", TODAY), fmt);
    assert_string_equal(DATE("1990 01 01", TODAY), fmt);
    assert_string_equal(date_check("1990-01-01", 9, TODAY), fmt);
}

/* ---------------------------------------------------------------- digits_only */

static void test_digits_only(void **state)
{
    (void)state;
    assert_true(DIGITS("0"));
    assert_true(DIGITS("0123456789"));
    assert_false(DIGITS(""));
    assert_false(DIGITS(" 1"));
    assert_false(DIGITS("1 "));
    assert_false(DIGITS("12a"));
    assert_false(DIGITS("-1"));
    assert_false(DIGITS("+1"));
    assert_false(DIGITS("1.0"));
    assert_false(DIGITS("/"));  /* '0' - 1 */
    assert_false(DIGITS(":"));  /* '9' + 1 */
    assert_false(digits_only("1\0" "2", 3));
    assert_true(digits_only("12ab", 2));
}

/* ---------------------------------------------------------------- url_valid */

static void test_url_valid(void **state)
{
    (void)state;
    assert_true(URL("http://a"));
    assert_true(URL("https://a"));
    assert_true(URL("https://example.com/img/p.png"));
    assert_true(URL("http://example.com:8080/x?y=1#z"));
    assert_true(URL("HTTP://EXAMPLE.COM"));
    assert_true(URL("HttpS://example.com"));
    assert_true(URL("https://cdn.example.com/a%20b.jpg"));
}

static void test_url_invalid(void **state)
{
    (void)state;
    assert_false(URL(""));
    assert_false(URL("http://"));
    assert_false(URL("https://"));
    assert_false(URL("http:/a"));
    assert_false(URL("ftp://example.com/x"));
    assert_false(URL("javascript:alert(1)"));
    assert_false(URL("data:image/png;base64,AAAA"));
    assert_false(URL("//example.com/x"));
    assert_false(URL("example.com"));
    assert_false(URL("http:///path"));
    assert_false(URL("https://?q"));
    assert_false(URL("https://#frag"));
    assert_false(URL("https://.example.com"));
    assert_false(URL("https://exa mple.com"));
    assert_false(URL(" https://example.com"));
    assert_false(URL("https://example.com/\n"));
    assert_false(URL("https://example.com/\t"));
    assert_false(URL("https://example.com/\x7f"));
    assert_false(url_valid("https://ex\0mple.com", 19));
}

static void test_url_length(void **state)
{
    (void)state;
    char buf[2100];
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "https://", 8);
    assert_true(url_valid(buf, 2048));
    assert_false(url_valid(buf, 2049));
}

/* ---------------------------------------------------------------- arena */

static int order_log[8];
static int order_n;
static void record_order(void *p) { order_log[order_n++] = *(int *)p; }

static void test_arena_alloc_alignment_and_independence(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    assert_null(a.head);
    assert_int_equal(a.used_total, 0);
    char *prev = NULL;
    for (size_t n = 0; n < 200; n++) {
        char *p = arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        assert_true(p != prev);
        memset(p, 0xab, n);
        prev = p;
    }
    assert_true(a.used_total >= 199 * 200 / 2);
    arena_release(&a);
    assert_null(a.head);
    assert_null(a.defers);
    assert_int_equal(a.used_total, 0);
}

static void test_arena_zero_size_allocations_are_distinct(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    void *p = arena_alloc(&a, 0), *q = arena_alloc(&a, 0);
    assert_non_null(p);
    assert_non_null(q);
    assert_ptr_not_equal(p, q);
    arena_release(&a);
}

static void test_arena_big_allocation_keeps_small_chunk(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    char *small1 = arena_alloc(&a, 100);
    memset(small1, 's', 100);
    char *big = arena_alloc(&a, 100000);
    memset(big, 'b', 100000);
    char *small2 = arena_alloc(&a, 100);
    memset(small2, 't', 100);
    /* the small allocations share a chunk: the second follows the first */
    const size_t step = (100 + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    assert_ptr_equal(small2, small1 + step);
    assert_int_equal(small1[99], 's');
    assert_int_equal(big[0], 'b');
    assert_int_equal(big[99999], 'b');
    /* many allocations across chunk boundaries stay intact */
    char *ptrs[3000];
    for (int i = 0; i < 3000; i++) {
        ptrs[i] = arena_alloc(&a, 24);
        memset(ptrs[i], i & 0x7f, 24);
    }
    for (int i = 0; i < 3000; i++)
        assert_int_equal(ptrs[i][23], i & 0x7f);
    arena_release(&a);
}

static void test_arena_strings(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    const char *src = "hello world";
    char *d = arena_strdup(&a, src);
    assert_string_equal(d, "hello world");
    assert_ptr_not_equal(d, src);
    assert_string_equal(arena_strndup(&a, src, 5), "hello");
    assert_string_equal(arena_strndup(&a, src, 0), "");
    char *withnul = arena_strndup(&a, "ab\0cd", 5);
    assert_memory_equal(withnul, "ab\0cd", 6);
    assert_string_equal(arena_strdup(&a, ""), "");
    assert_string_equal(arena_printf(&a, "%s=%d", "x", 42), "x=42");
    assert_string_equal(arena_printf(&a, "%s", ""), "");
    char big[20001];
    memset(big, 'q', 20000);
    big[20000] = '\0';
    char *p = arena_printf(&a, "<%s>", big);
    assert_int_equal(strlen(p), 20002);
    assert_int_equal(p[0], '<');
    assert_int_equal(p[20001], '>');
    arena_release(&a);
}

static void test_arena_calloc(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    /* dirty the chunk first so zeroing is observable */
    unsigned char *dirty = arena_alloc(&a, 256);
    memset(dirty, 0xff, 256);
    arena_release(&a);
    arena_init(&a);
    int *v = arena_calloc(&a, 100, sizeof(int));
    assert_non_null(v);
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], 0);
    assert_null(arena_calloc(&a, SIZE_MAX / 2 + 1, 2));
    assert_null(arena_calloc(&a, SIZE_MAX, SIZE_MAX));
    assert_non_null(arena_calloc(&a, 0, 8));
    arena_release(&a);
}

static void test_arena_defers_newest_first(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    static int one = 1, two = 2, three = 3;
    order_n = 0;
    arena_defer(&a, record_order, &one);
    arena_defer(&a, record_order, &two);
    arena_defer(&a, record_order, &three);
    assert_int_equal(order_n, 0);
    arena_release(&a);
    assert_int_equal(order_n, 3);
    assert_int_equal(order_log[0], 3);
    assert_int_equal(order_log[1], 2);
    assert_int_equal(order_log[2], 1);
    /* released arena is reusable and its defers do not run again */
    arena_release(&a);
    assert_int_equal(order_n, 3);
    arena_defer(&a, free, malloc(32)); /* ASan checks this is freed */
    arena_release(&a);
}

/* Allocation failure aborts ("out of memory"); an impossible size must never come back
 * as a tiny block because the rounding to alignment wrapped around. Run in a child. */
static void test_arena_huge_allocation_never_returns_small_block(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(2); /* the abort message is expected */
        struct arena a;
        arena_init(&a);
        void *p = arena_alloc(&a, SIZE_MAX - 3);
        _exit(p ? 0 : 3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* returning at all (exit 0) means the caller got 16 bytes for SIZE_MAX - 3 */
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codepoints_ascii),
        cmocka_unit_test(test_codepoints_multibyte),
        cmocka_unit_test(test_codepoints_control_chars),
        cmocka_unit_test(test_codepoints_overlong),
        cmocka_unit_test(test_codepoints_surrogates_and_range),
        cmocka_unit_test(test_codepoints_truncated_and_stray),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_mobile_plain),
        cmocka_unit_test(test_mobile_prefixes),
        cmocka_unit_test(test_mobile_rejects),
        cmocka_unit_test(test_email_valid),
        cmocka_unit_test(test_email_invalid_shape),
        cmocka_unit_test(test_email_invalid_chars),
        cmocka_unit_test(test_email_consecutive_dots_in_local_part),
        cmocka_unit_test(test_email_lengths),
        cmocka_unit_test(test_date_valid),
        cmocka_unit_test(test_date_leap_years),
        cmocka_unit_test(test_date_not_real),
        cmocka_unit_test(test_date_bounds),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_digits_only),
        cmocka_unit_test(test_url_valid),
        cmocka_unit_test(test_url_invalid),
        cmocka_unit_test(test_url_length),
        cmocka_unit_test(test_arena_alloc_alignment_and_independence),
        cmocka_unit_test(test_arena_zero_size_allocations_are_distinct),
        cmocka_unit_test(test_arena_big_allocation_keeps_small_chunk),
        cmocka_unit_test(test_arena_strings),
        cmocka_unit_test(test_arena_calloc),
        cmocka_unit_test(test_arena_defers_newest_first),
        cmocka_unit_test(test_arena_huge_allocation_never_returns_small_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
