/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the heapgen guest tests (not a test program itself).
 *
 * The heap under test and the policy it promises come from the environment,
 * which the runner (tests/guest/heapgen-test) sets from its heaps.conf:
 *
 *   HEAPGEN_HEAP          heap name under /dev/dma_heap (required; tests
 *                         skip without it)
 *   HEAPGEN_MODULE        name of the module that registers the heap
 *   HEAPGEN_CMA           CMA area the heap allocates from, for the
 *                         /sys/kernel/mm/cma/<area>/ counters (leak checks
 *                         skip without it)
 *   HEAPGEN_ALIGN         physical alignment of every buffer, bytes (4096)
 *   HEAPGEN_GRANULE       sizes are rounded up to this many bytes (4096)
 *   HEAPGEN_GUARD_BEFORE  guard bytes before each buffer (0)
 *   HEAPGEN_GUARD_AFTER   guard bytes after each buffer (0)
 *   HEAPGEN_MAX_ALLOC     largest buffer, bytes; larger requests fail with
 *                         E2BIG (0: no limit promised)
 *   HEAPGEN_UNCACHED      1 if CPU mappings are write-combined (0)
 *   HEAPGEN_POOL          the heap's pool, "<size>,<size>...:<depth>" in
 *                         bytes (e.g. "1048576,4194304:2"), or "-" for none
 *   HEAPGEN_HEADROOM      bytes of the area the heap's region keeps
 *                         evacuated and zeroed (its headroom), or "-"
 *   HEAPGEN_ACCOUNTING    the dmem cgroup region the heap charges
 *                         ("heapgen/<region>"), or "-" when not accounted
 *   HEAPGEN_CONF          the heaps.conf the runner read, for tests that
 *                         look at the other heaps (/etc/heapgen/heaps.conf)
 *   HEAPGEN_IMPORTER_REQUIRED
 *                         set when the runner loaded the test importer:
 *                         tests that need it fail without it instead of
 *                         skipping (on a target it is usually absent)
 *
 * Pools and headrooms fill and zero in the background, so CMA counters move
 * on their own after an allocation or release. hg_cma_in_use() therefore
 * waits until every pool and the headroom over the area are idle (debugfs
 * pool_pending, headroom_pending 0) and subtracts the pages they hold
 * (pool_pages, headroom_pages): the result is what the area's live buffers
 * use, exactly as for a heap with neither. Tests
 * that read raw CMA counters use sizes that are not pool classes
 * (hg_pool_avoid()) after hg_pool_settle().
 *
 * Numbers may be decimal or 0x-prefixed hexadecimal. A string variable set
 * to "-" counts as unset.
 */
#ifndef HEAPGEN_TEST_H
#define HEAPGEN_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>

#include <stdarg.h>

#include "heapgen_importer.h"

#define KiB(x)	((uint64_t)(x) << 10)
#define MiB(x)	((uint64_t)(x) << 20)
/* The kernel's page size (4 KiB, or 16/64 KiB on such arm64 kernels). */
static inline uint64_t hg_page_size(void)
{
	static uint64_t page;

	if (!page)
		page = (uint64_t)sysconf(_SC_PAGESIZE);
	return page;
}
#define PAGE hg_page_size()

struct heapgen_cfg {
	const char *heap;
	const char *module;
	const char *cma;
	uint64_t align;
	uint64_t granule;
	uint64_t guard_before;
	uint64_t guard_after;
	uint64_t max_alloc;
	int uncached;
	int pool_depth;			/* 0: no pool */
	int pool_classes;
	uint64_t pool_sizes[8];
	uint64_t headroom;		/* bytes; 0: no headroom */
};

static inline uint64_t hg_env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || *end) {
		fprintf(stderr, "# bad %s=%s, using %llu\n", name, v,
			(unsigned long long)def);
		return def;
	}
	return n;
}

static inline const char *hg_env_str(const char *name)
{
	const char *v = getenv(name);

	/* "-" stands for "not applicable" (e.g. a built-in heap's module) */
	return v && *v && strcmp(v, "-") ? v : NULL;
}

/* Parses "<size>,<size>...:<depth>" (or NULL) into @cfg's pool fields. */
static inline void hg_pool_parse(const char *spec, struct heapgen_cfg *cfg)
{
	const char *p = spec;
	char *end;

	cfg->pool_depth = 0;
	cfg->pool_classes = 0;
	if (!p)
		return;
	while (*p && cfg->pool_classes < 8) {
		cfg->pool_sizes[cfg->pool_classes++] = strtoull(p, &end, 0);
		p = end;
		if (*p == ',')
			p++;
		else
			break;
	}
	if (*p == ':')
		cfg->pool_depth = atoi(p + 1);
}

/* Whether a request of @len bytes is served by a pool class of @cfg's heap. */
static inline int hg_pool_class(const struct heapgen_cfg *cfg, uint64_t len)
{
	uint64_t padded = (len + cfg->granule - 1) / cfg->granule * cfg->granule;
	int i;

	for (i = 0; cfg->pool_depth && i < cfg->pool_classes; i++)
		if (cfg->pool_sizes[i] == padded)
			return 1;
	return 0;
}

/* The smallest granule multiple >= @len that no pool class serves. */
static inline uint64_t hg_pool_avoid(const struct heapgen_cfg *cfg, uint64_t len)
{
	while (hg_pool_class(cfg, len))
		len += cfg->granule;
	return len;
}

/* The heaps.conf of the run: $HEAPGEN_CONF, or the test bed's. */
static inline const char *hg_conf_path(void)
{
	const char *v = getenv("HEAPGEN_CONF");

	return v && *v ? v : "/etc/heapgen/heaps.conf";
}

/* Reads the number in the file at the printf-style path; -1 if it cannot. */
static inline long long __attribute__((format(printf, 1, 2)))
hg_read_ll(const char *fmt, ...)
{
	char path[256];
	long long v = -1;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Reads the heap's counter /sys/kernel/debug/heapgen/<heap>/<name>; -1 if none. */
static inline long long hg_heap_stat(const char *heap, const char *name)
{
	return hg_read_ll("/sys/kernel/debug/heapgen/%s/%s", heap, name);
}

/* Waits until the heap's counter @pending is 0 (60 s at most); 0 or -1. */
static inline int hg_idle(const char *heap, const char *pending)
{
	int waited;

	for (waited = 0; hg_heap_stat(heap, pending) > 0; waited++) {
		if (waited == 6000)
			return -1;
		usleep(10000);
	}
	return 0;
}

/*
 * For every pooled heap, and every headroom, over CMA area @area (all of
 * them if @area is NULL) in the run's heaps.conf (hg_conf_path()): waits
 * until it is idle (60 s at most each), and returns the pages the pools and
 * headrooms hold, or -1 if one never settled. A headroom is its region's,
 * shared by the region's heaps: counted once per area (one region per area).
 */
static inline long long hg_pool_settle(const char *area)
{
	FILE *f = fopen(hg_conf_path(), "r");
	char line[512], heap[128], cma[128], pool[128], headroom[128];
	char counted[8][128];
	long long total = 0;
	int n, i, areas = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		strcpy(headroom, "-");
		n = sscanf(line, "%127s %*s %127s %*s %*s %*s %*s %*s %*s %*s %*s %127s %*s %127s",
			   heap, cma, pool, headroom);
		if (n < 3 || heap[0] == '#' || (area && strcmp(area, cma)))
			continue;
		if (strcmp(pool, "-")) {
			if (hg_idle(heap, "pool_pending"))
				goto unsettled;
			if (hg_heap_stat(heap, "pool_pages") > 0)
				total += hg_heap_stat(heap, "pool_pages");
		}
		if (!strcmp(headroom, "-"))
			continue;
		for (i = 0; i < areas && strcmp(counted[i], cma); i++)
			;
		if (i < areas || areas == 8)
			continue;
		strcpy(counted[areas++], cma);
		if (hg_idle(heap, "headroom_pending"))
			goto unsettled;
		if (hg_heap_stat(heap, "headroom_pages") > 0)
			total += hg_heap_stat(heap, "headroom_pages");
	}
	fclose(f);
	return total;
unsettled:
	fclose(f);
	return -1;
}

static inline void hg_cfg_load(struct heapgen_cfg *cfg)
{
	cfg->heap = hg_env_str("HEAPGEN_HEAP");
	cfg->module = hg_env_str("HEAPGEN_MODULE");
	cfg->cma = hg_env_str("HEAPGEN_CMA");
	cfg->align = hg_env_u64("HEAPGEN_ALIGN", PAGE);
	cfg->granule = hg_env_u64("HEAPGEN_GRANULE", PAGE);
	cfg->guard_before = hg_env_u64("HEAPGEN_GUARD_BEFORE", 0);
	cfg->guard_after = hg_env_u64("HEAPGEN_GUARD_AFTER", 0);
	cfg->max_alloc = hg_env_u64("HEAPGEN_MAX_ALLOC", 0);
	cfg->uncached = hg_env_u64("HEAPGEN_UNCACHED", 0) != 0;
	hg_pool_parse(hg_env_str("HEAPGEN_POOL"), cfg);
	cfg->headroom = hg_env_str("HEAPGEN_HEADROOM") ?
		hg_env_u64("HEAPGEN_HEADROOM", 0) : 0;
	if (!cfg->align)
		cfg->align = PAGE;
	if (!cfg->granule)
		cfg->granule = PAGE;
}

static inline uint64_t hg_round_up(uint64_t v, uint64_t m)
{
	return (v + m - 1) / m * m;
}

/* Opens /dev/dma_heap/<heap>; returns the fd or -errno. */
static inline int hg_heap_open(const struct heapgen_cfg *cfg)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "/dev/dma_heap/%s", cfg->heap);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Allocates @len bytes; returns the dma-buf fd or -errno. */
static inline int hg_alloc_flags(int heap_fd, uint64_t len, uint32_t fd_flags)
{
	struct dma_heap_allocation_data data = {
		.len = len,
		.fd_flags = fd_flags,
	};

	if (ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &data) < 0)
		return -errno;
	return data.fd;
}

static inline int hg_alloc(int heap_fd, uint64_t len)
{
	return hg_alloc_flags(heap_fd, len, O_RDWR | O_CLOEXEC);
}

/* The size userspace sees for a dma-buf: lseek(SEEK_END). */
static inline int64_t hg_buf_size(int buf_fd)
{
	off_t end = lseek(buf_fd, 0, SEEK_END);

	if (end < 0)
		return -errno;
	lseek(buf_fd, 0, SEEK_SET);
	return end;
}

static inline int hg_sync(int buf_fd, uint64_t flags)
{
	struct dma_buf_sync sync = { .flags = flags };

	return ioctl(buf_fd, DMA_BUF_IOCTL_SYNC, &sync) < 0 ? -errno : 0;
}

/* Maps @len bytes at @off shared read/write; MAP_FAILED on error. */
static inline void *hg_map(int buf_fd, uint64_t len, uint64_t off)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf_fd, off);
}

/* Fills the buffer with @byte through a shared mapping, inside a sync. */
static inline int hg_fill(int buf_fd, uint64_t len, int byte)
{
	void *p = hg_map(buf_fd, len, 0);

	if (p == MAP_FAILED)
		return -errno;
	hg_sync(buf_fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	memset(p, byte, len);
	hg_sync(buf_fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	munmap(p, len);
	return 0;
}

/*
 * Returns the offset of the first byte of the buffer that is not @byte, or
 * -1 if every byte is @byte, or -2 if the buffer cannot be mapped.
 */
static inline int64_t hg_find_not(int buf_fd, uint64_t len, int byte)
{
	const uint8_t *p = hg_map(buf_fd, len, 0);
	int64_t bad = -1;
	uint64_t i;

	if (p == MAP_FAILED)
		return -2;
	hg_sync(buf_fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	for (i = 0; i < len; i++) {
		if (p[i] != (uint8_t)byte) {
			bad = i;
			break;
		}
	}
	hg_sync(buf_fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	munmap((void *)p, len);
	return bad;
}

/* Reads /sys/kernel/mm/cma/<area>/<name>; -1 if it cannot be read. */
static inline long long hg_cma_counter(const char *area, const char *name)
{
	if (!area)
		return -1;
	return hg_read_ll("/sys/kernel/mm/cma/%s/%s", area, name);
}

/*
 * Pages of @area handed out by cma_alloc() to live buffers: once every pool
 * over the area is idle, the area's pages in use minus those the pools hold.
 * -1 if unknown.
 */
static inline long long hg_cma_in_use(const char *area)
{
	long long pooled = hg_pool_settle(area);
	/* Releases never outrun allocations: read them first, never negative. */
	long long r = hg_cma_counter(area, "release_pages_success");
	long long a = hg_cma_counter(area, "alloc_pages_success");

	if (a < 0 || r < 0 || pooled < 0)
		return -1;
	return a - r - pooled;
}

/*
 * Runs the shrinkers (echo 2 > /proc/sys/vm/drop_caches): pools and
 * headrooms give their pages back to CMA. Returns 0 or -errno.
 */
static inline int hg_drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	int ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, "2", 1) == 1;
	close(fd);
	return ok ? 0 : -EIO;
}

/* Opens the test importer; returns the fd or -errno. */
static inline int hg_importer_open(void)
{
	int fd = open(HEAPGEN_IMPORTER_DEV, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/*
 * In a test (or fixture set-up): skips when the test importer could not be
 * opened (@fd is -errno), unless the runner loaded it
 * (HEAPGEN_IMPORTER_REQUIRED), where that is a failure.
 */
#define HG_NEED_IMPORTER(fd) do {						\
	if ((fd) < 0 && !getenv("HEAPGEN_IMPORTER_REQUIRED"))			\
		SKIP(return, "%s: %s (the test importer is not loaded)",	\
		     HEAPGEN_IMPORTER_DEV, strerror(-(fd)));			\
	ASSERT_LE(0, (fd));							\
} while (0)

static inline int hg_import(int imp_fd, int buf_fd, uint32_t dir,
			    struct heapgen_import *out)
{
	memset(out, 0, sizeof(*out));
	out->fd = buf_fd;
	out->dir = dir;
	return ioctl(imp_fd, HEAPGEN_IMPORT, out) < 0 ? -errno : 0;
}

/* Reads @len bytes at @offset of a dma-buf as a device sees them (through its
 * scatterlist's pages) into @buf; 0 or -errno. */
static inline int hg_sg_read(int imp_fd, int buf_fd, uint64_t offset,
			     void *buf, uint32_t len)
{
	struct heapgen_sg_read arg = {
		.fd = buf_fd,
		.len = len,
		.offset = offset,
		.buf = (uintptr_t)buf,
	};

	return ioctl(imp_fd, HEAPGEN_SG_READ, &arg) < 0 ? -errno : 0;
}

#endif /* HEAPGEN_TEST_H */
