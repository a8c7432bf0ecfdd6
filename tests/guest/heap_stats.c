// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: the per-heap counters under
 * /sys/kernel/debug/heapgen/<heap>/ match what this test did, exactly:
 * allocations, releases, buffers and bytes in use, peak bytes, failures by
 * cause, and guard overruns (a device write just past a buffer, simulated by
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

TEST_HARNESS_MAIN
