#include "check_common.h"
Suite *job_suite(void);
Suite *job_suite(void) { return suite_create("job"); }
CHECK_MAIN(job_suite)
