/* Keeps the helper library non-empty before any helper exists. */
int sl__test_helpers_empty;
