#include "check_common.h"
Suite *pool_suite(void);
Suite *pool_suite(void) { return suite_create("pool"); }
CHECK_MAIN(pool_suite)
