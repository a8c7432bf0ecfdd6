// SPDX-License-Identifier: GPL-2.0

//! Allocation policy arithmetic: alignment, granule padding, guard layout and overflow checks.
//!
//! This file is pure `core` code. The generator compiles it on the host to validate board files,
//! the host tests property-test it, and every generated module includes it verbatim so that the
//! allocation path runs exactly the arithmetic that was validated. All arithmetic is checked: a
//! request that would overflow is an error, never a wrapped size.

/// log2 of the page size of a policy that does not say otherwise: 4 KiB, the page size of x86_64
/// and of most arm64 kernels.
pub const DEFAULT_PAGE_SHIFT: u32 = 12;

/// The page sizes a policy may be expressed in (`log2`): 4, 16 and 64 KiB, arm64's three
/// translation granules (x86_64 has 4 KiB only).
pub const PAGE_SHIFTS: [u32; 3] = [12, 14, 16];

/// The largest alignment a policy may ask for, in bytes: 4 GiB.
pub const MAX_ALIGN: u64 = 1 << 32;

/// The value every 64-bit word of a guard area holds while no device has written to it.
pub const GUARD_CANARY: u64 = 0x6865_6170_6765_6e21;

/// How the physical start of a buffer is aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alignment {
    /// Every buffer's payload starts on a multiple of `page size << order` bytes.
    Fixed {
        /// The alignment as an order of pages (with 4 KiB pages, 0 is 4 KiB and 8 is 1 MiB).
        order: u32,
    },
    /// Upstream's CMA heap rule: the order of the padded length, capped at `max_order`.
    SizeOrder {
        /// The largest order used (upstream's `CONFIG_CMA_ALIGNMENT`, 8 by default).
        max_order: u32,
    },
}

/// Why a policy or a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// The request was for zero bytes.
    ZeroLength,
    /// Padding, guards or alignment would overflow the size type.
    Overflow,
    /// The padded request is larger than the region's `max-alloc`.
    TooLarge,
    /// The page size is not one of [`PAGE_SHIFTS`].
    BadPageSize,
    /// The granule is zero or not a multiple of the page size.
    BadGranule,
    /// A guard size is not a multiple of the page size.
    BadGuard,
    /// The alignment is above [`MAX_ALIGN`].
    BadAlignment,
    /// `max-alloc` is zero or not a multiple of the granule.
    BadMaxAlloc,
}

impl PolicyError {
    /// A short, stable description of the error, used in diagnostics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ZeroLength => "zero-length request",
            Self::Overflow => "size arithmetic overflows",
            Self::TooLarge => "request is larger than max-alloc",
            Self::BadPageSize => "the page size must be 4, 16 or 64 KiB",
            Self::BadGranule => "granule must be a non-zero multiple of the page size",
            Self::BadGuard => "guard sizes must be multiples of the page size",
            Self::BadAlignment => "alignment is larger than 4 GiB",
            Self::BadMaxAlloc => "max-alloc must be a non-zero multiple of the granule",
        }
    }
}

/// The placement of one buffer inside its CMA allocation.
///
/// ```text
///  allocation start (aligned to align_order)
///  |<- payload_offset ->|<------ payload_len ------>|<- guard_after ->|
///  |   guard (canary)   |   payload (user visible)   | guard (canary) |
///  |<------------------------------ total_len ----------------------->|
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bytes the user sees: the request rounded up to the granule.
    pub payload_len: u64,
    /// Bytes from the allocation start to the payload: the front guard rounded up to the alignment.
    pub payload_offset: u64,
    /// Bytes of guard after the payload.
    pub guard_after: u64,
    /// Bytes allocated from CMA: front guard, payload and back guard.
    pub total_len: u64,
    /// The alignment order (in pages) the CMA allocation is made with.
    pub align_order: u32,
    /// log2 of the page size every length above is a multiple of.
    pub page_shift: u32,
}

impl Layout {
    /// Number of pages allocated from CMA.
    pub const fn total_pages(&self) -> u64 {
        self.total_len >> self.page_shift
    }

    /// Number of pages before the payload.
    pub const fn payload_page_offset(&self) -> u64 {
        self.payload_offset >> self.page_shift
    }

    /// Number of payload pages.
    pub const fn payload_pages(&self) -> u64 {
        self.payload_len >> self.page_shift
    }

    /// Whether the buffer has any guard area.
    pub const fn has_guards(&self) -> bool {
        self.payload_offset != 0 || self.guard_after != 0
    }
}

/// One region's allocation policy, in the pages of the kernel it runs on: every length is a
/// multiple of the page size, and alignment orders count pages of that size (`cma_alloc`'s unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// log2 of the page size (one of [`PAGE_SHIFTS`]).
    pub page_shift: u32,
    /// How buffers are aligned.
    pub alignment: Alignment,
    /// Requests are rounded up to a multiple of this many bytes.
    pub granule: u64,
    /// Bytes of guard before the payload (rounded up to the alignment in the layout).
    pub guard_before: u64,
    /// Bytes of guard after the payload.
    pub guard_after: u64,
    /// The largest payload (after granule rounding) a request may ask for, in bytes.
    pub max_alloc: u64,
}

/// Rounds `value` up to a multiple of `multiple`, or `None` on overflow or a zero `multiple`.
pub const fn round_up(value: u64, multiple: u64) -> Option<u64> {
    match value.checked_rem(multiple) {
        None => None,
        Some(0) => Some(value),
        Some(rem) => value.checked_add(multiple - rem),
    }
}

/// The smallest order `o` such that `page size << o >= len` (the kernel's `get_order`).
pub const fn order_of(len: u64, page_shift: u32) -> u32 {
    if len <= 1 << page_shift {
        return 0;
    }
    let pages = (len - 1) >> page_shift;
    u64::BITS - pages.leading_zeros()
}

/// Whether `page_shift` is one of [`PAGE_SHIFTS`].
pub const fn is_page_shift(page_shift: u32) -> bool {
    let mut i = 0;
    while i < PAGE_SHIFTS.len() {
        if PAGE_SHIFTS[i] == page_shift {
            return true;
        }
        i += 1;
    }
    false
}

impl Policy {
    /// Upstream's CMA heap policy in pages of `1 << page_shift` bytes: page granule, size-order
    /// alignment capped at 256 pages (1 MiB with 4 KiB pages), no guards.
    pub const fn upstream(page_shift: u32) -> Policy {
        let page = 1u64 << page_shift;
        Policy {
            page_shift,
            alignment: Alignment::SizeOrder { max_order: 8 },
            granule: page,
            guard_before: 0,
            guard_after: 0,
            max_alloc: u64::MAX - (u64::MAX % page),
        }
    }

    /// The page size, in bytes.
    pub const fn page_size(&self) -> u64 {
        1 << self.page_shift
    }

    /// The largest alignment order the policy can pick.
    const fn max_order(&self) -> u32 {
        match self.alignment {
            Alignment::Fixed { order } => order,
            Alignment::SizeOrder { max_order } => max_order,
        }
    }

    /// Whether the largest alignment the policy can pick is at most [`MAX_ALIGN`] (and so
    /// `page size << order` cannot overflow).
    const fn alignment_ok(&self) -> bool {
        let order = self.max_order();
        order < 32 && order + self.page_shift <= MAX_ALIGN.trailing_zeros()
    }

    /// Checks the policy itself: page size, granule, guards, alignment and `max-alloc` are well
    /// formed and the largest request `max-alloc` allows can be laid out without overflow.
    pub const fn check(&self) -> Result<Layout, PolicyError> {
        if !is_page_shift(self.page_shift) {
            return Err(PolicyError::BadPageSize);
        }
        let page = self.page_size();
        if self.granule == 0 || self.granule % page != 0 {
            return Err(PolicyError::BadGranule);
        }
        if self.guard_before % page != 0 || self.guard_after % page != 0 {
            return Err(PolicyError::BadGuard);
        }
        if !self.alignment_ok() {
            return Err(PolicyError::BadAlignment);
        }
        if self.max_alloc == 0 || self.max_alloc % self.granule != 0 {
            return Err(PolicyError::BadMaxAlloc);
        }
        self.layout(self.max_alloc)
    }

    /// The alignment order used for a payload of `payload_len` bytes.
    pub const fn align_order(&self, payload_len: u64) -> u32 {
        match self.alignment {
            Alignment::Fixed { order } => order,
            Alignment::SizeOrder { max_order } => {
                let order = order_of(payload_len, self.page_shift);
                if order > max_order {
                    max_order
                } else {
                    order
                }
            }
        }
    }

    /// The largest payload (a granule multiple) whose layout fits in a region of `size` bytes,
    /// assuming the largest alignment the policy can pick, or `None` when not even one granule
    /// fits. Ignores `max_alloc`; the generator uses it as the default `max-alloc`.
    pub const fn max_payload_within(&self, size: u64) -> Option<u64> {
        if !is_page_shift(self.page_shift) || !self.alignment_ok() || self.granule == 0 {
            return None;
        }
        let front = match round_up(self.guard_before, self.page_size() << self.max_order()) {
            Some(v) => v,
            None => return None,
        };
        let overhead = match front.checked_add(self.guard_after) {
            Some(v) => v,
            None => return None,
        };
        let room = match size.checked_sub(overhead) {
            Some(v) => v,
            None => return None,
        };
        let payload = room - room % self.granule;
        if payload == 0 {
            None
        } else {
            Some(payload)
        }
    }

    /// Lays out a request of `len` bytes, or says why it cannot be served.
    ///
    /// Assumes a policy that passed [`Policy::check`]. The result is monotonic in `len`, the payload
    /// is the smallest granule multiple holding `len`, and the guards never overlap the payload.
    pub const fn layout(&self, len: u64) -> Result<Layout, PolicyError> {
        if len == 0 {
            return Err(PolicyError::ZeroLength);
        }
        if !is_page_shift(self.page_shift) {
            return Err(PolicyError::BadPageSize);
        }
        if !self.alignment_ok() {
            return Err(PolicyError::BadAlignment);
        }
        let payload_len = match round_up(len, self.granule) {
            Some(v) => v,
            None => return Err(PolicyError::Overflow),
        };
        if payload_len > self.max_alloc {
            return Err(PolicyError::TooLarge);
        }
        let align_order = self.align_order(payload_len);
        let align = self.page_size() << align_order;
        let payload_offset = match round_up(self.guard_before, align) {
            Some(v) => v,
            None => return Err(PolicyError::Overflow),
        };
        let total_len = match payload_offset.checked_add(payload_len) {
            Some(v) => match v.checked_add(self.guard_after) {
                Some(v) => v,
                None => return Err(PolicyError::Overflow),
            },
            None => return Err(PolicyError::Overflow),
        };
        Ok(Layout {
            payload_len,
            payload_offset,
            guard_after: self.guard_after,
            total_len,
            align_order,
            page_shift: self.page_shift,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K4: u64 = 4096;
    const M1: u64 = 1 << 20;

    fn fixed(order: u32) -> Policy {
        Policy {
            page_shift: DEFAULT_PAGE_SHIFT,
            alignment: Alignment::Fixed { order },
            granule: K4,
            guard_before: 0,
            guard_after: 0,
            max_alloc: 1 << 40,
        }
    }

    #[test]
    fn order_of_matches_get_order() {
        assert_eq!(order_of(1, 12), 0);
        assert_eq!(order_of(K4, 12), 0);
        assert_eq!(order_of(K4 + 1, 12), 1);
        assert_eq!(order_of(8192, 12), 1);
        assert_eq!(order_of(M1, 12), 8);
        assert_eq!(order_of(M1 + 1, 12), 9);
        // In 16 KiB pages.
        assert_eq!(order_of(16 * 1024, 14), 0);
        assert_eq!(order_of(16 * 1024 + 1, 14), 1);
        assert_eq!(order_of(M1, 14), 6);
    }

    #[test]
    fn sixteen_k_pages_align_and_count_in_16k_units() {
        let p = Policy {
            page_shift: 14,
            granule: 16 * 1024,
            guard_after: 16 * 1024,
            ..fixed(2)
        };
        let l = p.layout(1).unwrap();
        assert_eq!(l.payload_len, 16 * 1024);
        assert_eq!(l.total_pages(), 2);
        assert_eq!(l.payload_pages(), 1);
        assert_eq!(l.align_order, 2);
        // A 4 KiB granule or guard is below a 16 KiB page.
        assert_eq!(
            Policy { granule: K4, ..p }.check(),
            Err(PolicyError::BadGranule)
        );
        assert_eq!(
            Policy {
                guard_after: K4,
                ..p
            }
            .check(),
            Err(PolicyError::BadGuard)
        );
        assert_eq!(
            Policy {
                page_shift: 13,
                ..p
            }
            .check(),
            Err(PolicyError::BadPageSize)
        );
    }

    #[test]
    fn upstream_aligns_by_size_order_capped_at_1m() {
        let p = Policy::upstream(DEFAULT_PAGE_SHIFT);
        assert_eq!(p.layout(100).unwrap().align_order, 0);
        assert_eq!(p.layout(64 * 1024).unwrap().align_order, 4);
        assert_eq!(p.layout(M1 + M1 / 10).unwrap().align_order, 8);
        assert_eq!(p.layout(16 * M1).unwrap().align_order, 8);
    }

    #[test]
    fn granule_rounds_up() {
        let mut p = fixed(0);
        p.granule = 64 * 1024;
        p.max_alloc = 1 << 30;
        let l = p.layout(1).unwrap();
        assert_eq!(l.payload_len, 64 * 1024);
        assert_eq!(p.layout(64 * 1024 + 1).unwrap().payload_len, 128 * 1024);
    }

    #[test]
    fn front_guard_is_padded_to_alignment() {
        let mut p = fixed(8);
        p.guard_before = K4;
        p.guard_after = K4;
        let l = p.layout(K4).unwrap();
        assert_eq!(l.payload_offset, M1);
        assert_eq!(l.total_len, M1 + 2 * K4);
        assert!(l.has_guards());
    }

    #[test]
    fn max_payload_within_leaves_room_for_guards() {
        let mut p = fixed(8);
        p.granule = M1;
        p.guard_before = K4;
        p.guard_after = K4;
        p.max_alloc = u64::MAX - (u64::MAX % M1);
        let max = p.max_payload_within(36 * M1).unwrap();
        assert_eq!(max, 34 * M1);
        p.max_alloc = max;
        assert!(p.layout(max).unwrap().total_len <= 36 * M1);
        assert_eq!(p.max_payload_within(M1), None);
    }

    #[test]
    fn max_alloc_is_enforced() {
        let mut p = fixed(0);
        p.max_alloc = M1;
        assert!(p.layout(M1).is_ok());
        assert_eq!(p.layout(M1 + 1), Err(PolicyError::TooLarge));
    }

    #[test]
    fn overflow_is_an_error() {
        let p = Policy {
            max_alloc: u64::MAX - (u64::MAX % K4),
            guard_after: K4,
            ..fixed(0)
        };
        assert_eq!(p.layout(u64::MAX), Err(PolicyError::Overflow));
        assert_eq!(p.check(), Err(PolicyError::Overflow));
        assert_eq!(p.layout(0), Err(PolicyError::ZeroLength));
    }

    #[test]
    fn check_rejects_malformed_policies() {
        assert_eq!(
            Policy {
                granule: 100,
                ..fixed(0)
            }
            .check(),
            Err(PolicyError::BadGranule)
        );
        assert_eq!(
            Policy {
                guard_after: 100,
                ..fixed(0)
            }
            .check(),
            Err(PolicyError::BadGuard)
        );
        assert_eq!(fixed(21).check(), Err(PolicyError::BadAlignment));
        assert_eq!(fixed(20).check().map(|_| ()), Ok(()));
        assert_eq!(
            Policy {
                page_shift: 16,
                granule: 1 << 16,
                max_alloc: 1 << 40,
                ..fixed(17)
            }
            .check(),
            Err(PolicyError::BadAlignment)
        );
        assert_eq!(
            Policy {
                max_alloc: 0,
                ..fixed(0)
            }
            .check(),
            Err(PolicyError::BadMaxAlloc)
        );
    }
}
