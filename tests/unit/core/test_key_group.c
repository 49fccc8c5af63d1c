/* Key groups (src/core/key_group.h) and MurmurHash3 x86_32 (src/core/murmur.h): published
 * hash vectors, Flink's murmurHash(int), and that key-group ranges and operator indexes agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/key_group.h"
#include "core/murmur.h"

static uint32_t mm(const char *s, uint32_t seed) { return sl_murmur3_32(s, strlen(s), seed); }

static void test_murmur_vectors(void **state) {
    /* Reference vectors of MurmurHash3_x86_32 (SMHasher / widely published). */
    assert_int_equal(mm("", 0), 0);
    assert_int_equal(mm("", 1), 0x514E28B7u);
    assert_int_equal(mm("", 0xffffffffu), 0x81F16F39u);
    const uint8_t zeros[4] = {0, 0, 0, 0};
    assert_int_equal(sl_murmur3_32(zeros, 4, 0), 0x2362F9DEu);
    const uint8_t ones[4] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(sl_murmur3_32(ones, 4, 0), 0x76293B50u);
    const uint32_t seed = 0x9747b28cu;
    assert_int_equal(mm("a", seed), 0x7FA09EA6u);
    assert_int_equal(mm("ab", seed), 0x74875592u);
    assert_int_equal(mm("abc", seed), 0xC84A62DDu);
    assert_int_equal(mm("abcd", seed), 0xF0478627u);
    assert_int_equal(mm("aaaa", seed), 0x5A97808Au);
    assert_int_equal(mm("Hello, world!", seed), 0x24884CBAu);
    assert_int_equal(mm("The quick brown fox jumps over the lazy dog", seed), 0x2FA826CDu);
    /* Only the first `len` bytes count. */
    assert_int_equal(sl_murmur3_32("abcdef", 3, seed), 0xC84A62DDu);
    /* Unaligned input hashes the same as aligned input. */
    char buf[64];
    memcpy(buf + 1, "Hello, world!", 13);
    assert_int_equal(sl_murmur3_32(buf + 1, 13, seed), 0x24884CBAu);
}

static void test_mix_int(void **state) {
    /* Flink MathUtils.murmurHash(int): values computed from the Java formula. */
    assert_int_equal(sl_murmur3_mix_int(0), 593689054u);
    assert_int_equal(sl_murmur3_mix_int(1), 68075478u);
    assert_int_equal(sl_murmur3_mix_int(2), 1085422463u);
    assert_int_equal(sl_murmur3_mix_int(42), 1134849565u);
    assert_int_equal(sl_murmur3_mix_int(0xffffffffu), 1982413648u);
    assert_int_equal(sl_murmur3_mix_int(123456789u), 1088346449u);
    /* It is |murmur3_32 of the 4 little-endian bytes, seed 0|, and never negative as int32. */
    for (uint32_t code = 0; code < 100000; code += 7) {
        uint8_t le[4] = {(uint8_t)code, (uint8_t)(code >> 8), (uint8_t)(code >> 16), (uint8_t)(code >> 24)};
        uint32_t h = sl_murmur3_32(le, 4, 0);
        int32_t s = (int32_t)h;
        uint32_t expect = s >= 0 ? h : (h == 0x80000000u ? 0 : (uint32_t)(-s));
        uint32_t got = sl_murmur3_mix_int(code);
        assert_int_equal(got, expect);
        assert_true((int32_t)got >= 0);
    }
}

static void test_key_group_of(void **state) {
    assert_int_equal(sl_key_group_of(0, 128), 593689054u % 128);
    assert_int_equal(sl_key_group_of(42, 128), 1134849565u % 128);
    const uint32_t maxps[] = {1, 7, 128, 1000, 32768};
    for (size_t m = 0; m < sizeof maxps / sizeof maxps[0]; m++) {
        uint32_t maxp = maxps[m];
        uint32_t hits[128] = {0};
        for (uint32_t h = 0; h < 20000; h++) {
            uint32_t x = h * 2654435761u;
            uint32_t kg = sl_key_group_of(x, maxp);
            assert_true(kg < maxp);
            assert_int_equal(kg, sl_murmur3_mix_int(x) % maxp);
            if (maxp == 128)
                hits[kg]++;
        }
        if (maxp == 128)
            for (int i = 0; i < 128; i++) /* roughly uniform: 20000/128 ≈ 156 each */
                assert_true(hits[i] > 50 && hits[i] < 300);
    }
}

static void check_partition(uint32_t maxp, uint32_t p) {
    uint32_t next = 0;
    for (uint32_t i = 0; i < p; i++) {
        uint32_t first, last;
        sl_key_group_range(maxp, p, i, &first, &last);
        /* Ranges are contiguous, in order, and together cover [0, maxp). */
        assert_int_equal(first, next);
        assert_true(last + 1 >= first);
        /* Sizes differ by at most one. */
        uint32_t size = last + 1 - first;
        assert_true(size == maxp / p || size == (maxp + p - 1) / p);
        for (uint32_t kg = first; kg <= last && kg < maxp; kg++)
            assert_int_equal(sl_key_group_operator_index(kg, maxp, p), i);
        next = last + 1;
    }
    assert_int_equal(next, maxp);
    for (uint32_t kg = 0; kg < maxp; kg++) {
        uint32_t idx = sl_key_group_operator_index(kg, maxp, p);
        assert_true(idx < p);
        uint32_t first, last;
        sl_key_group_range(maxp, p, idx, &first, &last);
        assert_true(first <= kg && kg <= last);
    }
}

static void test_ranges_partition(void **state) {
    for (uint32_t p = 1; p <= 7; p++)
        check_partition(128, p);
    check_partition(128, 128);
    check_partition(32768, 3);
    check_partition(1000, 7);
    check_partition(7, 7);
    check_partition(1, 1);
}

static void test_ranges_known(void **state) {
    uint32_t f, l;
    sl_key_group_range(128, 1, 0, &f, &l);
    assert_int_equal(f, 0);
    assert_int_equal(l, 127);
    sl_key_group_range(128, 2, 0, &f, &l);
    assert_int_equal(f, 0);
    assert_int_equal(l, 63);
    sl_key_group_range(128, 2, 1, &f, &l);
    assert_int_equal(f, 64);
    assert_int_equal(l, 127);
    /* Flink: max 128, p 3 -> [0,42], [43,85], [86,127]. */
    sl_key_group_range(128, 3, 0, &f, &l);
    assert_int_equal(f, 0);
    assert_int_equal(l, 42);
    sl_key_group_range(128, 3, 1, &f, &l);
    assert_int_equal(f, 43);
    assert_int_equal(l, 85);
    sl_key_group_range(128, 3, 2, &f, &l);
    assert_int_equal(f, 86);
    assert_int_equal(l, 127);
    assert_int_equal(sl_key_group_operator_index(42, 128, 3), 0);
    assert_int_equal(sl_key_group_operator_index(43, 128, 3), 1);
    assert_int_equal(sl_key_group_operator_index(127, 128, 3), 2);
    /* Large values must not overflow 32-bit intermediate products. */
    assert_int_equal(sl_key_group_operator_index(32767, 32768, 32768), 32767);
    sl_key_group_range(32768, 32768, 32767, &f, &l);
    assert_int_equal(f, 32767);
    assert_int_equal(l, 32767);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur_vectors), cmocka_unit_test(test_mix_int),
        cmocka_unit_test(test_key_group_of),   cmocka_unit_test(test_ranges_partition),
        cmocka_unit_test(test_ranges_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
