#include "check_common.h"
Suite *log_suite(void);
Suite *log_suite(void) { return suite_create("log"); }
CHECK_MAIN(log_suite)
