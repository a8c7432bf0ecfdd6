// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen-bench: the guest side of `cargo xtask bench`.
 *
 *   heapgen-bench [--pressure] <ours> <upstream>
 *
 * Also installed on targets with heapgen's test suite (test/Makefile):
 * <ours> is a heap of the board's module, <upstream> a heap over the same CMA
 * area that is not (upstream's CMA heap of the area, whose node the generated
 * rules close: open it for the run), and both need room for 16 MiB buffers.
 * B3 needs the test importer (tests/kernel/importer) and B5 a heap with a
 * pool; without them those rows are left out, unless HEAPGEN_BENCH_ALL_ROWS is
 * set (the test bed sets it), which makes a row left out an error.
 *
 * Compares two dma-buf heaps on the same CMA area in the same boot: heap A
 * (ours, a generated heap) and heap B (upstream's CMA heap). Every timed row
 * interleaves the heaps A/B/B/A in each repetition, after a warm-up, so that
 * drift over the run hits both heaps alike. Times come from
 * clock_gettime(CLOCK_MONOTONIC) (the vDSO over the TSC) or, for B3, from
 * ktime_get_ns() inside the test importer; under QEMU -icount they count
 * guest instructions, not time.
 *
 * Output, one line per row (parsed by xtask/src/bench.rs):
 *   BENCH row=<id> op=<what> size=<bytes> heap=<ours|upstream|-> n=<samples>
 *         median_ns=<> p90_ns=<> min_ns=<> mean_ns=<>
 *   BENCH row=B4 op=capacity heap=<> pass=<> buffers=<> bytes=<> allocs=<>
 *         frees=<> failed_len=<> errno=<>
 * and BENCH-ERROR lines on anything unexpected (the run then fails).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/klog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-heap.h>

#include "heapgen_importer.h"

#define KiB (1024UL)
#define MiB (1024UL * 1024UL)
#define PAGE 4096UL

/* Repetitions (each one A/B/B/A, so two samples per heap) and warm-ups. */
#define REPS		200
#define REPS_16M	50
#define REPS_B2		30
#define WARMUP		5
#define REPS_SYSCALL	2000

static int errors;

#define bench_error(fmt, ...)                                                  \
	do {                                                                   \
		printf("BENCH-ERROR " fmt "\n", ##__VA_ARGS__);                \
		fflush(stdout);                                                \
		errors++;                                                      \
	} while (0)

struct heap {
	const char *label;	/* "ours" or "upstream" */
	const char *name;	/* /dev/dma_heap/<name> */
	int fd;
};

static struct heap heaps[2];

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Prints one timed row: median, p90 (nearest rank), min and mean. */
static void report(const char *row, const char *op, size_t size,
		   const char *heap, uint64_t *v, size_t n)
{
	uint64_t sum = 0;
	size_t i, p90;

	if (!n) {
		bench_error("row=%s op=%s heap=%s: no samples", row, op, heap);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	for (i = 0; i < n; i++)
		sum += v[i];
	p90 = (n * 9 + 9) / 10 - 1;	/* nearest rank: ceil(0.9 n) - 1 */
	printf("BENCH row=%s op=%s size=%zu heap=%s n=%zu median_ns=%llu p90_ns=%llu min_ns=%llu mean_ns=%llu\n",
	       row, op, size, heap, n,
	       (unsigned long long)(n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2),
	       (unsigned long long)v[p90], (unsigned long long)v[0],
	       (unsigned long long)(sum / n));
	fflush(stdout);
}

static int heap_alloc(const struct heap *h, size_t len)
{
	struct dma_heap_allocation_data data = {
		.len = len,
		.fd_flags = O_RDWR | O_CLOEXEC,
	};

	if (ioctl(h->fd, DMA_HEAP_IOCTL_ALLOC, &data) < 0)
		return -errno;
	return (int)data.fd;
}

/* The heap of slot @k (0..3) of an A/B/B/A repetition. */
static inline int abba(int k)
{
	return k == 0 || k == 3 ? 0 : 1;
}

static uint64_t *samples(size_t n)
{
	uint64_t *v = calloc(n, sizeof(*v));

	if (!v) {
		printf("BENCH-ERROR out of memory\n");
		exit(1);
	}
	return v;
}

/* B1: allocate + free, and allocation alone, of @size. */
static void bench_alloc(size_t size, int reps)
{
	uint64_t *alloc[2] = { samples(2 * reps), samples(2 * reps) };
	uint64_t *total[2] = { samples(2 * reps), samples(2 * reps) };
	size_t n[2] = { 0, 0 };
	int r, k;

	for (r = -WARMUP; r < reps; r++) {
		for (k = 0; k < 4; k++) {
			int h = abba(k);
			uint64_t t0, t1, t2;
			int fd;

			t0 = now_ns();
			fd = heap_alloc(&heaps[h], size);
			t1 = now_ns();
			if (fd < 0) {
				bench_error("B1 %s: allocating %zu: %s", heaps[h].name, size,
					    strerror(-fd));
				return;
			}
			close(fd);
			t2 = now_ns();
			if (r >= 0) {
				alloc[h][n[h]] = t1 - t0;
				total[h][n[h]] = t2 - t0;
				n[h]++;
			}
		}
	}
	for (k = 0; k < 2; k++) {
		report("B1", "alloc+free", size, heaps[k].label, total[k], n[k]);
		report("B1a", "alloc", size, heaps[k].label, alloc[k], n[k]);
		free(alloc[k]);
		free(total[k]);
	}
}

/* B2: mmap + write one byte to every page (and, separately, munmap). */
static void bench_mmap(size_t size, int reps)
{
	uint64_t *touch[2] = { samples(2 * reps), samples(2 * reps) };
	uint64_t *unmap[2] = { samples(2 * reps), samples(2 * reps) };
	size_t n[2] = { 0, 0 };
	int fds[2], r, k;

	for (k = 0; k < 2; k++) {
		fds[k] = heap_alloc(&heaps[k], size);
		if (fds[k] < 0) {
			bench_error("B2 %s: allocating %zu: %s", heaps[k].name, size,
				    strerror(-fds[k]));
			return;
		}
	}
	for (r = -2; r < reps; r++) {
		for (k = 0; k < 4; k++) {
			int h = abba(k);
			volatile unsigned char *p;
			uint64_t t0, t1, t2;
			size_t off;

			t0 = now_ns();
			p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[h], 0);
			if (p == MAP_FAILED) {
				bench_error("B2 %s: mmap: %s", heaps[h].name, strerror(errno));
				return;
			}
			for (off = 0; off < size; off += PAGE)
				p[off] = (unsigned char)off;
			t1 = now_ns();
			munmap((void *)p, size);
			t2 = now_ns();
			if (r >= 0) {
				touch[h][n[h]] = t1 - t0;
				unmap[h][n[h]] = t2 - t1;
				n[h]++;
			}
		}
	}
	for (k = 0; k < 2; k++) {
		report("B2", "mmap+touch", size, heaps[k].label, touch[k], n[k]);
		report("B2u", "munmap", size, heaps[k].label, unmap[k], n[k]);
		close(fds[k]);
		free(touch[k]);
		free(unmap[k]);
	}
}

/* B3: attach + map + unmap + detach by the test importer, timed in the kernel. */
static void bench_import(int imp, size_t size, int reps)
{
	enum { TOTAL, ATTACH, MAP, UNMAP, DETACH, IOCTL, NPHASES };
	static const char *const ops[NPHASES] = {
		"attach+map+unmap+detach", "attach", "map", "unmap", "detach", "ioctl",
	};
	static const char *const rows[NPHASES] = {
		"B3", "B3.attach", "B3.map", "B3.unmap", "B3.detach", "B3.ioctl",
	};
	uint64_t *v[2][NPHASES];
	size_t n[2] = { 0, 0 };
	int fds[2], r, k, ph;

	for (k = 0; k < 2; k++) {
		for (ph = 0; ph < NPHASES; ph++)
			v[k][ph] = samples(2 * reps);
		fds[k] = heap_alloc(&heaps[k], size);
		if (fds[k] < 0) {
			bench_error("B3 %s: allocating %zu: %s", heaps[k].name, size,
				    strerror(-fds[k]));
			return;
		}
	}
	for (r = -WARMUP; r < reps; r++) {
		for (k = 0; k < 4; k++) {
			int h = abba(k);
			struct heapgen_time_import arg = {
				.fd = fds[h],
				.dir = HEAPGEN_DIR_BIDIRECTIONAL,
			};
			uint64_t t0, t1;

			t0 = now_ns();
			if (ioctl(imp, HEAPGEN_TIME_IMPORT, &arg) < 0) {
				bench_error("B3 %s: HEAPGEN_TIME_IMPORT: %s", heaps[h].name,
					    strerror(errno));
				return;
			}
			t1 = now_ns();
			if (r < 0)
				continue;
			v[h][TOTAL][n[h]] = arg.attach_ns + arg.map_ns + arg.unmap_ns + arg.detach_ns;
			v[h][ATTACH][n[h]] = arg.attach_ns;
			v[h][MAP][n[h]] = arg.map_ns;
			v[h][UNMAP][n[h]] = arg.unmap_ns;
			v[h][DETACH][n[h]] = arg.detach_ns;
			v[h][IOCTL][n[h]] = t1 - t0;
			n[h]++;
		}
	}
	for (k = 0; k < 2; k++) {
		for (ph = 0; ph < NPHASES; ph++) {
			report(rows[ph], ops[ph], size, heaps[k].label, v[k][ph], n[k]);
			free(v[k][ph]);
		}
		close(fds[k]);
	}
}

/* xorshift64*: the B4 workload's seeded generator. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

#define B4_SEED		0x6865617067656eULL	/* "heapgen" */
#define B4_MAX_LIVE	8192
#define B4_MAX_STEPS	200000
#define B4_FREE_PERCENT	30
#define B4_SEEDS	9

/*
 * The B4 size mix: small buffers, power-of-two buffers and sizes just above
 * a power of two (where an order-of-size alignment wastes the most).
 */
static const size_t b4_sizes[] = {
	4 * KiB, 12 * KiB, 64 * KiB, 100 * KiB, 260 * KiB, 600 * KiB,
	1 * MiB, 1 * MiB + 64 * KiB, 1 * MiB + 512 * KiB, 2 * MiB + 4 * KiB,
	3 * MiB, 4 * MiB + 4 * KiB,
};

/*
 * B4: one seeded workload of allocations with interleaved frees of random
 * live buffers, until the first allocation fails. Reports how many buffers
 * and bytes were live at that point. The request sequence depends only on
 * the seed and on which requests succeeded, so both heaps see the same
 * sequence up to the first failure.
 */
static void bench_capacity(int h, int pass, uint64_t seed)
{
	static int live[B4_MAX_LIVE];
	static size_t live_len[B4_MAX_LIVE];
	size_t nlive = 0, bytes = 0, allocs = 0, frees = 0, failed_len = 0, i;
	int err = 0;
	long step;

	rng_state = seed;
	for (step = 0; step < B4_MAX_STEPS; step++) {
		uint64_t x = rng();

		if (nlive && x % 100 < B4_FREE_PERCENT) {
			size_t victim = (x >> 8) % nlive;

			close(live[victim]);
			bytes -= live_len[victim];
			live[victim] = live[nlive - 1];
			live_len[victim] = live_len[nlive - 1];
			nlive--;
			frees++;
		} else {
			size_t len = b4_sizes[(x >> 8) % (sizeof(b4_sizes) / sizeof(b4_sizes[0]))];
			int fd;

			if (nlive == B4_MAX_LIVE) {
				bench_error("B4 %s: more than %d live buffers", heaps[h].name,
					    B4_MAX_LIVE);
				break;
			}
			fd = heap_alloc(&heaps[h], len);
			if (fd < 0) {
				err = -fd;
				failed_len = len;
				break;
			}
			live[nlive] = fd;
			live_len[nlive] = len;
			nlive++;
			bytes += len;
			allocs++;
		}
	}
	if (err != ENOMEM)
		bench_error("B4 %s: the workload ended with %s, not ENOMEM", heaps[h].name,
			    err ? strerror(err) : "no failure");
	printf("BENCH row=B4 op=capacity heap=%s pass=%d buffers=%zu bytes=%zu allocs=%zu frees=%zu failed_len=%zu errno=%d\n",
	       heaps[h].label, pass, nlive, bytes, allocs, frees, failed_len, err);
	fflush(stdout);
	for (i = 0; i < nlive; i++)
		close(live[i]);
}

/* L: memset of the same sizes in userspace (the emulator's price of stores). */
static void bench_memset(size_t size, int reps)
{
	uint64_t *v = samples(reps);
	unsigned char *buf = malloc(size);
	int r;

	if (!buf) {
		bench_error("L: malloc %zu", size);
		return;
	}
	memset(buf, 1, size);	/* fault it in */
	for (r = -WARMUP; r < reps; r++) {
		uint64_t t0 = now_ns();

		memset(buf, r & 0xff, size);
		__asm__ volatile("" : : "r"(buf) : "memory");
		if (r >= 0)
			v[r] = now_ns() - t0;
	}
	report("L", "memset", size, "-", v, reps);
	free(buf);
	free(v);
}

/* S: a null system call, and C: two back-to-back clock reads. */
static void bench_syscall(void)
{
	uint64_t *s = samples(REPS_SYSCALL), *c = samples(REPS_SYSCALL);
	int r;

	for (r = -WARMUP; r < REPS_SYSCALL; r++) {
		uint64_t t0 = now_ns(), t1, t2;

		syscall(SYS_getppid);
		t1 = now_ns();
		t2 = now_ns();
		if (r >= 0) {
			s[r] = t1 - t0;
			c[r] = t2 - t1;
		}
	}
	report("S", "getppid", 0, "-", s, REPS_SYSCALL);
	report("C", "clock_gettime", 0, "-", c, REPS_SYSCALL);
	free(s);
	free(c);
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	if (fd < 0 || write(fd, "2", 1) != 1)
		bench_error("drop_caches: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * B5's size: the bench board's pool class (tests/bench/qemu-x86_64-bench.toml),
 * or on a target one of the heap's pool sizes, in bytes, from
 * HEAPGEN_BENCH_POOL_SIZE.
 */
static size_t pooled_size(void)
{
	const char *s = getenv("HEAPGEN_BENCH_POOL_SIZE");

	return s && *s ? strtoull(s, NULL, 0) : 2 * MiB;
}

static long long pool_stat(const char *heap, const char *name)
{
	char path[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/heapgen/%s/%s", heap, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/*
 * B5: allocation alone of a pooled size, each one with our pool idle (its
 * work item has refilled and zeroed in the background, as between frames of
 * a real workload); upstream zeroes on the allocation path. Every one of our
 * allocations must be a pool hit.
 */
static void bench_pooled(size_t size, int reps)
{
	uint64_t *alloc[2] = { samples(2 * reps), samples(2 * reps) };
	long long hits = -1;
	size_t n[2] = { 0, 0 };
	int r, k, want = 0;

	/* The warm-up refills a pool that B4's exhaustion emptied. */
	for (r = -WARMUP; r < reps; r++) {
		if (r == 0)
			hits = pool_stat(heaps[0].name, "pool_hits");
		for (k = 0; k < 4; k++) {
			int h = abba(k);
			uint64_t t0, t1;
			int fd, waited = 0;

			while (pool_stat(heaps[0].name, "pool_pending") > 0 && waited++ < 100000)
				usleep(100);
			t0 = now_ns();
			fd = heap_alloc(&heaps[h], size);
			t1 = now_ns();
			if (fd < 0) {
				bench_error("B5 %s: allocating %zu: %s", heaps[h].name, size,
					    strerror(-fd));
				return;
			}
			close(fd);
			if (r >= 0) {
				want += h == 0;
				alloc[h][n[h]] = t1 - t0;
				n[h]++;
			}
		}
	}
	if (hits < 0 || pool_stat(heaps[0].name, "pool_hits") - hits != want)
		bench_error("B5 %s: %lld of %d allocations were pool hits (is %zu one of the pool's sizes? HEAPGEN_BENCH_POOL_SIZE sets it)",
			    heaps[0].name, pool_stat(heaps[0].name, "pool_hits") - hits, want,
			    size);
	for (k = 0; k < 2; k++) {
		report("B5", "pooled-alloc", size, heaps[k].label, alloc[k], n[k]);
		free(alloc[k]);
	}
}

/*
 * B6: a camera-like workload on a busy CMA area. The area is first lent to
 * movable memory: a filler process touches anonymous memory until the free
 * CMA pages (CmaFree in /proc/meminfo) are below a sixteenth of the area or
 * free memory is down to B6_FLOOR, gives back chunks until B6_SPARE is free
 * (room for the pages the heaps' allocations migrate out of the area, so that
 * nothing runs out of memory), and keeps churning the rest (unmapping and
 * touching again a chunk every few milliseconds), so that pages the heaps
 * free are lent out again; it pins one in every B6_PIN_STRIDE of its pages
 * that lie in the area (found through /proc/self/pagemap, the area's place
 * from the boot log) as an I/O in flight does, and moves the pins every
 * B6_REPIN_US (migration fails on them while they are held: transient
 * failures). Then
 * each heap allocates B6_FRAMES buffers of B6_SIZE at a frame interval,
 * keeping B6_LIVE alive, the heaps interleaved A/B/B/A frame by frame. Each
 * allocation starts with our headroom idle (its refill, queued 10 ms after a
 * request, runs in the frame interval), so that neither heap's figure holds
 * the other's background work.
 *
 *   BENCH row=B6 op=camera-alloc size=<> heap=<> n=<successes> median_ns=<>
 *         p90_ns=<> min_ns=<> mean_ns=<> p99_ns=<> max_ns=<> fails=<>
 *         enomem=<>
 *
 * Failed allocations are timed too (a failure is as late as the slowest
 * success); fails counts them. B6 changes the guest's memory for the rest of
 * the boot, so it runs alone (`heapgen-bench --pressure`).
 */
#define B6_SIZE		(8 * MiB)
#define B6_LIVE		3
#define B6_FRAMES	60
#define B6_FRAME_US	33000
#define B6_FLOOR	(24 * MiB)
#define B6_SPARE	(144 * MiB)
#define B6_CHUNK	(4 * MiB)
#define B6_CHURN_US	5000
#define B6_PIN_STRIDE	256
#define B6_REPIN_US	20000
#define B6_MAX_CHUNKS	1024
#define B6_WAIT_MAX	10000	/* ms waited for the headroom over the whole run */

/* A /proc/meminfo field in kB, or -1. */
static long meminfo(const char *key)
{
	char line[256];
	size_t len = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, len) && line[len] == ':') {
			v = strtol(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static void *b6_chunk(void)
{
	void *p = mmap(NULL, B6_CHUNK, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0x5a, B6_CHUNK);
	return p;
}

/* The CMA area's first page frame and page count, from the boot log. */
static int cma_range(uint64_t *base_pfn, uint64_t *pages)
{
	static char log[1 << 20];
	unsigned long long mib, base;
	int len = klogctl(3, log, sizeof(log) - 1);	/* SYSLOG_ACTION_READ_ALL */
	char *p;

	if (len <= 0)
		return -1;
	log[len] = 0;
	p = strstr(log, "cma: Reserved ");
	if (!p || sscanf(p, "cma: Reserved %llu MiB at %llx", &mib, &base) != 2)
		return -1;
	*base_pfn = base / PAGE;
	*pages = mib * MiB / PAGE;
	return 0;
}

/* Pages of the chunk at @addr in the CMA area (their frames from pagemap). */
static size_t cma_pages_of(int pagemap, void *addr, uint64_t base, uint64_t count,
			   uint64_t *first)
{
	static uint64_t entries[B6_CHUNK / PAGE];
	size_t i, in = 0;

	*first = UINT64_MAX;
	if (pread(pagemap, entries, sizeof(entries),
		  (uintptr_t)addr / PAGE * sizeof(uint64_t)) != sizeof(entries))
		return 0;
	for (i = 0; i < B6_CHUNK / PAGE; i++) {
		uint64_t pfn = entries[i] & ((1ULL << 55) - 1);

		if ((entries[i] >> 63) && pfn >= base && pfn < base + count) {
			if (*first == UINT64_MAX)
				*first = i;
			in++;
		}
	}
	return in;
}

/* Pins one in every B6_PIN_STRIDE of the filler's pages in the CMA area, from @offset. */
static void b6_pin(int imp, int pagemap, void **chunks, size_t n, uint64_t base,
		   uint64_t count, uint32_t offset)
{
	static uint64_t entries[B6_CHUNK / PAGE];
	uint64_t seen = 0;
	size_t c, i;

	for (c = 0; c < n; c++) {
		if (pread(pagemap, entries, sizeof(entries),
			  (uintptr_t)chunks[c] / PAGE * sizeof(uint64_t)) != sizeof(entries))
			continue;
		for (i = 0; i < B6_CHUNK / PAGE; i++) {
			uint64_t pfn = entries[i] & ((1ULL << 55) - 1);
			struct heapgen_pin pin = {
				.addr = (uintptr_t)chunks[c] + i * PAGE,
				.len = PAGE,
				.stride = 1,
			};

			if (!(entries[i] >> 63) || pfn < base || pfn >= base + count)
				continue;
			if (seen++ % B6_PIN_STRIDE == offset)
				ioctl(imp, HEAPGEN_PIN, &pin);
		}
	}
}

/*
 * The filler: runs until killed. Writes one byte to @ready once the area is
 * lent out (0 on success, 1 on failure).
 */
static void b6_filler(int ready)
{
	static void *chunks[B6_MAX_CHUNKS];
	size_t n = 0, next = 0, i, lent;
	uint64_t pinned_at = 0, base = 0, count = 0, first;
	uint32_t offset = 0;
	long total = meminfo("CmaTotal");
	int imp = open(HEAPGEN_IMPORTER_DEV, O_RDWR | O_CLOEXEC);
	int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int adj = open("/proc/self/oom_score_adj", O_WRONLY);
	char ok = 0;

	/* If memory runs out after all, the filler goes, not the benchmark. */
	if (adj >= 0) {
		if (write(adj, "1000", 4) != 4)
			ok = 1;
		close(adj);
	}
	if (total <= 0 || imp < 0 || pagemap < 0 || cma_range(&base, &count))
		ok = 1;
	while (!ok && n < B6_MAX_CHUNKS && meminfo("CmaFree") > total / 16 &&
	       meminfo("MemFree") > (long)(B6_FLOOR / KiB)) {
		chunks[n] = b6_chunk();
		if (!chunks[n])
			break;
		n++;
	}
	/*
	 * Room for what the heaps will migrate out of the area: chunks with no
	 * page in it go first, so that the area stays lent out.
	 */
	for (i = 0; i < n && meminfo("MemFree") < (long)(B6_SPARE / KiB);) {
		if (cma_pages_of(pagemap, chunks[i], base, count, &first)) {
			i++;
			continue;
		}
		munmap(chunks[i], B6_CHUNK);
		chunks[i] = chunks[--n];
	}
	while (n > 1 && meminfo("MemFree") < (long)(B6_SPARE / KiB))
		munmap(chunks[--n], B6_CHUNK);
	for (i = 0, lent = 0; i < n; i++)
		lent += cma_pages_of(pagemap, chunks[i], base, count, &first);
	printf("BENCH-INFO b6-area base_pfn=%llu pages=%llu lent_to_filler=%zu\n",
	       (unsigned long long)base, (unsigned long long)count, lent);
	fflush(stdout);
	if (!n)
		ok = 1;
	if (write(ready, &ok, 1) != 1 || ok)
		_exit(1);
	for (;;) {
		/* Churn: one chunk unmapped and touched again. */
		munmap(chunks[next], B6_CHUNK);
		chunks[next] = b6_chunk();
		if (!chunks[next])
			_exit(1);
		next = (next + 1) % n;
		/* In-flight I/O: move the pins. */
		if (now_ns() - pinned_at >= B6_REPIN_US * 1000ULL) {
			ioctl(imp, HEAPGEN_UNPIN);
			offset = (offset + 1) % B6_PIN_STRIDE;
			b6_pin(imp, pagemap, chunks, n, base, count, offset);
			pinned_at = now_ns();
		}
		usleep(B6_CHURN_US);
	}
}

/* Our heap's counters B6 reports (debugfs; -1 when absent). */
static const char *const b6_counters[] = {
	"headroom_hits", "headroom_misses", "headroom_pages", "headroom_refills",
	"headroom_refill_failures", "headroom_drained", "fail_no_space", "fail_busy",
};

static void bench_pressure(void)
{
	uint64_t *lat[2] = { samples(B6_FRAMES), samples(B6_FRAMES) };
	int ring[2][B6_LIVE], fails[2] = { 0, 0 }, enomem[2] = { 0, 0 };
	size_t n[2] = { 0, 0 };
	int pipefd[2], f, k, i, waited = 0;
	pid_t filler;
	char ok = 1;

	for (k = 0; k < 2; k++)
		for (i = 0; i < B6_LIVE; i++)
			ring[k][i] = -1;
	if (pipe(pipefd)) {
		bench_error("B6: pipe: %s", strerror(errno));
		return;
	}
	filler = fork();
	if (filler == 0) {
		close(pipefd[0]);
		b6_filler(pipefd[1]);
		_exit(1);
	}
	close(pipefd[1]);
	if (filler < 0 || read(pipefd[0], &ok, 1) != 1 || ok) {
		bench_error("B6: the filler could not lend the area out (CmaTotal %ld kB)",
			    meminfo("CmaTotal"));
		if (filler > 0)
			kill(filler, SIGKILL);
		return;
	}
	close(pipefd[0]);
	printf("BENCH-INFO b6-lent CmaTotal=%ld CmaFree=%ld MemFree=%ld kB\n",
	       meminfo("CmaTotal"), meminfo("CmaFree"), meminfo("MemFree"));
	for (f = 0; f < B6_FRAMES; f++) {
		for (k = 0; k < 4; k++) {
			/* A/B/B/A over pairs of frames. */
			int h = (f % 2) ? 1 - abba(k) : abba(k);
			int *slot = &ring[h][f % B6_LIVE];
			uint64_t t0, t1;
			int fd;

			if (k == 1 || k == 3)
				continue;	/* one allocation per heap and frame */
			if (*slot >= 0) {
				close(*slot);
				*slot = -1;
			}
			/*
			 * Our headroom's refill runs between frames; wait
			 * until it is idle, so that neither heap's figure
			 * holds the other's background work.
			 */
			while (pool_stat(heaps[0].name, "headroom_pending") > 0 &&
			       waited < B6_WAIT_MAX) {
				usleep(1000);
				waited++;
			}
			t0 = now_ns();
			fd = heap_alloc(&heaps[h], B6_SIZE);
			t1 = now_ns();
			lat[h][n[h]++] = t1 - t0;
			if (fd < 0) {
				fails[h]++;
				enomem[h] += fd == -ENOMEM;
			} else {
				*slot = fd;
			}
		}
		usleep(B6_FRAME_US);
	}
	kill(filler, SIGKILL);
	waitpid(filler, NULL, 0);
	if (waited >= B6_WAIT_MAX)
		bench_error("B6: the headroom of %s never became idle", heaps[0].name);
	printf("BENCH-INFO b6-waited-ms %d\n", waited);
	printf("BENCH-INFO b6-ours");
	for (i = 0; i < (int)(sizeof(b6_counters) / sizeof(b6_counters[0])); i++)
		printf(" %s=%lld", b6_counters[i], pool_stat(heaps[0].name, b6_counters[i]));
	printf("\n");
	for (k = 0; k < 2; k++) {
		uint64_t sum = 0;
		size_t p90, p99, m = n[k];

		for (i = 0; i < B6_LIVE; i++)
			if (ring[k][i] >= 0)
				close(ring[k][i]);
		qsort(lat[k], m, sizeof(uint64_t), cmp_u64);
		for (i = 0; i < (int)m; i++)
			sum += lat[k][i];
		p90 = (m * 9 + 9) / 10 - 1;
		p99 = (m * 99 + 99) / 100 - 1;
		printf("BENCH row=B6 op=camera-alloc size=%lu heap=%s n=%zu median_ns=%llu p90_ns=%llu min_ns=%llu mean_ns=%llu p99_ns=%llu max_ns=%llu fails=%d enomem=%d\n",
		       B6_SIZE, heaps[k].label, m,
		       (unsigned long long)(m % 2 ? lat[k][m / 2] : (lat[k][m / 2 - 1] + lat[k][m / 2]) / 2),
		       (unsigned long long)lat[k][p90], (unsigned long long)lat[k][0],
		       (unsigned long long)(sum / m), (unsigned long long)lat[k][p99],
		       (unsigned long long)lat[k][m - 1], fails[k], enomem[k]);
		free(lat[k]);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const size_t b1_sizes[] = { 4 * KiB, 64 * KiB, 1 * MiB, 4 * MiB, 16 * MiB };
	char path[256];
	size_t i;
	int k, imp;

	int pressure = argc == 4 && !strcmp(argv[1], "--pressure");

	if (pressure) {
		argv++;
		argc--;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: %s [--pressure] <our heap> <upstream heap>\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	heaps[0] = (struct heap){ .label = "ours", .name = argv[1] };
	heaps[1] = (struct heap){ .label = "upstream", .name = argv[2] };
	for (k = 0; k < 2; k++) {
		snprintf(path, sizeof(path), "/dev/dma_heap/%s", heaps[k].name);
		heaps[k].fd = open(path, O_RDONLY | O_CLOEXEC);
		if (heaps[k].fd < 0) {
			printf("BENCH-ERROR open %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	imp = open(HEAPGEN_IMPORTER_DEV, O_RDWR | O_CLOEXEC);
	if (imp < 0 && getenv("HEAPGEN_BENCH_ALL_ROWS")) {
		printf("BENCH-ERROR open %s: %s\n", HEAPGEN_IMPORTER_DEV, strerror(errno));
		return 1;
	}

	if (pressure) {
		printf("# B6\n");
		bench_pressure();
		goto out;
	}
	printf("# S and C: calibration\n");
	bench_syscall();
	for (i = 0; i < sizeof(b1_sizes) / sizeof(b1_sizes[0]); i++) {
		size_t size = b1_sizes[i];
		int reps = size >= 16 * MiB ? REPS_16M : REPS;

		printf("# B1 and L: %zu bytes\n", size);
		bench_memset(size, reps);
		bench_alloc(size, reps);
	}
	printf("# B2\n");
	bench_mmap(16 * MiB, REPS_B2);
	if (imp >= 0) {
		printf("# B3\n");
		bench_import(imp, 1 * MiB, REPS);
		bench_import(imp, 16 * MiB, REPS_16M);
	} else {
		printf("# B3 left out: no test importer (%s)\n", HEAPGEN_IMPORTER_DEV);
	}
	printf("# B4\n");
	/*
	 * Capacity is about placement: our pool's buffers go back to CMA first
	 * (the shrinkers run on drop_caches), and B4's random sizes never hit
	 * the 2M class exactly, so the pool stays empty until B5.
	 */
	drop_caches();
	/*
	 * One workload is one draw of the size sequence: run B4_SEEDS seeds
	 * ("pass" is the seed's index), alternating which heap goes first.
	 */
	for (k = 0; k < B4_SEEDS; k++) {
		uint64_t seed = B4_SEED + (uint64_t)k * 0x9e3779b97f4a7c15ULL;

		bench_capacity(k % 2, k, seed);
		bench_capacity(1 - k % 2, k, seed);
	}
	printf("# B5\n");
	/* A heap without a pool (no pool counters) has no B5, as on most targets. */
	if (pool_stat(heaps[0].name, "pool_hits") < 0 && getenv("HEAPGEN_BENCH_ALL_ROWS"))
		bench_error("B5 %s: no pool counters", heaps[0].name);
	else if (pool_stat(heaps[0].name, "pool_hits") < 0)
		printf("# B5 left out: heap %s has no pool\n", heaps[0].name);
	else
		bench_pooled(pooled_size(), REPS);
out:
	if (imp >= 0)
		close(imp);
	for (k = 0; k < 2; k++)
		close(heaps[k].fd);
	printf("BENCH-DONE errors=%d\n", errors);
	return errors ? 1 : 0;
}
