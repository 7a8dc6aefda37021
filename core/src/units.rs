//! Sizes and alignment: the one copy of the rounding arithmetic every module uses.
//!
//! Sizes and offsets are `u64` bytes throughout memplan. Rounding that could overflow returns
//! `None` (the callers turn that into their own error); nothing here panics.

/// `x` rounded up to a multiple of `granule` (any `granule >= 1`), or `None` when the result
/// does not fit in a `u64` or `granule` is 0.
///
/// # Examples
/// ```
/// use memplan_core::units::round_up;
/// assert_eq!(round_up(1000, 512), Some(1024));
/// assert_eq!(round_up(1024, 512), Some(1024));
/// assert_eq!(round_up(7, 3), Some(9));
/// assert_eq!(round_up(u64::MAX, 512), None);
/// assert_eq!(round_up(5, 0), None);
/// ```
#[inline]
pub fn round_up(x: u64, granule: u64) -> Option<u64> {
    if granule.is_power_of_two() {
        // The largest multiple of a power of two that fits is `u64::MAX - (granule - 1)`, so
        // the addition overflows exactly when the result would.
        Some(x.checked_add(granule - 1)? & !(granule - 1))
    } else if granule == 0 {
        None
    } else {
        x.div_ceil(granule).checked_mul(granule)
    }
}

/// `x` rounded up to a multiple of the power of two `align`, saturating near `u64::MAX`
/// instead of failing. For hot loops over validated inputs whose offsets stay far below
/// `u64::MAX` (the packer); everything else uses [`round_up`].
#[inline]
pub fn align_up_saturating(x: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    x.saturating_add(align - 1) & !(align - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_up_agrees_with_the_definition() {
        for g in 1..=70u64 {
            for x in 0..=300u64 {
                // The smallest multiple of g that is at least x, by search.
                let want = (x..).find(|v| v % g == 0).unwrap();
                assert_eq!(round_up(x, g), Some(want), "x={x} g={g}");
            }
        }
    }

    #[test]
    fn round_up_overflow_is_none() {
        assert_eq!(round_up(u64::MAX, 1), Some(u64::MAX));
        assert_eq!(round_up(u64::MAX - 511, 512), Some(u64::MAX - 511));
        assert_eq!(round_up(u64::MAX - 510, 512), None);
        assert_eq!(round_up(u64::MAX, 3), Some(u64::MAX)); // u64::MAX is divisible by 3
        assert_eq!(round_up(u64::MAX - 1, 10), None); // u64::MAX ends in 5
        assert_eq!(round_up(1, 0), None);
    }

    #[test]
    fn saturating_alignment() {
        assert_eq!(align_up_saturating(513, 512), 1024);
        assert_eq!(align_up_saturating(u64::MAX, 512), u64::MAX - 511);
    }
}
