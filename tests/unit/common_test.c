/*
 * common_test.c - ids, name and UTF-8 validation, the arena and status
 * helpers of src/common.
 */
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/arena.h"
#include "common/base64.h"
#include "common/hist.h"
#include "common/id.h"
#include "common/log.h"
#include "common/names.h"
#include "common/status.h"
#include "common/str.h"

#define NOW_MS UINT64_C(1700000000000)

/* Repeatable random bytes: a counter, byte by byte. */
static int
counter_rand(void *arg, void *buf, size_t len)
{
    uint64_t *c = arg;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)((*c)++ * 151u + 7u);
    }
    return 0;
}

static int
failing_rand(void *arg, void *buf, size_t len)
{
    (void)arg;
    (void)buf;
    (void)len;
    return -1;
}

/* Random bytes that are all 0xff, to push the increment towards a carry. */
static int
ones_rand(void *arg, void *buf, size_t len)
{
    (void)arg;
    memset(buf, 0xff, len);
    return 0;
}

static hp_id
next_id(hp_idgen *g, uint64_t now, uint64_t *counter)
{
    hp_id id;
    int rc = hp_idgen_next(g, now, counter_rand, counter, &id);
    assert_int_equal(rc, 0);
    return id;
}

/* ---- ids ------------------------------------------------------------------
 */

static void
test_id_format_is_26_crockford_characters(void **state)
{
    (void)state;
    uint64_t c = 0;
    hp_idgen g;
    hp_idgen_init(&g);
    hp_id id = next_id(&g, NOW_MS, &c);
    char text[HP_ID_TEXT_LEN + 1];

    hp_id_format(&id, text);

    assert_int_equal(strlen(text), HP_ID_TEXT_LEN);
    for (size_t i = 0; i < HP_ID_TEXT_LEN; i++) {
        assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", text[i]));
    }
    assert_true(text[0] <= '7');
}

static void
test_id_format_then_parse_round_trips(void **state)
{
    (void)state;
    uint64_t c = 0;
    hp_idgen g;
    hp_idgen_init(&g);
    hp_status st;

    for (int i = 0; i < 100; i++) {
        hp_id id = next_id(&g, NOW_MS + (uint64_t)i * 7919u, &c);
        hp_id back;
        char text[HP_ID_TEXT_LEN + 1];
        hp_id_format(&id, text);

        hp_code code = hp_id_parse(text, strlen(text), &back, &st);

        assert_int_equal(code, HP_OK);
        assert_memory_equal(back.b, id.b, HP_ID_LEN);
    }
}

/* Reference texts from arbitrary-precision arithmetic (Python's int),
 * across the top bit, the 64-bit word boundary and the last bit. */
static void
test_id_format_and_parse_match_reference_texts(void **state)
{
    (void)state;

    static const struct {
        uint8_t b[HP_ID_LEN];
        const char *text;
    } cases[] = {
        { { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 },
          "01081G81860W40J2GB1G6GW3RG" },
        { { 0x80, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0x01 },
          "4000000000000FY00000000001" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hp_id id, back;
        hp_status st;
        char text[HP_ID_TEXT_LEN + 1];
        memcpy(id.b, cases[i].b, HP_ID_LEN);

        hp_id_format(&id, text);
        hp_code code = hp_id_parse(cases[i].text, HP_ID_TEXT_LEN, &back, &st);

        assert_string_equal(text, cases[i].text);
        assert_int_equal(code, HP_OK);
        assert_memory_equal(back.b, id.b, HP_ID_LEN);
    }
}

static void
test_id_format_of_all_ones_is_7_then_z(void **state)
{
    (void)state;
    hp_id id;
    memset(id.b, 0xff, sizeof(id.b));
    char text[HP_ID_TEXT_LEN + 1];

    hp_id_format(&id, text);

    assert_string_equal(text, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
}

static void
test_id_format_puts_time_in_first_ten_characters(void **state)
{
    (void)state;
    hp_id id;
    memset(id.b, 0, sizeof(id.b));
    id.b[5] = 1; /* 1 ms after the epoch, no random bits */
    char text[HP_ID_TEXT_LEN + 1];

    hp_id_format(&id, text);

    assert_string_equal(text, "00000000010000000000000000");
    assert_int_equal(hp_id_time_ms(&id), 1);
}

static void
test_id_parse_accepts_lowercase_and_crockford_aliases(void **state)
{
    (void)state;
    hp_status st;
    hp_id upper, lower, alias;
    const char *u = "01ARZ3NDEK1SV4RRFFQ69G5FA0";
    const char *l = "01arz3ndek1sv4rrffq69g5fa0";
    const char *a = "O1ARZ3NDEKISV4RRFFQ69G5FAo"; /* O=0, I=1, o=0 */

    assert_int_equal(hp_id_parse(u, strlen(u), &upper, &st), HP_OK);
    assert_int_equal(hp_id_parse(l, strlen(l), &lower, &st), HP_OK);
    assert_int_equal(hp_id_parse(a, strlen(a), &alias, &st), HP_OK);

    assert_memory_equal(upper.b, lower.b, HP_ID_LEN);
    assert_memory_equal(upper.b, alias.b, HP_ID_LEN);
}

static void
test_id_parse_accepts_7z_maximum(void **state)
{
    (void)state;
    hp_status st;
    hp_id id;
    const char *t = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ";

    hp_code code = hp_id_parse(t, strlen(t), &id, &st);

    assert_int_equal(code, HP_OK);
    for (size_t i = 0; i < HP_ID_LEN; i++) {
        assert_int_equal(id.b[i], 0xff);
    }
}

static void
test_id_parse_rejects_first_character_above_7(void **state)
{
    (void)state;
    hp_status st;
    hp_id id;
    const char *t = "80000000000000000000000000";

    hp_code code = hp_id_parse(t, strlen(t), &id, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_string_equal(st.reason, HP_R_BAD_ID);
}

static void
test_id_parse_rejects_25_characters(void **state)
{
    (void)state;
    hp_status st;
    hp_id id;
    const char *t = "0000000000000000000000000";

    hp_code code = hp_id_parse(t, strlen(t), &id, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_string_equal(st.reason, HP_R_BAD_ID);
}

static void
test_id_parse_rejects_27_characters(void **state)
{
    (void)state;
    hp_status st;
    hp_id id;
    const char *t = "000000000000000000000000000";

    hp_code code = hp_id_parse(t, strlen(t), &id, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_string_equal(st.reason, HP_R_BAD_ID);
}

static void
test_id_parse_rejects_letter_u(void **state)
{
    (void)state;
    hp_status st;
    hp_id id;
    const char *t = "0000000000000U000000000000";

    hp_code code = hp_id_parse(t, strlen(t), &id, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_string_equal(st.reason, HP_R_BAD_ID);
}

static void
test_id_parse_rejects_punctuation(void **state)
{
    (void)state;
    hp_status st;
    hp_id id;
    const char *t = "00000000000000-00000000000";

    hp_code code = hp_id_parse(t, strlen(t), &id, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_string_equal(st.reason, HP_R_BAD_ID);
}

static void
test_id_parse_rejects_nul_inside(void **state)
{
    (void)state;
    hp_status st;
    hp_id id;
    char t[HP_ID_TEXT_LEN];
    memset(t, '0', sizeof(t));
    t[12] = '\0';

    hp_code code = hp_id_parse(t, sizeof(t), &id, &st);

    assert_int_equal(code, HP_INVALID_ARGUMENT);
    assert_string_equal(st.reason, HP_R_BAD_ID);
}

static void
test_idgen_ids_increase_strictly_within_a_millisecond(void **state)
{
    (void)state;
    uint64_t c = 0;
    hp_idgen g;
    hp_idgen_init(&g);
    hp_id prev = next_id(&g, NOW_MS, &c);

    for (int i = 0; i < 1000; i++) {
        hp_id id = next_id(&g, NOW_MS, &c);

        assert_true(hp_id_cmp(&prev, &id) < 0);
        assert_int_equal(hp_id_time_ms(&id), NOW_MS);
        prev = id;
    }
}

static void
test_idgen_increment_carries_across_random_bytes(void **state)
{
    (void)state;
    hp_idgen g;
    hp_idgen_init(&g);
    hp_id a, b;
    assert_int_equal(hp_idgen_next(&g, NOW_MS, ones_rand, NULL, &a), 0);

    assert_int_equal(hp_idgen_next(&g, NOW_MS, ones_rand, NULL, &b), 0);

    assert_true(hp_id_cmp(&a, &b) < 0);
    assert_int_equal(hp_id_time_ms(&b), NOW_MS);
}

static void
test_idgen_clock_going_backwards_never_decreases_ids(void **state)
{
    (void)state;
    uint64_t c = 0;
    hp_idgen g;
    hp_idgen_init(&g);
    hp_id first = next_id(&g, NOW_MS, &c);

    hp_id later = next_id(&g, NOW_MS - 5000, &c);

    assert_true(hp_id_cmp(&first, &later) < 0);
    assert_int_equal(hp_id_time_ms(&later), NOW_MS);
}

static void
test_idgen_new_millisecond_uses_its_time(void **state)
{
    (void)state;
    uint64_t c = 0;
    hp_idgen g;
    hp_idgen_init(&g);
    hp_id first = next_id(&g, NOW_MS, &c);

    hp_id next = next_id(&g, NOW_MS + 1, &c);

    assert_true(hp_id_cmp(&first, &next) < 0);
    assert_int_equal(hp_id_time_ms(&next), NOW_MS + 1);
}

static void
test_idgen_reports_a_failing_random_source(void **state)
{
    (void)state;
    hp_idgen g;
    hp_idgen_init(&g);
    hp_id id;

    int rc = hp_idgen_next(&g, NOW_MS, failing_rand, NULL, &id);

    assert_int_not_equal(rc, 0);
}

static void
test_id_cmp_orders_by_time_first(void **state)
{
    (void)state;
    hp_id a, b;
    memset(a.b, 0, sizeof(a.b));
    memset(a.b + 6, 0xff, sizeof(a.b) - 6);
    memset(b.b, 0, sizeof(b.b));
    a.b[5] = 1; /* ms 1 with all random bits set */
    b.b[5] = 2; /* ms 2 with none */

    assert_true(hp_id_cmp(&a, &b) < 0);
    assert_true(hp_id_cmp(&b, &a) > 0);
    assert_int_equal(hp_id_cmp(&a, &a), 0);
}

static void
test_id_is_zero_only_for_all_zero_bytes(void **state)
{
    (void)state;
    hp_id z, nz;
    memset(z.b, 0, sizeof(z.b));
    nz = z;
    nz.b[15] = 1;

    assert_true(hp_id_is_zero(&z));
    assert_false(hp_id_is_zero(&nz));
}

/* ---- names -----------------------------------------------------------------
 */

static void
test_name_of_64_bytes_is_valid(void **state)
{
    (void)state;
    char name[HP_NAME_MAX];
    memset(name, 'a', sizeof(name));

    assert_true(hp_name_valid(name, HP_NAME_MAX));
}

static void
test_name_of_65_bytes_is_invalid(void **state)
{
    (void)state;
    char name[HP_NAME_MAX + 1];
    memset(name, 'a', sizeof(name));

    assert_false(hp_name_valid(name, HP_NAME_MAX + 1));
}

static void
test_name_of_one_byte_is_valid(void **state)
{
    (void)state;

    assert_true(hp_name_valid("x", 1));
}

static void
test_empty_name_is_invalid(void **state)
{
    (void)state;

    assert_false(hp_name_valid("", 0));
    assert_false(hp_name_valid(NULL, 0));
}

static void
test_name_accepts_every_allowed_character(void **state)
{
    (void)state;
    const char *all = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789._:-";
    size_t n = strlen(all);

    for (size_t i = 0; i < n; i++) {
        assert_true(hp_name_valid(all + i, 1));
    }
}

static void
test_name_rejects_characters_outside_the_set(void **state)
{
    (void)state;
    const char bad[] = { ' ',  '/', '@',        '+',        '*',
                         '\\', '"', '\'',       '\n',       '\t',
                         ',',  '#', (char)0x7f, (char)0xc3, (char)0x80 };

    for (size_t i = 0; i < sizeof(bad); i++) {
        char name[3] = { 'a', bad[i], 'b' };
        assert_false(hp_name_valid(name, sizeof(name)));
    }
}

static void
test_name_with_nul_inside_is_invalid(void **state)
{
    (void)state;
    const char name[] = { 'a', 'b', '\0', 'c' };

    assert_false(hp_name_valid(name, sizeof(name)));
}

static void
test_name_reads_only_len_bytes(void **state)
{
    (void)state;
    const char *text = "good name"; /* the space is past len */

    assert_true(hp_name_valid(text, 4));
}

/* ---- UTF-8 ----------------------------------------------------------------
 */

static bool
utf8(const char *bytes, size_t len)
{
    return hp_utf8_valid(bytes, len);
}

#define U8(lit) utf8((lit), sizeof(lit) - 1)

static void
test_utf8_accepts_ascii_and_empty(void **state)
{
    (void)state;

    assert_true(U8("hello, world"));
    assert_true(utf8("", 0));
}

static void
test_utf8_accepts_two_three_and_four_byte_forms(void **state)
{
    (void)state;

    assert_true(U8("\xc3\xa9"));         /* U+00E9 */
    assert_true(U8("\xc2\x80"));         /* U+0080, smallest 2-byte */
    assert_true(U8("\xe2\x82\xac"));     /* U+20AC */
    assert_true(U8("\xe0\xa0\x80"));     /* U+0800, smallest 3-byte */
    assert_true(U8("\xf0\x9f\x98\x80")); /* U+1F600 */
    assert_true(U8("\xf0\x90\x80\x80")); /* U+10000, smallest 4-byte */
    assert_true(U8("\xf4\x8f\xbf\xbf")); /* U+10FFFF, the last */
}

static void
test_utf8_accepts_neighbours_of_the_surrogate_range(void **state)
{
    (void)state;

    assert_true(U8("\xed\x9f\xbf")); /* U+D7FF */
    assert_true(U8("\xee\x80\x80")); /* U+E000 */
}

static void
test_utf8_rejects_overlong_forms(void **state)
{
    (void)state;

    assert_false(U8("\xc0\x80"));         /* NUL in two bytes */
    assert_false(U8("\xc1\xbf"));         /* U+007F in two bytes */
    assert_false(U8("\xe0\x80\x80"));     /* NUL in three bytes */
    assert_false(U8("\xe0\x9f\xbf"));     /* U+07FF in three bytes */
    assert_false(U8("\xf0\x80\x80\x80")); /* NUL in four bytes */
    assert_false(U8("\xf0\x8f\xbf\xbf")); /* U+FFFF in four bytes */
}

static void
test_utf8_rejects_surrogates(void **state)
{
    (void)state;

    assert_false(U8("\xed\xa0\x80")); /* U+D800 */
    assert_false(U8("\xed\xbf\xbf")); /* U+DFFF */
}

static void
test_utf8_rejects_code_points_above_10ffff(void **state)
{
    (void)state;

    assert_false(U8("\xf4\x90\x80\x80")); /* U+110000 */
    assert_false(U8("\xf5\x80\x80\x80"));
    assert_false(U8("\xff"));
}

static void
test_utf8_rejects_nul(void **state)
{
    (void)state;

    assert_false(U8("a\0b"));
    assert_false(U8("\0"));
}

static void
test_utf8_rejects_truncated_sequences(void **state)
{
    (void)state;

    assert_false(U8("\xc3"));
    assert_false(U8("\xe2\x82"));
    assert_false(U8("\xf0\x9f\x98"));
    assert_false(U8("ok\xf0\x9f\x98"));
}

static void
test_utf8_rejects_lone_continuation_and_bad_continuation(void **state)
{
    (void)state;

    assert_false(U8("\x80"));
    assert_false(U8("a\xbf"));
    assert_false(U8("\xc3\x28"));     /* second byte is not 10xxxxxx */
    assert_false(U8("\xe2\x28\xa1")); /* nor here */
}

/* ---- arena
 * ------------------------------------------------------------------- */

static void
test_arena_allocations_are_aligned_and_disjoint(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    uint8_t *p[200];

    for (size_t i = 0; i < HP_ARRAY_LEN(p); i++) {
        size_t len = i % 37 + 1;
        p[i] = hp_arena_alloc(&a, len);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % alignof(max_align_t), 0);
        memset(p[i], (int)(i & 0xff), len);
    }

    for (size_t i = 0; i < HP_ARRAY_LEN(p); i++) {
        size_t len = i % 37 + 1;
        for (size_t k = 0; k < len; k++) {
            assert_int_equal(p[i][k], i & 0xff);
        }
    }
    hp_arena_release(&a);
}

static void
test_arena_big_allocation_keeps_earlier_ones_valid(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    char *small = hp_arena_dup(&a, "small", 6);
    assert_non_null(small);

    uint8_t *big = hp_arena_alloc(&a, 100000);
    char *after = hp_arena_dup(&a, "after", 6);

    assert_non_null(big);
    assert_non_null(after);
    memset(big, 0x5a, 100000);
    assert_string_equal(small, "small");
    assert_string_equal(after, "after");
    assert_int_equal(big[99999], 0x5a);
    hp_arena_release(&a);
}

static void
test_arena_dup_copies_bytes(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    uint8_t src[5] = { 1, 2, 0, 4, 5 };

    uint8_t *d = hp_arena_dup(&a, src, sizeof(src));

    assert_non_null(d);
    assert_ptr_not_equal(d, src);
    assert_memory_equal(d, src, sizeof(src));
    hp_arena_release(&a);
}

static void
test_arena_zero_length_gives_unique_pointers(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);

    void *x = hp_arena_alloc(&a, 0);
    void *y = hp_arena_alloc(&a, 0);

    assert_non_null(x);
    assert_non_null(y);
    assert_ptr_not_equal(x, y);
    hp_arena_release(&a);
}

static void
test_arena_counts_used_bytes_and_release_resets(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    assert_int_equal(a.used, 0);

    assert_non_null(hp_arena_alloc(&a, 100));
    assert_true(a.used >= 100);
    hp_arena_release(&a);

    assert_int_equal(a.used, 0);
    assert_null(a.head);
    assert_non_null(hp_arena_alloc(&a, 10)); /* reusable after release */
    hp_arena_release(&a);
}

/* ---- status
 * ------------------------------------------------------------------- */

static void
test_code_names_follow_grpc(void **state)
{
    (void)state;

    assert_string_equal(hp_code_name(HP_OK), "OK");
    assert_string_equal(hp_code_name(HP_INVALID_ARGUMENT), "INVALID_ARGUMENT");
    assert_string_equal(hp_code_name(HP_FAILED_PRECONDITION),
                        "FAILED_PRECONDITION");
    assert_string_equal(hp_code_name(HP_DATA_LOSS), "DATA_LOSS");
    assert_string_equal(hp_code_name(HP_UNAUTHENTICATED), "UNAUTHENTICATED");
}

static void
test_unknown_code_has_a_fixed_name(void **state)
{
    (void)state;

    assert_string_equal(hp_code_name((hp_code)17), "UNKNOWN_CODE");
    assert_string_equal(hp_code_name((hp_code)-1), "UNKNOWN_CODE");
}

static void
test_status_set_returns_code_and_cuts_long_messages(void **state)
{
    (void)state;
    hp_status st;
    char longer[400];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';

    hp_code code = hp_status_set(&st, HP_NOT_FOUND, HP_R_NO_LANE, "%s", longer);

    assert_int_equal(code, HP_NOT_FOUND);
    assert_int_equal(st.code, HP_NOT_FOUND);
    assert_string_equal(st.reason, HP_R_NO_LANE);
    assert_int_equal(strlen(st.msg), HP_STATUS_MSG_MAX - 1);
}

static void
test_status_clear_resets_to_ok(void **state)
{
    (void)state;
    hp_status st;
    hp_code code = hp_status_set(&st, HP_INTERNAL, HP_R_STORE_ERROR, "bad");
    assert_int_equal(code, HP_INTERNAL);

    hp_status_clear(&st);

    assert_int_equal(st.code, HP_OK);
    assert_string_equal(st.msg, "");
}

/* Runs hp_log with stderr captured and returns the line it wrote. */
static char *
log_capture(hp_log_format format, const char *event, const char *kv)
{
    static char got[4096];
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    hp_log_set_format(format);
    hp_log(HP_LOG_ERROR, event, "%s", kv);
    hp_log_set_format(HP_LOG_KV);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(got, 1, sizeof(got) - 1, tmp);
    got[n] = '\0';
    fclose(tmp);
    return got;
}

static void
test_log_json_escapes_and_types_values(void **state)
{
    (void)state;
    char *line = log_capture(HP_LOG_JSON, "slow commit",
                             "ms=120 group=7 err=\"say \"hi\"!\\\n\" who=a1");
    /* The time varies; everything after it does not. */
    char *rest = strstr(line, "\",\"level\"");
    assert_non_null(rest);
    assert_true(strncmp(line, "{\"ts\":\"20", 9) == 0);
    assert_string_equal(rest, "\",\"level\":\"error\",\"msg\":\"slow commit\","
                              "\"ms\":120,\"group\":7,"
                              "\"err\":\"say \\\"hi\\\"!\\\\\\u000a\","
                              "\"who\":\"a1\"}\n");
}

static void
test_log_kv_is_unchanged_by_the_json_code(void **state)
{
    (void)state;
    char *line = log_capture(HP_LOG_KV, "started", "sync=full n=1");
    assert_non_null(
        strstr(line, " level=error msg=\"started\" sync=full n=1\n"));
    hp_log_format f;
    assert_int_equal(hp_log_parse_format("json", &f), 0);
    assert_int_equal(f, HP_LOG_JSON);
    assert_int_equal(hp_log_parse_format("xml", &f), -1);
}

static void
test_log_every_lets_one_line_through_per_interval_and_counts_the_rest(
    void **state)
{
    (void)state;
    hp_log_every e;
    uint64_t left_out = 99;
    memset(&e, 0, sizeof(e));

    assert_true(hp_log_every_due(&e, 1000, 60, &left_out));
    assert_int_equal(left_out, 0);
    assert_false(hp_log_every_due(&e, 1000, 60, &left_out));
    assert_false(hp_log_every_due(&e, 1030, 60, &left_out));
    assert_false(hp_log_every_due(&e, 1059, 60, &left_out));
    assert_true(hp_log_every_due(&e, 1060, 60, &left_out));
    assert_int_equal(left_out, 3);
    assert_true(hp_log_every_due(&e, 5000, 60, &left_out)); /* quiet gap */
    assert_int_equal(left_out, 0);
}

/* ---- histograms -----------------------------------------------------------
 */

static void
test_hist_counts_each_value_in_the_first_bucket_that_holds_it(void **state)
{
    static const uint64_t bounds[] = { 10, 20, 40 };
    hp_hist h;
    hp_hist_snap s;
    (void)state;
    hp_hist_init(&h, bounds, 3);

    hp_hist_observe(&h, 0);
    hp_hist_observe(&h, 10); /* bounds are inclusive */
    hp_hist_observe(&h, 11);
    hp_hist_observe(&h, 40);
    hp_hist_observe(&h, 41); /* above every bound */
    hp_hist_read(&h, &s);

    assert_int_equal(s.counts[0], 2);
    assert_int_equal(s.counts[1], 1);
    assert_int_equal(s.counts[2], 1);
    assert_int_equal(s.counts[3], 1);
    assert_int_equal(s.count, 5);
    assert_int_equal(s.sum, 0 + 10 + 11 + 40 + 41);
}

static void
test_hist_quantile_is_the_upper_bound_of_its_bucket(void **state)
{
    hp_hist h;
    hp_hist_snap s;
    (void)state;
    hp_hist_init(&h, hp_hist_size_bounds, hp_hist_size_n);
    hp_hist_read(&h, &s);
    assert_int_equal(hp_hist_quantile(&s, 0.99), 0); /* empty */

    for (int i = 0; i < 98; i++) {
        hp_hist_observe(&h, 1);
    }
    hp_hist_observe(&h, 5);
    hp_hist_observe(&h, 100000);
    hp_hist_read(&h, &s);

    assert_int_equal(hp_hist_quantile(&s, 0.5), 1);
    assert_int_equal(hp_hist_quantile(&s, 0.99), 6);
    /* Beyond the last bound the last bound is all it can say. */
    assert_int_equal(hp_hist_quantile(&s, 1.0), 1024);
}

static void
test_b64_encodes_both_alphabets_padded_or_not(void **state)
{
    (void)state;
    char out[HP_B64_LEN(4) + 1];
    const uint8_t in[] = { 0xfb, 0xff, 0xfe, 0x01 };

    assert_int_equal(hp_b64_encode(in, 4, out, HP_B64_PAD), 8);
    assert_string_equal(out, "+//+AQ==");
    assert_int_equal(hp_b64_encode(in, 4, out, HP_B64_URL), 6);
    assert_string_equal(out, "-__-AQ");
}

static void
test_b64_loose_decodes_every_form_protobuf_json_allows(void **state)
{
    (void)state;
    const char *forms[] = { "+//+AQ==", "+//+AQ", "-__-AQ==", "-__-AQ" };
    for (size_t i = 0; i < 4; i++) {
        uint8_t out[8];

        long n = hp_b64_decode(forms[i], strlen(forms[i]), out, sizeof(out),
                               HP_B64_LOOSE);

        assert_int_equal(n, 4);
        assert_memory_equal(out, "\xfb\xff\xfe\x01", 4);
    }
}

static void
test_b64_refuses_what_is_not_base64(void **state)
{
    (void)state;
    const char *bad[] = { "+-AA", "A===", "AB=C", "A", "AAAAA", "AA AA" };
    uint8_t out[8];
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(hp_b64_decode(bad[i], strlen(bad[i]), out, sizeof(out),
                                       HP_B64_LOOSE),
                         -1);
    }
    /* Strict: no padding, no standard alphabet, no stray bits. */
    assert_int_equal(hp_b64_decode("AQ==", 4, out, sizeof(out), 0), -1);
    assert_int_equal(hp_b64_decode("+/8", 3, out, sizeof(out), 0), -1);
    assert_int_equal(hp_b64_decode("AR", 2, out, sizeof(out), 0), -1);
    assert_int_equal(hp_b64_decode("AQ", 2, out, sizeof(out), 0), 1);
    assert_int_equal(hp_b64_decode("AAAA", 4, out, 2, 0), -1); /* no room */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_json_escapes_and_types_values),
        cmocka_unit_test(test_log_kv_is_unchanged_by_the_json_code),
        cmocka_unit_test(
            test_log_every_lets_one_line_through_per_interval_and_counts_the_rest),
        cmocka_unit_test(test_id_format_is_26_crockford_characters),
        cmocka_unit_test(test_id_format_then_parse_round_trips),
        cmocka_unit_test(test_id_format_and_parse_match_reference_texts),
        cmocka_unit_test(test_id_format_of_all_ones_is_7_then_z),
        cmocka_unit_test(test_id_format_puts_time_in_first_ten_characters),
        cmocka_unit_test(test_id_parse_accepts_lowercase_and_crockford_aliases),
        cmocka_unit_test(test_id_parse_accepts_7z_maximum),
        cmocka_unit_test(test_id_parse_rejects_first_character_above_7),
        cmocka_unit_test(test_id_parse_rejects_25_characters),
        cmocka_unit_test(test_id_parse_rejects_27_characters),
        cmocka_unit_test(test_id_parse_rejects_letter_u),
        cmocka_unit_test(test_id_parse_rejects_punctuation),
        cmocka_unit_test(test_id_parse_rejects_nul_inside),
        cmocka_unit_test(test_idgen_ids_increase_strictly_within_a_millisecond),
        cmocka_unit_test(test_idgen_increment_carries_across_random_bytes),
        cmocka_unit_test(test_idgen_clock_going_backwards_never_decreases_ids),
        cmocka_unit_test(test_idgen_new_millisecond_uses_its_time),
        cmocka_unit_test(test_idgen_reports_a_failing_random_source),
        cmocka_unit_test(test_id_cmp_orders_by_time_first),
        cmocka_unit_test(test_id_is_zero_only_for_all_zero_bytes),
        cmocka_unit_test(test_name_of_64_bytes_is_valid),
        cmocka_unit_test(test_name_of_65_bytes_is_invalid),
        cmocka_unit_test(test_name_of_one_byte_is_valid),
        cmocka_unit_test(test_empty_name_is_invalid),
        cmocka_unit_test(test_name_accepts_every_allowed_character),
        cmocka_unit_test(test_name_rejects_characters_outside_the_set),
        cmocka_unit_test(test_name_with_nul_inside_is_invalid),
        cmocka_unit_test(test_name_reads_only_len_bytes),
        cmocka_unit_test(test_utf8_accepts_ascii_and_empty),
        cmocka_unit_test(test_utf8_accepts_two_three_and_four_byte_forms),
        cmocka_unit_test(test_utf8_accepts_neighbours_of_the_surrogate_range),
        cmocka_unit_test(test_utf8_rejects_overlong_forms),
        cmocka_unit_test(test_utf8_rejects_surrogates),
        cmocka_unit_test(test_utf8_rejects_code_points_above_10ffff),
        cmocka_unit_test(test_utf8_rejects_nul),
        cmocka_unit_test(test_utf8_rejects_truncated_sequences),
        cmocka_unit_test(
            test_utf8_rejects_lone_continuation_and_bad_continuation),
        cmocka_unit_test(test_arena_allocations_are_aligned_and_disjoint),
        cmocka_unit_test(test_arena_big_allocation_keeps_earlier_ones_valid),
        cmocka_unit_test(test_arena_dup_copies_bytes),
        cmocka_unit_test(test_arena_zero_length_gives_unique_pointers),
        cmocka_unit_test(test_arena_counts_used_bytes_and_release_resets),
        cmocka_unit_test(test_code_names_follow_grpc),
        cmocka_unit_test(test_unknown_code_has_a_fixed_name),
        cmocka_unit_test(test_status_set_returns_code_and_cuts_long_messages),
        cmocka_unit_test(test_status_clear_resets_to_ok),
        cmocka_unit_test(
            test_hist_counts_each_value_in_the_first_bucket_that_holds_it),
        cmocka_unit_test(test_hist_quantile_is_the_upper_bound_of_its_bucket),
        cmocka_unit_test(test_b64_encodes_both_alphabets_padded_or_not),
        cmocka_unit_test(
            test_b64_loose_decodes_every_form_protobuf_json_allows),
        cmocka_unit_test(test_b64_refuses_what_is_not_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
