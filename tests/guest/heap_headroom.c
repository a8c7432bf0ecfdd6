// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: a region's headroom (strategy = { kind = "headroom",
 * size = ... }): part of its CMA area kept allocated and zeroed ahead of
 * demand. The headroom fills to its size in the background, serves requests
 * that fit in it (hits, counted) with zeroed memory, refills after use,
 * gives everything back to CMA when the shrinkers run
 * (echo 2 > /proc/sys/vm/drop_caches) and when a request finds the area
 * exhausted, and leaks no page (the runner's leak check, and the area's
 * counters here).
 *
 * Waits use the headroom's debugfs headroom_pending (0 once idle) with a
 * generous timeout; nothing is timed.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP, HEAPGEN_HEADROOM (the tests
 * skip without one), HEAPGEN_CMA, HEAPGEN_GRANULE, HEAPGEN_ALIGN,
 * HEAPGEN_GUARD_*.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

#define STAT(name) hg_heap_stat(self->cfg.heap, name)

FIXTURE(headroom) {
	struct heapgen_cfg cfg;
	int heap_fd;
	long long full;		/* headroom_pages of a full headroom */
	uint64_t small;		/* a request that fits in it */
};

static long long raw_in_use(const char *area)
{
	long long r = hg_cma_counter(area, "release_pages_success");
	long long a = hg_cma_counter(area, "alloc_pages_success");

	return a < 0 || r < 0 ? -1 : a - r;
}

static int settle(struct _test_data_headroom *self)
{
	return hg_idle(self->cfg.heap, "headroom_pending");
}

/*
 * One allocation and release, then a wait: an allocation from CMA that
 * succeeds lets a starved headroom refill, and a hit queues a refill: either
 * way the headroom is full once idle.
 */
static void warm_up(struct _test_data_headroom *self)
{
	int fd = hg_alloc(self->heap_fd, self->small);

	if (fd >= 0)
		close(fd);
	settle(self);
}

FIXTURE_SETUP(headroom)
{
	hg_cfg_load(&self->cfg);
	self->heap_fd = -1;
	if (!self->cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	if (!self->cfg.headroom)
		SKIP(return, "heap %s has no headroom", self->cfg.heap);
	ASSERT_LE(0, STAT("headroom_pages")) TH_LOG("no headroom counters in debugfs");
	self->heap_fd = hg_heap_open(&self->cfg);
	ASSERT_LE(0, self->heap_fd);
	self->full = self->cfg.headroom / PAGE;
	self->small = self->cfg.granule;
	warm_up(self);
	ASSERT_EQ(0, settle(self)) TH_LOG("the headroom never became idle");
}

FIXTURE_TEARDOWN(headroom)
{
	if (self->heap_fd >= 0)
		close(self->heap_fd);
}

/* Once idle, the headroom holds its size, taken from CMA. */
TEST_F_TIMEOUT(headroom, fills_to_size, 120)
{
	EXPECT_EQ(self->full, STAT("headroom_pages"));
	EXPECT_LT(0, STAT("headroom_refills"));
	EXPECT_EQ(0, STAT("headroom_pending"));
}

/*
 * Requests that fit are hits, their memory is zero (and stays so from buffer
 * to buffer: nothing one wrote reaches the next), and the headroom is full
 * again once idle. Twice the headroom's size goes through it.
 */
TEST_F_TIMEOUT(headroom, hits_are_zeroed_and_refilled, 300)
{
	uint64_t len = self->cfg.headroom / 4 / self->cfg.granule * self->cfg.granule;
	long long hits = STAT("headroom_hits");
	long long refills = STAT("headroom_refills");
	int i, fd, served = 0;

	if (len < self->cfg.granule)
		len = self->cfg.granule;
	if (self->cfg.max_alloc && len > self->cfg.max_alloc)
		len = self->cfg.max_alloc;
	for (i = 0; (uint64_t)i * len < 2 * self->cfg.headroom; i++) {
		ASSERT_EQ(0, settle(self));
		fd = hg_alloc(self->heap_fd, len);
		ASSERT_LE(0, fd) TH_LOG("allocation %d of %llu bytes: %s", i,
					 (unsigned long long)len, strerror(-fd));
		EXPECT_EQ(-1, hg_find_not(fd, len, 0))
			TH_LOG("allocation %d: dirty memory handed out", i);
		EXPECT_EQ(0, hg_fill(fd, len, 0xa5));
		close(fd);
		served++;
	}
	EXPECT_EQ(hits + served, STAT("headroom_hits"))
		TH_LOG("%d requests of %llu bytes with the headroom idle", served,
		       (unsigned long long)len);
	ASSERT_EQ(0, settle(self));
	EXPECT_EQ(self->full, STAT("headroom_pages"));
	EXPECT_LT(refills, STAT("headroom_refills"));
}

/* The shrinkers (drop_caches) give every page of the headroom back to CMA. */
TEST_F_TIMEOUT(headroom, shrinker_gives_back, 120)
{
	long long held = STAT("headroom_pages");
	long long drained = STAT("headroom_drained");
	long long used = raw_in_use(self->cfg.cma);

	ASSERT_LT(0, held);
	ASSERT_EQ(0, hg_drop_caches());
	EXPECT_EQ(0, STAT("headroom_pages"));
	EXPECT_EQ(drained + held, STAT("headroom_drained"));
	if (used >= 0)
		EXPECT_EQ(used - held, raw_in_use(self->cfg.cma))
			TH_LOG("the area's pages in use did not go down by the headroom's");
	/* It refills at its next use. */
	warm_up(self);
	EXPECT_EQ(self->full, STAT("headroom_pages"));
}

/*
 * Exhausting the area takes the headroom back: once an allocation has
 * failed, the headroom holds nothing (it never makes an allocation fail that
 * would succeed without it), and it refills after the next allocation that
 * succeeds from CMA.
 */
TEST_F_TIMEOUT(headroom, exhaustion_takes_it_back, 600)
{
	static int fds[4096];
	uint64_t size = self->cfg.granule;
	int big = !self->cfg.max_alloc || self->cfg.max_alloc >= 64 * size;
	struct rlimit nofile;
	int n, i, err = 0;

	if (!getrlimit(RLIMIT_NOFILE, &nofile) && nofile.rlim_cur < 4096 + 16) {
		nofile.rlim_cur = nofile.rlim_max < 4096 + 16 ? nofile.rlim_max : 4096 + 16;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	/* 64 granules at a time, then granules: the area ends up full. */
	for (n = 0; n < 4000; n++) {
		fds[n] = hg_alloc(self->heap_fd, big ? 64 * size : size);
		if (fds[n] >= 0)
			continue;
		if (!big) {
			err = fds[n];
			break;
		}
		big = 0;
		n--;
	}
	ASSERT_EQ(-ENOMEM, err) TH_LOG("%d allocations: %s", n, strerror(-err));
	EXPECT_EQ(0, STAT("headroom_pages"))
		TH_LOG("the headroom holds pages after an allocation failed");
	for (i = 0; i < n; i++)
		close(fds[i]);
	warm_up(self);
	EXPECT_EQ(self->full, STAT("headroom_pages"));
}

TEST_HARNESS_MAIN
