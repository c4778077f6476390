#include "check_common.h"
Suite *peers_suite(void);
Suite *peers_suite(void) { return suite_create("peers"); }
CHECK_MAIN(peers_suite)
