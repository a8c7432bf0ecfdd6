// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: fallback chains. A heap whose region lists fallback
 * regions takes a buffer from the first fallback area once its own area is
 * exhausted: the fallback area's CMA counters move, the importer sees the
 * buffer inside the fallback area, the buffer is laid out by the requesting
 * heap's policy and zeroed, the heap's `fallbacks` counter counts it, and the
 * heap's own area is preferred again as soon as it has room.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP, HEAPGEN_CMA and
 * HEAPGEN_FALLBACK (comma-separated CMA areas; the test skips without one),
 * HEAPGEN_GRANULE, HEAPGEN_ALIGN, HEAPGEN_MAX_ALLOC.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

#define MAX_BUFS 256

#define STAT(name) hg_heap_stat(cfg.heap, name)
#define CMA_DEBUG(area, name) hg_read_ll("/sys/kernel/debug/cma/%s/%s", area, name)

TEST(spills_into_fallback_area)
{
	static int fds[MAX_BUFS];
	struct heapgen_cfg cfg;
	struct heapgen_import imp;
	const char *list;
	char fb[64];
	long long own_base, fb_base, fallbacks, base_pfn, count;
	uint64_t chunk, addr;
	int heap_fd, imp_fd, n, spilled = -1, i, fd;

	hg_cfg_load(&cfg);
	list = hg_env_str("HEAPGEN_FALLBACK");
	if (!cfg.heap || !cfg.cma || !list)
		SKIP(return, "heap %s has no fallback regions", cfg.heap ? cfg.heap : "?");
	snprintf(fb, sizeof(fb), "%.*s", (int)strcspn(list, ","), list);
	ASSERT_LE(0, STAT("fallbacks")) TH_LOG("no fallbacks counter for %s", cfg.heap);

	chunk = MiB(4);
	if (cfg.max_alloc && chunk > cfg.max_alloc)
		chunk = cfg.max_alloc;
	chunk = hg_round_up(chunk, cfg.granule);
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);
	imp_fd = hg_importer_open();
	HG_NEED_IMPORTER(imp_fd);

	own_base = hg_cma_in_use(cfg.cma);
	fb_base = hg_cma_in_use(fb);
	ASSERT_LE(0, own_base);
	ASSERT_LE(0, fb_base) TH_LOG("no CMA area %s", fb);
	fallbacks = STAT("fallbacks");

	/* Fill the heap's own area until a buffer lands in the fallback area. */
	for (n = 0; n < MAX_BUFS; n++) {
		fds[n] = hg_alloc(heap_fd, chunk);
		ASSERT_LE(0, fds[n]) TH_LOG("buffer %d of %llu bytes: %s", n,
			(unsigned long long)chunk, strerror(-fds[n]));
		if (hg_cma_in_use(fb) > fb_base) {
			spilled = n++;
			break;
		}
		EXPECT_EQ(fallbacks, STAT("fallbacks"));
	}
	ASSERT_LE(1, spilled) TH_LOG("no spill after %d buffers", n);
	TH_LOG("%d buffers of %llu bytes in %s, then %s", spilled,
	       (unsigned long long)chunk, cfg.cma, fb);
	EXPECT_EQ(fallbacks + 1, STAT("fallbacks"));
	EXPECT_LE((long long)(spilled * (chunk / PAGE)), hg_cma_in_use(cfg.cma) - own_base);
	EXPECT_LE((long long)(chunk / PAGE), hg_cma_in_use(fb) - fb_base);

	/* The spilled buffer: inside the fallback area, this heap's layout, zeroed. */
	ASSERT_EQ(0, hg_import(imp_fd, fds[spilled], HEAPGEN_DIR_BIDIRECTIONAL, &imp));
	addr = imp.entries[0].dma_addr;
	EXPECT_EQ(1, imp.nents);
	EXPECT_EQ(chunk, imp.size);
	EXPECT_EQ(0, addr % cfg.align) TH_LOG("%#llx is not %llu-aligned",
		(unsigned long long)addr, (unsigned long long)cfg.align);
	base_pfn = CMA_DEBUG(fb, "base_pfn");
	count = CMA_DEBUG(fb, "count");
	if (base_pfn >= 0 && count > 0) {
		EXPECT_LE((uint64_t)base_pfn * PAGE, addr);
		EXPECT_GE((uint64_t)(base_pfn + count) * PAGE, addr + chunk)
			TH_LOG("%#llx+%#llx is outside %s (%#llx+%#llx)",
			       (unsigned long long)addr, (unsigned long long)chunk,
			       fb, (unsigned long long)base_pfn * PAGE,
			       (unsigned long long)count * PAGE);
	} else {
		TH_LOG("no /sys/kernel/debug/cma/%s/base_pfn: address not checked", fb);
	}
	EXPECT_EQ(-1, hg_find_not(fds[spilled], chunk, 0));

	/* Room in the own area again: it is preferred over the fallback. */
	close(fds[0]);
	fds[0] = -1;
	fd = hg_alloc(heap_fd, chunk);
	ASSERT_LE(0, fd);
	EXPECT_EQ(fallbacks + 1, STAT("fallbacks"));
	close(fd);

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	EXPECT_EQ(own_base, hg_cma_in_use(cfg.cma));
	EXPECT_EQ(fb_base, hg_cma_in_use(fb));
	close(imp_fd);
	close(heap_fd);
}

TEST_HARNESS_MAIN
