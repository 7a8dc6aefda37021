//! Eviction heuristics: which evictable storage goes first (lowest score first).

use core::fmt;
use core::str::FromStr;

/// An eviction heuristic. Lower score = evicted first; see the module docs of
/// [`crate::evict`] for the exact formulas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Heuristic {
    /// h_DTR: `(c(S) + C_fwd(S) + C_bwd(S)) / (size · staleness)` over evicted neighbourhoods.
    Dtr,
    /// h_DTR^eq: `(c(S) + Σ value(K)) / (size · staleness)` over the union-find classes of the
    /// evicted neighbours.
    DtrEq,
    /// h_DTR^local: `c(S) / (size · staleness)`.
    DtrLocal,
    /// h_MSPS: `(c(S) + C_bwd(S)) / size`.
    Msps,
    /// Least recently used first.
    Lru,
    /// Largest storage first.
    Largest,
    /// memplan's own: `(c(S) + C_bwd(S)) / (size · (staleness + distance to the next use))`
    /// (h_MSPS's cost over the whole idle interval: DTR's staleness plus Belady's lookahead),
    /// the next use taken from the known schedule when the caller gives one
    /// ([`crate::evict::Runtime::set_next_use`]); staleness alone otherwise.
    Memplan,
}

impl Heuristic {
    /// Every heuristic, in the order of the command-line names.
    pub const ALL: [Heuristic; 7] = [
        Heuristic::Dtr,
        Heuristic::DtrEq,
        Heuristic::DtrLocal,
        Heuristic::Msps,
        Heuristic::Lru,
        Heuristic::Largest,
        Heuristic::Memplan,
    ];

    /// The command-line / JSON name (`dtr`, `dtr-eq`, `dtr-local`, `msps`, `lru`, `largest`,
    /// `memplan`).
    pub fn name(self) -> &'static str {
        match self {
            Heuristic::Dtr => "dtr",
            Heuristic::DtrEq => "dtr-eq",
            Heuristic::DtrLocal => "dtr-local",
            Heuristic::Msps => "msps",
            Heuristic::Lru => "lru",
            Heuristic::Largest => "largest",
            Heuristic::Memplan => "memplan",
        }
    }

    /// The class name in `simrd` (`DTR`, `DTREqClass`, ...); `None` for memplan's own.
    pub fn simrd_name(self) -> Option<&'static str> {
        Some(match self {
            Heuristic::Dtr => "DTR",
            Heuristic::DtrEq => "DTREqClass",
            Heuristic::DtrLocal => "DTRLocal",
            Heuristic::Msps => "MSPS",
            Heuristic::Lru => "LRU",
            Heuristic::Largest => "LargestStorage",
            Heuristic::Memplan => return None,
        })
    }

    /// Whether the runtime must maintain evicted-neighbourhood regions for it.
    pub(crate) fn uses_regions(self) -> bool {
        matches!(self, Heuristic::Dtr | Heuristic::Msps | Heuristic::Memplan)
    }

    /// Whether the runtime must maintain union-find equivalence classes for it.
    pub(crate) fn uses_eq_classes(self) -> bool {
        matches!(self, Heuristic::DtrEq)
    }
}

impl fmt::Display for Heuristic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A heuristic name that is not one of [`Heuristic::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownHeuristic;

impl fmt::Display for UnknownHeuristic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "unknown heuristic (expected dtr, dtr-eq, dtr-local, msps, lru, largest or memplan)",
        )
    }
}

impl FromStr for Heuristic {
    type Err = UnknownHeuristic;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Heuristic::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .ok_or(UnknownHeuristic)
    }
}

/// `num / den` rounded once to the nearest `f64` (ties to even), as Python's `int / int`
/// does; `+∞` when `den == 0`. Exactness matters: `simrd` compares such quotients and
/// breaks ties by pool order, so a double rounding could pick a different victim.
pub(crate) fn div_round(num: i128, den: u128) -> f64 {
    if den == 0 {
        return f64::INFINITY;
    }
    if num == 0 {
        return 0.0;
    }
    let neg = num < 0;
    let n = num.unsigned_abs();
    let q = if n < (1 << 53) && den < (1 << 53) {
        // Both exact as doubles: one IEEE division rounds once.
        n as f64 / den as f64
    } else {
        // Scale the numerator up so that the integer quotient carries at least 64 bits,
        // then round that (with a sticky bit for the remainder) to 53 bits.
        let shift = n.leading_zeros(); // n << shift keeps the top bit at 127.
        let scaled = n << shift;
        let mut q = scaled / den;
        let sticky = scaled % den != 0;
        let bits = 128 - q.leading_zeros();
        let mut exp = -(shift as i32);
        if bits > 53 {
            let drop = bits - 53;
            let rest = q & ((1u128 << drop) - 1);
            let half = 1u128 << (drop - 1);
            q >>= drop;
            exp += drop as i32;
            let round_up = rest > half || (rest == half && (sticky || q & 1 == 1));
            if round_up {
                q += 1;
            }
        }
        // q < 2^54 is exact in f64; scaling by a power of two is exact (no subnormals here).
        let mut v = q as f64;
        let mut e = exp;
        while e < -1000 {
            v *= f64::from_bits(((1023 - 1000) as u64) << 52);
            e += 1000;
        }
        while e > 1000 {
            v *= f64::from_bits(((1023 + 1000) as u64) << 52);
            e -= 1000;
        }
        v * f64::from_bits(((1023 + e) as u64) << 52)
    };
    if neg { -q } else { q }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for h in Heuristic::ALL {
            assert_eq!(h.name().parse::<Heuristic>(), Ok(h));
        }
        assert!("DTR".parse::<Heuristic>().is_err());
    }

    #[test]
    fn division_rounds_once() {
        assert_eq!(div_round(1, 3), 1.0 / 3.0);
        assert_eq!(div_round(-7, 2), -3.5);
        assert_eq!(div_round(5, 0), f64::INFINITY);
        assert_eq!(div_round(0, 9), 0.0);
        // Large denominators: compare with a slow exact check of the rounding.
        let cases: [(i128, u128); 4] = [
            (1_000_000_007, 12_345_678_901_234_567_891),
            (987_654_321_987, (1 << 60) + 12345),
            ((1 << 53) + 1, 3),
            (123, (1u128 << 70) + 1),
        ];
        for (n, d) in cases {
            let q = div_round(n, d);
            // q is the nearest double: the exact quotient lies within half an ulp.
            let (m, e) = decompose(q);
            // |n/d - m·2^e| <= 2^(e-1)  ⇔  |n·2^-e·2 - 2m·d| <= d  (e < 0 here).
            let s = (-e) as u32;
            let lhs = ((n as u128) << (s + 1)) as i128 - (2 * m as u128 * d) as i128;
            assert!(lhs.unsigned_abs() <= d, "{n}/{d}");
        }
    }

    fn decompose(x: f64) -> (u64, i32) {
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let mant = (bits & ((1 << 52) - 1)) | (1 << 52);
        (mant, exp - 1075)
    }
}
