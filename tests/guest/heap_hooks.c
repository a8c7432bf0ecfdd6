// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: strategy hooks (board-configs/hooks/).
 *
 * - tracing: after_alloc runs once per allocation, may_mmap at each mmap,
 *   may_vmap at each kernel vmap, before_release once per release, always
 *   after the buffer's after_alloc; the heap's hook counters in debugfs
 *   match exactly.
 * - quarantine (tracing): a failing before_release keeps the pages out of
 *   CMA, counted in `quarantined` and `release_hook_failures`; the release is
 *   retried at the next allocation and release, and in the background on an
 *   idle heap; once it succeeds the pages are back in CMA (no page leaked) and
 *   `quarantine_released` counts it.
 * - counters: a hook file's counters are its own statics, shared by every
 *   heap whose region uses the file: published once under
 *   heapgen-hooks/<NAME>/, and each such heap's hooks/<NAME> is a link there.
 * - protected: mmap is refused with EPERM (counted in `map_refused`), the
 *   buffer has no kernel mapping (vmap fails with EINVAL, no vmap operation,
 *   so no kernel warning), a device can still import the buffer, and the
 *   buffer is scrubbed and unprotected on release.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP, HEAPGEN_CMA and
 * HEAPGEN_HOOKS (the stem of the region's hook file; the tests skip when it
 * is not theirs).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

static int write_stat(const char *heap, const char *name, long long v)
{
	char path[256];
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "/sys/kernel/debug/heapgen/%s/%s", heap, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (fprintf(f, "%lld\n", v) < 0)
		ret = -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

#define STAT(name) hg_heap_stat(cfg.heap, name)
#define TRACE(name) hg_heap_stat(cfg.heap, "hooks/tracing/" name)
#define PROT(name) hg_heap_stat(cfg.heap, "hooks/protected/" name)

static int has_hooks(const char *name)
{
	const char *hooks = hg_env_str("HEAPGEN_HOOKS");

	return hooks && !strcmp(hooks, name);
}

static int vmap(int imp_fd, int buf_fd)
{
	struct heapgen_vmap v = { .fd = buf_fd };

	return ioctl(imp_fd, HEAPGEN_VMAP, &v) < 0 ? -errno : 0;
}

TEST(tracing_order_and_counts)
{
	struct heapgen_cfg cfg;
	long long after, before, mm, vm, live, order;
	uint64_t len;
	void *p;
	int heap_fd, imp_fd, fd;

	hg_cfg_load(&cfg);
	if (!cfg.heap || !has_hooks("tracing"))
		SKIP(return, "heap %s has no tracing hooks", cfg.heap ? cfg.heap : "?");
	len = hg_round_up(MiB(1), cfg.granule);
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);
	imp_fd = hg_importer_open();
	HG_NEED_IMPORTER(imp_fd);

	after = TRACE("after_alloc");
	before = TRACE("before_release");
	mm = TRACE("may_mmap");
	vm = TRACE("may_vmap");
	live = TRACE("live");
	order = TRACE("order_errors");
	ASSERT_LE(0, after) TH_LOG("no tracing counters for %s", cfg.heap);

	fd = hg_alloc(heap_fd, len);
	ASSERT_LE(0, fd);
	EXPECT_EQ(after + 1, TRACE("after_alloc"));
	EXPECT_EQ(before, TRACE("before_release"));
	EXPECT_EQ(live + 1, TRACE("live"));

	p = hg_map(fd, len, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(mm + 1, TRACE("may_mmap"));
	EXPECT_EQ(0, vmap(imp_fd, fd));
	EXPECT_EQ(vm + 1, TRACE("may_vmap"));

	/* The mapping holds the buffer: no release before munmap. */
	close(fd);
	EXPECT_EQ(before, TRACE("before_release"));
	munmap(p, len);
	EXPECT_EQ(before + 1, TRACE("before_release"));
	EXPECT_EQ(live, TRACE("live"));
	EXPECT_EQ(after + 1, TRACE("after_alloc"));
	EXPECT_EQ(order, TRACE("order_errors"));

	close(imp_fd);
	close(heap_fd);
}

TEST(hook_counters_are_the_hook_files)
{
	struct heapgen_cfg cfg;
	const char *hooks = hg_env_str("HEAPGEN_HOOKS");
	char link[256], shared[256], resolved[PATH_MAX], want[PATH_MAX];
	struct stat st;

	hg_cfg_load(&cfg);
	/* The test boards' hook files are named after their NAME. */
	if (!cfg.heap || !hooks || !*hooks || !strcmp(hooks, "-"))
		SKIP(return, "heap %s has no hooks", cfg.heap ? cfg.heap : "?");
	snprintf(link, sizeof(link), "/sys/kernel/debug/heapgen/%s/hooks/%s",
		 cfg.heap, hooks);
	snprintf(shared, sizeof(shared), "/sys/kernel/debug/heapgen-hooks/%s",
		 hooks);
	ASSERT_EQ(0, lstat(link, &st)) TH_LOG("%s: %s", link, strerror(errno));
	EXPECT_TRUE(S_ISLNK(st.st_mode))
		TH_LOG("%s is not a link to the hook file's counters", link);
	ASSERT_EQ(0, stat(shared, &st)) TH_LOG("%s: %s", shared, strerror(errno));
	ASSERT_TRUE(S_ISDIR(st.st_mode));
	ASSERT_NE(NULL, realpath(link, resolved));
	ASSERT_NE(NULL, realpath(shared, want));
	EXPECT_STREQ(want, resolved);
}

/*
 * Waits (60 s at most: background retries back off to one per 10 s) until the
 * heap's quarantine is empty; returns what `quarantined` last read.
 */
static long long wait_quarantine_empty(const char *heap)
{
	long long q;
	int waited;

	for (waited = 0; waited < 600; waited++) {
		q = hg_heap_stat(heap, "quarantined");
		if (q == 0)
			break;
		usleep(100 * 1000);
	}
	return q;
}

TEST(quarantine_until_release_succeeds)
{
	struct heapgen_cfg cfg;
	long long base, failures, quarantined, released, releases, n;
	uint64_t len;
	int heap_fd, fd;

	hg_cfg_load(&cfg);
	if (!cfg.heap || !cfg.cma || !has_hooks("tracing"))
		SKIP(return, "heap %s has no tracing hooks", cfg.heap ? cfg.heap : "?");
	len = hg_pool_avoid(&cfg, hg_round_up(MiB(1), cfg.granule));
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);

	base = hg_cma_in_use(cfg.cma);
	failures = STAT("release_hook_failures");
	quarantined = STAT("quarantined");
	released = STAT("quarantine_released");
	releases = STAT("releases");
	ASSERT_LE(0, failures);
	ASSERT_EQ(0, quarantined);

	/*
	 * Every release hook call fails until the test says otherwise, so the
	 * counts below do not depend on when the background retries run.
	 */
	ASSERT_EQ(0, write_stat(cfg.heap, "hooks/tracing/fail_releases", 1000000));
	fd = hg_alloc(heap_fd, len);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(releases + 1, STAT("releases"));
	EXPECT_LE(failures + 1, STAT("release_hook_failures"));
	EXPECT_EQ(1, STAT("quarantined"));
	EXPECT_LE(base + (long long)(len / PAGE), hg_cma_in_use(cfg.cma))
		TH_LOG("quarantined pages went back to CMA");

	/* Retried at the next allocation: fails once more, still quarantined. */
	n = STAT("release_hook_failures");
	fd = hg_alloc(heap_fd, len);
	ASSERT_LE(0, fd);
	EXPECT_LE(n + 1, STAT("release_hook_failures"));
	EXPECT_EQ(1, STAT("quarantined"));
	EXPECT_EQ(released, STAT("quarantine_released"));

	/* The hook recovers: the retry at this release empties the quarantine. */
	ASSERT_EQ(0, write_stat(cfg.heap, "hooks/tracing/fail_releases", 0));
	close(fd);
	EXPECT_EQ(0, STAT("quarantined"));
	EXPECT_EQ(released + 1, STAT("quarantine_released"));

	/* Idle heap: the background retry alone gives the pages back. */
	ASSERT_EQ(0, write_stat(cfg.heap, "hooks/tracing/fail_releases", 1000000));
	fd = hg_alloc(heap_fd, len);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(1, STAT("quarantined"));
	ASSERT_EQ(0, write_stat(cfg.heap, "hooks/tracing/fail_releases", 0));
	EXPECT_EQ(0, wait_quarantine_empty(cfg.heap))
		TH_LOG("no background retry emptied the quarantine");
	EXPECT_EQ(released + 2, STAT("quarantine_released"));
	EXPECT_EQ(releases + 3, STAT("releases"));
	if (base >= 0) {
		EXPECT_EQ(base, hg_cma_in_use(cfg.cma)) TH_LOG("pages leaked");
	}
	close(heap_fd);
}

TEST(protected_refuses_cpu_mappings)
{
	struct heapgen_cfg cfg;
	struct heapgen_import imp;
	long long refused, scrubbed, protected, base;
	uint64_t len;
	void *p;
	int heap_fd, imp_fd, fd;

	hg_cfg_load(&cfg);
	if (!cfg.heap || !has_hooks("protected"))
		SKIP(return, "heap %s is not protected", cfg.heap ? cfg.heap : "?");
	len = hg_round_up(MiB(1), cfg.granule);
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);
	imp_fd = hg_importer_open();
	HG_NEED_IMPORTER(imp_fd);

	base = hg_cma_in_use(cfg.cma);
	refused = STAT("map_refused");
	scrubbed = PROT("scrubbed");
	protected = PROT("protected");
	ASSERT_LE(0, scrubbed);

	fd = hg_alloc(heap_fd, len);
	ASSERT_LE(0, fd);
	EXPECT_EQ(protected + 1, PROT("protected"));

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno);
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(-EINVAL, vmap(imp_fd, fd));
	EXPECT_EQ(refused + 2, STAT("map_refused"));

	/* A device may still use it. */
	ASSERT_EQ(0, hg_import(imp_fd, fd, HEAPGEN_DIR_BIDIRECTIONAL, &imp));
	EXPECT_EQ(1, imp.nents);
	EXPECT_EQ(len, imp.size);

	close(fd);
	EXPECT_EQ(scrubbed + 1, PROT("scrubbed"));
	EXPECT_EQ(protected, PROT("protected"));
	EXPECT_EQ(0, STAT("quarantined"));
	if (base >= 0) {
		EXPECT_EQ(base, hg_cma_in_use(cfg.cma));
	}
	close(imp_fd);
	close(heap_fd);
}

TEST_HARNESS_MAIN
