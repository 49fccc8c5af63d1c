/* Key group assignment (see key_group.h); formulas from Flink's KeyGroupRangeAssignment. */
#include "core/key_group.h"

#include "core/murmur.h"

uint32_t sl_key_group_of(uint32_t hash, uint32_t max_parallelism) {
    return sl_murmur3_mix_int(hash) % max_parallelism;
}

uint32_t sl_key_group_operator_index(uint32_t kg, uint32_t max_parallelism, uint32_t parallelism) {
    return (uint32_t)((uint64_t)kg * parallelism / max_parallelism);
}

void sl_key_group_range(uint32_t max_parallelism, uint32_t parallelism, uint32_t index, uint32_t *first,
                        uint32_t *last) {
    /* Flink: start = ceil(index * max / p), end = ceil((index + 1) * max / p) - 1. */
    *first = (uint32_t)(((uint64_t)index * max_parallelism + parallelism - 1) / parallelism);
    *last = (uint32_t)(((uint64_t)(index + 1) * max_parallelism + parallelism - 1) / parallelism) - 1;
}
