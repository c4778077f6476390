#include "check_common.h"
Suite *liveness_suite(void);
Suite *liveness_suite(void) { return suite_create("liveness"); }
CHECK_MAIN(liveness_suite)
