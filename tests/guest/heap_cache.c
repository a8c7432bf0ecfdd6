// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: the CPU cache maintenance of guard canaries, seen
 * through the DMA API's trace events (QEMU models no caches, so the contract
 * is tested, not its effect). Needs a kernel with tracing (the debug
 * kernels) and a heap with guards; skips otherwise.
 *
 * On a non-coherent system a device that overruns its buffer writes memory;
 * the canaries must be in memory before the buffer is handed out (written
 * back after they are written) and read from memory when it is released
 * (invalidated before the check). The module does both through its own DMA
 * device (heapgen-cache.*): a DMA_TO_DEVICE map of each guard after
 * allocation, and a DMA_FROM_DEVICE map and unmap of each before release.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP (required),
 * HEAPGEN_GUARD_BEFORE, HEAPGEN_GUARD_AFTER, HEAPGEN_GRANULE, HEAPGEN_POOL.
 *
 * - guards_written_back: allocating maps the guards just around the payload
 *                        TO_DEVICE, once each
 * - guards_invalidated:  releasing maps them FROM_DEVICE (and unmaps) before
 *                        the canaries are checked
 * - protected_payload_written_back_no_cpu_maintenance (protected heaps, whose
 *   memory goes to a secure device): allocating writes the zeroed payload
 *   back (a TO_DEVICE map of the whole payload by heapgen-cache), so that no
 *   dirty line is evicted into secure memory later; an importer's DMA mapping
 *   skips CPU maintenance (SKIP_CPU_SYNC) and DMA_BUF_IOCTL_SYNC does none (no
 *   dma_sync event).
 *
 * The runner runs this program on protected heaps too (it never maps them).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

static const char *tracing_dir(void)
{
	static const char *const dirs[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	static char path[128];
	unsigned int i;

	mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL);
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/events/dma/dma_map_phys/enable", dirs[i]);
		if (!access(path, W_OK))
			return dirs[i];
	}
	return NULL;
}

static int write_file(const char *dir, const char *name, const char *value)
{
	char path[256];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok ? 0 : -EIO;
}

/* The trace so far (a static buffer), or NULL. */
static const char *read_trace(const char *dir)
{
	static char text[1 << 20];
	char path[256];
	ssize_t n, total = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/trace", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	while (total < (ssize_t)sizeof(text) - 1 &&
	       (n = read(fd, text + total, sizeof(text) - 1 - total)) > 0)
		total += n;
	close(fd);
	text[total] = 0;
	return text;
}

/*
 * Counts the trace lines of @event by the module's DMA device in direction
 * @dir of @size bytes (0: any size) at @phys (0: any address). With @ends_at, the
 * range is the one ending at @ends_at, of at least @size bytes (the front
 * guard also covers the alignment padding before it).
 */
static int count_events(const char *trace, const char *event, const char *dir,
			unsigned long long phys, unsigned long long size,
			unsigned long long ends_at)
{
	const char *line = trace;
	int n = 0;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		char buf[512];
		size_t len = end ? (size_t)(end - line) : strlen(line);
		const char *p;
		unsigned long long s = 0, a = 0;

		if (len >= sizeof(buf))
			len = sizeof(buf) - 1;
		memcpy(buf, line, len);
		buf[len] = 0;
		line = end ? end + 1 : NULL;
		if (!strstr(buf, event) || !strstr(buf, "heapgen-cache") || !strstr(buf, dir))
			continue;
		p = strstr(buf, "size=");
		if (size && (!p || sscanf(p, "size=%llu", &s) != 1))
			continue;
		if (size && (ends_at ? s < size : s != size))
			continue;
		if (phys || ends_at) {
			p = strstr(buf, "phys_addr=");
			if (!p || sscanf(p, "phys_addr=%llx", &a) != 1)
				continue;
			if (ends_at ? a + s != ends_at : a != phys)
				continue;
		}
		n++;
	}
	return n;
}

FIXTURE(cache) {
	struct heapgen_cfg cfg;
	const char *dir;
	int heap_fd, imp_fd;
	uint64_t len, before, after;
};

FIXTURE_SETUP(cache)
{
	self->heap_fd = -1;
	self->imp_fd = -1;
	hg_cfg_load(&self->cfg);
	if (!self->cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	if (!self->cfg.guard_before && !self->cfg.guard_after)
		SKIP(return, "heap %s has no guards", self->cfg.heap);
	self->dir = tracing_dir();
	if (!self->dir)
		SKIP(return, "no DMA trace events in this kernel");
	self->heap_fd = hg_heap_open(&self->cfg);
	ASSERT_LE(0, self->heap_fd);
	self->imp_fd = hg_importer_open();
	HG_NEED_IMPORTER(self->imp_fd);
	/* A size no pool class serves: prepared now, not in the background. */
	self->len = hg_pool_avoid(&self->cfg, self->cfg.granule * 2);
	ASSERT_EQ(0, write_file(self->dir, "events/dma/dma_map_phys/enable", "1"));
	ASSERT_EQ(0, write_file(self->dir, "events/dma/dma_unmap_phys/enable", "1"));
}

FIXTURE_TEARDOWN(cache)
{
	if (self->dir) {
		write_file(self->dir, "events/dma/dma_map_phys/enable", "0");
		write_file(self->dir, "events/dma/dma_unmap_phys/enable", "0");
	}
	if (self->imp_fd >= 0)
		close(self->imp_fd);
	if (self->heap_fd >= 0)
		close(self->heap_fd);
}

/* Allocates a buffer with the trace cleared first; returns its payload's
 * physical address through the importer (no IOMMU in the guests). */
static int alloc_traced(FIXTURE_DATA(cache) *self, unsigned long long *phys)
{
	struct heapgen_import imp;
	int fd;

	if (write_file(self->dir, "trace", ""))
		return -EIO;
	fd = hg_alloc(self->heap_fd, self->len);
	if (fd < 0)
		return fd;
	if (hg_import(self->imp_fd, fd, HEAPGEN_DIR_BIDIRECTIONAL, &imp) || imp.nents < 1) {
		close(fd);
		return -EIO;
	}
	*phys = imp.entries[0].dma_addr;
	return fd;
}

TEST_F(cache, guards_written_back)
{
	unsigned long long phys;
	const char *trace;
	int fd = alloc_traced(self, &phys);

	ASSERT_LE(0, fd);
	trace = read_trace(self->dir);
	ASSERT_NE(NULL, trace);
	if (self->cfg.guard_before)
		EXPECT_EQ(1, count_events(trace, "dma_map_phys", "TO_DEVICE", 0,
					  self->cfg.guard_before, phys))
			TH_LOG("the front guard was not written back:\n%s", trace);
	if (self->cfg.guard_after)
		EXPECT_EQ(1, count_events(trace, "dma_map_phys", "TO_DEVICE",
					  phys + self->len, self->cfg.guard_after, 0))
			TH_LOG("the back guard was not written back:\n%s", trace);
	close(fd);
}

TEST_F(cache, guards_invalidated)
{
	unsigned long long phys;
	const char *trace;
	int fd = alloc_traced(self, &phys), unmaps;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_file(self->dir, "trace", ""));
	close(fd);
	trace = read_trace(self->dir);
	ASSERT_NE(NULL, trace);
	if (self->cfg.guard_before)
		EXPECT_EQ(1, count_events(trace, "dma_map_phys", "FROM_DEVICE", 0,
					  self->cfg.guard_before, phys))
			TH_LOG("the front guard was not invalidated:\n%s", trace);
	if (self->cfg.guard_after)
		EXPECT_EQ(1, count_events(trace, "dma_map_phys", "FROM_DEVICE",
					  phys + self->len, self->cfg.guard_after, 0))
			TH_LOG("the back guard was not invalidated:\n%s", trace);
	/* Each map is undone (the unmap event carries no physical address). */
	unmaps = count_events(trace, "dma_unmap_phys", "FROM_DEVICE", 0, 0, 0);
	EXPECT_LE(!!self->cfg.guard_before + !!self->cfg.guard_after, unmaps);
}

/* Counts the trace lines that contain every one of @words (NULL-terminated). */
static int count_lines(const char *trace, const char *const *words)
{
	const char *line = trace;
	int n = 0;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		char buf[1024];
		size_t len = end ? (size_t)(end - line) : strlen(line);
		const char *const *w;
		int all = 1;

		if (len >= sizeof(buf))
			len = sizeof(buf) - 1;
		memcpy(buf, line, len);
		buf[len] = 0;
		line = end ? end + 1 : NULL;
		for (w = words; *w; w++)
			all = all && strstr(buf, *w);
		n += all;
	}
	return n;
}

TEST(protected_payload_written_back_no_cpu_maintenance)
{
	static const char *const sync[] = { "dma_sync", NULL };
	static const char *const skip[] = { "dma_map_sg", "heapgen_importer", "SKIP_CPU_SYNC", NULL };
	const char *hooks = getenv("HEAPGEN_HOOKS");
	struct heapgen_import imp;
	struct heapgen_cfg cfg;
	const char *dir, *trace;
	int heap_fd, imp_fd, fd;
	uint64_t len;

	hg_cfg_load(&cfg);
	if (!cfg.heap || !hooks || strcmp(hooks, "protected"))
		SKIP(return, "heap %s is not protected", cfg.heap ? cfg.heap : "?");
	dir = tracing_dir();
	if (!dir)
		SKIP(return, "no DMA trace events in this kernel");
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);
	imp_fd = hg_importer_open();
	HG_NEED_IMPORTER(imp_fd);
	len = hg_pool_avoid(&cfg, cfg.granule * 2);
	ASSERT_EQ(0, write_file(dir, "events/dma/enable", "1"));

	/* The zeroed payload goes to memory before the buffer is handed out. */
	ASSERT_EQ(0, write_file(dir, "trace", ""));
	fd = hg_alloc(heap_fd, len);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hg_import(imp_fd, fd, HEAPGEN_DIR_BIDIRECTIONAL, &imp));
	ASSERT_LE(1, imp.nents);
	trace = read_trace(dir);
	ASSERT_NE(NULL, trace);
	EXPECT_EQ(1, count_events(trace, "dma_map_phys", "TO_DEVICE",
				  imp.entries[0].dma_addr, len, 0))
		TH_LOG("the payload was not written back once:\n%s", trace);
	/* The importer's mapping does no CPU maintenance on it. */
	EXPECT_LE(1, count_lines(trace, skip))
		TH_LOG("the importer's map did CPU maintenance:\n%s", trace);

	/* Nor does DMA_BUF_IOCTL_SYNC. */
	ASSERT_EQ(0, write_file(dir, "trace", ""));
	EXPECT_EQ(0, hg_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW));
	EXPECT_EQ(0, hg_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW));
	trace = read_trace(dir);
	ASSERT_NE(NULL, trace);
	EXPECT_EQ(0, count_lines(trace, sync))
		TH_LOG("DMA_BUF_IOCTL_SYNC did CPU maintenance:\n%s", trace);

	write_file(dir, "events/dma/enable", "0");
	close(fd);
	close(imp_fd);
	close(heap_fd);
}

TEST_HARNESS_MAIN
