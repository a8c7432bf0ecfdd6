// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: repeated and concurrent allocation, with leak checks
 * on the CMA area's counters (/sys/kernel/mm/cma/<area>/alloc_pages_success
 * minus release_pages_success).
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP (required), HEAPGEN_CMA
 * (the counter checks need it), HEAPGEN_ALIGN, HEAPGEN_GRANULE,
 * HEAPGEN_GUARD_BEFORE, HEAPGEN_GUARD_AFTER, HEAPGEN_MAX_ALLOC.
 *
 * - cycles:      1000 allocate/free cycles; every buffer took exactly its
 *                payload plus guard pages from the area and gave them back
 * - processes:   4 processes allocate, fill, check and free concurrently;
 *                all succeed and the area returns to its baseline
 *
 * Sizes follow the heap's granule, so a heap of 1 MiB granules moves 64 times
 * the bytes of one of 16 KiB granules in as many cycles: both tests stop at a
 * byte budget (STRESS_BYTES, PROC_BYTES), after at least a tenth of their
 * cycles (a quarter for the processes).
 * - killed:      a process killed while it holds mapped buffers and keeps
 *                allocating large ones leaves nothing behind
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

FIXTURE(stress) {
	struct heapgen_cfg cfg;
	int heap_fd;
};

FIXTURE_SETUP(stress)
{
	self->heap_fd = -1;
	hg_cfg_load(&self->cfg);
	if (!self->cfg.heap)
		SKIP(return, "HEAPGEN_HEAP is not set");
	self->heap_fd = hg_heap_open(&self->cfg);
	ASSERT_LE(0, self->heap_fd);
}

FIXTURE_TEARDOWN(stress)
{
	if (self->heap_fd >= 0)
		close(self->heap_fd);
}

#define CYCLES 1000
/* Payload bytes the cycles test allocates at most. */
#define STRESS_BYTES MiB(256)

/* Payload of cycle @i: 1 to 16 granules, and 1 MiB every 100th cycle. */
static uint64_t cycle_len(const struct heapgen_cfg *cfg, unsigned int i)
{
	uint64_t len = cfg->granule * (1 + i % 16);

	if (i % 100 == 99)
		len = hg_round_up(MiB(1), cfg->granule);
	if (cfg->max_alloc && len > cfg->max_alloc)
		len = cfg->max_alloc;
	/* Pooled sizes take no page from CMA: count only direct ones. */
	if (hg_pool_class(cfg, len))
		len = hg_pool_avoid(cfg, len) <= cfg->max_alloc || !cfg->max_alloc ?
		      hg_pool_avoid(cfg, len) : cfg->granule;
	return len;
}

/* How many of @max cycles of lengths @len(cfg, i) fit in @budget bytes (at least @min). */
static unsigned int budgeted(const struct heapgen_cfg *cfg,
			     uint64_t (*len)(const struct heapgen_cfg *, unsigned int),
			     unsigned int max, unsigned int min, uint64_t budget)
{
	uint64_t total = 0;
	unsigned int i;

	for (i = 0; i < max; i++) {
		total += len(cfg, i);
		if (total > budget)
			return i < min ? min : i;
	}
	return max;
}

TEST_F_TIMEOUT(stress, cycles, 300)
{
	unsigned int cycles = budgeted(&self->cfg, cycle_len, CYCLES, CYCLES / 10,
				       STRESS_BYTES);
	long long base_in_use = hg_cma_in_use(self->cfg.cma);	/* pools settled */
	long long base_allocs = hg_cma_counter(self->cfg.cma, "alloc_pages_success");
	long long base_headroom = hg_heap_stat(self->cfg.heap, "headroom_hits") +
				  hg_heap_stat(self->cfg.heap, "headroom_misses");
	uint64_t guard_pages = (hg_round_up(self->cfg.guard_before,
					    self->cfg.align) +
				self->cfg.guard_after) / PAGE;
	uint64_t want_pages = 0;
	unsigned int i;

	for (i = 0; i < cycles; i++) {
		uint64_t len = cycle_len(&self->cfg, i);
		int fd = hg_alloc(self->heap_fd, len);

		ASSERT_LE(0, fd) TH_LOG("cycle %u (%llu bytes): %s", i,
			(unsigned long long)len, strerror(-fd));
		if (i % 50 == 0) {
			uint8_t *p = hg_map(fd, len, 0);

			ASSERT_NE(MAP_FAILED, p);
			ASSERT_EQ(0, p[0]);
			ASSERT_EQ(0, p[len - 1]);
			p[0] = 0xff;
			p[len - 1] = 0xff;
			munmap(p, len);
		}
		close(fd);
		want_pages += len / PAGE + guard_pages;
	}

	if (base_in_use < 0)
		SKIP(return, "no CMA counters for area '%s' (HEAPGEN_CMA): leak check skipped",
		     self->cfg.cma ? self->cfg.cma : "");
	EXPECT_EQ(base_in_use, hg_cma_in_use(self->cfg.cma))
		TH_LOG("pages still held after %u cycles", cycles);
	/*
	 * The buffers really came from this area, with exactly their guards. (A
	 * headroom carves them out of ranges it took from CMA in advance, in
	 * other sizes: then each went through the headroom, a hit or a miss.)
	 */
	if (self->cfg.headroom) {
		EXPECT_EQ(base_headroom + cycles,
			  hg_heap_stat(self->cfg.heap, "headroom_hits") +
			  hg_heap_stat(self->cfg.heap, "headroom_misses"));
	} else {
		EXPECT_EQ((long long)want_pages,
			  hg_cma_counter(self->cfg.cma, "alloc_pages_success") - base_allocs);
	}
}

#define PROCS 4
#define PROC_CYCLES 200
#define PROC_LIVE 3
/* Payload bytes each process allocates at most. */
#define PROC_BYTES MiB(64)

/* Payload of a worker's cycle @i (worker 0's sizes). */
static uint64_t proc_len(const struct heapgen_cfg *cfg, unsigned int i)
{
	uint64_t len = hg_round_up(KiB(16) * (1 + i % 8), cfg->granule);

	return cfg->max_alloc && len > cfg->max_alloc ? cfg->max_alloc : len;
}

/*
 * One worker: PROC_CYCLES allocations with up to PROC_LIVE buffers alive,
 * each filled with a pattern of its own and checked before it is freed.
 * Returns 0, or the number of the step that failed.
 */
static int worker(int heap_fd, const struct heapgen_cfg *cfg, int id)
{
	int fds[PROC_LIVE] = { -1, -1, -1 };
	uint64_t lens[PROC_LIVE] = { 0 };
	uint8_t pats[PROC_LIVE] = { 0 };
	unsigned int i, slot;
	unsigned int cycles = budgeted(cfg, proc_len, PROC_CYCLES, PROC_CYCLES / 4,
				       PROC_BYTES);

	for (i = 0; i < cycles; i++) {
		uint64_t len = hg_round_up(KiB(16) * (1 + (i + id) % 8),
					   cfg->granule);
		uint8_t pat = (uint8_t)(id * 64 + i % 64 + 1);

		if (cfg->max_alloc && len > cfg->max_alloc)
			len = cfg->max_alloc;
		slot = i % PROC_LIVE;
		if (fds[slot] >= 0) {
			if (hg_find_not(fds[slot], lens[slot], pats[slot]) != -1)
				return 2;
			close(fds[slot]);
		}
		fds[slot] = hg_alloc(heap_fd, len);
		if (fds[slot] < 0) {
			fprintf(stderr, "# worker %d cycle %u: %s\n", id, i,
				strerror(-fds[slot]));
			return 1;
		}
		if (hg_find_not(fds[slot], len, 0) != -1)
			return 3;
		if (hg_fill(fds[slot], len, pat))
			return 4;
		lens[slot] = len;
		pats[slot] = pat;
	}
	for (slot = 0; slot < PROC_LIVE; slot++) {
		if (hg_find_not(fds[slot], lens[slot], pats[slot]) != -1)
			return 5;
		close(fds[slot]);
	}
	return 0;
}

TEST_F_TIMEOUT(stress, processes, 300)
{
	long long base = hg_cma_in_use(self->cfg.cma);
	pid_t pids[PROCS];
	int i;

	for (i = 0; i < PROCS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (!pids[i])
			_exit(worker(self->heap_fd, &self->cfg, i));
	}
	for (i = 0; i < PROCS; i++) {
		int status;

		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		ASSERT_TRUE(WIFEXITED(status)) TH_LOG("worker %d died", i);
		EXPECT_EQ(0, WEXITSTATUS(status))
			TH_LOG("worker %d failed at step %d", i,
			       WEXITSTATUS(status));
	}
	if (base < 0)
		SKIP(return, "no CMA counters for area '%s' (HEAPGEN_CMA): leak check skipped",
		     self->cfg.cma ? self->cfg.cma : "");
	EXPECT_EQ(base, hg_cma_in_use(self->cfg.cma));
}

#define KILLED_HELD 4

/*
 * Holds KILLED_HELD mapped buffers, then allocates and frees the largest
 * buffers it may, forever, reporting each step on @pipe_fd.
 */
static void killed_child(int heap_fd, const struct heapgen_cfg *cfg,
			 int pipe_fd)
{
	uint64_t big = cfg->max_alloc && cfg->max_alloc < MiB(16) ?
		       cfg->max_alloc : MiB(16);
	unsigned int i;

	for (i = 0; i < KILLED_HELD; i++) {
		uint64_t len = hg_round_up(KiB(64), cfg->granule);
		int fd = hg_alloc(heap_fd, len);

		if (fd < 0 || hg_map(fd, len, 0) == MAP_FAILED)
			_exit(1);
	}
	for (;;) {
		int fd = hg_alloc(heap_fd, big);

		if (fd < 0 || write(pipe_fd, "x", 1) != 1)
			_exit(2);
		close(fd);
	}
}

TEST_F_TIMEOUT(stress, killed, 120)
{
	long long base = hg_cma_in_use(self->cfg.cma);
	int pipefd[2], status, i;
	char c;
	pid_t pid;

	if (base < 0)
		SKIP(return, "no CMA counters for area '%s' (HEAPGEN_CMA)",
		     self->cfg.cma ? self->cfg.cma : "");
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(pipefd[0]);
		killed_child(self->heap_fd, &self->cfg, pipefd[1]);
	}
	close(pipefd[1]);
	/* Let it get going: three large allocations done. */
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, read(pipefd[0], &c, 1)) TH_LOG("child failed early");
	ASSERT_LT(base, hg_cma_in_use(self->cfg.cma));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	close(pipefd[0]);
	/*
	 * A task killed while exiting closes its files through the delayed
	 * fput work, so its buffers may still be on their way back after
	 * waitpid(): wait for the area to settle (generously) before comparing.
	 */
	for (i = 0; i < 30000 && hg_cma_in_use(self->cfg.cma) != base; i++)
		usleep(1000);
	EXPECT_EQ(base, hg_cma_in_use(self->cfg.cma));
}

TEST_HARNESS_MAIN
