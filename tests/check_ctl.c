#include "check_common.h"
Suite *ctl_suite(void);
Suite *ctl_suite(void) { return suite_create("ctl"); }
CHECK_MAIN(ctl_suite)
