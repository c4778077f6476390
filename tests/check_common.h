/*
 * check_common.h - shared by the Check suites: each tests/check_<module>.c
 * defines <module>_suite() and ends with CHECK_MAIN(<module>_suite).
 * CK_FORK=no runs a suite in one process, for a debugger.
 */
#ifndef HB_CHECK_COMMON_H
#define HB_CHECK_COMMON_H

#include <check.h>
#include <stdlib.h>

#define CHECK_MAIN(suite_fn)						\
	Suite *suite_fn(void);						\
	int main(void)							\
	{								\
		SRunner *sr = srunner_create(suite_fn());		\
		int failed;						\
		srunner_run_all(sr, CK_NORMAL);				\
		failed = srunner_ntests_failed(sr);			\
		srunner_free(sr);					\
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;		\
	}

#endif
