// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: CPU mappings of dma-buf heap buffers.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP (required), HEAPGEN_CMA,
 * HEAPGEN_GRANULE, HEAPGEN_MAX_ALLOC.
 *
 * - windows:        whole, partial and offset page-aligned windows see the
 *                   right pages, and writes through one show in the others
 * - private:        MAP_PRIVATE is refused
 * - past_end:       a window reaching past the end is refused
 * - outlives_fd:    a mapping keeps the buffer after its fd is closed, and
 *                   unmapping then releases it
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

#define NPAGES 16

FIXTURE(mmap) {
	struct heapgen_cfg cfg;
	int heap_fd;
	int buf_fd;
	uint64_t len;
};

/* A 64 KiB (or one-granule) buffer whose page i is filled with byte i + 1. */
FIXTURE_SETUP(mmap)
{
	uint8_t *p;
	uint64_t i;

	self->heap_fd = -1;
	self->buf_fd = -1;
	hg_cfg_load(&self->cfg);
	if (!self->cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	self->heap_fd = hg_heap_open(&self->cfg);
	ASSERT_LE(0, self->heap_fd);

	self->len = hg_round_up(NPAGES * PAGE, self->cfg.granule);
	self->buf_fd = hg_alloc(self->heap_fd, self->len);
	ASSERT_LE(0, self->buf_fd) TH_LOG("alloc: %s", strerror(-self->buf_fd));
	ASSERT_EQ((int64_t)self->len, hg_buf_size(self->buf_fd));

	p = hg_map(self->buf_fd, self->len, 0);
	ASSERT_NE(MAP_FAILED, p);
	hg_sync(self->buf_fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	for (i = 0; i < self->len / PAGE; i++)
		memset(p + i * PAGE, (int)(i + 1), PAGE);
	hg_sync(self->buf_fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	munmap(p, self->len);
}

FIXTURE_TEARDOWN(mmap)
{
	if (self->buf_fd >= 0)
		close(self->buf_fd);
	if (self->heap_fd >= 0)
		close(self->heap_fd);
}

/* Returns the first page of a window that does not hold its pattern, or -1. */
static int64_t check_window(const uint8_t *p, uint64_t first, uint64_t pages)
{
	uint64_t i, j;

	for (i = 0; i < pages; i++)
		for (j = 0; j < PAGE; j++)
			if (p[i * PAGE + j] != (uint8_t)(first + i + 1))
				return first + i;
	return -1;
}

TEST_F(mmap, windows)
{
	uint64_t pages = self->len / PAGE;
	const struct {
		uint64_t first, count;
	} win[] = {
		{ 0, pages },		/* whole buffer */
		{ 0, 1 },		/* first page only */
		{ 0, 3 },		/* a prefix */
		{ 5, 4 },		/* a window in the middle */
		{ pages - 1, 1 },	/* the last page only */
		{ pages - 3, 3 },	/* a suffix */
	};
	uint8_t *whole, *p;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(win); i++) {
		p = hg_map(self->buf_fd, win[i].count * PAGE, win[i].first * PAGE);
		ASSERT_NE(MAP_FAILED, p) TH_LOG("window %llu+%llu: %s",
			(unsigned long long)win[i].first,
			(unsigned long long)win[i].count, strerror(errno));
		EXPECT_EQ(-1, check_window(p, win[i].first, win[i].count))
			TH_LOG("window %llu+%llu sees the wrong page",
			       (unsigned long long)win[i].first,
			       (unsigned long long)win[i].count);
		munmap(p, win[i].count * PAGE);
	}

	/* A write through a window shows through the whole mapping. */
	whole = hg_map(self->buf_fd, self->len, 0);
	ASSERT_NE(MAP_FAILED, whole);
	p = hg_map(self->buf_fd, 2 * PAGE, 6 * PAGE);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 0xee;
	p[2 * PAGE - 1] = 0xdd;
	EXPECT_EQ(0xee, whole[6 * PAGE]);
	EXPECT_EQ(0xdd, whole[8 * PAGE - 1]);
	EXPECT_EQ(6, whole[6 * PAGE - 1]);
	EXPECT_EQ(9, whole[8 * PAGE]);
	whole[7 * PAGE] = 0xcc;
	EXPECT_EQ(0xcc, p[PAGE]);
	munmap(p, 2 * PAGE);
	munmap(whole, self->len);

	/* Two mappings of the same window are the same memory. */
	p = hg_map(self->buf_fd, PAGE, 3 * PAGE);
	whole = hg_map(self->buf_fd, PAGE, 3 * PAGE);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(MAP_FAILED, whole);
	p[100] = 0x42;
	EXPECT_EQ(0x42, whole[100]);
	munmap(p, PAGE);
	munmap(whole, PAGE);
}

TEST_F(mmap, private)
{
	void *p;

	p = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		 self->buf_fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	if (p != MAP_FAILED)
		munmap(p, self->len);

	p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, self->buf_fd, PAGE);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	if (p != MAP_FAILED)
		munmap(p, PAGE);
}

TEST_F(mmap, past_end)
{
	const struct {
		uint64_t off, len;
	} bad[] = {
		{ 0, self->len + PAGE },		/* one page too long */
		{ PAGE, self->len },			/* shifted by a page */
		{ self->len - PAGE, 2 * PAGE },		/* straddles the end */
		{ self->len, PAGE },			/* starts at the end */
		{ 64 * self->len, PAGE },		/* far beyond */
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		void *p = hg_map(self->buf_fd, bad[i].len, bad[i].off);

		EXPECT_EQ(MAP_FAILED, p) TH_LOG("offset %llu length %llu mapped",
			(unsigned long long)bad[i].off,
			(unsigned long long)bad[i].len);
		EXPECT_EQ(EINVAL, errno);
		if (p != MAP_FAILED)
			munmap(p, bad[i].len);
	}

	/* A window ending exactly at the end is fine. */
	{
		uint8_t *p = hg_map(self->buf_fd, PAGE, self->len - PAGE);

		ASSERT_NE(MAP_FAILED, p);
		EXPECT_EQ(-1, check_window(p, self->len / PAGE - 1, 1));
		munmap(p, PAGE);
	}
}

TEST_F(mmap, outlives_fd)
{
	long long before = hg_cma_in_use(self->cfg.cma);
	uint8_t *p;

	p = hg_map(self->buf_fd, self->len, 0);
	ASSERT_NE(MAP_FAILED, p);
	close(self->buf_fd);
	self->buf_fd = -1;

	/* The mapping holds the buffer: still there, still the same data. */
	EXPECT_EQ(-1, check_window(p, 0, self->len / PAGE));
	if (before >= 0) {
		EXPECT_EQ(before, hg_cma_in_use(self->cfg.cma));
	}
	p[0] = 0x77;
	EXPECT_EQ(0x77, p[0]);
	munmap(p, self->len);

	/* The last reference is gone: the pages went back to CMA. */
	if (before >= 0) {
		EXPECT_GT(before, hg_cma_in_use(self->cfg.cma));
	}
}

/* Minor page faults of this process so far. */
static long minor_faults(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) ? -1 : ru.ru_minflt;
}

/* Reads one byte of every page of @p; returns the minor faults it took. */
static long touch_pages(const volatile uint8_t *p, uint64_t len, uint64_t *sum)
{
	long before = minor_faults();
	uint64_t i;

	for (i = 0; i < len; i += PAGE)
		*sum += p[i];
	return minor_faults() - before;
}

/*
 * The contiguity fast path: mmap maps the whole window when it is set up
 * (upstream's CMA heap takes one fault per page on first touch, 16 here), so
 * touching every page of a fresh mapping takes no fault on the buffer. The
 * first mapping warms up the test's own code and stack pages, whose first
 * touch is a fault of the test, not of the heap; the second one is measured,
 * with a margin of one fault for anything else the process touches.
 */
TEST_F(mmap, mapped_at_mmap_time)
{
	uint64_t pages = self->len / PAGE, sum = 0;
	volatile uint8_t *warm, *p;
	long faults;

	warm = hg_map(self->buf_fd, self->len, 0);
	ASSERT_NE(MAP_FAILED, (void *)warm);
	touch_pages(warm, self->len, &sum);
	p = hg_map(self->buf_fd, self->len, 0);
	ASSERT_NE(MAP_FAILED, (void *)p);
	faults = touch_pages(p, self->len, &sum);
	EXPECT_NE(0, sum);
	EXPECT_GE(1, faults)
		TH_LOG("%ld faults touching %llu freshly mapped pages", faults,
		       (unsigned long long)pages);
	munmap((void *)p, self->len);
	munmap((void *)warm, self->len);
}

TEST_HARNESS_MAIN
