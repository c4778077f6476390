#include "check_common.h"
Suite *config_suite(void);
Suite *config_suite(void) { return suite_create("config"); }
CHECK_MAIN(config_suite)
