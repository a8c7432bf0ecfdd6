// SPDX-License-Identifier: GPL-2.0
/*
 * heapgen test importer: a misc device that plays a DMA device for the guest
 * tests. Userspace hands it a dma-buf fd; it attaches its platform device,
 * maps the attachment and reports the scatterlist (HEAPGEN_IMPORT), writes
 * one byte just outside the mapping like an overrunning device
 * (HEAPGEN_POKE_PAST), reads it through its scatterlist's pages as a device
 * would (HEAPGEN_SG_READ), or vmaps the buffer inside a CPU access bracket
 * (HEAPGEN_VMAP), or times attach, map, unmap and detach for the benchmarks
 * (HEAPGEN_TIME_IMPORT). It also pins the caller's pages as an I/O in flight
 * does (HEAPGEN_PIN, HEAPGEN_UNPIN; unpinned when the file is closed), to
 * make a CMA area busy. The uapi is tests/guest/heapgen_importer.h.
 *
 * Test-only: HEAPGEN_POKE_PAST writes to memory the importer does not own
 * and is meant for heaps with guard pages, in a throwaway test VM.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dma-buf.h>
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>

#include <heapgen_importer.h>

static struct platform_device *importer_pdev;
/* A second device that takes segments of at most 64 KiB (the DMA API's
 * default), for HEAPGEN_IMPORT_SMALL_SEGMENTS. */
static struct platform_device *importer_small_pdev;

/* One attach + map of a dma-buf by the importer's device. */
struct importer_map {
	struct dma_buf *dmabuf;
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;
	enum dma_data_direction dir;
};

static int importer_dir(u32 dir, enum dma_data_direction *out)
{
	switch (dir) {
	case HEAPGEN_DIR_BIDIRECTIONAL:
		*out = DMA_BIDIRECTIONAL;
		return 0;
	case HEAPGEN_DIR_TO_DEVICE:
		*out = DMA_TO_DEVICE;
		return 0;
	case HEAPGEN_DIR_FROM_DEVICE:
		*out = DMA_FROM_DEVICE;
		return 0;
	default:
		return -EINVAL;
	}
}

static int importer_map_dev(struct device *dev, int fd,
			    enum dma_data_direction dir, struct importer_map *m)
{
	int ret;

	m->dir = dir;
	m->dmabuf = dma_buf_get(fd);
	if (IS_ERR(m->dmabuf))
		return PTR_ERR(m->dmabuf);

	m->attach = dma_buf_attach(m->dmabuf, dev);
	if (IS_ERR(m->attach)) {
		ret = PTR_ERR(m->attach);
		goto err_put;
	}

	m->sgt = dma_buf_map_attachment_unlocked(m->attach, dir);
	if (IS_ERR(m->sgt)) {
		ret = PTR_ERR(m->sgt);
		goto err_detach;
	}
	return 0;

err_detach:
	dma_buf_detach(m->dmabuf, m->attach);
err_put:
	dma_buf_put(m->dmabuf);
	return ret;
}

static int importer_map(int fd, enum dma_data_direction dir,
			struct importer_map *m)
{
	return importer_map_dev(&importer_pdev->dev, fd, dir, m);
}

static void importer_unmap(struct importer_map *m)
{
	dma_buf_unmap_attachment_unlocked(m->attach, m->sgt, m->dir);
	dma_buf_detach(m->dmabuf, m->attach);
	dma_buf_put(m->dmabuf);
}

static long importer_import(void __user *uarg)
{
	struct heapgen_import arg;
	enum dma_data_direction dir;
	struct importer_map m;
	struct scatterlist *sg;
	unsigned int i;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	ret = importer_dir(arg.dir & ~HEAPGEN_IMPORT_SMALL_SEGMENTS, &dir);
	if (ret)
		return ret;

	ret = importer_map_dev(arg.dir & HEAPGEN_IMPORT_SMALL_SEGMENTS ?
			       &importer_small_pdev->dev : &importer_pdev->dev,
			       arg.fd, dir, &m);
	if (ret)
		return ret;

	arg.nents = m.sgt->nents;
	arg.orig_nents = m.sgt->orig_nents;
	arg.size = m.dmabuf->size;
	arg.total_len = 0;
	memset(arg.entries, 0, sizeof(arg.entries));
	for_each_sgtable_dma_sg(m.sgt, sg, i) {
		if (i < HEAPGEN_IMPORT_MAX_ENTRIES) {
			arg.entries[i].dma_addr = sg_dma_address(sg);
			arg.entries[i].len = sg_dma_len(sg);
		}
		arg.total_len += sg_dma_len(sg);
	}

	importer_unmap(&m);

	if (copy_to_user(uarg, &arg, sizeof(arg)))
		return -EFAULT;
	return 0;
}

/* The kernel linear-map address of physical address @phys, or NULL. */
static u8 *importer_phys_to_virt(phys_addr_t phys)
{
	unsigned long pfn = PHYS_PFN(phys);

	if (!pfn_valid(pfn) || PageHighMem(pfn_to_page(pfn)))
		return NULL;
	return phys_to_virt(phys);
}

static long importer_poke_past(void __user *uarg)
{
	struct device *dev = &importer_pdev->dev;
	struct heapgen_poke arg;
	struct importer_map m;
	struct scatterlist *sg, *last = NULL;
	phys_addr_t phys;
	unsigned int i;
	u8 *va;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags & ~HEAPGEN_POKE_BEFORE || arg.offset >= PAGE_SIZE ||
	    arg.value > U8_MAX)
		return -EINVAL;

	ret = importer_map(arg.fd, DMA_FROM_DEVICE, &m);
	if (ret)
		return ret;

	for_each_sgtable_dma_sg(m.sgt, sg, i)
		last = sg;
	if (!last) {
		ret = -ENODATA;
		goto out;
	}

	if (arg.flags & HEAPGEN_POKE_BEFORE)
		phys = dma_to_phys(dev, sg_dma_address(m.sgt->sgl)) - 1 -
		       arg.offset;
	else
		phys = dma_to_phys(dev, sg_dma_address(last)) +
		       sg_dma_len(last) + arg.offset;

	va = importer_phys_to_virt(phys);
	if (!va) {
		ret = -ERANGE;
		goto out;
	}
	WRITE_ONCE(*va, arg.value);
	arg.phys = phys;
	ret = 0;
out:
	importer_unmap(&m);
	if (!ret && copy_to_user(uarg, &arg, sizeof(arg)))
		ret = -EFAULT;
	return ret;
}

static long importer_vmap(void __user *uarg)
{
	struct heapgen_vmap arg;
	struct dma_buf *dmabuf;
	struct iosys_map map;
	int ret, end_ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags & ~HEAPGEN_VMAP_WRITE)
		return -EINVAL;

	dmabuf = dma_buf_get(arg.fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	arg.size = dmabuf->size;
	if (arg.size < sizeof(arg.head)) {
		ret = -EINVAL;
		goto out_put;
	}

	ret = dma_buf_begin_cpu_access(dmabuf, DMA_BIDIRECTIONAL);
	if (ret)
		goto out_put;

	ret = dma_buf_vmap_unlocked(dmabuf, &map);
	if (ret)
		goto out_end;

	arg.is_iomem = map.is_iomem;
	arg.linear = !map.is_iomem && virt_addr_valid(map.vaddr);
	iosys_map_memcpy_from(arg.head, &map, 0, sizeof(arg.head));
	iosys_map_memcpy_from(arg.tail, &map, arg.size - sizeof(arg.tail),
			      sizeof(arg.tail));
	if (arg.flags & HEAPGEN_VMAP_WRITE)
		iosys_map_memcpy_to(&map, 0, arg.write_head,
				    sizeof(arg.write_head));

	dma_buf_vunmap_unlocked(dmabuf, &map);
out_end:
	end_ret = dma_buf_end_cpu_access(dmabuf, DMA_BIDIRECTIONAL);
	if (!ret)
		ret = end_ret;
out_put:
	dma_buf_put(dmabuf);
	if (!ret && copy_to_user(uarg, &arg, sizeof(arg)))
		ret = -EFAULT;
	return ret;
}

static long importer_time_import(void __user *uarg)
{
	struct heapgen_time_import arg;
	struct dma_buf_attachment *attach;
	enum dma_data_direction dir;
	struct dma_buf *dmabuf;
	struct sg_table *sgt;
	u64 t0, t1, t2, t3, t4;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	ret = importer_dir(arg.dir, &dir);
	if (ret)
		return ret;

	dmabuf = dma_buf_get(arg.fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);

	t0 = ktime_get_ns();
	attach = dma_buf_attach(dmabuf, &importer_pdev->dev);
	t1 = ktime_get_ns();
	if (IS_ERR(attach)) {
		ret = PTR_ERR(attach);
		goto out_put;
	}
	sgt = dma_buf_map_attachment_unlocked(attach, dir);
	t2 = ktime_get_ns();
	if (IS_ERR(sgt)) {
		ret = PTR_ERR(sgt);
		dma_buf_detach(dmabuf, attach);
		goto out_put;
	}
	arg.nents = sgt->nents;
	dma_buf_unmap_attachment_unlocked(attach, sgt, dir);
	t3 = ktime_get_ns();
	dma_buf_detach(dmabuf, attach);
	t4 = ktime_get_ns();

	arg.attach_ns = t1 - t0;
	arg.map_ns = t2 - t1;
	arg.unmap_ns = t3 - t2;
	arg.detach_ns = t4 - t3;
	arg.reserved = 0;
	ret = 0;
out_put:
	dma_buf_put(dmabuf);
	if (!ret && copy_to_user(uarg, &arg, sizeof(arg)))
		ret = -EFAULT;
	return ret;
}

static long importer_sg_read(void __user *uarg)
{
	struct heapgen_sg_read arg;
	struct importer_map m;
	struct scatterlist *sg;
	u64 pos = 0, done = 0;
	unsigned int i;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	ret = importer_map(arg.fd, DMA_BIDIRECTIONAL, &m);
	if (ret)
		return ret;
	/* Walk the CPU side of the table: page, offset and length per entry. */
	for_each_sgtable_sg(m.sgt, sg, i) {
		u64 start = pos, end = pos + sg->length;

		pos = end;
		while (done < arg.len && arg.offset + done >= start &&
		       arg.offset + done < end) {
			u64 in_sg = arg.offset + done - start + sg->offset;
			struct page *page = pfn_to_page(page_to_pfn(sg_page(sg)) +
							(in_sg >> PAGE_SHIFT));
			size_t in_page = offset_in_page(in_sg);
			size_t chunk = min_t(u64, PAGE_SIZE - in_page,
					     min_t(u64, arg.len - done,
						   end - (arg.offset + done)));
			void *va = kmap_local_page(page);

			ret = copy_to_user(u64_to_user_ptr(arg.buf + done),
					   va + in_page, chunk) ? -EFAULT : 0;
			kunmap_local(va);
			if (ret)
				goto out;
			done += chunk;
		}
	}
	if (done < arg.len)
		ret = -EINVAL;
out:
	importer_unmap(&m);
	return ret;
}

/* Pages pinned by one HEAPGEN_PIN call. */
struct importer_pin_chunk {
	struct list_head node;
	unsigned long count;
	struct page *pages[];
};

/* An open file of the device: what HEAPGEN_PIN pinned through it. */
struct importer_file {
	struct mutex lock;
	struct list_head pins;
};

static int importer_open(struct inode *inode, struct file *file)
{
	struct importer_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	INIT_LIST_HEAD(&f->pins);
	file->private_data = f;
	return 0;
}

static void importer_unpin_all(struct importer_file *f)
{
	struct importer_pin_chunk *chunk, *next;

	mutex_lock(&f->lock);
	list_for_each_entry_safe(chunk, next, &f->pins, node) {
		list_del(&chunk->node);
		unpin_user_pages(chunk->pages, chunk->count);
		kvfree(chunk);
	}
	mutex_unlock(&f->lock);
}

static int importer_release(struct inode *inode, struct file *file)
{
	struct importer_file *f = file->private_data;

	importer_unpin_all(f);
	mutex_destroy(&f->lock);
	kfree(f);
	return 0;
}

static long importer_pin(struct importer_file *f, void __user *uarg)
{
	struct importer_pin_chunk *chunk;
	struct heapgen_pin arg;
	unsigned long n, wanted, i;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!arg.stride || !arg.len || arg.addr % PAGE_SIZE ||
	    arg.len % PAGE_SIZE)
		return -EINVAL;
	n = arg.len / PAGE_SIZE;
	wanted = DIV_ROUND_UP(n, arg.stride);
	chunk = kvzalloc(struct_size(chunk, pages, wanted), GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;
	for (i = 0; i < n; i += arg.stride) {
		if (pin_user_pages_fast(arg.addr + i * PAGE_SIZE, 1, FOLL_WRITE,
					&chunk->pages[chunk->count]) != 1)
			break;
		chunk->count++;
	}
	arg.pinned = chunk->count;
	if (!chunk->count) {
		kvfree(chunk);
	} else {
		mutex_lock(&f->lock);
		list_add(&chunk->node, &f->pins);
		mutex_unlock(&f->lock);
	}
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

static long importer_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case HEAPGEN_PIN:
		return importer_pin(file->private_data, uarg);
	case HEAPGEN_UNPIN:
		importer_unpin_all(file->private_data);
		return 0;
	case HEAPGEN_IMPORT:
		return importer_import(uarg);
	case HEAPGEN_POKE_PAST:
		return importer_poke_past(uarg);
	case HEAPGEN_SG_READ:
		return importer_sg_read(uarg);
	case HEAPGEN_VMAP:
		return importer_vmap(uarg);
	case HEAPGEN_TIME_IMPORT:
		return importer_time_import(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations importer_fops = {
	.owner = THIS_MODULE,
	.open = importer_open,
	.release = importer_release,
	.unlocked_ioctl = importer_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice importer_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "heapgen_importer",
	.fops = &importer_fops,
};

static int __init importer_init(void)
{
	int ret;

	importer_pdev = platform_device_register_simple("heapgen_importer",
							PLATFORM_DEVID_NONE,
							NULL, 0);
	if (IS_ERR(importer_pdev))
		return PTR_ERR(importer_pdev);

	ret = dma_set_mask_and_coherent(&importer_pdev->dev, DMA_BIT_MASK(64));
	if (ret) {
		pr_err("cannot set a 64-bit DMA mask: %d\n", ret);
		goto err_pdev;
	}
	/*
	 * Like a camera or display engine without an IOMMU: a contiguous
	 * buffer in one segment, of any length. (It returns void from 6.13,
	 * and cannot fail before on a platform device, which has dma_parms.)
	 */
	dma_set_max_seg_size(&importer_pdev->dev, UINT_MAX);

	importer_small_pdev = platform_device_register_simple("heapgen_importer_small",
							      PLATFORM_DEVID_NONE,
							      NULL, 0);
	if (IS_ERR(importer_small_pdev)) {
		ret = PTR_ERR(importer_small_pdev);
		goto err_pdev;
	}
	ret = dma_set_mask_and_coherent(&importer_small_pdev->dev,
					DMA_BIT_MASK(64));
	if (ret)
		goto err_small;

	ret = misc_register(&importer_misc);
	if (ret)
		goto err_small;
	return 0;

err_small:
	platform_device_unregister(importer_small_pdev);
err_pdev:
	platform_device_unregister(importer_pdev);
	return ret;
}

static void __exit importer_exit(void)
{
	misc_deregister(&importer_misc);
	platform_device_unregister(importer_small_pdev);
	platform_device_unregister(importer_pdev);
}

module_init(importer_init);
module_exit(importer_exit);

MODULE_DESCRIPTION("heapgen test-only dma-buf importer");
MODULE_LICENSE("GPL");
/*
 * MODULE_IMPORT_NS() takes a string from 6.13 on and a bare token before;
 * the modinfo entry it makes is the same on both.
 */
MODULE_INFO(import_ns, "DMA_BUF");
