#include "check_common.h"
Suite *daemon_suite(void);
Suite *daemon_suite(void) { return suite_create("daemon"); }
CHECK_MAIN(daemon_suite)
