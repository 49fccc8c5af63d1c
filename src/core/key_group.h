/* Key groups, as Flink's KeyGroupRangeAssignment: a key's hash picks one of max-parallelism
 * key groups; subtask i of parallelism p owns a contiguous range of them, so rescaling moves
 * whole key groups. */
#ifndef SL_CORE_KEY_GROUP_H
#define SL_CORE_KEY_GROUP_H

#include <stdint.h>

/* Key group of a key whose bytes hash to `hash`. */
uint32_t sl_key_group_of(uint32_t hash, uint32_t max_parallelism);
/* The subtask owning key group `kg`: kg * parallelism / max_parallelism. */
uint32_t sl_key_group_operator_index(uint32_t kg, uint32_t max_parallelism, uint32_t parallelism);
/* The key groups [*first, *last] owned by subtask `index`. */
void sl_key_group_range(uint32_t max_parallelism, uint32_t parallelism, uint32_t index, uint32_t *first,
                        uint32_t *last);

#endif
