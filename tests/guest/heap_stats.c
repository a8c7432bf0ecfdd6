// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: the per-heap counters under
 * /sys/kernel/debug/heapgen/<heap>/ match what this test did, exactly:
 * allocations, releases, buffers and bytes in use, peak bytes, failures by
 * cause (and, for want of CMA memory, why: a full area or a busy one), and
 * guard overruns (a device write just past a buffer, simulated by
 * the test importer, counts once when the buffer is released; an untouched
 * guard never counts).
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP (required), HEAPGEN_GRANULE,
 * HEAPGEN_GUARD_BEFORE, HEAPGEN_GUARD_AFTER, HEAPGEN_MAX_ALLOC.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

#define STAT(name) hg_heap_stat(cfg.heap, name)

TEST(counters_match)
{
	struct heapgen_cfg cfg;
	long long allocs, releases, bufs, bytes, too_large;
	uint64_t len, padded;
	int heap_fd, fd[3], i;

	hg_cfg_load(&cfg);
	if (!cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	if (hg_heap_stat(cfg.heap, "allocations") < 0)
		SKIP(return, "no debugfs counters for heap %s", cfg.heap);
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);
	len = cfg.granule + 1;	/* padded to two granules */
	padded = hg_round_up(len, cfg.granule);

	allocs = STAT("allocations");
	releases = STAT("releases");
	bufs = STAT("buffers_in_use");
	bytes = STAT("bytes_in_use");
	too_large = STAT("fail_too_large");

	for (i = 0; i < 3; i++) {
		fd[i] = hg_alloc(heap_fd, len);
		ASSERT_LE(0, fd[i]);
	}
	EXPECT_EQ(allocs + 3, STAT("allocations"));
	EXPECT_EQ(bufs + 3, STAT("buffers_in_use"));
	EXPECT_EQ(bytes + 3 * (long long)padded, STAT("bytes_in_use"));
	EXPECT_LE(STAT("bytes_in_use"), STAT("peak_bytes"));

	if (cfg.max_alloc) {
		EXPECT_EQ(-E2BIG, hg_alloc(heap_fd, cfg.max_alloc + cfg.granule));
		EXPECT_EQ(too_large + 1, STAT("fail_too_large"));
		EXPECT_EQ(allocs + 3, STAT("allocations"));
	}

	for (i = 0; i < 3; i++)
		close(fd[i]);
	EXPECT_EQ(releases + 3, STAT("releases"));
	EXPECT_EQ(bufs, STAT("buffers_in_use"));
	EXPECT_EQ(bytes, STAT("bytes_in_use"));
	close(heap_fd);
}

static int poke(int imp, int buf_fd, uint32_t flags)
{
	struct heapgen_poke p = { .fd = buf_fd, .flags = flags, .value = 0x5a };

	return ioctl(imp, HEAPGEN_POKE_PAST, &p) < 0 ? -errno : 0;
}

TEST(guard_overruns_counted)
{
	struct heapgen_cfg cfg;
	long long before;
	int heap_fd, imp, fd;

	hg_cfg_load(&cfg);
	if (!cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	if (!cfg.guard_after && !cfg.guard_before)
		SKIP(return, "heap %s has no guards", cfg.heap);
	if (hg_heap_stat(cfg.heap, "guard_overruns") < 0)
		SKIP(return, "no debugfs counters for heap %s", cfg.heap);
	imp = hg_importer_open();
	HG_NEED_IMPORTER(imp);
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);

	/* Untouched guards never count. */
	before = STAT("guard_overruns");
	fd = hg_alloc(heap_fd, cfg.granule);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hg_fill(fd, cfg.granule, 0xff));
	close(fd);
	EXPECT_EQ(before, STAT("guard_overruns"));

	/* One byte past the end: counted once, at release. */
	if (cfg.guard_after) {
		fd = hg_alloc(heap_fd, cfg.granule);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, poke(imp, fd, 0));
		EXPECT_EQ(before, STAT("guard_overruns"));
		close(fd);
		EXPECT_EQ(++before, STAT("guard_overruns"));
	}

	/* One byte before the start: counted too. */
	if (cfg.guard_before) {
		fd = hg_alloc(heap_fd, cfg.granule);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, poke(imp, fd, HEAPGEN_POKE_BEFORE));
		close(fd);
		EXPECT_EQ(++before, STAT("guard_overruns"));
	}

	close(heap_fd);
	close(imp);
}

/*
 * A failure for want of CMA memory says why: the area fragmented by live
 * buffers (free pages, but no range of the request's size) counts in
 * fail_busy, a full area in fail_no_space; both in fail_no_memory. The area
 * is filled with units, every other one freed, and a two-unit request must
 * fail busy; then the holes are filled with granules until a request fails.
 */
TEST(failures_say_why)
{
	static int fds[4096];
	struct heapgen_cfg cfg;
	struct rlimit nofile;
	long long total, no_memory, no_space, busy, last_space;
	uint64_t unit;
	int heap_fd, n, m, i, fd;

	hg_cfg_load(&cfg);
	if (!cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	if (hg_heap_stat(cfg.heap, "fail_busy") < 0)
		SKIP(return, "no failure reasons in debugfs for heap %s", cfg.heap);
	if (hg_env_str("HEAPGEN_FALLBACK"))
		SKIP(return, "heap %s falls back on other areas", cfg.heap);
	/*
	 * Pools and headrooms give memory back when the area is exhausted: the
	 * holes this test makes would not be the only free ranges.
	 */
	if (cfg.pool_depth || cfg.headroom)
		SKIP(return, "heap %s has a pool or a headroom", cfg.heap);
	total = hg_cma_counter(cfg.cma, "total_pages");
	if (total <= 0)
		SKIP(return, "the size of area %s is unknown", cfg.cma ? cfg.cma : "-");
	if (!getrlimit(RLIMIT_NOFILE, &nofile) && nofile.rlim_cur < 4096 + 16) {
		nofile.rlim_cur = nofile.rlim_max < 4096 + 16 ? nofile.rlim_max : 4096 + 16;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	/*
	 * About a thousand units fill the area, packed: a unit is a power of two
	 * at least the alignment (so that a size-order alignment is the unit's).
	 */
	for (unit = PAGE; unit < (uint64_t)total * PAGE / 1000 || unit < 4 * cfg.granule ||
			  unit < cfg.align;)
		unit *= 2;
	if (cfg.max_alloc && 2 * unit > cfg.max_alloc)
		SKIP(return, "max-alloc %llu is below two units of %llu bytes",
		     (unsigned long long)cfg.max_alloc, (unsigned long long)unit);
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);
	for (n = 0; n < 4000; n++) {
		fds[n] = hg_alloc(heap_fd, unit);
		if (fds[n] < 0)
			break;
	}
	ASSERT_EQ(-ENOMEM, fds[n]) TH_LOG("%d units of %llu bytes", n, (unsigned long long)unit);
	ASSERT_LT(2, n);
	/* Every other unit freed; the last one stays, between the holes and the tail. */
	for (i = 0; i < n - 1; i += 2) {
		close(fds[i]);
		fds[i] = -1;
	}
	no_memory = STAT("fail_no_memory");
	no_space = STAT("fail_no_space");
	busy = STAT("fail_busy");
	fd = hg_alloc(heap_fd, 2 * unit);
	EXPECT_EQ(-ENOMEM, fd) TH_LOG("two units fit in a fragmented area");
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(no_memory + 1, STAT("fail_no_memory"));
	EXPECT_EQ(busy + 1, STAT("fail_busy")) TH_LOG("a fragmented area counted as full");
	EXPECT_EQ(no_space, STAT("fail_no_space"));

	/*
	 * The holes filled with units again, then what is left with granules,
	 * each until a request fails.
	 */
	for (m = n; m < 4096; m++) {
		fds[m] = hg_alloc(heap_fd, unit);
		if (fds[m] < 0)
			break;
	}
	last_space = STAT("fail_no_space");
	for (; m < 4096; m++) {
		fds[m] = hg_alloc(heap_fd, cfg.granule);
		if (fds[m] < 0)
			break;
	}
	EXPECT_EQ(-ENOMEM, m < 4096 ? fds[m] : 0);
	/* Three failures: two units, a unit, a granule. */
	EXPECT_EQ(no_memory + 3, STAT("fail_no_memory"));
	EXPECT_EQ(3, STAT("fail_no_space") - no_space + STAT("fail_busy") - busy)
		TH_LOG("fail_no_memory is not the sum of fail_no_space and fail_busy");
	/* With no padding at all, a full area is full to the page. */
	if (cfg.granule == PAGE && cfg.align == PAGE && !cfg.guard_before &&
	    !cfg.guard_after)
		EXPECT_EQ(last_space + 1, STAT("fail_no_space"))
			TH_LOG("the area full to the page counted as busy");
	for (i = 0; i < m && i < 4096; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	close(heap_fd);
}

TEST_HARNESS_MAIN
