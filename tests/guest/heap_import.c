// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: the heap's buffers as a DMA device sees them, through
 * the test importer /dev/heapgen_importer (tests/kernel/importer). Every
 * test skips when the importer is not loaded.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP (required), HEAPGEN_ALIGN,
 * HEAPGEN_GRANULE, HEAPGEN_GUARD_BEFORE, HEAPGEN_GUARD_AFTER,
 * HEAPGEN_MAX_ALLOC.
 *
 * - one_entry:      a mapped attachment is ONE scatterlist entry as long as
 *                   the buffer, aligned to HEAPGEN_ALIGN, in every direction
 *                   (for a device that takes segments of any length)
 * - small_segments: for a device whose segments are at most 64 KiB (the DMA
 *                   API's default), the buffer in contiguous segments of at
 *                   most 64 KiB that cover it in order
 * - guard_spacing:  buffers sit at least guard-before + guard-after apart
 * - guard_overrun:  a device write just past a guarded buffer is reported
 *                   ("guard damaged" in the kernel log) when it is freed
 * - vmap:           the kernel's vmap sees what userspace wrote via mmap,
 *                   and userspace sees what the kernel wrote via vmap
 * - device_view:    what a device reads through the scatterlist's pages is
 *                   what the CPU sees: zero in a fresh buffer, then every
 *                   byte userspace wrote through mmap (first and last bytes,
 *                   next to the guards, included)
 * - bad_fds:        the importer refuses what is not a dma-buf
 */
#include <ctype.h>
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

FIXTURE(import) {
	struct heapgen_cfg cfg;
	int heap_fd;
	int imp_fd;
};

FIXTURE_SETUP(import)
{
	self->heap_fd = -1;
	self->imp_fd = -1;
	hg_cfg_load(&self->cfg);
	if (!self->cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	self->imp_fd = hg_importer_open();
	if (self->imp_fd < 0)
		SKIP(return, "%s: %s (heapgen_importer.ko not loaded?)",
		     HEAPGEN_IMPORTER_DEV, strerror(-self->imp_fd));
	self->heap_fd = hg_heap_open(&self->cfg);
	ASSERT_LE(0, self->heap_fd);
}

FIXTURE_TEARDOWN(import)
{
	if (self->heap_fd >= 0)
		close(self->heap_fd);
	if (self->imp_fd >= 0)
		close(self->imp_fd);
}

TEST_F(import, one_entry)
{
	static const uint32_t dirs[] = {
		HEAPGEN_DIR_BIDIRECTIONAL, HEAPGEN_DIR_TO_DEVICE,
		HEAPGEN_DIR_FROM_DEVICE,
	};
	uint64_t reqs[] = { 1, KiB(4), KiB(64) + 1, MiB(1), MiB(4) + KiB(4),
			    self->cfg.max_alloc };
	unsigned int i, d;

	for (i = 0; i < ARRAY_SIZE(reqs); i++) {
		uint64_t len = hg_round_up(reqs[i], self->cfg.granule);
		int fd;

		if (!reqs[i] || (self->cfg.max_alloc && len > self->cfg.max_alloc))
			continue;
		fd = hg_alloc(self->heap_fd, reqs[i]);
		if (fd == -ENOMEM && reqs[i] == self->cfg.max_alloc) {
			TH_LOG("max-alloc %llu does not fit the area: not imported",
			       (unsigned long long)len);
			continue;
		}
		ASSERT_LE(0, fd) TH_LOG("alloc %llu: %s",
			(unsigned long long)reqs[i], strerror(-fd));

		for (d = 0; d < ARRAY_SIZE(dirs); d++) {
			struct heapgen_import imp;
			uint64_t addr;

			ASSERT_EQ(0, hg_import(self->imp_fd, fd, dirs[d], &imp));
			addr = imp.entries[0].dma_addr;
			if (d == 0)
				TH_LOG("%llu bytes: %u entries, first at %#llx+%#llx",
				       (unsigned long long)len, imp.nents,
				       (unsigned long long)addr,
				       (unsigned long long)imp.entries[0].len);
			EXPECT_EQ(len, imp.size);
			EXPECT_EQ(1, imp.nents);
			EXPECT_EQ(1, imp.orig_nents);
			EXPECT_EQ(len, imp.entries[0].len);
			EXPECT_EQ(len, imp.total_len);
			EXPECT_NE(0, addr);
			EXPECT_EQ(0, addr % self->cfg.align)
				TH_LOG("%#llx is not %#llx-aligned",
				       (unsigned long long)addr,
				       (unsigned long long)self->cfg.align);
		}
		close(fd);
	}
}

TEST_F(import, small_segments)
{
	uint64_t len = hg_round_up(MiB(1) + KiB(64), self->cfg.granule);
	struct heapgen_import imp;
	uint64_t next;
	unsigned int i, n;
	int fd;

	if (self->cfg.max_alloc && len > self->cfg.max_alloc)
		len = self->cfg.max_alloc;
	fd = hg_alloc(self->heap_fd, len);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hg_import(self->imp_fd, fd,
			       HEAPGEN_DIR_BIDIRECTIONAL | HEAPGEN_IMPORT_SMALL_SEGMENTS,
			       &imp));
	EXPECT_EQ(len, imp.total_len);
	EXPECT_LE((len + KiB(64) - 1) / KiB(64), imp.nents);
	n = imp.nents < HEAPGEN_IMPORT_MAX_ENTRIES ? imp.nents : HEAPGEN_IMPORT_MAX_ENTRIES;
	next = imp.entries[0].dma_addr;
	for (i = 0; i < n; i++) {
		EXPECT_GE(KiB(64), imp.entries[i].len) TH_LOG("entry %u", i);
		EXPECT_EQ(next, imp.entries[i].dma_addr) TH_LOG("entry %u", i);
		next = imp.entries[i].dma_addr + imp.entries[i].len;
	}
	close(fd);
}

#define SPACING_BUFS 8

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Live buffers never overlap, and guarded ones keep their guards apart. */
TEST_F(import, guard_spacing)
{
	uint64_t gap = self->cfg.guard_before + self->cfg.guard_after;
	uint64_t len = hg_round_up(KiB(64), self->cfg.granule);
	uint64_t addr[SPACING_BUFS];
	int fds[SPACING_BUFS];
	unsigned int i;

	if (self->cfg.max_alloc && len > self->cfg.max_alloc)
		len = self->cfg.max_alloc;
	for (i = 0; i < SPACING_BUFS; i++) {
		struct heapgen_import imp;

		fds[i] = hg_alloc(self->heap_fd, len);
		ASSERT_LE(0, fds[i]);
		ASSERT_EQ(0, hg_import(self->imp_fd, fds[i],
				       HEAPGEN_DIR_BIDIRECTIONAL, &imp));
		ASSERT_EQ(1, imp.nents);
		addr[i] = imp.entries[0].dma_addr;
	}
	qsort(addr, SPACING_BUFS, sizeof(addr[0]), cmp_u64);
	for (i = 1; i < SPACING_BUFS; i++) {
		uint64_t end = addr[i - 1] + len;

		ASSERT_LE(end, addr[i]) TH_LOG("buffers at %#llx and %#llx overlap",
			(unsigned long long)addr[i - 1],
			(unsigned long long)addr[i]);
		EXPECT_LE(gap, addr[i] - end)
			TH_LOG("buffer at %#llx ends %#llx bytes before the next; guards need %#llx",
			       (unsigned long long)addr[i - 1],
			       (unsigned long long)(addr[i] - end),
			       (unsigned long long)gap);
	}
	for (i = 0; i < SPACING_BUFS; i++)
		close(fds[i]);
}

/* True if @line names @heap as a whole word ("qemu-cma" is not "qemu-cma-x"). */
static int names_heap(const char *line, const char *heap)
{
	size_t n = strlen(heap);
	const char *p = line;

	while ((p = strstr(p, heap))) {
		char before = p == line ? ' ' : p[-1];
		char after = p[n];

		if (!(before == '-' || before == '_' || isalnum(before)) &&
		    !(after == '-' || after == '_' || isalnum(after)))
			return 1;
		p += n;
	}
	return 0;
}

/*
 * Reads /dev/kmsg records (from where @fd stands) until none is left and
 * returns 1 if one says "guard damaged" for @heap, copying it to @out.
 */
static int kmsg_find_guard_report(int fd, const char *heap, char *out,
				  size_t outlen)
{
	char rec[2048];
	int found = 0;

	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);

		if (n < 0 && errno == EPIPE)	/* overwritten records */
			continue;
		if (n <= 0)
			break;
		rec[n] = 0;
		if (!found && strstr(rec, "guard damaged") &&
		    names_heap(rec, heap)) {
			char *msg = strchr(rec, ';');	/* after "prio,seq,ts,flags;" */

			msg = msg ? msg + 1 : rec;
			msg[strcspn(msg, "\n")] = 0;
			snprintf(out, outlen, "%s", msg);
			found = 1;
		}
	}
	return found;
}

TEST_F(import, guard_overrun)
{
	struct heapgen_import imp;
	struct heapgen_poke poke;
	uint64_t len = hg_round_up(KiB(64), self->cfg.granule);
	char report[2048];
	int kmsg, fd;

	if (!self->cfg.guard_after)
		SKIP(return, "the heap has no guard after its buffers");
	if (self->cfg.max_alloc && len > self->cfg.max_alloc)
		len = self->cfg.max_alloc;

	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, kmsg) TH_LOG("/dev/kmsg: %s", strerror(errno));
	/* The heap reports the first overrun only: one poke per heap and boot. */
	if (kmsg_find_guard_report(kmsg, self->cfg.heap, report, sizeof(report))) {
		close(kmsg);
		SKIP(return, "an overrun was already reported for %.64s this boot: %.300s",
		     self->cfg.heap, report);
	}

	fd = hg_alloc(self->heap_fd, len);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hg_import(self->imp_fd, fd, HEAPGEN_DIR_BIDIRECTIONAL, &imp));
	ASSERT_EQ(1, imp.nents);

	memset(&poke, 0, sizeof(poke));
	poke.fd = fd;
	poke.value = 0x5a;
	ASSERT_EQ(0, ioctl(self->imp_fd, HEAPGEN_POKE_PAST, &poke))
		TH_LOG("HEAPGEN_POKE_PAST: %s", strerror(errno));
	ASSERT_EQ(imp.entries[0].dma_addr + len, poke.phys);

	/* Nothing is reported while the buffer lives... */
	EXPECT_EQ(0, kmsg_find_guard_report(kmsg, self->cfg.heap, report,
					    sizeof(report)));
	/* ...and the damage is found when it is freed. */
	close(fd);
	ASSERT_EQ(1, kmsg_find_guard_report(kmsg, self->cfg.heap, report,
					    sizeof(report)))
		TH_LOG("no \"guard damaged\" report for %s after an overrun",
		       self->cfg.heap);
	TH_LOG("reported: %s", report);
	close(kmsg);
}

TEST_F(import, vmap)
{
	static const uint8_t head[8] = "HGHEAD01", tail[8] = "HGTAIL02";
	static const uint8_t kwrite[8] = "KWRITE03";
	uint64_t reqs[] = { KiB(4), MiB(1) + KiB(4) };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(reqs); i++) {
		uint64_t len = hg_round_up(reqs[i], self->cfg.granule);
		struct heapgen_vmap vm;
		uint8_t *p;
		int fd;

		if (self->cfg.max_alloc && len > self->cfg.max_alloc)
			continue;
		fd = hg_alloc(self->heap_fd, len);
		ASSERT_LE(0, fd);
		p = hg_map(fd, len, 0);
		ASSERT_NE(MAP_FAILED, p);

		ASSERT_EQ(0, hg_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE));
		memset(p, 0x3c, len);
		memcpy(p, head, 8);
		memcpy(p + len - 8, tail, 8);
		ASSERT_EQ(0, hg_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE));

		memset(&vm, 0, sizeof(vm));
		vm.fd = fd;
		vm.flags = HEAPGEN_VMAP_WRITE;
		memcpy(vm.write_head, kwrite, 8);
		ASSERT_EQ(0, ioctl(self->imp_fd, HEAPGEN_VMAP, &vm))
			TH_LOG("HEAPGEN_VMAP: %s", strerror(errno));
		EXPECT_EQ(len, vm.size);
		/*
		 * The contiguity fast path: a cached buffer's vmap is its
		 * linear-map address (no page array, no vmap); a write-combined
		 * one needs its own alias.
		 */
		EXPECT_EQ(!self->cfg.uncached, vm.linear)
			TH_LOG("vmap of a %s buffer %s the linear map",
			       self->cfg.uncached ? "write-combined" : "cached",
			       vm.linear ? "is in" : "is not in");
		EXPECT_EQ(0, memcmp(vm.head, head, 8))
			TH_LOG("vmap head %.8s", vm.head);
		EXPECT_EQ(0, memcmp(vm.tail, tail, 8))
			TH_LOG("vmap tail %.8s", vm.tail);

		/* What the kernel wrote through the vmap shows in the mmap. */
		ASSERT_EQ(0, hg_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
		EXPECT_EQ(0, memcmp(p, kwrite, 8));
		EXPECT_EQ(0x3c, p[8]);
		ASSERT_EQ(0, hg_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));

		/* A second vmap (a fresh mapping) sees the same. */
		memset(&vm, 0, sizeof(vm));
		vm.fd = fd;
		ASSERT_EQ(0, ioctl(self->imp_fd, HEAPGEN_VMAP, &vm));
		EXPECT_EQ(0, memcmp(vm.head, kwrite, 8));
		EXPECT_EQ(0, memcmp(vm.tail, tail, 8));

		munmap(p, len);
		close(fd);
	}
}

/* A byte pattern that differs from page to page and from byte to byte. */
static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 12) * 7 + 1);
}

TEST_F_TIMEOUT(import, device_view, 300)
{
	uint64_t g = self->cfg.granule, reqs[4];
	uint8_t *dev = NULL, *p;
	int r, fd;

	reqs[0] = 1;
	reqs[1] = g + 1;
	reqs[2] = MiB(1) + PAGE;
	reqs[3] = MiB(4) - 1;
	for (r = 0; r < 4; r++) {
		uint64_t len = hg_round_up(reqs[r], g), i, bad = len;

		if (self->cfg.max_alloc && len > self->cfg.max_alloc)
			continue;
		fd = hg_alloc(self->heap_fd, len);
		ASSERT_LE(0, fd) TH_LOG("%llu bytes: %s", (unsigned long long)len, strerror(-fd));
		ASSERT_EQ((int64_t)len, hg_buf_size(fd));
		dev = realloc(dev, len);
		ASSERT_NE(NULL, dev);

		/* A fresh buffer is zero where the device looks too. */
		memset(dev, 0xa5, len);
		ASSERT_EQ(0, hg_sg_read(self->imp_fd, fd, 0, dev, len));
		for (i = 0; i < len && bad == len; i++)
			if (dev[i])
				bad = i;
		EXPECT_EQ(len, bad) TH_LOG("%llu-byte buffer: the device sees %#x at %#llx",
					   (unsigned long long)len, bad < len ? dev[bad] : 0,
					   (unsigned long long)bad);

		/* What userspace writes, the device reads, byte for byte. */
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED && errno == EPERM) {
			close(fd);
			SKIP(break, "heap %s refuses mmap", self->cfg.heap);
		}
		ASSERT_NE(MAP_FAILED, p);
		for (i = 0; i < len; i++)
			p[i] = pattern(i);
		ASSERT_EQ(0, hg_sg_read(self->imp_fd, fd, 0, dev, len));
		bad = len;
		for (i = 0; i < len && bad == len; i++)
			if (dev[i] != pattern(i))
				bad = i;
		EXPECT_EQ(len, bad) TH_LOG("%llu-byte buffer: at %#llx the CPU wrote %#x, the device reads %#x",
					   (unsigned long long)len, (unsigned long long)bad,
					   bad < len ? pattern(bad) : 0, bad < len ? dev[bad] : 0);
		/* Nothing past the end. */
		EXPECT_EQ(-EINVAL, hg_sg_read(self->imp_fd, fd, len - 1, dev, 2));
		munmap(p, len);
		close(fd);
	}
	free(dev);
}

TEST_F(import, bad_fds)
{
	struct heapgen_import imp;
	struct heapgen_vmap vm = { .fd = -1 };
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int fd;

	ASSERT_LE(0, null_fd);
	EXPECT_EQ(-EBADF, hg_import(self->imp_fd, -1, 0, &imp));
	EXPECT_EQ(-EINVAL, hg_import(self->imp_fd, null_fd, 0, &imp));
	EXPECT_EQ(-1, ioctl(self->imp_fd, HEAPGEN_VMAP, &vm));
	EXPECT_EQ(EBADF, errno);

	/* An unknown direction is refused before anything is attached. */
	fd = hg_alloc(self->heap_fd, PAGE);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, hg_import(self->imp_fd, fd, 3, &imp));
	EXPECT_EQ(0, hg_import(self->imp_fd, fd, 0, &imp));
	close(fd);
	close(null_fd);
}

TEST_HARNESS_MAIN
