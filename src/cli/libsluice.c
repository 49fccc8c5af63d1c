/* libsluice.so: the engine as a shared library for user programs and job libraries.
 * Everything is pulled in from the module archives by the link; this unit only anchors it. */
int sl__libsluice_anchor;
