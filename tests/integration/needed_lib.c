/* A shared library that the job library needs_lib_job.so depends on (DT_NEEDED) and that only
 * the submitting side finds (LD_LIBRARY_PATH): on the TaskManagers the shipped library cannot
 * be loaded, the way a library built against something missing on the cluster's nodes fails.
 * tests/integration/cluster_library.sh checks that the deployment fails with dlopen's reason. */
int sl_test_needed_answer(void);
int sl_test_needed_answer(void) { return 42; }
