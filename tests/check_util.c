#include "check_common.h"
Suite *util_suite(void);
Suite *util_suite(void) { return suite_create("util"); }
CHECK_MAIN(util_suite)
