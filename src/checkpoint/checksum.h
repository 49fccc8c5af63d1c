/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78) in portable software.
 * Every checkpoint file and the _metadata body carry this checksum so that restore can
 * detect torn writes and bit rot before it feeds bytes to a state backend. */
#ifndef SL_CHECKPOINT_CHECKSUM_H
#define SL_CHECKPOINT_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/**
 * Extends `crc` (0 for a fresh checksum, or a previous result) over `n` bytes at `p` and
 * returns the new value: sl_crc32c(sl_crc32c(0, a, na), b, nb) == sl_crc32c(0, ab, na + nb).
 * Pre/post inversion is done inside, so callers chain plain results. Check value:
 * sl_crc32c(0, "123456789", 9) == 0xE3069283. Slicing-by-8, tables built once (thread-safe).
 */
uint32_t sl_crc32c(uint32_t crc, const void *p, size_t n);

#endif /* SL_CHECKPOINT_CHECKSUM_H */
