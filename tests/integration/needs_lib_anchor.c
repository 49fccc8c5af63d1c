/* Linked into needs_lib_job.so beside examples/sensor_job.c: the reference that makes the job
 * library need libsl_test_needed.so (see needed_lib.c). */
int sl_test_needed_answer(void);
int sl_test_needs_lib_anchor(void);
int sl_test_needs_lib_anchor(void) { return sl_test_needed_answer(); }
