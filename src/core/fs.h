/* Small filesystem helpers shared by the modules that write local files. */
#ifndef SL_CORE_FS_H
#define SL_CORE_FS_H

/* mkdir -p: creates `dir` and its missing parents. Returns 0, or -1 with errno set. */
int sl_make_dirs(const char *dir);

#endif
