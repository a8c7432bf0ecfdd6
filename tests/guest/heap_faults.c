// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: error paths under fault injection (debug kernel
 * only). With failslab failing a share of this task's slab allocations
 * (bookkeeping, scatterlists, dma-buf files), allocating, mapping, importing
 * and releasing
 * buffers either works or fails cleanly with an error, and once injection
 * stops, the heap's CMA area and counters are back where they started: no
 * error path leaks pages or buffers. kmemleak (at the end of the run, see
 * init.sh) then catches leaked bookkeeping objects.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP (required), HEAPGEN_CMA,
 * HEAPGEN_GRANULE. Skips when the kernel has no fault injection.
 *
 * fail_page_alloc is left off: a failed page allocation prints an allocation
 * failure report with a call trace, which the harness rightly counts as a
 * kernel report; CMA's own range allocation does not go through it anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

static int write_str(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);
	int ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok ? 0 : -EIO;
}

static int inject(int on)
{
	int tries;

	/*
	 * Stop failing this task first: with injection on, opening the files
	 * below can itself fail. Each try fails with probability 1/10.
	 */
	if (!on) {
		for (tries = 0; tries < 100; tries++)
			if (!write_str("/proc/self/make-it-fail", "0"))
				break;
		if (tries == 100)
			return -1;
	}
	static const char *const attrs[] = { "failslab" };
	char path[128];
	unsigned int i;

	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
#define SET(name, val)							\
		do {							\
			snprintf(path, sizeof(path),			\
				 "/sys/kernel/debug/%s/" name, attrs[i]);	\
			if (write_str(path, val))			\
				return -1;				\
		} while (0)
		SET("task-filter", "Y");
		SET("ignore-gfp-wait", "N");
		SET("probability", on ? "10" : "0");
		SET("interval", "1");
		SET("times", on ? "-1" : "0");
		SET("verbose", "0");
#undef SET
	}
	return on ? write_str("/proc/self/make-it-fail", "1") : 0;
}

TEST(errors_are_clean)
{
	struct heapgen_cfg cfg;
	long long cma_before = -1, bufs_before, allocs_before, releases_before;
	int heap_fd, imp, i, ok = 0, failed = 0;

	hg_cfg_load(&cfg);
	if (!cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	if (access("/sys/kernel/debug/failslab", F_OK))
		SKIP(return, "no fault injection in this kernel");
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);
	imp = hg_importer_open();
	HG_NEED_IMPORTER(imp);
	if (cfg.cma)
		cma_before = hg_cma_in_use(cfg.cma);
	bufs_before = hg_heap_stat(cfg.heap, "buffers_in_use");
	ASSERT_LE(0, bufs_before);
	allocs_before = hg_heap_stat(cfg.heap, "allocations");
	releases_before = hg_heap_stat(cfg.heap, "releases");

	srand(1234);
	ASSERT_EQ(0, inject(1));
	for (i = 0; i < 300; i++) {
		uint64_t len = cfg.granule * (1 + rand() % 64);
		struct heapgen_import imp_out;
		int fd = hg_alloc(heap_fd, len);
		void *p;

		if (fd < 0) {
			/* Quiet, well-formed failures only. */
			if (fd != -ENOMEM && fd != -EINTR)
				break;
			failed++;
			continue;
		}
		ok++;
		p = hg_map(fd, len, 0);
		if (p != MAP_FAILED) {
			int tries = 0;

			memset(p, 0x11, len);
			/*
			 * munmap may need memory for the VMA tree and fail
			 * under injection, leaving the mapping (and so the
			 * buffer) alive: retry until it goes.
			 */
			while (munmap(p, len) && errno == ENOMEM && ++tries < 1000)
				;
			ASSERT_LT(tries, 1000);
		}
		hg_import(imp, fd, HEAPGEN_DIR_BIDIRECTIONAL, &imp_out);
		close(fd);
	}
	ASSERT_EQ(0, inject(0));
	EXPECT_EQ(300, ok + failed) TH_LOG("an allocation failed with an unexpected error");
	EXPECT_LT(0, failed) TH_LOG("fault injection never hit the allocation path");
	EXPECT_LT(0, ok);
	TH_LOG("%d allocations succeeded, %d failed under injection", ok, failed);

	EXPECT_EQ(bufs_before, hg_heap_stat(cfg.heap, "buffers_in_use"));
	/*
	 * allocations counts buffers handed out, releases dma-bufs released:
	 * a buffer whose export failed under injection is neither.
	 */
	EXPECT_EQ(allocs_before + ok, hg_heap_stat(cfg.heap, "allocations"))
		TH_LOG("%lld failed allocations with another error (fail_other)",
		       hg_heap_stat(cfg.heap, "fail_other"));
	EXPECT_EQ(releases_before + ok, hg_heap_stat(cfg.heap, "releases"));
	if (cfg.cma)
		EXPECT_EQ(cma_before, hg_cma_in_use(cfg.cma));
	close(imp);
	close(heap_fd);
}

TEST_HARNESS_MAIN
