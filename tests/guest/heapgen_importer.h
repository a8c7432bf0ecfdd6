/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * heapgen test importer: the uapi of /dev/heapgen_importer.
 *
 * A test-only module (tests/kernel/importer) that plays a DMA device: hand
 * it a dma-buf fd and it attaches, maps and reports the scatterlist, writes
 * past the end of a buffer like an overrunning device, or vmaps the buffer.
 * Shared by the module and the guest test programs.
 *
 * There is no IOMMU in the test bed: DMA addresses are physical addresses.
 */
#ifndef _UAPI_HEAPGEN_IMPORTER_H
#define _UAPI_HEAPGEN_IMPORTER_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define HEAPGEN_IMPORTER_DEV		"/dev/heapgen_importer"

/* Values of the @dir fields: enum dma_data_direction. */
#define HEAPGEN_DIR_BIDIRECTIONAL	0
#define HEAPGEN_DIR_TO_DEVICE		1
#define HEAPGEN_DIR_FROM_DEVICE		2
/* HEAPGEN_IMPORT: import as a device whose segments are at most 64 KiB (the
 * DMA API's default maximum segment size), or'ed into @dir. */
#define HEAPGEN_IMPORT_SMALL_SEGMENTS	(1U << 16)

/* Number of scatterlist entries HEAPGEN_IMPORT reports in detail. */
#define HEAPGEN_IMPORT_MAX_ENTRIES	16

struct heapgen_sg_entry {
	__u64 dma_addr;
	__u64 len;
};

/**
 * struct heapgen_import - HEAPGEN_IMPORT argument
 * @fd:		in: dma-buf fd
 * @dir:	in: DMA direction (HEAPGEN_DIR_*)
 * @nents:	out: DMA-mapped scatterlist entries (sg_table.nents)
 * @orig_nents:	out: CPU scatterlist entries (sg_table.orig_nents)
 * @size:	out: the dma-buf's size
 * @total_len:	out: sum of the DMA lengths of all @nents entries
 * @entries:	out: DMA address and length of the first
 *		HEAPGEN_IMPORT_MAX_ENTRIES entries
 *
 * Attaches the importer's device, maps the attachment, reports it, then
 * unmaps and detaches.
 */
struct heapgen_import {
	__s32 fd;
	__u32 dir;
	__u32 nents;
	__u32 orig_nents;
	__u64 size;
	__u64 total_len;
	struct heapgen_sg_entry entries[HEAPGEN_IMPORT_MAX_ENTRIES];
};

/* HEAPGEN_POKE_PAST flags */
#define HEAPGEN_POKE_BEFORE	(1U << 0)	/* poke before the start instead */

/**
 * struct heapgen_poke - HEAPGEN_POKE_PAST argument
 * @fd:		in: dma-buf fd
 * @flags:	in: HEAPGEN_POKE_*
 * @offset:	in: bytes past the end (0 is the first byte after the buffer),
 *		or with HEAPGEN_POKE_BEFORE bytes before the start (0 is the
 *		last byte before the buffer); must be below 4096
 * @value:	in: the byte written
 * @phys:	out: physical address written
 *
 * Attaches and maps the buffer (DMA_FROM_DEVICE), then writes @value
 * through the kernel linear map just outside the mapped range, as a device
 * overrunning its buffer would, then unmaps and detaches. Only meaningful on
 * a heap with guard pages: elsewhere it corrupts a neighbour.
 */
struct heapgen_poke {
	__s32 fd;
	__u32 flags;
	__u32 offset;
	__u32 value;
	__u64 phys;
};

/* HEAPGEN_VMAP flags */
#define HEAPGEN_VMAP_WRITE	(1U << 0)	/* write @write_head after reading */

/**
 * struct heapgen_vmap - HEAPGEN_VMAP argument
 * @fd:		in: dma-buf fd
 * @flags:	in: HEAPGEN_VMAP_*
 * @write_head:	in: with HEAPGEN_VMAP_WRITE, written to the first 8 bytes
 * @size:	out: the dma-buf's size
 * @is_iomem:	out: 1 if the vmap is an I/O memory mapping
 * @linear:	out: 1 if the vmap address is in the kernel's linear map
 *		(virt_addr_valid): no vmalloc-space alias was made
 * @head:	out: the first 8 bytes of the buffer, seen through the vmap
 * @tail:	out: the last 8 bytes of the buffer, seen through the vmap
 *
 * dma_buf_begin_cpu_access(DMA_BIDIRECTIONAL), dma_buf_vmap_unlocked, read
 * (and optionally write), dma_buf_vunmap_unlocked, dma_buf_end_cpu_access.
 */
struct heapgen_vmap {
	__s32 fd;
	__u32 flags;
	__u8 write_head[8];
	__u64 size;
	__u32 is_iomem;
	__u32 linear;
	__u8 head[8];
	__u8 tail[8];
};

/**
 * struct heapgen_time_import - HEAPGEN_TIME_IMPORT argument (benchmarks)
 * @fd:		in: dma-buf fd
 * @dir:	in: DMA direction (HEAPGEN_DIR_*)
 * @attach_ns:	out: time spent in dma_buf_attach
 * @map_ns:	out: time spent in dma_buf_map_attachment_unlocked
 * @unmap_ns:	out: time spent in dma_buf_unmap_attachment_unlocked
 * @detach_ns:	out: time spent in dma_buf_detach
 * @nents:	out: DMA-mapped scatterlist entries
 *
 * The HEAPGEN_IMPORT sequence timed inside the kernel with ktime_get_ns(),
 * so that the ioctl entry, fd lookup and copies to and from userspace are
 * not part of it. For `cargo xtask bench` (row B3).
 */
struct heapgen_time_import {
	__s32 fd;
	__u32 dir;
	__u64 attach_ns;
	__u64 map_ns;
	__u64 unmap_ns;
	__u64 detach_ns;
	__u32 nents;
	__u32 reserved;
};

#define HEAPGEN_IMPORTER_IOC_MAGIC	'H'
/**
 * struct heapgen_sg_read - HEAPGEN_SG_READ argument
 * @fd:		in: dma-buf fd
 * @len:	in: bytes to read
 * @offset:	in: offset into the buffer
 * @buf:	in: userspace address of @len bytes
 * Attaches and maps the buffer (DMA_BIDIRECTIONAL), then copies bytes
 * @offset..@offset + @len to @buf from the pages the scatterlist names, each
 * mapped with kmap_local_page(): what a device would see, with no vmap, no
 * linear-map shortcut and no help from the exporter. -EINVAL past the end
 * of the scatterlist.
 */
struct heapgen_sg_read {
	__s32 fd;
	__u32 len;
	__u64 offset;
	__u64 buf;
};

/**
 * struct heapgen_pin - HEAPGEN_PIN argument
 * @addr:	in: page-aligned userspace address
 * @len:	in: bytes from @addr, a multiple of the page size
 * @stride:	in: pin every @stride-th page of the range (1: every page)
 * @pinned:	out: pages pinned
 * Pins pages of the caller's memory as an I/O in flight does (FOLL_PIN
 * without FOLL_LONGTERM, so pages in a CMA area stay there), until
 * HEAPGEN_UNPIN or until the file is closed: the pages CMA must migrate out
 * of an area but cannot while they are pinned (benchmark B6, the headroom
 * tests). Stops at the first page that cannot be pinned.
 */
struct heapgen_pin {
	__u64 addr;
	__u64 len;
	__u32 stride;
	__u32 pinned;
};

#define HEAPGEN_IMPORT		_IOWR(HEAPGEN_IMPORTER_IOC_MAGIC, 0x00, \
				      struct heapgen_import)
#define HEAPGEN_POKE_PAST	_IOWR(HEAPGEN_IMPORTER_IOC_MAGIC, 0x01, \
				      struct heapgen_poke)
#define HEAPGEN_VMAP		_IOWR(HEAPGEN_IMPORTER_IOC_MAGIC, 0x02, \
				      struct heapgen_vmap)
#define HEAPGEN_SG_READ		_IOW(HEAPGEN_IMPORTER_IOC_MAGIC, 0x04, \
				     struct heapgen_sg_read)
#define HEAPGEN_TIME_IMPORT	_IOWR(HEAPGEN_IMPORTER_IOC_MAGIC, 0x03, \
				      struct heapgen_time_import)
#define HEAPGEN_PIN		_IOWR(HEAPGEN_IMPORTER_IOC_MAGIC, 0x05, \
				      struct heapgen_pin)
/* Unpins every page HEAPGEN_PIN pinned through this file. */
#define HEAPGEN_UNPIN		_IO(HEAPGEN_IMPORTER_IOC_MAGIC, 0x06)

#endif /* _UAPI_HEAPGEN_IMPORTER_H */
