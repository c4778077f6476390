#include "check_common.h"
Suite *work_suite(void);
Suite *work_suite(void) { return suite_create("work"); }
CHECK_MAIN(work_suite)
