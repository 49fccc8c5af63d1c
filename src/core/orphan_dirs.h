/* Private scratch directories named after the process that made them ("<prefix><pid>-...")
 * outlive it when it is killed with SIGKILL. The next process of the same kind removes those
 * of processes that no longer exist. */
#ifndef SL_CORE_ORPHAN_DIRS_H
#define SL_CORE_ORPHAN_DIRS_H

/* Removes the directories "<parent>/<prefix><pid>-*" owned by this user whose process is gone
 * (kill(pid, 0) fails with ESRCH), with the regular files directly inside them; anything else
 * (a live process, another owner, a subdirectory) is left alone. Returns how many went;
 * failures are logged, never fatal. */
int sl_remove_orphan_dirs(const char *parent, const char *prefix);

#endif
