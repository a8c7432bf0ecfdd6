//! Property tests of the policy core: the arithmetic every generated heap runs on its allocation
//! path, in every supported page size (4, 16 and 64 KiB). 10 000 cases per property.

use heapgen_policy::{Alignment, Policy, PolicyError, PAGE_SHIFTS};
use proptest::prelude::*;

/// One of the supported page shifts.
fn page_shift() -> impl Strategy<Value = u32> {
    prop::sample::select(PAGE_SHIFTS.to_vec())
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        page_shift(),
        prop_oneof![
            (0u32..=12).prop_map(|order| Alignment::Fixed { order }),
            (0u32..=12).prop_map(|max_order| Alignment::SizeOrder { max_order }),
        ],
        1u64..=256,
        0u64..=64,
        0u64..=64,
        1u64..=4096,
    )
        .prop_map(|(page_shift, alignment, g, before, after, n)| {
            let page = 1u64 << page_shift;
            Policy {
                page_shift,
                alignment,
                granule: g * page,
                guard_before: before * page,
                guard_after: after * page,
                max_alloc: g * page * n,
            }
        })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// The payload is the smallest granule multiple holding the request, and the request is
    /// refused exactly when that exceeds max-alloc.
    #[test]
    fn padding_is_minimal_and_max_alloc_exact(p in policy(), len in 1u64..(1 << 32)) {
        prop_assert!(p.check().is_ok());
        let padded = len.div_ceil(p.granule) * p.granule;
        match p.layout(len) {
            Ok(l) => {
                prop_assert!(padded <= p.max_alloc);
                prop_assert_eq!(l.payload_len, padded);
                prop_assert!(l.payload_len >= len && l.payload_len - len < p.granule);
            }
            Err(e) => {
                prop_assert_eq!(e, PolicyError::TooLarge);
                prop_assert!(padded > p.max_alloc);
            }
        }
    }

    /// The payload starts on the promised alignment, guards never overlap it, the front guard is
    /// padded no more than the alignment needs, and everything is whole pages.
    #[test]
    fn alignment_and_guards_hold(p in policy(), len in 1u64..(1 << 28)) {
        if let Ok(l) = p.layout(len) {
            let page = p.page_size();
            let align = page << l.align_order;
            if let Alignment::Fixed { order } = p.alignment {
                prop_assert_eq!(l.align_order, order);
            }
            prop_assert_eq!(l.payload_offset % align, 0);
            prop_assert!(l.payload_offset >= p.guard_before);
            prop_assert!(l.payload_offset - p.guard_before < align);
            prop_assert_eq!(l.guard_after, p.guard_after);
            prop_assert_eq!(l.total_len, l.payload_offset + l.payload_len + l.guard_after);
            prop_assert_eq!(l.total_len % page, 0);
            prop_assert_eq!(l.total_pages() * page, l.total_len);
            prop_assert_eq!(l.payload_offset % page, 0);
            prop_assert_eq!(l.payload_pages() * page, l.payload_len);
            prop_assert_eq!(l.payload_page_offset() * page, l.payload_offset);
        }
    }

    /// A larger request never needs less memory.
    #[test]
    fn monotonic_in_request_size(p in policy(), a in 1u64..(1 << 30), b in 1u64..(1 << 30)) {
        let (small, large) = if a <= b { (a, b) } else { (b, a) };
        if let (Ok(s), Ok(l)) = (p.layout(small), p.layout(large)) {
            prop_assert!(s.total_len <= l.total_len);
            prop_assert!(s.payload_len <= l.payload_len);
        }
        if p.layout(small).is_err() {
            prop_assert!(p.layout(large).is_err());
        }
    }

    /// Near the top of the size type every request is refused with an error, never a wrapped size.
    #[test]
    fn no_overflow_near_u64_max(
        page_shift in page_shift(),
        g in 1u64..=256,
        before in 0u64..=64,
        after in 0u64..=64,
        order in 0u32..=20,
        len in (u64::MAX - (1 << 40))..=u64::MAX,
    ) {
        let page = 1u64 << page_shift;
        let granule = g * page;
        let p = Policy {
            page_shift,
            alignment: Alignment::Fixed { order },
            granule,
            guard_before: before * page,
            guard_after: after * page,
            max_alloc: u64::MAX - (u64::MAX % granule),
        };
        match p.layout(len) {
            Ok(l) => {
                prop_assert!(l.payload_len >= len);
                prop_assert!(l.total_len >= l.payload_len);
            }
            Err(e) => prop_assert!(matches!(
                e,
                PolicyError::Overflow | PolicyError::TooLarge | PolicyError::BadAlignment
            )),
        }
    }
}
