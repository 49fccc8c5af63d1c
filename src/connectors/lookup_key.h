/* The text of a row field as a lookup key (Redis key, URL path segment), shared by the
 * built-in async lookups so the same row gives the same key in every client. */
#ifndef SL_CONNECTORS_LOOKUP_KEY_H
#define SL_CONNECTORS_LOOKUP_KEY_H

#include <sluice/row.h>

#include <stddef.h>
#include <stdint.h>

/* Field i of `in`, of type t, as text: strings and bytes as they are (*out points into the
 * row), integers and timestamps in decimal, doubles in the shortest form that reads back
 * exactly, bools as true/false (*out points into `num`). Returns the length. */
size_t sl_lookup_field_text(const sl_row_t *in, uint32_t i, sl_type_t t, char num[40], const char **out);

#endif
