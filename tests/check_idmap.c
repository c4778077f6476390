/* check_idmap.c - the id hash map, against a plain array as the model. */
#include <stdint.h>
#include <stdlib.h>

#include "check_common.h"
#include "idmap.h"

START_TEST(test_get_returns_what_put_stored)
{
	struct idmap *m = idmap_new();
	int a, b;

	idmap_put(m, 1, &a);
	idmap_put(m, 2, &b);
	ck_assert_ptr_eq(idmap_get(m, 1), &a);
	ck_assert_ptr_eq(idmap_get(m, 2), &b);
	ck_assert_ptr_null(idmap_get(m, 3));
	idmap_put(m, 1, &b);
	ck_assert_ptr_eq(idmap_get(m, 1), &b);
	ck_assert_uint_eq(idmap_count(m), 2);
	idmap_free(m);
}
END_TEST

/* Random puts and deletes agree with a direct-indexed model. */
START_TEST(test_random_puts_and_deletes_match_a_model)
{
	enum { N = 5000, OPS = 200000 };
	static void *model[N];
	struct idmap *m = idmap_new();
	size_t count = 0;
	unsigned seed = 42;
	int i;

	for (i = 0; i < OPS; i++) {
		uint64_t id = (uint64_t)(rand_r(&seed) % (N - 1)) + 1;
		void *p = (void *)(uintptr_t)(i + 1);

		if (rand_r(&seed) % 3 == 0) {
			ck_assert_ptr_eq(idmap_del(m, id), model[id]);
			if (model[id] != NULL)
				count--;
			model[id] = NULL;
		} else {
			if (model[id] == NULL)
				count++;
			idmap_put(m, id, p);
			model[id] = p;
		}
	}
	ck_assert_uint_eq(idmap_count(m), count);
	for (i = 1; i < N; i++)
		ck_assert_ptr_eq(idmap_get(m, (uint64_t)i), model[i]);
	idmap_free(m);
}
END_TEST

Suite *idmap_suite(void);

Suite *
idmap_suite(void)
{
	Suite *s = suite_create("idmap");
	TCase *tc = tcase_create("map");

	tcase_add_test(tc, test_get_returns_what_put_stored);
	tcase_add_test(tc, test_random_puts_and_deletes_match_a_model);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(idmap_suite)
