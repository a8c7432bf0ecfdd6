/* SPDX-License-Identifier: GPL-2.0 */
/*
 * heapgen runtime: the C declarations bindgen turns into the runtime's raw
 * bindings (bindings.rs), for the APIs the kernel crate does not bind, and
 * the helpers of heapgen_helpers.c for static inlines and macros.
 */
#ifndef HEAPGEN_BINDINGS_H
#define HEAPGEN_BINDINGS_H

#include <linux/cma.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/scatterlist.h>
#if IS_ENABLED(CONFIG_CGROUP_DMEM)
#include <linux/cgroup_dmem.h>
#endif

bool heapgen_page_is_highmem(struct page *page);
void *heapgen_page_address(struct page *page);
unsigned long heapgen_page_to_pfn(struct page *page);
struct page *heapgen_pfn_to_page(unsigned long pfn);
void heapgen_clear_highpage(struct page *page);
void heapgen_clear_pages(void *addr, unsigned int npages);
bool heapgen_fatal_signal_pending(void);
void *heapgen_vmap_pages(struct page **pages, unsigned int count,
			 bool writecombine);
void heapgen_vunmap(const void *addr);
void heapgen_invalidate_kernel_vmap_range(void *vaddr, int size);
void heapgen_flush_kernel_vmap_range(void *vaddr, int size);
bool heapgen_vma_is_shared(struct vm_area_struct *vma);
void heapgen_vma_set_writecombine(struct vm_area_struct *vma);
unsigned long heapgen_vma_pages(struct vm_area_struct *vma);
unsigned long heapgen_vma_pgoff(struct vm_area_struct *vma);
int heapgen_vma_remap_pfn(struct vm_area_struct *vma, unsigned long pfn);
void heapgen_sg_set_page(struct scatterlist *sg, struct page *page,
			 unsigned int len, unsigned int offset);
struct scatterlist *heapgen_sg_next(struct scatterlist *sg);
int heapgen_dma_map_sgtable(struct device *dev, struct sg_table *sgt,
			    enum dma_data_direction dir, bool skip_cpu_sync);
void heapgen_dma_unmap_sgtable(struct device *dev, struct sg_table *sgt,
			       enum dma_data_direction dir, bool skip_cpu_sync);
void heapgen_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt,
				      enum dma_data_direction dir);
void heapgen_dma_sync_sgtable_for_device(struct device *dev,
					 struct sg_table *sgt,
					 enum dma_data_direction dir);
void heapgen_iosys_map_set_vaddr(struct iosys_map *map, void *vaddr);
struct device *heapgen_dma_device_create(const char *name);
int heapgen_dma_clean_pages(struct device *dev, struct page *page, size_t len);
struct dentry *heapgen_debugfs_create_dir(const char *name,
					  struct dentry *parent);
void heapgen_debugfs_create_u64(const char *name, struct dentry *parent,
				u64 *value, bool writable);
struct shrinker *heapgen_shrinker_register(const char *name,
					   unsigned long (*count)(void *),
					   unsigned long (*scan)(void *,
								 unsigned long),
					   void *data);
struct heapgen_later;
struct heapgen_later *heapgen_later_new(void (*fn)(void *data));
void heapgen_later_arm(struct heapgen_later *l, void *data);
void heapgen_later_schedule(struct heapgen_later *l, unsigned int delay_ms);
void heapgen_later_free(struct heapgen_later *l);

#if IS_ENABLED(CONFIG_CGROUP_DMEM)
int heapgen_dmem_register(u64 size, const char *name,
			  struct dmem_cgroup_region **region);
#endif

#endif /* HEAPGEN_BINDINGS_H */
