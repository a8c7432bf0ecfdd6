// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen runtime: one-line C wrappers for the static inlines and macros the
 * Rust runtime needs and bindgen cannot reach. Nothing here holds logic; each
 * helper wraps exactly one inline or macro so that the kernel's own routines
 * (clear_pages, pgprot_writecombine, ...) are used. HEAPGEN_HAS_* macros come
 * from the generated Kbuild, which probes the kernel tree.
 */
#include <linux/debugfs.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/sched/signal.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "heapgen_bindings.h"

bool heapgen_page_is_highmem(struct page *page)
{
	return PageHighMem(page);
}

void *heapgen_page_address(struct page *page)
{
	return page_address(page);
}

unsigned long heapgen_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

struct page *heapgen_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

void heapgen_clear_highpage(struct page *page)
{
	clear_highpage(page);
}

void heapgen_clear_pages(void *addr, unsigned int npages)
{
#ifdef HEAPGEN_HAS_CLEAR_PAGES
	clear_pages(addr, npages);
#else
	/* Before clear_pages() (Linux 6.12): its generic fallback. */
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

bool heapgen_vma_is_shared(struct vm_area_struct *vma)
{
	return vma->vm_flags & (VM_SHARED | VM_MAYSHARE);
}

void heapgen_vma_set_writecombine(struct vm_area_struct *vma)
{
	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
}

unsigned long heapgen_vma_pages(struct vm_area_struct *vma)
{
	return vma_pages(vma);
}

unsigned long heapgen_vma_pgoff(struct vm_area_struct *vma)
{
	return vma->vm_pgoff;
}

int heapgen_vma_remap_pfn(struct vm_area_struct *vma, unsigned long pfn)
{
	return remap_pfn_range(vma, vma->vm_start, pfn,
			       vma->vm_end - vma->vm_start, vma->vm_page_prot);
}

void heapgen_sg_set_page(struct scatterlist *sg, struct page *page,
			 unsigned int len, unsigned int offset)
{
	sg_set_page(sg, page, len, offset);
}

struct scatterlist *heapgen_sg_next(struct scatterlist *sg)
{
	return sg_next(sg);
}

int heapgen_dma_map_sgtable(struct device *dev, struct sg_table *sgt,
			    enum dma_data_direction dir, bool skip_cpu_sync)
{
	return dma_map_sgtable(dev, sgt, dir,
			       skip_cpu_sync ? DMA_ATTR_SKIP_CPU_SYNC : 0);
}

void heapgen_dma_unmap_sgtable(struct device *dev, struct sg_table *sgt,
			       enum dma_data_direction dir, bool skip_cpu_sync)
{
	dma_unmap_sgtable(dev, sgt, dir,
			  skip_cpu_sync ? DMA_ATTR_SKIP_CPU_SYNC : 0);
}

void heapgen_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt,
				      enum dma_data_direction dir)
{
	dma_sync_sgtable_for_cpu(dev, sgt, dir);
}

void heapgen_dma_sync_sgtable_for_device(struct device *dev,
					 struct sg_table *sgt,
					 enum dma_data_direction dir)
{
	dma_sync_sgtable_for_device(dev, sgt, dir);
}

void heapgen_iosys_map_set_vaddr(struct iosys_map *map, void *vaddr)
{
	iosys_map_set_vaddr(map, vaddr);
}

struct dentry *heapgen_debugfs_create_dir(const char *name,
					  struct dentry *parent)
{
	/* Shared by every heapgen module: reuse the directory if it exists. */
	struct dentry *dir = debugfs_lookup(name, parent);

	if (!IS_ERR_OR_NULL(dir))
		return dir;
	dir = debugfs_create_dir(name, parent);
	return IS_ERR(dir) ? NULL : dir;
}

void heapgen_debugfs_create_u64(const char *name, struct dentry *parent,
				u64 *value, bool writable)
{
	debugfs_create_u64(name, writable ? 0644 : 0444, parent, value);
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

int heapgen_dma_clean_pages(struct device *dev, struct page *page, size_t len)
{
	dma_addr_t addr = dma_map_page(dev, page, 0, len, DMA_TO_DEVICE);

	if (dma_mapping_error(dev, addr))
		return -ENOMEM;
	dma_unmap_page_attrs(dev, addr, len, DMA_TO_DEVICE,
			     DMA_ATTR_SKIP_CPU_SYNC);
	return 0;
}

/*
 * Shrinkers: shrinker_alloc() is variadic and the callbacks take a struct
 * shrinker, so the Rust side registers two plain C-ABI functions over an
 * opaque pointer and these trampolines adapt them. The shrinker is never
 * freed (heaps are never unregistered).
 */
struct heapgen_shrinker {
	unsigned long (*count)(void *data);
	unsigned long (*scan)(void *data, unsigned long nr);
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
					   unsigned long (*count)(void *),
					   unsigned long (*scan)(void *,
								 unsigned long),
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
 * Delayed work over an opaque pointer: the kernel crate of Linux 6.12 has
 * no delayed work. The data pointer is set once, after the object it points
 * to has its final address; until then a queued run does nothing.
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

void heapgen_later_schedule(struct heapgen_later *l, unsigned int delay_ms)
{
	queue_delayed_work(system_unbound_wq, &l->work,
			   msecs_to_jiffies(delay_ms));
}

void heapgen_later_free(struct heapgen_later *l)
{
	cancel_delayed_work_sync(&l->work);
	kfree(l);
}

#if IS_ENABLED(CONFIG_CGROUP_DMEM)
/*
 * dmem_cgroup_register_region() is variadic (bindgen cannot call it) and
 * returns NULL, an ERR_PTR or a region: this folds the three into an errno.
 */
int heapgen_dmem_register(u64 size, const char *name,
			  struct dmem_cgroup_region **region)
{
	struct dmem_cgroup_region *r;

	r = dmem_cgroup_register_region(size, "heapgen/%s", name);
	if (IS_ERR(r))
		return PTR_ERR(r);
	if (!r)
		return -EINVAL;
	*region = r;
	return 0;
}
#endif
