// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: a heap allocates only from its own region. Every
 * allocation moves the CMA counters of the heap's own area
 * (/sys/kernel/mm/cma/<area>/alloc_pages_success) and of no other area, and
 * the pages come back to that area on release.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP and HEAPGEN_CMA (the test
 * skips without them), HEAPGEN_GRANULE, HEAPGEN_GUARD_*, HEAPGEN_MAX_ALLOC.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

#define MAX_AREAS 16

struct areas {
	int n;
	char name[MAX_AREAS][sizeof(((struct dirent *)0)->d_name)];
	long long alloc[MAX_AREAS];
	long long release[MAX_AREAS];
};

static void snapshot(struct areas *a)
{
	DIR *d = opendir("/sys/kernel/mm/cma");
	struct dirent *e;

	a->n = 0;
	if (!d)
		return;
	while ((e = readdir(d)) && a->n < MAX_AREAS) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(a->name[a->n], sizeof(a->name[0]), "%s", e->d_name);
		a->alloc[a->n] = hg_cma_counter(e->d_name, "alloc_pages_success");
		a->release[a->n] = hg_cma_counter(e->d_name, "release_pages_success");
		a->n++;
	}
	closedir(d);
}

static int find(const struct areas *a, const char *name)
{
	int i;

	for (i = 0; i < a->n; i++)
		if (!strcmp(a->name[i], name))
			return i;
	return -1;
}

TEST(own_area_only)
{
	struct heapgen_cfg cfg;
	struct areas before, during, after;
	uint64_t len;
	int heap_fd, fd, i, own;

	hg_cfg_load(&cfg);
	if (!cfg.heap || !cfg.cma)
		SKIP(return, "HEAPGEN_HEAP or HEAPGEN_CMA is not set");
	len = cfg.granule > MiB(1) ? cfg.granule : MiB(1);
	/* Not a pool class: a pooled size would move no counter here. */
	len = hg_pool_avoid(&cfg, len);
	if (cfg.max_alloc && len > cfg.max_alloc)
		len = cfg.max_alloc;
	if (hg_pool_class(&cfg, len))
		SKIP(return, "every size up to max-alloc is a pool class");
	/* Larger than the headroom: carved out of it, a buffer would move no counter. */
	if (cfg.headroom && len <= cfg.headroom) {
		len = hg_round_up(cfg.headroom + 1, cfg.granule);
		if (cfg.max_alloc && len > cfg.max_alloc)
			SKIP(return, "every size up to max-alloc fits in the headroom");
	}
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);

	/* Pools fill in the background: wait until none moves the counters. */
	ASSERT_LE(0, hg_pool_settle(NULL));
	snapshot(&before);
	own = find(&before, cfg.cma);
	ASSERT_LE(0, own) TH_LOG("no CMA area %s in /sys/kernel/mm/cma", cfg.cma);

	fd = hg_alloc(heap_fd, len);
	ASSERT_LE(0, fd) TH_LOG("allocating %llu bytes failed", (unsigned long long)len);
	snapshot(&during);
	close(fd);
	snapshot(&after);
	close(heap_fd);

	ASSERT_EQ(before.n, during.n);
	ASSERT_EQ(before.n, after.n);
	for (i = 0; i < before.n; i++) {
		long long taken = during.alloc[i] - before.alloc[i];
		long long given = after.release[i] - during.release[i];

		if (i == own) {
			/* Payload plus guards, whole pages. */
			EXPECT_LE((long long)(len / PAGE), taken)
				TH_LOG("area %s: %lld pages taken for %llu bytes",
				       before.name[i], taken, (unsigned long long)len);
			EXPECT_EQ(taken, given)
				TH_LOG("area %s: %lld pages taken, %lld given back",
				       before.name[i], taken, given);
		} else {
			EXPECT_EQ(0, taken)
				TH_LOG("area %s moved by %lld pages for heap %s (area %s)",
				       before.name[i], taken, cfg.heap, cfg.cma);
			EXPECT_EQ(0, after.release[i] - before.release[i])
				TH_LOG("area %s released pages for heap %s",
				       before.name[i], cfg.heap);
		}
	}
}

TEST_HARNESS_MAIN
