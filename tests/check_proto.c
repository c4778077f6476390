#include "check_common.h"
Suite *proto_suite(void);
Suite *proto_suite(void) { return suite_create("proto"); }
CHECK_MAIN(proto_suite)
