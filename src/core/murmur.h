/* MurmurHash3 (x86, 32-bit): the hash of key bytes for partitioning and key groups. */
#ifndef SL_CORE_MURMUR_H
#define SL_CORE_MURMUR_H

#include <stddef.h>
#include <stdint.h>

uint32_t sl_murmur3_32(const void *data, size_t len, uint32_t seed);

/* Flink's MathUtils.murmurHash(int): the finalizing mix applied to a key's hash code before
 * taking it modulo the max parallelism. */
uint32_t sl_murmur3_mix_int(uint32_t code);

#endif
