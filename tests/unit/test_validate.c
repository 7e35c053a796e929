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
#define TRIM(lit, start) text_trim((lit), sizeof(lit) - 1, (start))

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
    /* only within len */
    assert_int_equal(text_trim(" x  yyy", 4, &start), 1);
    assert_int_equal(start, 1);
}

/* Unicode white space (the White_Space property) is trimmed, not only ASCII space;
 * invisible characters that are not white space (ZWSP, ZWJ, BOM) are kept. */
static void test_trim_unicode_white_space(void **state)
{
    (void)state;
    size_t start = 99;
    assert_int_equal(text_trim("\tx\t", 3, &start), 1);
    assert_int_equal(start, 1);
    /* U+00A0 NO-BREAK SPACE, U+3000 IDEOGRAPHIC SPACE around "Amit" */
    assert_int_equal(TRIM("\xc2\xa0" "Amit" "\xe3\x80\x80", &start), 4);
    assert_int_equal(start, 2);
    /* U+2003 EM SPACE, U+205F, U+1680 OGHAM SPACE MARK, U+0085 is a control (not here) */
    assert_int_equal(TRIM("\xe2\x80\x83\xe2\x81\x9f" "a b" "\xe1\x9a\x80", &start), 3);
    assert_int_equal(start, 6);
    /* only white space: nothing left */
    assert_int_equal(TRIM("\xc2\xa0\xe3\x80\x80 ", &start), 0);
    /* ZWSP U+200B, ZWJ U+200D and U+FEFF are not white space */
    assert_int_equal(TRIM("\xe2\x80\x8b" "a", &start), 4);
    assert_int_equal(start, 0);
    assert_int_equal(TRIM("a\xe2\x80\x8d", &start), 4);
    assert_int_equal(TRIM("\xef\xbb\xbf" "a", &start), 4);
    /* white space inside is kept; a multibyte letter at the edge is not cut */
    assert_int_equal(TRIM(" \xc3\xa9\xc2\xa0\xc3\xa9 ", &start), 6);
    assert_int_equal(start, 1);
}

/* ---------------------------------------------------------------- text_forbidden */

static void assert_forbidden(const char *s, size_t len, uint32_t want)
{
    uint32_t cp = 0;
    if (!text_forbidden(s, len, &cp))
        print_error("U+%04X was let through\n", (unsigned)want);
    assert_true(text_forbidden(s, len, &cp));
    assert_int_equal(cp, want);
}
#define FORBIDDEN(lit, want) assert_forbidden((lit), sizeof(lit) - 1, (want))

static void assert_allowed(const char *s, size_t len)
{
    uint32_t cp = 0;
    if (text_forbidden(s, len, &cp))
        print_error("U+%04X was refused\n", (unsigned)cp);
    assert_false(text_forbidden(s, len, &cp));
}
#define ALLOWED(lit) assert_allowed((lit), sizeof(lit) - 1)

static void test_forbidden_bidi_controls(void **state)
{
    (void)state;
    FORBIDDEN("\xe2\x80\xaa", 0x202a); /* LRE */
    FORBIDDEN("\xe2\x80\xab", 0x202b); /* RLE */
    FORBIDDEN("\xe2\x80\xac", 0x202c); /* PDF */
    FORBIDDEN("\xe2\x80\xad", 0x202d); /* LRO */
    FORBIDDEN("abc\xe2\x80\xae" "def", 0x202e); /* RLO inside a name */
    FORBIDDEN("\xe2\x81\xa6", 0x2066); /* LRI */
    FORBIDDEN("\xe2\x81\xa7", 0x2067); /* RLI */
    FORBIDDEN("\xe2\x81\xa8", 0x2068); /* FSI */
    FORBIDDEN("x\xe2\x81\xa9", 0x2069); /* PDI */
    /* the first one found is the one reported */
    FORBIDDEN("a\xe2\x81\xa6" "b\xe2\x80\xae", 0x2066);
}

static void test_forbidden_separators_nonchars_tags(void **state)
{
    (void)state;
    FORBIDDEN("line\xe2\x80\xa8" "two", 0x2028);
    FORBIDDEN("para\xe2\x80\xa9", 0x2029);
    FORBIDDEN("\xef\xb7\x90", 0xfdd0);
    FORBIDDEN("\xef\xb7\xaf", 0xfdef);
    FORBIDDEN("\xef\xbf\xbe", 0xfffe);
    FORBIDDEN("\xef\xbf\xbf", 0xffff);
    FORBIDDEN("\xf0\x9f\xbf\xbe", 0x1fffe);
    FORBIDDEN("\xf0\x9f\xbf\xbf", 0x1ffff);
    FORBIDDEN("\xf4\x8f\xbf\xbf", 0x10ffff);
    FORBIDDEN("\xf3\xa0\x80\x80", 0xe0000); /* first of the Tags block (unassigned) */
    FORBIDDEN("\xf3\xa0\x80\x81", 0xe0001); /* LANGUAGE TAG */
    FORBIDDEN("a\xf3\xa0\x81\x81", 0xe0041); /* TAG LATIN CAPITAL LETTER A */
    FORBIDDEN("\xf3\xa0\x81\xbf", 0xe007f); /* CANCEL TAG */
    /* the flag of England is a tag sequence: refused too */
    FORBIDDEN("\xf0\x9f\x8f\xb4\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2", 0xe0067);
}

static void test_allowed_text(void **state)
{
    (void)state;
    ALLOWED("");
    ALLOWED("Amit Kumar");
    /* Malayalam "Kiran" written with a chillu by ZWJ (U+200D), Hindi with ZWNJ (U+200C) */
    ALLOWED("\xe0\xb4\x95\xe0\xb4\xbf\xe0\xb4\xb0\xe0\xb4\xa3\xe0\xb5\x8d\xe2\x80\x8d");
    ALLOWED("\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8c\xe0\xa4\xb7");
    /* a ZWJ family emoji; emoji with a variation selector */
    ALLOWED("\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7");
    ALLOWED("\xe2\x9d\xa4\xef\xb8\x8f");
    /* LRM/RLM marks (no embedding), the neighbours of the refused ranges */
    ALLOWED("\xe2\x80\x8e\xe2\x80\x8f\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa");
    ALLOWED("\xef\xb7\x8f\xef\xb7\xb0\xef\xbf\xbd"); /* U+FDCF, U+FDF0, U+FFFD */
    ALLOWED("\xf3\xa0\x84\x80"); /* U+E0100 VARIATION SELECTOR-17, just past Tags */
    ALLOWED("\xf4\x8f\xbf\xbd"); /* U+10FFFD, private use */
}

/* ---------------------------------------------------------------- text_has_visible */

#define VISIBLE(lit) text_has_visible((lit), sizeof(lit) - 1)

static void test_visible(void **state)
{
    (void)state;
    assert_false(VISIBLE(""));
    assert_false(VISIBLE("   "));
    assert_false(VISIBLE("\xc2\xa0\xe3\x80\x80"));         /* NBSP, ideographic space */
    assert_false(VISIBLE("\xe2\x80\x8b"));                   /* ZWSP */
    assert_false(VISIBLE("\xe2\x80\x8d\xe2\x80\x8c"));       /* ZWJ, ZWNJ */
    assert_false(VISIBLE("\xef\xbb\xbf\xe2\x81\xa0"));       /* BOM, word joiner */
    assert_false(VISIBLE("\xe3\x85\xa4"));                   /* U+3164 HANGUL FILLER (a letter, but ignorable) */
    assert_false(VISIBLE("\xc2\xad"));                       /* soft hyphen */
    assert_false(VISIBLE("\xef\xb8\x8f"));                   /* a variation selector alone */
    assert_false(VISIBLE("\xee\x80\x80"));                   /* private use */
    assert_true(VISIBLE("a"));
    assert_true(VISIBLE("."));
    assert_true(VISIBLE("\xe2\x80\x8b" "A\xe2\x80\x8b"));
    assert_true(VISIBLE("\xe0\xb4\x95"));                   /* Malayalam KA */
    assert_true(VISIBLE("\xf0\x9f\x98\x80"));               /* emoji */
    assert_true(VISIBLE("\xe0\xa5\xa7"));                   /* Devanagari digit one */
    assert_true(VISIBLE("\xcc\x81"));                       /* a combining mark is drawn */
}

/* ---------------------------------------------------------------- text_fold_key */

static void assert_key(const char *s, const char *want)
{
    char *k = text_fold_key(s, strlen(s));
    assert_non_null(k);
    assert_string_equal(k, want);
    /* a key is its own key */
    char *again = text_fold_key(k, strlen(k));
    assert_non_null(again);
    assert_string_equal(again, k);
    free(again);
    free(k);
}

static void test_fold_key(void **state)
{
    (void)state;
    assert_key("User@Example.COM", "user@example.com");
    /* precomposed U+00C4 and U+00E4, decomposed a + U+0308 and A + U+0308: one key, in NFC */
    assert_key("\xc3\x84rzte@x.in", "\xc3\xa4rzte@x.in");
    assert_key("\xc3\xa4rzte@x.in", "\xc3\xa4rzte@x.in");
    assert_key("a\xcc\x88rzte@x.in", "\xc3\xa4rzte@x.in");
    assert_key("A\xcc\x88RZTE@X.IN", "\xc3\xa4rzte@x.in");
    /* U+212A KELVIN SIGN is k */
    assert_key("\xe2\x84\xaa.rao@x.in", "k.rao@x.in");
    /* full folding: sharp s, the fi ligature, capital I with dot */
    assert_key("Stra\xc3\x9f" "e@x.de", "strasse@x.de");
    assert_key("\xef\xac\x81" "le@x.in", "file@x.in");
    assert_key("\xc4\xb0", "i\xcc\x87");
    /* Greek final sigma and capital sigma fold together; Devanagari has no case */
    assert_key("\xce\xa3\xcf\x82", "\xcf\x83\xcf\x83");
    assert_key("\xe0\xa4\x85\xe0\xa4\x9c\xe0\xa4\xaf@x.in", "\xe0\xa4\x85\xe0\xa4\x9c\xe0\xa4\xaf@x.in");
    assert_key("", "");
    /* different addresses keep different keys */
    char *a = text_fold_key("a@x.in", 6), *b = text_fold_key("b@x.in", 6);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
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

/* Invisible and format characters (general category Cf: U+200B, U+2060, U+FEFF, U+00AD,
 * ZWJ, bidi controls, tags) and spaces beyond ASCII make an address invalid. */
static void test_email_invisible_chars(void **state)
{
    (void)state;
    assert_false(EMAIL("us\xe2\x80\x8b" "er@example.com"));  /* ZWSP */
    assert_false(EMAIL("user@exa\xe2\x81\xa0" "mple.com"));  /* WORD JOINER in the domain */
    assert_false(EMAIL("\xef\xbb\xbf" "user@example.com"));  /* BOM in front */
    assert_false(EMAIL("user@example.com\xef\xbb\xbf"));
    assert_false(EMAIL("us\xc2\xad" "er@example.com"));      /* soft hyphen */
    assert_false(EMAIL("us\xe2\x80\x8d" "er@example.com"));  /* ZWJ */
    assert_false(EMAIL("us\xe2\x80\x8e" "er@example.com"));  /* LRM */
    assert_false(EMAIL("us\xe2\x80\xae" "er@example.com"));  /* RLO */
    assert_false(EMAIL("us\xf3\xa0\x81\x81" "er@example.com")); /* a tag character */
    assert_false(EMAIL("us\xc2\xa0" "er@example.com"));      /* NBSP */
    assert_false(EMAIL("user\xe3\x80\x80@example.com"));     /* ideographic space */
    assert_false(EMAIL("user@example.com\xe2\x80\xa8"));     /* LINE SEPARATOR */
    assert_false(EMAIL("us\xe3\x85\xa4" "er@example.com"));  /* HANGUL FILLER */
    assert_false(EMAIL("us\xee\x80\x80" "er@example.com"));  /* private use */
    assert_false(EMAIL("us\xcd\xb8" "er@example.com"));      /* U+0378, unassigned */
    /* letters of other scripts, composed or not, are fine */
    assert_true(EMAIL("m\xc3\xbcller@example.de"));
    assert_true(EMAIL("mu\xcc\x88ller@example.de"));
    assert_true(EMAIL("\xe0\xa4\x85\xe0\xa4\x9c\xe0\xa4\xaf@\xe0\xa4\xa1\xe0\xa4\xbe\xe0\xa4\x9f\xe0\xa4\xbe.\xe0\xa4\xad\xe0\xa4\xbe\xe0\xa4\xb0\xe0\xa4\xa4"));
    assert_true(EMAIL("\xe2\x84\xaa.rao@x.in"));
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
    /* characters are counted, not bytes: 64 two-byte letters before the @ (128 bytes) */
    char wide[700];
    size_t n = 0;
    for (int i = 0; i < 64; i++, n += 2)
        memcpy(wide + n, "\xc3\xa9", 2);
    memcpy(wide + n, "@example.com", 12);
    assert_true(email_valid(wide, n + 12));
    memmove(wide + 2, wide, n + 12);
    memcpy(wide, "\xc3\xa9", 2);
    assert_false(email_valid(wide, n + 14)); /* 65 */
    /* 254 characters in all, 300+ bytes: allowed; 255: refused */
    n = 0;
    memcpy(wide, "u@", 2);
    n = 2;
    for (int i = 0; i < 248; i++, n += 2)
        memcpy(wide + n, "\xc3\xa9", 2);
    memcpy(wide + n, ".com", 4);
    assert_true(email_valid(wide, n + 4)); /* 2 + 248 + 4 = 254 characters, 502 bytes */
    memcpy(wide + n, "\xc3\xa9.com", 6);
    assert_false(email_valid(wide, n + 6));
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
    /* characters, not bytes: 2048 characters of which 1000 are two-byte */
    char wide[4200];
    memcpy(wide, "https://x.in/", 13);
    size_t n = 13;
    for (int i = 0; i < 1000; i++, n += 2)
        memcpy(wide + n, "\xc3\xa9", 2);
    memset(wide + n, 'a', 2048 - 1013);
    n += 2048 - 1013;
    assert_true(url_valid(wide, n));
    wide[n] = 'a';
    assert_false(url_valid(wide, n + 1));
}

/* Spaces and invisible characters beyond ASCII are refused like the ASCII space. */
static void test_url_invisible(void **state)
{
    (void)state;
    assert_false(URL("https://exa\xe2\x80\x8bmple.com"));
    assert_false(URL("https://example.com/a\xc2\xa0" "b"));
    assert_false(URL("https://example.com/\xe3\x80\x80"));
    assert_false(URL("https://example.com/\xe2\x80\xae"));
    assert_true(URL("https://example.com/caf\xc3\xa9.png"));
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

/* ---------------------------------------------------------------- rfc3339_ms */

static int64_t at(const char *s)
{
    int64_t ms = -1;
    assert_true(rfc3339_ms(s, strlen(s), &ms));
    return ms;
}

static void test_rfc3339(void **state)
{
    (void)state;
    assert_true(at("1970-01-01T00:00:00Z") == 0);
    assert_true(at("2024-05-01T12:34:56.789Z") == 1714566896789LL);
    assert_true(at("2024-05-01t12:34:56.789z") == 1714566896789LL);
    /* offsets: the same instant */
    assert_true(at("2024-05-01T18:04:56.789+05:30") == 1714566896789LL);
    assert_true(at("2024-05-01T08:34:56.789-04:00") == 1714566896789LL);
    assert_true(at("2024-05-01T12:34:56.789-00:00") == 1714566896789LL);
    /* fractions: any number of digits; beyond the millisecond rounded up */
    assert_true(at("2024-05-01T12:34:56.7Z") == 1714566896700LL);
    assert_true(at("2024-05-01T12:34:56.78900000Z") == 1714566896789LL);
    assert_true(at("2024-05-01T12:34:56.7890001Z") == 1714566896790LL);
    assert_true(at("2024-05-01T12:34:56.9995Z") == 1714566897000LL);
    /* leap day, leap second, before the epoch */
    assert_true(at("2024-02-29T00:00:00Z") == 1709164800000LL);
    assert_true(at("2016-12-31T23:59:60Z") == 1483228800000LL);
    assert_true(at("1969-12-31T23:59:59Z") == -1000);
    const char *bad[] = {
        "", "2024-05-01", "2024-05-01T12:34Z", "2024-05-01T12:34:56", "2024-05-01 12:34:56Z",
        "2024-05-01T12:34:56ZZ", "2024-05-01T12:34:56.Z", "2024-05-01T12:34:56+0530", "2024-05-01T12:34:56+05",
        "2024-05-01T12:34:56 05:30", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z",
        "2024-04-31T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z", "2024-05-01T12:00:61Z",
        "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+05:60", "24-05-01T12:00:00Z", "2024-5-01T12:00:00Z",
        "+2024-05-01T12:00:00Z", "2024-05-01T12:00:00.12a3Z", "2024-05-01T12:00:00\xef\xbc\xba",
        "１２３４-05-01T12:00:00Z",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int64_t ms;
        if (rfc3339_ms(bad[k], strlen(bad[k]), &ms))
            fail_msg("accepted: %s", bad[k]);
    }
    /* only len bytes are read */
    int64_t ms;
    assert_true(rfc3339_ms("1970-01-01T00:00:01Zjunk", 20, &ms) && ms == 1000);
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
        cmocka_unit_test(test_trim_unicode_white_space),
        cmocka_unit_test(test_forbidden_bidi_controls),
        cmocka_unit_test(test_forbidden_separators_nonchars_tags),
        cmocka_unit_test(test_allowed_text),
        cmocka_unit_test(test_visible),
        cmocka_unit_test(test_fold_key),
        cmocka_unit_test(test_mobile_plain),
        cmocka_unit_test(test_mobile_prefixes),
        cmocka_unit_test(test_mobile_rejects),
        cmocka_unit_test(test_email_valid),
        cmocka_unit_test(test_email_invalid_shape),
        cmocka_unit_test(test_email_invalid_chars),
        cmocka_unit_test(test_email_consecutive_dots_in_local_part),
        cmocka_unit_test(test_email_invisible_chars),
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
        cmocka_unit_test(test_url_invisible),
        cmocka_unit_test(test_arena_alloc_alignment_and_independence),
        cmocka_unit_test(test_arena_zero_size_allocations_are_distinct),
        cmocka_unit_test(test_arena_big_allocation_keeps_small_chunk),
        cmocka_unit_test(test_arena_strings),
        cmocka_unit_test(test_arena_calloc),
        cmocka_unit_test(test_arena_defers_newest_first),
        cmocka_unit_test(test_arena_huge_allocation_never_returns_small_block),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
