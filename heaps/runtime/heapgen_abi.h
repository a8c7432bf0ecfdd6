/* SPDX-License-Identifier: GPL-2.0 */
/*
 * heapgen runtime: the interface between the C shim (heapgen_helpers.c) and
 * the Rust runtime.
 *
 * This is the only boundary between the module's Rust code and the kernel's
 * C API. It names kernel structures only by pointer (their layouts stay on
 * the C side, where the kernel's own headers describe them for whatever kernel
 * the module is built against) and uses only fixed-size integers, size_t and
 * bool, so it is the same on every supported kernel: version and
 * configuration differences are absorbed by the preprocessor in
 * heapgen_helpers.c (LINUX_VERSION_CODE, IS_ENABLED(), feature macros), never
 * by build rules. The module therefore builds with nothing but the kernel's
 * own Kbuild rules, as Kleaf's ddk_module, Yocto's module.bbclass and
 * Buildroot's kernel-module infrastructure invoke them.
 *
 * bindings.rs is generated from this file by bindgen (`cargo xtask bindings`;
 * `cargo xtask test` fails when it is stale). The file includes no kernel
 * header outside the kernel so that the host can run bindgen on it.
 *
 * Calls from C into Rust go through the ops tables below, whose functions
 * take pointers and integers only: their kCFI type hashes are the same
 * whether computed by clang for the C side or by rustc for the Rust side
 * (with the integer normalisation the kernel enables for CFI with Rust).
 */
#ifndef HEAPGEN_ABI_H
#define HEAPGEN_ABI_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#endif

struct cma;
struct dentry;
struct device;
struct dma_buf;
struct dma_heap;
struct dmem_cgroup_pool_state;
struct dmem_cgroup_region;
struct page;
struct sg_table;
struct vm_area_struct;

/* CMA areas and pages. */

/* The idx-th CMA area the module can see, or NULL past the last one. */
struct cma *heapgen_cma_area(unsigned int idx);
const char *heapgen_cma_name(const struct cma *cma);
/* count pages aligned to PAGE_SIZE << align_order, quietly; NULL on failure. */
struct page *heapgen_cma_alloc(struct cma *cma, size_t count,
			       unsigned int align_order);
bool heapgen_cma_release(struct cma *cma, struct page *pages, size_t count);

size_t heapgen_page_to_pfn(struct page *page);
struct page *heapgen_pfn_to_page(size_t pfn);
/* The page's linear-map address, or NULL for highmem. */
void *heapgen_page_address(struct page *page);
void *heapgen_kmap_local_page(struct page *page);
void heapgen_kunmap_local(void *vaddr);
void heapgen_clear_highpage(struct page *page);
void heapgen_clear_pages(void *addr, unsigned int npages);
bool heapgen_fatal_signal_pending(void);
void heapgen_cond_resched(void);

/* Kernel mappings. */

void *heapgen_vmap_pages(struct page **pages, unsigned int count,
			 bool writecombine);
void heapgen_vunmap(const void *addr);
void heapgen_invalidate_kernel_vmap_range(void *vaddr, int size);
void heapgen_flush_kernel_vmap_range(void *vaddr, int size);

/* Userspace mappings, in an mmap callback. */

bool heapgen_vma_is_shared(struct vm_area_struct *vma);
void heapgen_vma_set_writecombine(struct vm_area_struct *vma);
size_t heapgen_vma_pages(struct vm_area_struct *vma);
size_t heapgen_vma_pgoff(struct vm_area_struct *vma);
int heapgen_vma_remap_pfn(struct vm_area_struct *vma, size_t pfn);

/* Scatter-gather tables over contiguous pages, and the DMA API. */

/* DMA directions (enum dma_data_direction), as the ops below pass them. */
#define HEAPGEN_DMA_BIDIRECTIONAL 0
#define HEAPGEN_DMA_TO_DEVICE 1
#define HEAPGEN_DMA_FROM_DEVICE 2

/* A table of the len bytes from page on (len > 0, page aligned), in segments
 * that dev (if not NULL) can take: at most its maximum segment size and not
 * across its segment boundary; NULL on failure. */
struct sg_table *heapgen_sg_table_contiguous(struct device *dev,
					     struct page *page, size_t len);
void heapgen_sg_table_free(struct sg_table *sgt);
int heapgen_dma_map_sgtable(struct device *dev, struct sg_table *sgt, int dir,
			    bool skip_cpu_sync);
void heapgen_dma_unmap_sgtable(struct device *dev, struct sg_table *sgt,
			       int dir, bool skip_cpu_sync);
void heapgen_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt,
				      int dir);
void heapgen_dma_sync_sgtable_for_device(struct device *dev,
					 struct sg_table *sgt, int dir);

/*
 * The module's own DMA device (unregistered only when the module's init
 * fails), and cache maintenance through it: cleaning writes @len bytes from
 * @page back to memory (a DMA_TO_DEVICE map), invalidating makes the CPU read
 * what a device wrote there (a DMA_FROM_DEVICE map and unmap).
 */
struct device *heapgen_dma_device_create(const char *name);
void heapgen_dma_device_destroy(struct device *dev);
int heapgen_dma_clean_pages(struct device *dev, struct page *page, size_t len);
int heapgen_dma_invalidate_pages(struct device *dev, struct page *page,
				 size_t len);

/* Exported dma-bufs. */

struct heapgen_dma_buf_head;

/*
 * What an exported buffer does, implemented in Rust. Each function gets the
 * head the buffer was exported with; errors are negative errnos (ERR_PTRs for
 * pointers).
 */
struct heapgen_dma_buf_ops {
	int (*attach)(struct heapgen_dma_buf_head *buf, struct device *dev,
		      void **attach_priv);
	void (*detach)(struct heapgen_dma_buf_head *buf, void *attach_priv);
	struct sg_table *(*map)(struct heapgen_dma_buf_head *buf,
				void *attach_priv, int dir);
	void (*unmap)(struct heapgen_dma_buf_head *buf, void *attach_priv,
		      int dir);
	int (*begin_cpu_access)(struct heapgen_dma_buf_head *buf, int dir);
	int (*end_cpu_access)(struct heapgen_dma_buf_head *buf, int dir);
	int (*mmap)(struct heapgen_dma_buf_head *buf,
		    struct vm_area_struct *vma);
	void *(*vmap)(struct heapgen_dma_buf_head *buf);
	void (*vunmap)(struct heapgen_dma_buf_head *buf);
	void (*release)(struct heapgen_dma_buf_head *buf);
};

/* The first member of every exported buffer's private data. */
struct heapgen_dma_buf_head {
	const struct heapgen_dma_buf_ops *ops;
};

/* Exports buf as a dma-buf of size bytes owned by this module, without a
 * vmap operation when buf's ops have none; an ERR_PTR on failure. */
struct dma_buf *heapgen_dma_buf_export(struct heapgen_dma_buf_head *buf,
				       const char *exp_name, size_t size,
				       int fd_flags);
void heapgen_dma_buf_put(struct dma_buf *dmabuf);

/* dma-buf heaps. */

struct heapgen_dma_heap_head;

struct heapgen_dma_heap_ops {
	/* A new dma-buf, or an ERR_PTR. */
	struct dma_buf *(*allocate)(struct heapgen_dma_heap_head *heap,
				    size_t len, uint32_t fd_flags,
				    uint64_t heap_flags);
};

/* The first member of every heap's private data. */
struct heapgen_dma_heap_head {
	const struct heapgen_dma_heap_ops *ops;
};

/* Registers /dev/dma_heap/<name> (name and heap live for ever); an ERR_PTR
 * on failure. */
struct dma_heap *heapgen_dma_heap_add(const char *name,
				      struct heapgen_dma_heap_head *heap);

/* Takes a reference on this module that is never dropped: heaps cannot be
 * unregistered, so the module must never be unloaded. */
void heapgen_module_pin(void);

/* debugfs. */

/* Creates (or finds) a directory; NULL when debugfs is unavailable. */
struct dentry *heapgen_debugfs_create_dir(const char *name,
					  struct dentry *parent);
void heapgen_debugfs_create_u64(const char *name, struct dentry *parent,
				uint64_t *value, bool writable);
/* Creates the symbolic link `name` to `target` (copied); false on failure. */
bool heapgen_debugfs_create_symlink(const char *name, struct dentry *parent,
				    const char *target);

/* Shrinkers (never unregistered). */

struct shrinker;
struct shrinker *heapgen_shrinker_register(const char *name,
					   size_t (*count)(void *data),
					   size_t (*scan)(void *data,
							  size_t nr),
					   void *data);

/* Delayed work on the kernel's default unbound workqueue. */

struct heapgen_later;
struct heapgen_later *heapgen_later_new(void (*fn)(void *data));
void heapgen_later_arm(struct heapgen_later *later, void *data);
/* Whether this call queued it (false: queued already). */
bool heapgen_later_schedule(struct heapgen_later *later,
			    unsigned int delay_ms);
void heapgen_later_free(struct heapgen_later *later);

/* dmem cgroup accounting: -ENODEV without CONFIG_CGROUP_DMEM. */

int heapgen_dmem_register(uint64_t size, const char *name,
			  struct dmem_cgroup_region **region);
void heapgen_dmem_unregister(struct dmem_cgroup_region *region);
/* -EAGAIN when over a limit. */
int heapgen_dmem_try_charge(struct dmem_cgroup_region *region, uint64_t size,
			    struct dmem_cgroup_pool_state **pool);
void heapgen_dmem_uncharge(struct dmem_cgroup_pool_state *pool, uint64_t size);

#endif /* HEAPGEN_ABI_H */
