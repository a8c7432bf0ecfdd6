// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: a heap's pool of pre-zeroed buffers
 * (strategy = { kind = "pool", ... }). The pool fills to its depth in the
 * background, serves requests of a class size (hits, counted), never holds
 * more than its depth, zeroes a released buffer before handing it out again,
 * keeps no buffer whose guard a device damaged, and gives everything back to
 * CMA when the shrinkers run (echo 2 > /proc/sys/vm/drop_caches).
 *
 * Waits use the pool's debugfs pool_pending (0 once idle) with a generous
 * timeout; nothing is timed.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP, HEAPGEN_POOL (the tests
 * skip without a pool), HEAPGEN_CMA, HEAPGEN_GRANULE, HEAPGEN_ALIGN,
 * HEAPGEN_GUARD_*.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

#define STAT(name) hg_heap_stat(self->cfg.heap, name)

FIXTURE(pool) {
	struct heapgen_cfg cfg;
	int heap_fd;
	int imp_fd;
	uint64_t small;		/* the smallest class */
	long long full;		/* pool_pages of a full pool */
};

static long long raw_in_use(const char *area)
{
	long long a = hg_cma_counter(area, "alloc_pages_success");
	long long r = hg_cma_counter(area, "release_pages_success");

	return a < 0 || r < 0 ? -1 : a - r;
}

static int settle(struct _test_data_pool *self)
{
	int waited;

	for (waited = 0; STAT("pool_pending") > 0; waited++) {
		if (waited == 6000)
			return -1;
		usleep(10000);
	}
	return 0;
}

/* Allocates and frees one buffer of every class, then waits: a full pool. */
static void warm_up(struct _test_data_pool *self)
{
	int i, fd;

	/* A direct allocation that succeeds lets a starved pool refill again. */
	fd = hg_alloc(self->heap_fd, hg_pool_avoid(&self->cfg, self->cfg.granule));
	if (fd >= 0)
		close(fd);
	for (i = 0; i < self->cfg.pool_classes; i++) {
		fd = hg_alloc(self->heap_fd, self->cfg.pool_sizes[i]);
		if (fd >= 0)
			close(fd);
	}
	settle(self);
}

static uint64_t phys_of(struct _test_data_pool *self, int buf_fd)
{
	struct heapgen_import imp;

	if (self->imp_fd < 0 ||
	    hg_import(self->imp_fd, buf_fd, HEAPGEN_DIR_BIDIRECTIONAL, &imp) ||
	    imp.nents < 1)
		return 0;
	return imp.entries[0].dma_addr;
}

FIXTURE_SETUP(pool)
{
	int i;

	hg_cfg_load(&self->cfg);
	self->heap_fd = -1;
	self->imp_fd = -1;
	if (!self->cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	if (!self->cfg.pool_depth || !self->cfg.pool_classes)
		SKIP(return, "heap %s has no pool", self->cfg.heap);
	ASSERT_LE(0, STAT("pool_pages")) TH_LOG("no pool counters in debugfs");
	self->heap_fd = hg_heap_open(&self->cfg);
	ASSERT_LE(0, self->heap_fd);
	self->imp_fd = hg_importer_open();
	self->small = self->cfg.pool_sizes[0];
	self->full = 0;
	for (i = 0; i < self->cfg.pool_classes; i++)
		self->full += self->cfg.pool_depth *
			(hg_round_up(self->cfg.guard_before, self->cfg.align) +
			 self->cfg.pool_sizes[i] + self->cfg.guard_after) / PAGE;
	warm_up(self);
}

FIXTURE_TEARDOWN(pool)
{
	if (self->heap_fd >= 0)
		close(self->heap_fd);
	if (self->imp_fd >= 0)
		close(self->imp_fd);
}

/* After warm-up every class holds exactly depth buffers, no more. */
TEST_F_TIMEOUT(pool, fills_to_depth, 120)
{
	int fds[64 + 1];
	int i, n = self->cfg.pool_depth + 1;
	long long hits = STAT("pool_hits"), misses = STAT("pool_misses");

	EXPECT_EQ(self->full, STAT("pool_pages"));
	EXPECT_LT(0, STAT("pool_refills"));

	/* More buffers than the depth at once: each one a hit or a miss. */
	for (i = 0; i < n; i++) {
		fds[i] = hg_alloc(self->heap_fd, self->small);
		ASSERT_LE(0, fds[i]);
	}
	EXPECT_EQ(hits + misses + n, STAT("pool_hits") + STAT("pool_misses"));
	EXPECT_LT(hits, STAT("pool_hits"));
	for (i = 0; i < n; i++)
		close(fds[i]);
	ASSERT_EQ(0, settle(self));
	/* Released beyond the depth: back to CMA. */
	EXPECT_EQ(self->full, STAT("pool_pages"));
}

/* A warm pool serves a class-size request, zeroed. */
TEST_F_TIMEOUT(pool, hit_after_warm_up, 120)
{
	long long hits = STAT("pool_hits");
	int fd;

	fd = hg_alloc(self->heap_fd, self->small);
	ASSERT_LE(0, fd);
	EXPECT_EQ(hits + 1, STAT("pool_hits"));
	EXPECT_EQ((int64_t)self->small, hg_buf_size(fd));
	EXPECT_EQ(-1, hg_find_not(fd, self->small, 0));
	close(fd);

	/* A size one granule off a class is no hit. */
	hits = STAT("pool_hits");
	fd = hg_alloc(self->heap_fd, hg_pool_avoid(&self->cfg, self->small));
	ASSERT_LE(0, fd);
	EXPECT_EQ(hits, STAT("pool_hits"));
	close(fd);
}

/*
 * A released buffer goes back to the pool only after being zeroed: fill it,
 * empty the pool, free it (the pool takes it back), wait, and the next
 * allocation gets the same memory, all zero.
 */
TEST_F_TIMEOUT(pool, zeroed_before_reuse, 120)
{
	uint64_t before, after;
	int fd;

	fd = hg_alloc(self->heap_fd, self->small);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hg_fill(fd, self->small, 0xa5));
	before = phys_of(self, fd);
	ASSERT_EQ(0, settle(self));
	ASSERT_EQ(0, hg_drop_caches());
	ASSERT_EQ(0, STAT("pool_pages"));
	close(fd);
	ASSERT_EQ(0, settle(self));
	EXPECT_EQ(self->full, STAT("pool_pages"));

	fd = hg_alloc(self->heap_fd, self->small);
	ASSERT_LE(0, fd);
	after = phys_of(self, fd);
	if (self->imp_fd >= 0)
		EXPECT_EQ(before, after) TH_LOG("the released buffer was not reused");
	EXPECT_EQ(-1, hg_find_not(fd, self->small, 0)) TH_LOG("dirty memory handed out");
	close(fd);
}

/* The shrinkers (drop_caches) return every pooled page to CMA. */
TEST_F_TIMEOUT(pool, shrinker_drains, 120)
{
	long long pooled = STAT("pool_pages");
	long long used = raw_in_use(self->cfg.cma);

	ASSERT_LT(0, pooled);
	ASSERT_EQ(0, hg_drop_caches());
	EXPECT_EQ(0, STAT("pool_pages"));
	if (used >= 0)
		EXPECT_EQ(used - pooled, raw_in_use(self->cfg.cma));
	/* The pool refills at its next use. */
	warm_up(self);
	EXPECT_EQ(self->full, STAT("pool_pages"));
}

/* A buffer whose guard a device damaged is never pooled again. */
TEST_F_TIMEOUT(pool, damaged_guard_not_pooled, 120)
{
	struct heapgen_poke p = { .value = 0x5a };
	int fd;

	if (!self->cfg.guard_after)
		SKIP(return, "heap %s has no guard after its buffers", self->cfg.heap);
	if (self->imp_fd < 0)
		SKIP(return, "no test importer");
	fd = hg_alloc(self->heap_fd, self->small);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, settle(self));
	ASSERT_EQ(0, hg_drop_caches());
	ASSERT_EQ(0, STAT("pool_pages"));
	p.fd = fd;
	ASSERT_EQ(0, ioctl(self->imp_fd, HEAPGEN_POKE_PAST, &p));
	close(fd);
	ASSERT_EQ(0, settle(self));
	EXPECT_EQ(0, STAT("pool_pages"));
	warm_up(self);
}

/*
 * Fills the pool of every heap over @area but @self's own (its fixture filled
 * it): one buffer of each class allocated and freed, from the classes of
 * the run's heaps.conf. Returns how many such heaps there are.
 */
static int warm_others(struct _test_data_pool *self, const char *area)
{
	FILE *f = fopen(hg_conf_path(), "r");
	char line[512], heap[128], cma[128], pool[128], path[256];
	int others = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		struct heapgen_cfg other = { 0 };
		int heap_fd, i, fd;

		if (line[0] == '#' ||
		    sscanf(line, "%127s %*s %127s %*s %*s %*s %*s %*s %*s %*s %*s %127s",
			   heap, cma, pool) != 3)
			continue;
		if (strcmp(cma, area) || !strcmp(pool, "-") || !strcmp(heap, self->cfg.heap))
			continue;
		hg_pool_parse(pool, &other);
		snprintf(path, sizeof(path), "/dev/dma_heap/%s", heap);
		heap_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (heap_fd < 0)
			continue;
		others++;
		for (i = 0; i < other.pool_classes; i++) {
			fd = hg_alloc(heap_fd, other.pool_sizes[i]);
			if (fd >= 0)
				close(fd);
		}
		close(heap_fd);
	}
	fclose(f);
	return others;
}

/*
 * Exhausting the area takes back every pool over it -- the write-combined
 * twin's and other regions' included, not only the heap's own: once an
 * allocation has failed, no pool over the area holds a page (a pool never
 * makes an allocation fail that would succeed without it). The pools refill
 * after the next allocation that succeeds without their help.
 */
TEST_F_TIMEOUT(pool, exhaustion_takes_back_every_pool_of_the_area, 600)
{
	static int fds[4096];
	uint64_t size = hg_pool_avoid(&self->cfg, self->small);
	int n, i, err = 0;

	if (!warm_others(self, self->cfg.cma))
		SKIP(return, "no other pooled heap over %s", self->cfg.cma);
	ASSERT_LT(STAT("pool_pages"), hg_pool_settle(self->cfg.cma))
		TH_LOG("the other pools over %s hold nothing", self->cfg.cma);
	for (n = 0; n < 4096; n++) {
		fds[n] = hg_alloc(self->heap_fd, size);
		if (fds[n] < 0) {
			err = fds[n];
			break;
		}
	}
	EXPECT_EQ(-ENOMEM, err) TH_LOG("%d buffers of %llu bytes: %s", n,
				       (unsigned long long)size, strerror(-err));
	EXPECT_EQ(0, hg_pool_settle(self->cfg.cma))
		TH_LOG("pools over %s hold pages after an allocation failed", self->cfg.cma);
	for (i = 0; i < n; i++)
		close(fds[i]);
	warm_up(self);
}

TEST_HARNESS_MAIN
