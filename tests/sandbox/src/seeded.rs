//! Deterministic data generation shared by the sandboxes: a seeded PRNG, exact apportioning
//! and the `YYYY-MM-DD` date format.

use time::Date;

/// SplitMix64: tiny, fast, and fixed forever.
pub(crate) struct Prng(u64);

impl Prng {
    /// An independent stream for `(seed, a, b)`; `salt` keeps each sandbox's streams apart.
    pub fn salted(salt: u64, seed: u64, a: u64, b: u64) -> Prng {
        let mut p = Prng(seed ^ salt);
        let x = p.next_u64() ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut q = Prng(x);
        let y = q.next_u64() ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        Prng(y)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n == 0`); the modulo bias is irrelevant for fake data.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }

    /// `floor(x * r)` for `r` uniform in `[lo, hi)`.
    pub fn part(&mut self, x: u64, lo: f64, hi: f64) -> u64 {
        let r = lo + (hi - lo) * self.unit();
        (x as f64 * r).floor() as u64
    }

    /// `len` lowercase hex digits.
    pub fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.index(16)]))
            .collect()
    }
}

/// Splits `total` in proportion to `factors` with the largest-remainder method, so the
/// parts add up to `total` exactly.
pub(crate) fn apportion(total: u64, factors: &[f64]) -> Vec<u64> {
    apportion_among(total, factors, false)
}

/// [`apportion`], where the leftover units never go to a zero factor.
pub(crate) fn apportion_positive(total: u64, factors: &[f64]) -> Vec<u64> {
    apportion_among(total, factors, true)
}

fn apportion_among(total: u64, factors: &[f64], positive_only: bool) -> Vec<u64> {
    let sum: f64 = factors.iter().sum();
    if total == 0 || sum <= 0.0 {
        return vec![0; factors.len()];
    }
    let exact: Vec<f64> = factors.iter().map(|f| total as f64 * f / sum).collect();
    let mut parts: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut left = total.saturating_sub(parts.iter().sum());
    let mut by_remainder: Vec<usize> = (0..factors.len())
        .filter(|&i| !positive_only || factors[i] > 0.0)
        .collect();
    by_remainder.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for &i in by_remainder.iter().cycle() {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// `YYYY-MM-DD`.
pub(crate) fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}
