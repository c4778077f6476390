#include "check_common.h"
Suite *hist_suite(void);
Suite *hist_suite(void) { return suite_create("hist"); }
CHECK_MAIN(hist_suite)
