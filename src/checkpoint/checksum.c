/* CRC32C, slicing-by-8 (Intel's "Slicing-by-8" paper): eight 256-entry tables let the loop
 * consume 8 bytes per iteration with independent lookups, roughly 1-2 GB/s without SSE4.2.
 * Tables are computed on first use under pthread_once rather than committed as 8 KB of hex. */
#include "checkpoint/checksum.h"

#include <pthread.h>

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
}

/* Reads 8 bytes as little-endian regardless of host order, so the tables stay valid anywhere. */
static uint64_t load_le64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

uint32_t sl_crc32c(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = p;
    pthread_once(&table_once, build_tables);
    crc = ~crc;
    while (n >= 8) {
        uint64_t v = load_le64(b) ^ crc;
        crc = table[7][v & 0xFF] ^ table[6][(v >> 8) & 0xFF] ^ table[5][(v >> 16) & 0xFF] ^
              table[4][(v >> 24) & 0xFF] ^ table[3][(v >> 32) & 0xFF] ^ table[2][(v >> 40) & 0xFF] ^
              table[1][(v >> 48) & 0xFF] ^ table[0][v >> 56];
        b += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ table[0][(crc ^ *b++) & 0xFF];
    return ~crc;
}
