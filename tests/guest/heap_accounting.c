// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: dmem cgroup accounting. A heap whose region sets
 * `accounting = true` charges every buffer to the allocating task's cgroup,
 * under the dmem region heapgen/<region>: the charge is the bytes the buffer
 * takes from the CMA area, a request over the cgroup's dmem.max fails with
 * ENOMEM before any page is taken (counted in fail_cgroup_limit), and the
 * cgroup's usage is back to 0 once its buffers are freed.
 *
 * Each test runs in its own process (the harness forks), moves itself into a
 * fresh child cgroup of /sys/fs/cgroup (init.sh mounts cgroup2 and enables
 * the dmem controller) and back to the root before removing it.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP, HEAPGEN_CMA, HEAPGEN_GRANULE,
 * HEAPGEN_MAX_ALLOC, HEAPGEN_POOL, and HEAPGEN_ACCOUNTING: the region's dmem
 * region name, "-" when the region is not accounted (the tests skip).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

#define CGROOT "/sys/fs/cgroup"
#define MAX_BUFS 64

/* Writes @text to the file at @path; 0 or -errno. */
static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

/*
 * The value of @region in a dmem interface file (lines "<region> <value>"):
 * -1 if the file or the region is missing, -2 for "max".
 */
static long long dmem_value(const char *file, const char *region)
{
	char name[128], value[32];
	long long v = -1;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fscanf(f, "%127s %31s", name, value) == 2) {
		if (strcmp(name, region))
			continue;
		v = strcmp(value, "max") ? strtoll(value, NULL, 0) : -2;
		break;
	}
	fclose(f);
	return v;
}

FIXTURE(cgroup)
{
	struct heapgen_cfg cfg;
	const char *region;
	char dir[64];
	char path[128];
	int heap_fd;
};

FIXTURE_SETUP(cgroup)
{
	char pid[32];

	memset(self, 0, sizeof(*self));
	self->heap_fd = -1;
	hg_cfg_load(&self->cfg);
	self->region = hg_env_str("HEAPGEN_ACCOUNTING");
	if (!self->cfg.heap || !self->region)
		SKIP(return, "heap %s is not accounted",
		     self->cfg.heap ? self->cfg.heap : "?");
	ASSERT_EQ(0, access(CGROOT "/cgroup.subtree_control", W_OK))
		TH_LOG("cgroup2 is not mounted at " CGROOT);
	snprintf(self->dir, sizeof(self->dir), CGROOT "/heapgen-%d", getpid());
	ASSERT_EQ(0, mkdir(self->dir, 0755)) TH_LOG("mkdir %s: %s", self->dir, strerror(errno));
	snprintf(self->path, sizeof(self->path), "%s/cgroup.procs", self->dir);
	snprintf(pid, sizeof(pid), "%d", getpid());
	ASSERT_EQ(0, write_file(self->path, pid));
	self->heap_fd = hg_heap_open(&self->cfg);
	ASSERT_LE(0, self->heap_fd);
}

FIXTURE_TEARDOWN(cgroup)
{
	char pid[32];

	if (self->heap_fd >= 0)
		close(self->heap_fd);
	if (!self->dir[0])
		return;
	snprintf(pid, sizeof(pid), "%d", getpid());
	EXPECT_EQ(0, write_file(CGROOT "/cgroup.procs", pid));
	EXPECT_EQ(0, rmdir(self->dir)) TH_LOG("rmdir %s: %s", self->dir, strerror(errno));
}

/* The cgroup's usage of the heap's dmem region, in bytes. */
static long long usage(FIXTURE_DATA(cgroup) *self)
{
	char file[128];

	snprintf(file, sizeof(file), "%s/dmem.current", self->dir);
	return dmem_value(file, self->region);
}

/* Sets the cgroup's dmem.max for the heap's region ("max" or bytes). */
static int set_max(FIXTURE_DATA(cgroup) *self, const char *limit)
{
	char file[128], text[160];

	snprintf(file, sizeof(file), "%s/dmem.max", self->dir);
	snprintf(text, sizeof(text), "%s %s\n", self->region, limit);
	return write_file(file, text);
}

/* The region is registered: the root cgroup lists its capacity. */
TEST_F(cgroup, region_registered)
{
	long long capacity = dmem_value(CGROOT "/dmem.capacity", self->region);

	ASSERT_LT(0, capacity) TH_LOG("%s is not in " CGROOT "/dmem.capacity", self->region);
	EXPECT_EQ(0, usage(self));
	TH_LOG("%s: capacity %lld bytes", self->region, capacity);
}

/* A buffer is charged what it takes from the CMA area, until it is freed. */
TEST_F(cgroup, charge_is_the_footprint)
{
	uint64_t len = hg_pool_avoid(&self->cfg, hg_round_up(KiB(64), self->cfg.granule));
	long long before, taken, charged;
	int fd;

	ASSERT_EQ(0, usage(self));
	before = hg_cma_in_use(self->cfg.cma);
	ASSERT_LE(0, before);
	fd = hg_alloc(self->heap_fd, len);
	ASSERT_LE(0, fd) TH_LOG("allocating %llu bytes: %s", (unsigned long long)len,
				strerror(-fd));
	taken = (hg_cma_in_use(self->cfg.cma) - before) * (long long)PAGE;
	charged = usage(self);
	TH_LOG("%llu-byte buffer: %lld bytes charged, %lld taken from %s",
	       (unsigned long long)len, charged, taken, self->cfg.cma);
	EXPECT_LE((long long)len, charged);
	EXPECT_EQ(taken, charged);
	close(fd);
	EXPECT_EQ(0, usage(self));
}

/*
 * dmem.max below a request: ENOMEM, nothing taken from the area, counted;
 * buffers that fit are handed out until the next one would not.
 */
TEST_F(cgroup, max_refuses_requests_over_it)
{
	uint64_t len = hg_pool_avoid(&self->cfg, hg_round_up(KiB(64), self->cfg.granule));
	long long footprint, limit, before, limited, in_use;
	static int fds[MAX_BUFS];
	char text[32];
	int fd, n, i;

	/* One buffer's charge. */
	fd = hg_alloc(self->heap_fd, len);
	ASSERT_LE(0, fd);
	footprint = usage(self);
	close(fd);
	ASSERT_LT(0, footprint);
	ASSERT_EQ(0, usage(self));

	/* Room for three buffers and a half. */
	limit = footprint * 3 + footprint / 2;
	snprintf(text, sizeof(text), "%lld", limit);
	ASSERT_EQ(0, set_max(self, text));
	{
		char file[128];

		snprintf(file, sizeof(file), "%s/dmem.max", self->dir);
		ASSERT_EQ(limit, dmem_value(file, self->region));
	}

	/* A single request over the limit. */
	limited = hg_heap_stat(self->cfg.heap, "fail_cgroup_limit");
	ASSERT_LE(0, limited);
	in_use = hg_cma_in_use(self->cfg.cma);
	fd = hg_alloc(self->heap_fd, hg_round_up(limit + 1, self->cfg.granule));
	EXPECT_EQ(-ENOMEM, fd);
	EXPECT_EQ(limited + 1, hg_heap_stat(self->cfg.heap, "fail_cgroup_limit"));
	EXPECT_EQ(in_use, hg_cma_in_use(self->cfg.cma));
	EXPECT_EQ(0, usage(self));

	/* Three fit, the fourth does not. */
	for (n = 0; n < MAX_BUFS; n++) {
		fds[n] = hg_alloc(self->heap_fd, len);
		if (fds[n] < 0)
			break;
	}
	EXPECT_EQ(3, n);
	if (n < MAX_BUFS)
		EXPECT_EQ(-ENOMEM, fds[n]);
	EXPECT_EQ(footprint * n, usage(self));
	EXPECT_EQ(limited + 2, hg_heap_stat(self->cfg.heap, "fail_cgroup_limit"));

	/* Freeing one makes room for one. */
	close(fds[0]);
	fds[0] = hg_alloc(self->heap_fd, len);
	EXPECT_LE(0, fds[0]);
	EXPECT_EQ(footprint * n, usage(self));
	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	EXPECT_EQ(0, usage(self));

	/* Lifting the limit lets the large request through. */
	ASSERT_EQ(0, set_max(self, "max"));
	before = hg_cma_in_use(self->cfg.cma);
	fd = hg_alloc(self->heap_fd, hg_round_up(limit + 1, self->cfg.granule));
	EXPECT_LE(0, fd) TH_LOG("after lifting dmem.max: %s", strerror(-fd));
	if (fd >= 0) {
		EXPECT_LT(limit, usage(self));
		close(fd);
	}
	EXPECT_EQ(0, usage(self));
	EXPECT_EQ(before, hg_cma_in_use(self->cfg.cma));
}

/* A pooled buffer (a hit, handed out ready) is charged like any other. */
TEST_F(cgroup, pool_hits_are_charged)
{
	uint64_t len;
	long long direct;
	int fd;

	if (!self->cfg.pool_depth)
		SKIP(return, "heap %s has no pool", self->cfg.heap);
	len = self->cfg.pool_sizes[0];
	/* A use wakes a pool that an exhausted area emptied; then let it fill. */
	fd = hg_alloc(self->heap_fd, len);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, usage(self));
	ASSERT_LE(0, hg_pool_settle(NULL));
	ASSERT_LT(0, hg_heap_stat(self->cfg.heap, "pool_pages"));
	/* The charge of a larger buffer that is no pool class. */
	fd = hg_alloc(self->heap_fd, hg_pool_avoid(&self->cfg, len + 1));
	ASSERT_LE(0, fd);
	direct = usage(self);
	close(fd);
	ASSERT_EQ(0, usage(self));

	{
		long long hits = hg_heap_stat(self->cfg.heap, "pool_hits");

		fd = hg_alloc(self->heap_fd, len);
		ASSERT_LE(0, fd);
		EXPECT_EQ(hits + 1, hg_heap_stat(self->cfg.heap, "pool_hits"));
	}
	EXPECT_LE((long long)len, usage(self));
	EXPECT_GT(direct, usage(self));
	close(fd);
	EXPECT_EQ(0, usage(self));
}

/* A buffer still held when its allocating task exits is uncharged when freed. */
TEST_F(cgroup, exit_uncharges)
{
	uint64_t len = hg_round_up(KiB(64), self->cfg.granule);
	int status;
	pid_t child;

	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		/* In the same cgroup; exits holding the buffer. */
		_exit(hg_alloc(self->heap_fd, len) < 0 ? 1 : 0);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, usage(self));
}

/*
 * The dmem region charged for the pages of CMA area @area: the accounting
 * field of the first heap over @area in the run's heaps.conf that has one.
 * Returns 0 and fills @region, or -1.
 */
static int area_region(const char *area, char *region, size_t len)
{
	FILE *f = fopen(hg_conf_path(), "r");
	char line[512], cma[128], acct[128];
	int found = -1;

	if (!f)
		return -1;
	while (found && fgets(line, sizeof(line), f)) {
		if (line[0] == '#' ||
		    sscanf(line, "%*s %*s %127s %*s %*s %*s %*s %*s %*s %*s %*s %*s %127s",
			   cma, acct) != 2)
			continue;
		if (!strcmp(cma, area) && strcmp(acct, "-")) {
			snprintf(region, len, "%s", acct);
			found = 0;
		}
	}
	fclose(f);
	return found;
}

/*
 * A heap that falls back on another region's area charges that region: with
 * the fallback region's dmem.max at 0, a heap whose own area is full fails
 * with ENOMEM (counted in fail_cgroup_limit) instead of taking the fallback
 * region's memory, uncharged or charged to its own region.
 */
TEST(fallback_charges_the_fallback_region)
{
	static int fds[256];
	struct heapgen_cfg cfg;
	const char *list;
	char fb[64], region[128], dir[64], file[128], text[160], pid[32];
	long long fb_base, limited;
	uint64_t chunk;
	int heap_fd, n, i, err = 0;

	hg_cfg_load(&cfg);
	list = hg_env_str("HEAPGEN_FALLBACK");
	if (!cfg.heap || !list)
		SKIP(return, "heap %s has no fallback regions", cfg.heap ? cfg.heap : "?");
	snprintf(fb, sizeof(fb), "%.*s", (int)strcspn(list, ","), list);
	if (area_region(fb, region, sizeof(region)))
		SKIP(return, "the fallback area %s of %s is not accounted", fb, cfg.heap);

	snprintf(dir, sizeof(dir), CGROOT "/heapgen-fb-%d", getpid());
	ASSERT_EQ(0, mkdir(dir, 0755)) TH_LOG("mkdir %s: %s", dir, strerror(errno));
	snprintf(file, sizeof(file), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", getpid());
	ASSERT_EQ(0, write_file(file, pid));
	snprintf(file, sizeof(file), "%s/dmem.max", dir);
	snprintf(text, sizeof(text), "%s 0", region);
	ASSERT_EQ(0, write_file(file, text));

	chunk = MiB(4);
	if (cfg.max_alloc && chunk > cfg.max_alloc)
		chunk = cfg.max_alloc;
	chunk = hg_round_up(chunk, cfg.granule);
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);
	fb_base = hg_cma_in_use(fb);
	limited = hg_heap_stat(cfg.heap, "fail_cgroup_limit");
	for (n = 0; n < 256; n++) {
		fds[n] = hg_alloc(heap_fd, chunk);
		if (fds[n] < 0) {
			err = fds[n];
			break;
		}
	}
	EXPECT_EQ(-ENOMEM, err) TH_LOG("%d buffers of %llu bytes", n, (unsigned long long)chunk);
	EXPECT_EQ(fb_base, hg_cma_in_use(fb))
		TH_LOG("%s took memory of %s past its region's limit", cfg.heap, fb);
	EXPECT_EQ(limited + 1, hg_heap_stat(cfg.heap, "fail_cgroup_limit"));
	for (i = 0; i < n; i++)
		close(fds[i]);
	close(heap_fd);
	EXPECT_EQ(0, write_file(CGROOT "/cgroup.procs", pid));
	EXPECT_EQ(0, rmdir(dir)) TH_LOG("rmdir %s: %s", dir, strerror(errno));
}

TEST_HARNESS_MAIN
