/* Parsing one CSV line (RFC 4180 quoting) into a row of a schema.
 * Shared by the CSV file source and the socket source; errors name the field and the cause,
 * and the caller adds where the line came from (file:line). */
#ifndef SL_CONNECTORS_CSV_PARSE_H
#define SL_CONNECTORS_CSV_PARSE_H

#include <sluice/row.h>

#include <stddef.h>

/* Parses `line` (without its newline) into `b` (started here with the schema's field count).
 * An empty unquoted field is NULL for nullable fields and an error otherwise (except strings,
 * where it is the empty string). Errors: SL_EPARSE with a message in `err`. */
int sl_csv_parse_row(const char *line, size_t len, const sl_schema_t *s, sl_row_builder_t *b, char *err,
                     size_t errlen);

#endif
