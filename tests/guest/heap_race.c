// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: adversarial races on one heap, with threads and
 * processes (every vCPU of the guest), for the debug kernels' checkers
 * (KASAN, lockdep, kmemleak, DMA_API_DEBUG, the hung-task and soft-lockup
 * detectors) to judge. Each test checks that every call either works or
 * fails with an errno the ABI allows; the harness then checks that no kernel
 * report was printed and that the CMA areas and counters are back to their
 * baseline (see init.sh).
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP (required), HEAPGEN_GRANULE,
 * HEAPGEN_MAX_ALLOC, HEAPGEN_POOL.
 *
 * - sync_against_map:    an importer attaches, maps, unmaps and detaches
 *                        while other threads sync the buffer for the CPU
 *                        (valid and invalid flags) and vmap it
 * - name_against_readers: DMA_BUF_SET_NAME against fdinfo and bufinfo
 *                        readers
 * - close_against_mmap:  threads dup, mmap windows, sync, munmap and close
 *                        the same buffer while a forked child writes
 *                        through a mapping it inherited
 * - odd_sizes:           threads allocate zero, odd, huge and over-limit
 *                        sizes at once
 * - shrinker_against_allocs: drop_caches (every shrinker, the pools' too)
 *                        against allocations, which stay zeroed
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

#define THREADS 3
#define ROUNDS 200

struct race {
	const struct heapgen_cfg *cfg;
	int heap_fd;
	int buf_fd;
	uint64_t len;
	int imp_fd;
	volatile int stop;
	/* The first unexpected errno a thread saw, or 0. */
	int bad_errno;
	const char *bad_call;
};

static void race_bad(struct race *r, const char *call, int err)
{
	if (!__atomic_load_n(&r->bad_errno, __ATOMIC_RELAXED)) {
		r->bad_call = call;
		__atomic_store_n(&r->bad_errno, err, __ATOMIC_RELAXED);
	}
}

FIXTURE(race) {
	struct heapgen_cfg cfg;
	struct race r;
};

FIXTURE_SETUP(race)
{
	memset(&self->r, 0, sizeof(self->r));
	self->r.heap_fd = -1;
	self->r.buf_fd = -1;
	self->r.imp_fd = -1;
	hg_cfg_load(&self->cfg);
	if (!self->cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	self->r.cfg = &self->cfg;
	self->r.heap_fd = hg_heap_open(&self->cfg);
	ASSERT_LE(0, self->r.heap_fd);
	self->r.len = self->cfg.granule * 4;
	if (self->cfg.max_alloc && self->r.len > self->cfg.max_alloc)
		self->r.len = self->cfg.granule;
	self->r.buf_fd = hg_alloc(self->r.heap_fd, self->r.len);
	ASSERT_LE(0, self->r.buf_fd);
	self->r.imp_fd = hg_importer_open();
}

FIXTURE_TEARDOWN(race)
{
	if (self->r.imp_fd >= 0)
		close(self->r.imp_fd);
	if (self->r.buf_fd >= 0)
		close(self->r.buf_fd);
	if (self->r.heap_fd >= 0)
		close(self->r.heap_fd);
}

/* Runs @fn on THREADS threads besides @main, which runs on this one; the
 * others stop when it returns. */
static void race_run(struct race *r, void *(*main)(void *), void *(*fn)(void *))
{
	pthread_t t[THREADS];
	int i, n = 0;

	r->stop = 0;
	for (i = 0; i < THREADS; i++)
		if (!pthread_create(&t[i], NULL, fn, r))
			n++;
		else
			break;
	main(r);
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

static void *import_loop(void *arg)
{
	struct race *r = arg;
	struct heapgen_import out;
	int i, ret;

	for (i = 0; i < ROUNDS; i++) {
		ret = hg_import(r->imp_fd, r->buf_fd,
				i % 2 ? HEAPGEN_DIR_BIDIRECTIONAL : HEAPGEN_DIR_FROM_DEVICE,
				&out);
		if (ret && ret != -ENOMEM)
			race_bad(r, "HEAPGEN_IMPORT", -ret);
	}
	return NULL;
}

static void *sync_loop(void *arg)
{
	struct race *r = arg;
	static const uint64_t dirs[] = {
		DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW,
	};
	struct heapgen_vmap v;
	unsigned int i = 0;
	int ret;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		uint64_t dir = dirs[i++ % 3];

		ret = hg_sync(r->buf_fd, DMA_BUF_SYNC_START | dir);
		if (ret)
			race_bad(r, "DMA_BUF_IOCTL_SYNC start", -ret);
		ret = hg_sync(r->buf_fd, DMA_BUF_SYNC_END | dir);
		if (ret)
			race_bad(r, "DMA_BUF_IOCTL_SYNC end", -ret);
		/* Invalid flags are refused, whatever else is going on. */
		if (hg_sync(r->buf_fd, 1ULL << 40) != -EINVAL ||
		    hg_sync(r->buf_fd, DMA_BUF_SYNC_START) != -EINVAL)
			race_bad(r, "DMA_BUF_IOCTL_SYNC with invalid flags", 0);
		if (i % 8 == 0) {
			memset(&v, 0, sizeof(v));
			v.fd = r->buf_fd;
			if (ioctl(r->imp_fd, HEAPGEN_VMAP, &v) && errno != ENOMEM)
				race_bad(r, "HEAPGEN_VMAP", errno);
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(race, sync_against_map, 300)
{
	if (self->r.imp_fd < 0)
		SKIP(return, "no test importer");
	race_run(&self->r, import_loop, sync_loop);
	EXPECT_EQ(0, self->r.bad_errno)
		TH_LOG("%s: errno %d", self->r.bad_call, self->r.bad_errno);
}

static void *name_loop(void *arg)
{
	struct race *r = arg;
	char name[64];
	int i;

	for (i = 0; i < ROUNDS * 5; i++) {
		/* Up to 31 characters is a name; longer is EINVAL. */
		int n = i % 40;

		memset(name, 'a' + i % 26, n);
		name[n] = 0;
		if (ioctl(r->buf_fd, DMA_BUF_SET_NAME_B, name)) {
			if (!(errno == EINVAL && n >= 32))
				race_bad(r, "DMA_BUF_SET_NAME", errno);
		} else if (n >= 32) {
			race_bad(r, "DMA_BUF_SET_NAME of 32+ characters", 0);
		}
	}
	return NULL;
}

static void read_all(const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

static void *reader_loop(void *arg)
{
	struct race *r = arg;
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", r->buf_fd);
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		read_all(path);
		read_all("/sys/kernel/debug/dma_buf/bufinfo");
	}
	return NULL;
}

TEST_F_TIMEOUT(race, name_against_readers, 300)
{
	race_run(&self->r, name_loop, reader_loop);
	EXPECT_EQ(0, self->r.bad_errno)
		TH_LOG("%s: errno %d", self->r.bad_call, self->r.bad_errno);
}

/* A child writes @byte through a mapping it inherited, then exits. */
static int child_writes(void *p, uint64_t len, int byte)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -errno;
	if (!pid) {
		memset(p, byte, len);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -ECHILD;
	return 0;
}

static void *mmap_loop(void *arg)
{
	struct race *r = arg;
	uint64_t page = PAGE, pages = r->len / page;
	unsigned int i = 0;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		int fd = dup(r->buf_fd);
		uint64_t off = (i % pages) * page, len = page * (1 + i % (pages - i % pages));
		void *p;

		i++;
		if (fd < 0) {
			race_bad(r, "dup", errno);
			continue;
		}
		p = hg_map(fd, len, off);
		if (p == MAP_FAILED) {
			race_bad(r, "mmap", errno);
		} else {
			hg_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
			((volatile char *)p)[0] = 1;
			hg_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
			/* Closed before the mapping goes: the mapping keeps the buffer. */
			close(fd);
			fd = -1;
			if (munmap(p, len))
				race_bad(r, "munmap", errno);
		}
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

static void *fork_loop(void *arg)
{
	struct race *r = arg;
	int i;

	for (i = 0; i < ROUNDS / 10; i++) {
		void *p = hg_map(r->buf_fd, r->len, 0);
		int ret;

		if (p == MAP_FAILED) {
			race_bad(r, "mmap", errno);
			continue;
		}
		ret = child_writes(p, r->len, 0x5a);
		if (ret)
			race_bad(r, "fork", -ret);
		else if (((volatile unsigned char *)p)[r->len - 1] != 0x5a)
			race_bad(r, "the child's write through a shared mapping", 0);
		munmap(p, r->len);
	}
	return NULL;
}

TEST_F_TIMEOUT(race, close_against_mmap, 300)
{
	race_run(&self->r, fork_loop, mmap_loop);
	EXPECT_EQ(0, self->r.bad_errno)
		TH_LOG("%s: errno %d", self->r.bad_call, self->r.bad_errno);
}

static void *odd_size_loop(void *arg)
{
	struct race *r = arg;
	const struct heapgen_cfg *cfg = r->cfg;
	uint64_t sizes[] = {
		0, 1, PAGE - 1, PAGE + 1, cfg->granule * 3 + 1,
		cfg->max_alloc ? cfg->max_alloc + 1 : (1ULL << 40),
		1ULL << 62, ~0ULL,
	};
	unsigned int i;

	for (i = 0; i < ROUNDS && !__atomic_load_n(&r->stop, __ATOMIC_RELAXED); i++) {
		uint64_t len = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		int fd = hg_alloc(r->heap_fd, len);

		if (fd >= 0) {
			int64_t size = hg_buf_size(fd);

			if (!len || size < (int64_t)len)
				race_bad(r, "a buffer smaller than asked", 0);
			close(fd);
		} else if (fd != -EINVAL && fd != -E2BIG && fd != -ENOMEM) {
			race_bad(r, "DMA_HEAP_IOCTL_ALLOC", -fd);
		} else if (len && len <= PAGE + 1 && fd != -ENOMEM) {
			race_bad(r, "a small allocation refused", -fd);
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(race, odd_sizes, 300)
{
	race_run(&self->r, odd_size_loop, odd_size_loop);
	EXPECT_EQ(0, self->r.bad_errno)
		TH_LOG("%s: errno %d", self->r.bad_call, self->r.bad_errno);
}

static void *alloc_zeroed_loop(void *arg)
{
	struct race *r = arg;
	const struct heapgen_cfg *cfg = r->cfg;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		uint64_t len = cfg->pool_depth ? cfg->pool_sizes[i % cfg->pool_classes] :
						 cfg->granule * (1 + i % 4);
		int fd = hg_alloc(r->heap_fd, len);

		if (fd < 0) {
			if (fd != -ENOMEM)
				race_bad(r, "DMA_HEAP_IOCTL_ALLOC", -fd);
			continue;
		}
		if (hg_find_not(fd, len, 0) != -1)
			race_bad(r, "a buffer that was not zeroed", 0);
		hg_fill(fd, len, 0xa5);
		close(fd);
	}
	return NULL;
}

static void *drop_caches_loop(void *arg)
{
	struct race *r = arg;
	int fd;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return NULL;
		/* 2: slab objects, through every shrinker (the pools' too). */
		if (write(fd, "2", 1) != 1 && errno != EINTR)
			race_bad(r, "drop_caches", errno);
		close(fd);
		usleep(1000);
	}
	return NULL;
}

TEST_F_TIMEOUT(race, shrinker_against_allocs, 300)
{
	race_run(&self->r, alloc_zeroed_loop, drop_caches_loop);
	EXPECT_EQ(0, self->r.bad_errno)
		TH_LOG("%s: errno %d", self->r.bad_call, self->r.bad_errno);
	if (self->cfg.pool_depth)
		hg_pool_settle(self->cfg.cma);
}

TEST_HARNESS_MAIN
