// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: allocation semantics of one dma-buf heap.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP (required), HEAPGEN_CMA,
 * HEAPGEN_ALIGN, HEAPGEN_GRANULE, HEAPGEN_GUARD_BEFORE, HEAPGEN_GUARD_AFTER,
 * HEAPGEN_MAX_ALLOC, HEAPGEN_UNCACHED.
 *
 * - zeroed:        buffers come zeroed even where dirty buffers were freed
 * - sizes:         4 KiB up to max-alloc (or the largest that fits)
 * - size_rounding: lseek(SEEK_END) is the request rounded up to the granule
 * - too_large:     a request above max-alloc fails with E2BIG
 * - bad_requests:  zero length, unknown fd flags and heap flags: EINVAL
 * - exhaustion:    running the area dry gives ENOMEM; a free lets it recover
 * - fd_flags:      O_CLOEXEC and the access mode are honoured
 * - set_name:      DMA_BUF_SET_NAME names the buffer (fdinfo shows it)
 * - sync:          DMA_BUF_IOCTL_SYNC start/end, bad flags refused
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

FIXTURE(heap) {
	struct heapgen_cfg cfg;
	int heap_fd;
	int imp_fd;
};

FIXTURE_SETUP(heap)
{
	self->heap_fd = -1;
	self->imp_fd = -1;
	hg_cfg_load(&self->cfg);
	if (!self->cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	self->heap_fd = hg_heap_open(&self->cfg);
	ASSERT_LE(0, self->heap_fd) {
		TH_LOG("cannot open /dev/dma_heap/%s: %s", self->cfg.heap,
		       strerror(-self->heap_fd));
	}
	self->imp_fd = hg_importer_open();
}

FIXTURE_TEARDOWN(heap)
{
	if (self->heap_fd >= 0)
		close(self->heap_fd);
	if (self->imp_fd >= 0)
		close(self->imp_fd);
}

/* Bytes the CMA area could still hand out, or 0 if unknown. */
static uint64_t area_free_bytes(const struct heapgen_cfg *cfg)
{
	long long avail = hg_cma_counter(cfg->cma, "available_pages");

	return avail > 0 ? (uint64_t)avail * PAGE : 0;
}

/* Pages one buffer of @payload bytes takes from CMA, guards included. */
static uint64_t footprint(const struct heapgen_cfg *cfg, uint64_t payload)
{
	return hg_round_up(cfg->guard_before, cfg->align) + payload +
	       cfg->guard_after;
}

/* Physical start of a buffer through the importer, or 0. */
static uint64_t phys_of(int imp_fd, int buf_fd, uint64_t *len)
{
	struct heapgen_import imp;

	if (imp_fd < 0 || hg_import(imp_fd, buf_fd, HEAPGEN_DIR_BIDIRECTIONAL,
				    &imp) || imp.nents < 1)
		return 0;
	*len = imp.total_len;
	return imp.entries[0].dma_addr;
}

#define ZERO_BUFS 16

/*
 * Fill several buffers with a pattern, free them all, allocate the same
 * sizes again and check every byte is zero. With the importer loaded, also
 * check that the new buffers really reuse some of the dirtied memory.
 */
TEST_F_TIMEOUT(heap, zeroed, 120)
{
	/*
	 * The last size is larger than the heap's headroom, if it has one: the
	 * smaller ones are carved out of the headroom, zeroed when it was
	 * refilled, and need not land on the memory just freed; that one takes
	 * the direct path, where the freed memory is reused.
	 */
	const uint64_t sizes[] = {
		KiB(4), KiB(64), MiB(1),
		self->cfg.headroom ? self->cfg.headroom + self->cfg.granule : 0,
	};
	unsigned int s, i, n;

	for (s = 0; s < ARRAY_SIZE(sizes) && sizes[s]; s++) {
		uint64_t len = hg_round_up(sizes[s], self->cfg.granule);
		uint64_t old_start[ZERO_BUFS], old_len[ZERO_BUFS];
		int fds[ZERO_BUFS];
		int reused = 0;

		/* Two buffers larger than the headroom: they must fit the area. */
		n = self->cfg.headroom && len > self->cfg.headroom ? 2 : ZERO_BUFS;
		if (self->cfg.max_alloc && len > self->cfg.max_alloc)
			continue;
		for (i = 0; i < n; i++) {
			fds[i] = hg_alloc(self->heap_fd, len);
			ASSERT_LE(0, fds[i]) TH_LOG("alloc %llu: %s",
				(unsigned long long)len, strerror(-fds[i]));
			ASSERT_EQ(0, hg_fill(fds[i], len, 0xa5 + i));
			old_len[i] = 0;
			old_start[i] = phys_of(self->imp_fd, fds[i], &old_len[i]);
		}
		for (i = 0; i < n; i++)
			close(fds[i]);

		for (i = 0; i < n; i++) {
			uint64_t start, l = 0;
			unsigned int j;
			int64_t bad;

			fds[i] = hg_alloc(self->heap_fd, len);
			ASSERT_LE(0, fds[i]);
			bad = hg_find_not(fds[i], len, 0);
			ASSERT_EQ(-1, bad) TH_LOG("%llu-byte buffer %u: byte %lld not zero",
				(unsigned long long)len, i, (long long)bad);
			start = phys_of(self->imp_fd, fds[i], &l);
			for (j = 0; start && j < n; j++)
				if (start < old_start[j] + old_len[j] &&
				    old_start[j] < start + l)
					reused++;
		}
		for (i = 0; i < n; i++)
			close(fds[i]);
		if (self->imp_fd >= 0 && len > self->cfg.headroom) {
			ASSERT_LT(0, reused) TH_LOG("no %llu-byte buffer reused dirty memory",
				(unsigned long long)len);
		}
	}
	if (self->imp_fd < 0)
		TH_LOG("importer missing: memory reuse not verified");
}

/* Every size class from 4 KiB to max-alloc: right size, zeroed, mappable. */
TEST_F_TIMEOUT(heap, sizes, 240)
{
	uint64_t sizes[] = { 1, KiB(4), KiB(4) + 1, KiB(8), KiB(12), KiB(64),
			     KiB(64) + 1, MiB(1), MiB(1) + KiB(4), MiB(4),
			     MiB(16), 0 /* largest */ };
	uint64_t free_bytes = area_free_bytes(&self->cfg);
	uint64_t largest = self->cfg.max_alloc;
	unsigned int i, tested = 0;

	/* The largest that fits: max-alloc unless the area is smaller. */
	if (free_bytes) {
		uint64_t room = free_bytes > MiB(2) ? free_bytes - MiB(2) : 0;

		room -= footprint(&self->cfg, 0);
		room = room / self->cfg.granule * self->cfg.granule;
		if (!largest || room < largest) {
			TH_LOG("area has %llu bytes free: largest tested is %llu, not max-alloc %llu",
			       (unsigned long long)free_bytes,
			       (unsigned long long)room,
			       (unsigned long long)largest);
			largest = room;
		}
	}
	sizes[ARRAY_SIZE(sizes) - 1] = largest;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint64_t req = sizes[i];
		uint64_t len = hg_round_up(req, self->cfg.granule);
		uint8_t *p;
		int64_t bad;
		int fd;

		if (!req || (largest && len > largest))
			continue;
		fd = hg_alloc(self->heap_fd, req);
		ASSERT_LE(0, fd) TH_LOG("alloc %llu: %s",
			(unsigned long long)req, strerror(-fd));
		ASSERT_EQ((int64_t)len, hg_buf_size(fd));
		bad = hg_find_not(fd, len, 0);
		ASSERT_EQ(-1, bad) TH_LOG("%llu bytes: byte %lld not zero",
			(unsigned long long)len, (long long)bad);
		p = hg_map(fd, len, 0);
		ASSERT_NE(MAP_FAILED, p);
		p[0] = 1;
		p[len - 1] = 2;
		ASSERT_EQ(1, p[0]);
		ASSERT_EQ(2, p[len - 1]);
		munmap(p, len);
		close(fd);
		tested++;
	}
	ASSERT_LT(0, tested);
}

/* lseek(SEEK_END) reports the request rounded up to the granule. */
TEST_F(heap, size_rounding)
{
	uint64_t g = self->cfg.granule;
	uint64_t reqs[] = { 1, PAGE - 1, PAGE + 1, g - 1, g, g + 1, 3 * g + 1 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(reqs); i++) {
		uint64_t want = hg_round_up(reqs[i], g);
		int fd;

		if (!reqs[i] || (self->cfg.max_alloc && want > self->cfg.max_alloc))
			continue;
		fd = hg_alloc(self->heap_fd, reqs[i]);
		ASSERT_LE(0, fd);
		EXPECT_EQ((int64_t)want, hg_buf_size(fd))
			TH_LOG("request %llu", (unsigned long long)reqs[i]);
		/* dma-buf files only seek to 0 from SEEK_SET or SEEK_END */
		EXPECT_EQ(0, lseek(fd, 0, SEEK_SET));
		EXPECT_EQ(-1, lseek(fd, 1, SEEK_SET));
		close(fd);
	}
}

/* A request above max-alloc fails with E2BIG; max-alloc itself does not. */
TEST_F(heap, too_large)
{
	uint64_t max = self->cfg.max_alloc;
	uint64_t reqs[4];
	unsigned int i;

	if (!max)
		SKIP(return, "HEAPGEN_MAX_ALLOC is not set");
	reqs[0] = max + 1;
	reqs[1] = max + self->cfg.granule;
	reqs[2] = 2 * max;
	reqs[3] = 1ULL << 46;
	for (i = 0; i < ARRAY_SIZE(reqs); i++) {
		int fd = hg_alloc(self->heap_fd, reqs[i]);

		EXPECT_EQ(-E2BIG, fd) TH_LOG("request %llu",
			(unsigned long long)reqs[i]);
		if (fd >= 0)
			close(fd);
	}
}

/* Malformed requests are refused with EINVAL. */
TEST_F(heap, bad_requests)
{
	struct dma_heap_allocation_data data;

	EXPECT_EQ(-EINVAL, hg_alloc(self->heap_fd, 0));
	EXPECT_EQ(-EINVAL, hg_alloc_flags(self->heap_fd, PAGE,
					  O_RDWR | O_NONBLOCK));

	memset(&data, 0, sizeof(data));
	data.len = PAGE;
	data.fd_flags = O_RDWR | O_CLOEXEC;
	data.heap_flags = 1;
	EXPECT_EQ(-1, ioctl(self->heap_fd, DMA_HEAP_IOCTL_ALLOC, &data));
	EXPECT_EQ(EINVAL, errno);
}

#define MAX_EXHAUST 4096

/* Running the area dry gives ENOMEM; allocation recovers after frees. */
TEST_F_TIMEOUT(heap, exhaustion, 240)
{
	static int fds[MAX_EXHAUST];
	uint64_t chunk = MiB(4);
	long long base = hg_cma_in_use(self->cfg.cma);
	int n, i, err = 0, fd;

	/* Running a heap over system memory dry would only invoke the OOM killer. */
	if (!self->cfg.cma)
		SKIP(return, "HEAPGEN_CMA is not set: not a CMA heap");
	if (self->cfg.max_alloc && chunk > self->cfg.max_alloc)
		chunk = self->cfg.max_alloc;
	chunk = hg_round_up(chunk, self->cfg.granule);
	/*
	 * Not a pool class, so that no background refill competes for the area
	 * (the pool gives its buffers back when the area runs dry).
	 */
	if (!self->cfg.max_alloc || hg_pool_avoid(&self->cfg, chunk) <= self->cfg.max_alloc)
		chunk = hg_pool_avoid(&self->cfg, chunk);

	for (n = 0; n < MAX_EXHAUST; n++) {
		fds[n] = hg_alloc(self->heap_fd, chunk);
		if (fds[n] < 0) {
			err = fds[n];
			break;
		}
	}
	ASSERT_LT(n, MAX_EXHAUST) TH_LOG("%d buffers and no failure", n);
	ASSERT_LT(0, n) TH_LOG("not even one %llu-byte buffer",
		(unsigned long long)chunk);
	ASSERT_EQ(-ENOMEM, err) TH_LOG("buffer %d failed with %s", n,
		strerror(-err));
	TH_LOG("%d buffers of %llu bytes before ENOMEM", n,
	       (unsigned long long)chunk);

	/* Still exhausted: a second attempt fails the same way. */
	fd = hg_alloc(self->heap_fd, chunk);
	ASSERT_EQ(-ENOMEM, fd);

	/* Free one in the middle: exactly its room comes back. */
	close(fds[n / 2]);
	fds[n / 2] = hg_alloc(self->heap_fd, chunk);
	ASSERT_LE(0, fds[n / 2]) TH_LOG("no recovery after a free: %s",
		strerror(-fds[n / 2]));
	ASSERT_EQ(-1, hg_find_not(fds[n / 2], chunk, 0));

	for (i = 0; i < n; i++)
		close(fds[i]);

	/* Everything freed: the whole run again succeeds. */
	for (i = 0; i < n; i++) {
		fds[i] = hg_alloc(self->heap_fd, chunk);
		ASSERT_LE(0, fds[i]) TH_LOG("buffer %d of %d after freeing all: %s",
			i, n, strerror(-fds[i]));
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	if (base >= 0) {
		ASSERT_EQ(base, hg_cma_in_use(self->cfg.cma));
	}
}

/* The fd carries exactly the flags asked for. */
TEST_F(heap, fd_flags)
{
	static const struct {
		uint32_t flags;
	} cases[] = {
		{ O_RDWR | O_CLOEXEC }, { O_RDWR }, { O_RDONLY | O_CLOEXEC },
		{ O_RDONLY }, { O_WRONLY | O_CLOEXEC },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		uint32_t flags = cases[i].flags;
		int fd = hg_alloc_flags(self->heap_fd, PAGE, flags);
		int fdfl, fl;
		void *p;

		ASSERT_LE(0, fd) TH_LOG("flags %#x: %s", flags, strerror(-fd));
		fdfl = fcntl(fd, F_GETFD);
		fl = fcntl(fd, F_GETFL);
		ASSERT_LE(0, fdfl);
		ASSERT_LE(0, fl);
		EXPECT_EQ(!!(flags & O_CLOEXEC), !!(fdfl & FD_CLOEXEC))
			TH_LOG("flags %#x", flags);
		EXPECT_EQ(flags & O_ACCMODE, fl & O_ACCMODE)
			TH_LOG("flags %#x", flags);

		p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if ((flags & O_ACCMODE) == O_RDWR) {
			EXPECT_NE(MAP_FAILED, p);
		} else {
			EXPECT_EQ(MAP_FAILED, p) TH_LOG("flags %#x: writable mapping", flags);
			EXPECT_EQ(EACCES, errno);
		}
		if (p != MAP_FAILED)
			munmap(p, PAGE);
		if ((flags & O_ACCMODE) == O_RDONLY) {
			p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
			EXPECT_NE(MAP_FAILED, p);
			if (p != MAP_FAILED) {
				EXPECT_EQ(0, *(volatile uint8_t *)p);
				munmap(p, PAGE);
			}
		}
		close(fd);
	}
}

/* Returns the value of @key in /proc/self/fdinfo/<fd> into @out. */
static int fdinfo_get(int fd, const char *key, char *out, size_t outlen)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	int found = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			char *v = line + klen + 1;

			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = 0;
			snprintf(out, outlen, "%s", v);
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

TEST_F(heap, set_name)
{
	char value[128];
	int fd = hg_alloc(self->heap_fd, PAGE);

	ASSERT_LE(0, fd);
	/* The exporter names itself after the heap, as upstream's heaps do. */
	ASSERT_EQ(0, fdinfo_get(fd, "exp_name", value, sizeof(value)));
	EXPECT_STREQ(self->cfg.heap, value);
	EXPECT_NE(0, fdinfo_get(fd, "name", value, sizeof(value)));

	ASSERT_EQ(0, ioctl(fd, DMA_BUF_SET_NAME_B, "heapgen-test"));
	ASSERT_EQ(0, fdinfo_get(fd, "name", value, sizeof(value)));
	EXPECT_STREQ("heapgen-test", value);

	ASSERT_EQ(0, ioctl(fd, DMA_BUF_SET_NAME_B, "renamed"));
	ASSERT_EQ(0, fdinfo_get(fd, "name", value, sizeof(value)));
	EXPECT_STREQ("renamed", value);

	/* DMA_BUF_NAME_LEN includes the NUL: 32 characters are too many. */
	EXPECT_EQ(-1, ioctl(fd, DMA_BUF_SET_NAME_B,
			    "0123456789abcdef0123456789abcdef"));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, fdinfo_get(fd, "name", value, sizeof(value)));
	EXPECT_STREQ("renamed", value);
	close(fd);
}

TEST_F(heap, sync)
{
	static const uint64_t dirs[] = {
		DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW,
	};
	uint64_t len = hg_round_up(KiB(64), self->cfg.granule);
	unsigned int i;
	uint8_t *p;
	int fd;

	if (self->cfg.max_alloc && len > self->cfg.max_alloc)
		len = self->cfg.max_alloc;
	fd = hg_alloc(self->heap_fd, len);
	ASSERT_LE(0, fd);
	p = hg_map(fd, len, 0);
	ASSERT_NE(MAP_FAILED, p);

	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		ASSERT_EQ(0, hg_sync(fd, DMA_BUF_SYNC_START | dirs[i]));
		memset(p, i + 1, len);
		ASSERT_EQ(0, hg_sync(fd, DMA_BUF_SYNC_END | dirs[i]));
		ASSERT_EQ(0, hg_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
		ASSERT_EQ(i + 1, p[0]);
		ASSERT_EQ(i + 1, p[len - 1]);
		ASSERT_EQ(0, hg_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
	}

	/* No direction, or unknown bits: refused by the dma-buf core. */
	EXPECT_EQ(-EINVAL, hg_sync(fd, DMA_BUF_SYNC_START));
	EXPECT_EQ(-EINVAL, hg_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW | 8));
	munmap(p, len);
	close(fd);
}

TEST_HARNESS_MAIN
