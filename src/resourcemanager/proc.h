/* Child processes for the ResourceManager drivers: spawning a long-lived worker in its own
 * process group with its output in a log file, and running a short command (sbatch, squeue,
 * scancel) with its stdout and stderr captured and a hard timeout. Internal to the module. */
#ifndef SL_RESOURCEMANAGER_PROC_H
#define SL_RESOURCEMANAGER_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What a finished (or killed) command left behind. Owned by the caller, freed by
 * sl__rm_proc_result_free(). `out` and `errtext` are NUL-terminated, never NULL after a
 * successful run, and cut at SL__RM_PROC_MAX_OUTPUT bytes each. */
typedef struct sl__rm_proc_result_s {
    int status;      /* waitpid() status; meaningless when timed_out */
    bool timed_out;  /* the command was killed (SIGKILL, whole process group) at the deadline */
    char *out;
    char *errtext;
} sl__rm_proc_result_t;

#define SL__RM_PROC_MAX_OUTPUT (1 << 20)

/* Runs argv[0] (looked up in PATH) with the environment of this process plus `env_add`
 * ("KEY=VALUE" entries that replace same-named variables; NULL for none), stdin from
 * /dev/null, in its own process group. Blocks the calling thread until the command exits or
 * `timeout_ms` passes; then the group is killed and the child reaped either way, so no
 * zombie or orphan remains. Returns 0 once the command ran (inspect `res`), SL_ENOENT when
 * argv[0] is not found, or another negative code; `err` names the command. */
int sl__rm_proc_run(const char *const *argv, const char *const *env_add, int timeout_ms,
                    sl__rm_proc_result_t *res, char *err, size_t errlen);

void sl__rm_proc_result_free(sl__rm_proc_result_t *res);

/* Starts argv[0] as the leader of a new process group (so that the group can be signalled
 * as a whole), stdin from /dev/null and stdout+stderr appended to `log_path`. The caller
 * must reap *pid. Returns 0 or a negative code with `err` naming the command. */
int sl__rm_proc_spawn(const char *const *argv, const char *const *env_add, const char *log_path,
                      pid_t *pid, char *err, size_t errlen);

/* "exited with status 3" / "killed by signal 9 (Killed)" for a waitpid() status. */
void sl__rm_proc_describe_status(int status, char *buf, size_t len);

/* Monotonic clock in milliseconds. */
long long sl__rm_now_ms(void);

#endif
