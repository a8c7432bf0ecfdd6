// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen runtime: the C shim between the Rust runtime and the kernel.
 *
 * Every kernel API the runtime uses is reached through the functions here,
 * declared in heapgen_abi.h: static inlines and macros Rust cannot call, the
 * dma-buf and dma-heap ops tables (whose layouts differ between kernels, so
 * only C builds them), and the few places where supported kernels differ,
 * decided by the preprocessor against the headers of the kernel being built
 * for. Besides those adapters, it holds the shrinker and delayed-work glue
 * (their C callbacks take kernel structures and call the Rust side through
 * plain pointers).
 *
 * Kernel differences (Documentation/kernels.rst):
 * - CMA areas: dma_contiguous_get_area_by_idx() (exported since Linux 7.2);
 *   before, cma_for_each_area() (exported by Android's common kernels).
 * - clear_pages() (and PROCESS_PAGES_NON_PREEMPT_BATCH with it) is newer than
 *   Linux 6.12; before, a clear_page() loop (its generic fallback).
 * - system_dfl_wq replaced system_unbound_wq (deprecated) in Linux 6.17.
 * - dmem cgroup accounting needs CONFIG_CGROUP_DMEM (Linux 6.14 and later).
 */
#include <linux/cma.h>
#include <linux/debugfs.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/scatterlist.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/version.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#if IS_ENABLED(CONFIG_CGROUP_DMEM)
#include <linux/cgroup_dmem.h>
#endif

#include "heapgen_abi.h"

static_assert(HEAPGEN_DMA_BIDIRECTIONAL == DMA_BIDIRECTIONAL);
static_assert(HEAPGEN_DMA_TO_DEVICE == DMA_TO_DEVICE);
static_assert(HEAPGEN_DMA_FROM_DEVICE == DMA_FROM_DEVICE);

/* CMA areas and pages. */

#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 2, 0)
struct cma *heapgen_cma_area(unsigned int idx)
{
	return dma_contiguous_get_area_by_idx(idx);
}
#else
struct heapgen_cma_search {
	unsigned int idx;
	unsigned int seen;
	struct cma *found;
};

static int heapgen_cma_visit(struct cma *cma, void *data)
{
	struct heapgen_cma_search *search = data;

	if (search->seen++ == search->idx) {
		search->found = cma;
		return 1;
	}
	return 0;
}

struct cma *heapgen_cma_area(unsigned int idx)
{
	struct heapgen_cma_search search = { .idx = idx };

	cma_for_each_area(heapgen_cma_visit, &search);
	return search.found;
}
#endif

const char *heapgen_cma_name(const struct cma *cma)
{
	return cma_get_name(cma);
}

struct page *heapgen_cma_alloc(struct cma *cma, size_t count,
			       unsigned int align_order)
{
	return cma_alloc(cma, count, align_order, true);
}

bool heapgen_cma_release(struct cma *cma, struct page *pages, size_t count)
{
	return cma_release(cma, pages, count);
}

size_t heapgen_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

struct page *heapgen_pfn_to_page(size_t pfn)
{
	return pfn_to_page(pfn);
}

void *heapgen_page_address(struct page *page)
{
	return PageHighMem(page) ? NULL : page_address(page);
}

void *heapgen_kmap_local_page(struct page *page)
{
	return kmap_local_page(page);
}

void heapgen_kunmap_local(void *vaddr)
{
	kunmap_local(vaddr);
}

void heapgen_clear_highpage(struct page *page)
{
	clear_highpage(page);
}

void heapgen_clear_pages(void *addr, unsigned int npages)
{
#ifdef PROCESS_PAGES_NON_PREEMPT_BATCH
	clear_pages(addr, npages);
#else
	/* Before clear_pages(): its generic fallback. */
	while (npages--) {
		clear_page(addr);
		addr += PAGE_SIZE;
	}
#endif
}

bool heapgen_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

void heapgen_cond_resched(void)
{
	cond_resched();
}

/* Kernel mappings. */

void *heapgen_vmap_pages(struct page **pages, unsigned int count,
			 bool writecombine)
{
	return vmap(pages, count, VM_MAP,
		    writecombine ? pgprot_writecombine(PAGE_KERNEL) : PAGE_KERNEL);
}

void heapgen_vunmap(const void *addr)
{
	vunmap(addr);
}

void heapgen_invalidate_kernel_vmap_range(void *vaddr, int size)
{
	invalidate_kernel_vmap_range(vaddr, size);
}

void heapgen_flush_kernel_vmap_range(void *vaddr, int size)
{
	flush_kernel_vmap_range(vaddr, size);
}

/* Userspace mappings. */

bool heapgen_vma_is_shared(struct vm_area_struct *vma)
{
	return vma->vm_flags & (VM_SHARED | VM_MAYSHARE);
}

void heapgen_vma_set_writecombine(struct vm_area_struct *vma)
{
	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
}

size_t heapgen_vma_pages(struct vm_area_struct *vma)
{
	return vma_pages(vma);
}

size_t heapgen_vma_pgoff(struct vm_area_struct *vma)
{
	return vma->vm_pgoff;
}

int heapgen_vma_remap_pfn(struct vm_area_struct *vma, size_t pfn)
{
	return remap_pfn_range(vma, vma->vm_start, pfn,
			       vma->vm_end - vma->vm_start, vma->vm_page_prot);
}

/* Scatter-gather tables and the DMA API. */

/* Entries hold an unsigned int length: one entry per 2 GiB. */
#define HEAPGEN_MAX_SEGMENT (1UL << 31)

/*
 * The length of the segment that starts @done bytes into the range at
 * physical address @phys: at most @max_seg bytes, and not across the
 * device's segment boundary (@boundary, a mask).
 */
static size_t heapgen_sg_chunk(phys_addr_t phys, size_t done, size_t len,
			       size_t max_seg, unsigned long boundary)
{
	phys_addr_t start = phys + done;
	size_t chunk = min_t(size_t, len - done, max_seg);
	phys_addr_t to_boundary = (start | boundary) - start + 1;

	if (to_boundary && to_boundary < chunk)
		chunk = to_boundary;
	return chunk;
}

struct sg_table *heapgen_sg_table_contiguous(struct device *dev,
					     struct page *page, size_t len)
{
	size_t pfn = page_to_pfn(page), done, nents = 0, max_seg = HEAPGEN_MAX_SEGMENT;
	phys_addr_t phys = page_to_phys(page);
	unsigned long boundary = ULONG_MAX;
	struct scatterlist *sg;
	struct sg_table *sgt;
	unsigned int i;

	if (!len || !PAGE_ALIGNED(len))
		return NULL;
	/*
	 * What the importing device can take in one segment, and where its
	 * segments must not cross (dma-direct: DMA addresses are physical
	 * ones), both in whole pages.
	 */
	if (dev) {
		max_seg = min_t(size_t, max_seg, dma_get_max_seg_size(dev));
		max_seg = max_t(size_t, max_seg & PAGE_MASK, PAGE_SIZE);
		boundary = max_t(unsigned long, dma_get_seg_boundary(dev),
				 PAGE_SIZE - 1);
	}
	for (done = 0; done < len; nents++) {
		done += heapgen_sg_chunk(phys, done, len, max_seg, boundary);
		if (nents >= UINT_MAX)
			return NULL;
	}
	sgt = kmalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return NULL;
	if (sg_alloc_table(sgt, nents, GFP_KERNEL)) {
		kfree(sgt);
		return NULL;
	}
	done = 0;
	for_each_sgtable_sg(sgt, sg, i) {
		size_t chunk = heapgen_sg_chunk(phys, done, len, max_seg,
						boundary);

		sg_set_page(sg, pfn_to_page(pfn + (done >> PAGE_SHIFT)), chunk,
			    0);
		done += chunk;
	}
	return sgt;
}

void heapgen_sg_table_free(struct sg_table *sgt)
{
	sg_free_table(sgt);
	kfree(sgt);
}

static unsigned long heapgen_dma_attrs(bool skip_cpu_sync)
{
	return skip_cpu_sync ? DMA_ATTR_SKIP_CPU_SYNC : 0;
}

int heapgen_dma_map_sgtable(struct device *dev, struct sg_table *sgt, int dir,
			    bool skip_cpu_sync)
{
	return dma_map_sgtable(dev, sgt, dir, heapgen_dma_attrs(skip_cpu_sync));
}

void heapgen_dma_unmap_sgtable(struct device *dev, struct sg_table *sgt,
			       int dir, bool skip_cpu_sync)
{
	dma_unmap_sgtable(dev, sgt, dir, heapgen_dma_attrs(skip_cpu_sync));
}

void heapgen_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt,
				      int dir)
{
	dma_sync_sgtable_for_cpu(dev, sgt, dir);
}

void heapgen_dma_sync_sgtable_for_device(struct device *dev,
					 struct sg_table *sgt, int dir)
{
	dma_sync_sgtable_for_device(dev, sgt, dir);
}

struct device *heapgen_dma_device_create(const char *name)
{
	struct platform_device *pdev;

	pdev = platform_device_register_simple(name, PLATFORM_DEVID_AUTO,
					       NULL, 0);
	if (IS_ERR(pdev))
		return NULL;
	if (dma_coerce_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64))) {
		platform_device_unregister(pdev);
		return NULL;
	}
	return &pdev->dev;
}

void heapgen_dma_device_destroy(struct device *dev)
{
	platform_device_unregister(to_platform_device(dev));
}

int heapgen_dma_clean_pages(struct device *dev, struct page *page, size_t len)
{
	dma_addr_t addr = dma_map_page(dev, page, 0, len, DMA_TO_DEVICE);

	if (dma_mapping_error(dev, addr))
		return -ENOMEM;
	dma_unmap_page_attrs(dev, addr, len, DMA_TO_DEVICE,
			     DMA_ATTR_SKIP_CPU_SYNC);
	return 0;
}

int heapgen_dma_invalidate_pages(struct device *dev, struct page *page,
				 size_t len)
{
	dma_addr_t addr = dma_map_page_attrs(dev, page, 0, len, DMA_FROM_DEVICE,
					     DMA_ATTR_SKIP_CPU_SYNC);

	if (dma_mapping_error(dev, addr))
		return -ENOMEM;
	/* The CPU takes the memory back from the "device": invalidated. */
	dma_unmap_page(dev, addr, len, DMA_FROM_DEVICE);
	return 0;
}

/*
 * Exported dma-bufs: one ops table, whose functions hand the buffer's head
 * (its private data) to the Rust side.
 */

static struct heapgen_dma_buf_head *heapgen_buf(struct dma_buf *dmabuf)
{
	return dmabuf->priv;
}

static int heapgen_dma_buf_attach(struct dma_buf *dmabuf,
				  struct dma_buf_attachment *attachment)
{
	struct heapgen_dma_buf_head *buf = heapgen_buf(dmabuf);

	return buf->ops->attach(buf, attachment->dev, &attachment->priv);
}

static void heapgen_dma_buf_detach(struct dma_buf *dmabuf,
				   struct dma_buf_attachment *attachment)
{
	struct heapgen_dma_buf_head *buf = heapgen_buf(dmabuf);

	buf->ops->detach(buf, attachment->priv);
}

static struct sg_table *
heapgen_dma_buf_map(struct dma_buf_attachment *attachment,
		    enum dma_data_direction dir)
{
	struct heapgen_dma_buf_head *buf = heapgen_buf(attachment->dmabuf);

	return buf->ops->map(buf, attachment->priv, dir);
}

static void heapgen_dma_buf_unmap(struct dma_buf_attachment *attachment,
				  struct sg_table *table,
				  enum dma_data_direction dir)
{
	struct heapgen_dma_buf_head *buf = heapgen_buf(attachment->dmabuf);

	buf->ops->unmap(buf, attachment->priv, dir);
}

static int heapgen_dma_buf_begin_cpu_access(struct dma_buf *dmabuf,
					    enum dma_data_direction dir)
{
	struct heapgen_dma_buf_head *buf = heapgen_buf(dmabuf);

	return buf->ops->begin_cpu_access(buf, dir);
}

static int heapgen_dma_buf_end_cpu_access(struct dma_buf *dmabuf,
					  enum dma_data_direction dir)
{
	struct heapgen_dma_buf_head *buf = heapgen_buf(dmabuf);

	return buf->ops->end_cpu_access(buf, dir);
}

static int heapgen_dma_buf_mmap(struct dma_buf *dmabuf,
				struct vm_area_struct *vma)
{
	struct heapgen_dma_buf_head *buf = heapgen_buf(dmabuf);

	return buf->ops->mmap(buf, vma);
}

static int heapgen_dma_buf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct heapgen_dma_buf_head *buf = heapgen_buf(dmabuf);
	void *vaddr = buf->ops->vmap(buf);

	if (IS_ERR(vaddr))
		return PTR_ERR(vaddr);
	iosys_map_set_vaddr(map, vaddr);
	return 0;
}

static void heapgen_dma_buf_vunmap(struct dma_buf *dmabuf,
				   struct iosys_map *map)
{
	struct heapgen_dma_buf_head *buf = heapgen_buf(dmabuf);

	buf->ops->vunmap(buf);
	iosys_map_clear(map);
}

static void heapgen_dma_buf_release(struct dma_buf *dmabuf)
{
	struct heapgen_dma_buf_head *buf = heapgen_buf(dmabuf);

	buf->ops->release(buf);
}

static const struct dma_buf_ops heapgen_dma_buf_ops = {
	.attach = heapgen_dma_buf_attach,
	.detach = heapgen_dma_buf_detach,
	.map_dma_buf = heapgen_dma_buf_map,
	.unmap_dma_buf = heapgen_dma_buf_unmap,
	.begin_cpu_access = heapgen_dma_buf_begin_cpu_access,
	.end_cpu_access = heapgen_dma_buf_end_cpu_access,
	.mmap = heapgen_dma_buf_mmap,
	.vmap = heapgen_dma_buf_vmap,
	.vunmap = heapgen_dma_buf_vunmap,
	.release = heapgen_dma_buf_release,
};

/* For buffers the kernel must not map (protected ones): no vmap at all, so
 * that dma_buf_vmap() fails with -EINVAL instead of warning about a failing
 * vmap operation, as on upstream's protected heaps. */
static const struct dma_buf_ops heapgen_dma_buf_ops_no_vmap = {
	.attach = heapgen_dma_buf_attach,
	.detach = heapgen_dma_buf_detach,
	.map_dma_buf = heapgen_dma_buf_map,
	.unmap_dma_buf = heapgen_dma_buf_unmap,
	.begin_cpu_access = heapgen_dma_buf_begin_cpu_access,
	.end_cpu_access = heapgen_dma_buf_end_cpu_access,
	.mmap = heapgen_dma_buf_mmap,
	.release = heapgen_dma_buf_release,
};

struct dma_buf *heapgen_dma_buf_export(struct heapgen_dma_buf_head *buf,
				       const char *exp_name, size_t size,
				       int fd_flags)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp_info);

	exp_info.exp_name = exp_name;
	exp_info.ops = buf->ops->vmap ? &heapgen_dma_buf_ops :
					&heapgen_dma_buf_ops_no_vmap;
	exp_info.size = size;
	exp_info.flags = fd_flags;
	exp_info.priv = buf;
	return dma_buf_export(&exp_info);
}

void heapgen_dma_buf_put(struct dma_buf *dmabuf)
{
	dma_buf_put(dmabuf);
}

/* dma-buf heaps. */

static struct dma_buf *heapgen_dma_heap_allocate(struct dma_heap *dma_heap,
						 unsigned long len,
						 u32 fd_flags, u64 heap_flags)
{
	struct heapgen_dma_heap_head *heap = dma_heap_get_drvdata(dma_heap);

	return heap->ops->allocate(heap, len, fd_flags, heap_flags);
}

static const struct dma_heap_ops heapgen_dma_heap_ops = {
	.allocate = heapgen_dma_heap_allocate,
};

struct dma_heap *heapgen_dma_heap_add(const char *name,
				      struct heapgen_dma_heap_head *heap)
{
	struct dma_heap_export_info info = {
		.name = name,
		.ops = &heapgen_dma_heap_ops,
		.priv = heap,
	};

	return dma_heap_add(&info);
}

void heapgen_module_pin(void)
{
	__module_get(THIS_MODULE);
}

/* debugfs. */

struct dentry *heapgen_debugfs_create_dir(const char *name,
					  struct dentry *parent)
{
	/* Shared by every heapgen module: reuse the directory if it exists. */
	struct dentry *dir = debugfs_lookup(name, parent);

	if (!IS_ERR_OR_NULL(dir)) {
		/* debugfs keeps the directory; drop the lookup's reference. */
		dput(dir);
		return dir;
	}
	dir = debugfs_create_dir(name, parent);
	return IS_ERR(dir) ? NULL : dir;
}

void heapgen_debugfs_create_u64(const char *name, struct dentry *parent,
				uint64_t *value, bool writable)
{
	debugfs_create_u64(name, writable ? 0644 : 0444, parent, value);
}

bool heapgen_debugfs_create_symlink(const char *name, struct dentry *parent,
				    const char *target)
{
	return !IS_ERR(debugfs_create_symlink(name, parent, target));
}

/*
 * Shrinkers: shrinker_alloc() is variadic and the callbacks take a struct
 * shrinker, so the Rust side registers two plain functions over an opaque
 * pointer and these adapt them. The shrinker is never freed (heaps are never
 * unregistered).
 */
struct heapgen_shrinker {
	size_t (*count)(void *data);
	size_t (*scan)(void *data, size_t nr);
	void *data;
};

static unsigned long heapgen_shrinker_count(struct shrinker *shrinker,
					    struct shrink_control *sc)
{
	struct heapgen_shrinker *h = shrinker->private_data;
	unsigned long n = h->count(h->data);

	return n ? n : SHRINK_EMPTY;
}

static unsigned long heapgen_shrinker_scan(struct shrinker *shrinker,
					   struct shrink_control *sc)
{
	struct heapgen_shrinker *h = shrinker->private_data;
	unsigned long freed = h->scan(h->data, sc->nr_to_scan);

	return freed ? freed : SHRINK_STOP;
}

struct shrinker *heapgen_shrinker_register(const char *name,
					   size_t (*count)(void *data),
					   size_t (*scan)(void *data,
							  size_t nr),
					   void *data)
{
	struct heapgen_shrinker *h = kzalloc(sizeof(*h), GFP_KERNEL);
	struct shrinker *shrinker;

	if (!h)
		return NULL;
	shrinker = shrinker_alloc(0, "heapgen-%s", name);
	if (!shrinker) {
		kfree(h);
		return NULL;
	}
	h->count = count;
	h->scan = scan;
	h->data = data;
	shrinker->count_objects = heapgen_shrinker_count;
	shrinker->scan_objects = heapgen_shrinker_scan;
	shrinker->private_data = h;
	shrinker_register(shrinker);
	return shrinker;
}

/*
 * Delayed work over an opaque pointer (the kernel crate of Linux 6.12 has no
 * delayed work). The data pointer is set once, after the object it points to
 * has its final address; until then a queued run does nothing.
 */
struct heapgen_later {
	struct delayed_work work;
	void (*fn)(void *data);
	void *data;
};

static void heapgen_later_fn(struct work_struct *work)
{
	struct heapgen_later *l =
		container_of(to_delayed_work(work), struct heapgen_later, work);
	void *data = smp_load_acquire(&l->data);

	if (data)
		l->fn(data);
}

struct heapgen_later *heapgen_later_new(void (*fn)(void *data))
{
	struct heapgen_later *l = kzalloc(sizeof(*l), GFP_KERNEL);

	if (!l)
		return NULL;
	INIT_DELAYED_WORK(&l->work, heapgen_later_fn);
	l->fn = fn;
	return l;
}

void heapgen_later_arm(struct heapgen_later *l, void *data)
{
	smp_store_release(&l->data, data);
}

bool heapgen_later_schedule(struct heapgen_later *l, unsigned int delay_ms)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 17, 0)
	struct workqueue_struct *wq = system_dfl_wq;
#else
	struct workqueue_struct *wq = system_unbound_wq;
#endif

	return queue_delayed_work(wq, &l->work, msecs_to_jiffies(delay_ms));
}

void heapgen_later_free(struct heapgen_later *l)
{
	cancel_delayed_work_sync(&l->work);
	kfree(l);
}

/* dmem cgroup accounting. */

#if IS_ENABLED(CONFIG_CGROUP_DMEM)
int heapgen_dmem_register(uint64_t size, const char *name,
			  struct dmem_cgroup_region **region)
{
	struct dmem_cgroup_region *r;

	/*
	 * Variadic, and NULL, an ERR_PTR or a region: folded into an errno.
	 * From 7.3 the size comes in a struct dmem_cgroup_init (which also
	 * carries an optional reclaim callback, unused here).
	 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 3, 0)
	const struct dmem_cgroup_init init = { .size = size };

	r = dmem_cgroup_register_region(&init, "heapgen/%s", name);
#else
	r = dmem_cgroup_register_region(size, "heapgen/%s", name);
#endif
	if (IS_ERR(r))
		return PTR_ERR(r);
	if (!r)
		return -EINVAL;
	*region = r;
	return 0;
}

void heapgen_dmem_unregister(struct dmem_cgroup_region *region)
{
	dmem_cgroup_unregister_region(region);
}

int heapgen_dmem_try_charge(struct dmem_cgroup_region *region, uint64_t size,
			    struct dmem_cgroup_pool_state **pool)
{
	return dmem_cgroup_try_charge(region, size, pool, NULL);
}

void heapgen_dmem_uncharge(struct dmem_cgroup_pool_state *pool, uint64_t size)
{
	dmem_cgroup_uncharge(pool, size);
}
#else
int heapgen_dmem_register(uint64_t size, const char *name,
			  struct dmem_cgroup_region **region)
{
	return -ENODEV;
}

/* Unreachable: no region can be registered. */
void heapgen_dmem_unregister(struct dmem_cgroup_region *region)
{
}

int heapgen_dmem_try_charge(struct dmem_cgroup_region *region, uint64_t size,
			    struct dmem_cgroup_pool_state **pool)
{
	return -ENODEV;
}

void heapgen_dmem_uncharge(struct dmem_cgroup_pool_state *pool, uint64_t size)
{
}
#endif
