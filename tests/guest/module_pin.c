// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen guest tests: the heap module cannot be unloaded. dma-buf heaps
 * cannot be unregistered, so the module pins itself once its heaps are
 * registered and rmmod must fail, leaving the heap working.
 *
 * Environment (see heapgen_test.h): HEAPGEN_HEAP and HEAPGEN_MODULE (the
 * test skips without them).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heapgen_test.h"
#include "kselftest_harness.h"

TEST(rmmod_refused)
{
	struct heapgen_cfg cfg;
	char path[256];
	struct stat st;
	int heap_fd, fd;
	long ret;

	hg_cfg_load(&cfg);
	if (!cfg.heap || !cfg.module)
		SKIP(return, "HEAPGEN_HEAP or HEAPGEN_MODULE is not set");
	snprintf(path, sizeof(path), "/sys/module/%s", cfg.module);
	ASSERT_EQ(0, stat(path, &st)) TH_LOG("module %s is not loaded", cfg.module);

	/* What rmmod does: a non-blocking delete_module, never forced. */
	ret = syscall(SYS_delete_module, cfg.module, O_NONBLOCK);
	ASSERT_EQ(-1, ret) TH_LOG("module %s was unloaded", cfg.module);
	EXPECT_TRUE(errno == EAGAIN || errno == EBUSY)
		TH_LOG("delete_module failed with %s", strerror(errno));

	/* Still loaded, and its heap still works. */
	EXPECT_EQ(0, stat(path, &st));
	heap_fd = hg_heap_open(&cfg);
	ASSERT_LE(0, heap_fd);
	fd = hg_alloc(heap_fd, PAGE);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, hg_find_not(fd, hg_buf_size(fd), 0));
	close(fd);
	close(heap_fd);
}

TEST_HARNESS_MAIN
