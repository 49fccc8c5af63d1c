/* MurmurHash3 x86_32, after Austin Appleby's public-domain reference. */
#include "core/murmur.h"

#include <string.h>

static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

uint32_t sl_murmur3_32(const void *data, size_t len, uint32_t seed) {
    const uint8_t *p = data;
    size_t nblocks = len / 4;
    uint32_t h = seed;
    const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
    for (size_t i = 0; i < nblocks; i++) {
        uint32_t k;
        memcpy(&k, p + i * 4, 4);
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        h = rotl32(h, 13);
        h = h * 5 + 0xe6546b64u;
    }
    const uint8_t *tail = p + nblocks * 4;
    uint32_t k = 0;
    switch (len & 3) {
    case 3:
        k ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        k ^= tail[0];
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
    }
    h ^= (uint32_t)len;
    return fmix32(h);
}

/* Flink MathUtils.murmurHash(int code): one murmur block of the int, then fmix with len 4,
 * made non-negative. */
uint32_t sl_murmur3_mix_int(uint32_t code) {
    uint32_t k = code * 0xcc9e2d51u;
    k = rotl32(k, 15);
    k *= 0x1b873593u;
    uint32_t h = rotl32(k, 13);
    h = h * 5 + 0xe6546b64u;
    h ^= 4;
    h = fmix32(h);
    return (int32_t)h >= 0 ? h : (h == 0x80000000u ? 0 : (uint32_t)(-(int32_t)h));
}
