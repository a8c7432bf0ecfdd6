// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen demo: allocate one buffer from every heap in /dev/dma_heap and print a table row
 * per heap: its size as the dma-buf reports it, whether it came back zeroed, and whether a
 * write through mmap reads back. Used by `cargo xtask demo`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/dma-heap.h>

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void demo(const char *heap, size_t len)
{
	char path[256];
	struct dma_heap_allocation_data data = {
		.len = len,
		.fd_flags = O_RDWR | O_CLOEXEC,
	};
	int heap_fd, ret;
	off_t size;
	unsigned char *p;
	size_t i, nonzero = 0;

	snprintf(path, sizeof(path), "/dev/dma_heap/%s", heap);
	heap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (heap_fd < 0) {
		printf("DEMO %s open-failed:%s\n", heap, strerror(errno));
		return;
	}
	ret = ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &data);
	close(heap_fd);
	if (ret < 0) {
		printf("DEMO %s alloc-failed:%s\n", heap, strerror(errno));
		return;
	}
	size = lseek(data.fd, 0, SEEK_END);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, data.fd, 0);
	if (p == MAP_FAILED) {
		printf("DEMO %s %lld mmap-failed:%s\n", heap, (long long)size, strerror(errno));
		close(data.fd);
		return;
	}
	for (i = 0; i < (size_t)size; i++)
		nonzero += p[i] != 0;
	memset(p, 0xa5, size);
	printf("DEMO %s %lld %s %s\n", heap, (long long)size, nonzero ? "NOT-ZEROED" : "zeroed",
	       p[size - 1] == 0xa5 ? "read-back-ok" : "read-back-FAILED");
	munmap(p, size);
	close(data.fd);
}

int main(int argc, char **argv)
{
	size_t len = argc > 1 ? strtoul(argv[1], NULL, 0) : 1 << 20;
	char *names[256];
	int n = 0, i;
	struct dirent *e;
	DIR *d = opendir("/dev/dma_heap");

	if (!d) {
		perror("/dev/dma_heap");
		return 1;
	}
	while ((e = readdir(d)) && n < 256)
		if (e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);
	for (i = 0; i < n; i++)
		demo(names[i], len);
	return 0;
}
