//! One lane of plain f64: the generic algorithms on any target (and in tests).

use super::Lanes;

/// A single f64 lane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct One(f64);

fn mask(b: bool) -> One {
    One(if b { f64::from_bits(u64::MAX) } else { 0.0 })
}

// SAFETY: only portable Rust, valid on every target.
unsafe impl Lanes for One {
    const N: usize = 1;
    unsafe fn splat(x: f64) -> Self {
        One(x)
    }
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller passes a pointer to N = 1 readable f64.
        One(unsafe { p.read_unaligned() })
    }
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller passes a pointer to N = 1 writable f64.
        unsafe { p.write_unaligned(self.0) }
    }
    unsafe fn add(self, o: Self) -> Self {
        One(self.0 + o.0)
    }
    unsafe fn sub(self, o: Self) -> Self {
        One(self.0 - o.0)
    }
    unsafe fn mul(self, o: Self) -> Self {
        One(self.0 * o.0)
    }
    unsafe fn div(self, o: Self) -> Self {
        One(self.0 / o.0)
    }
    unsafe fn min(self, o: Self) -> Self {
        One(self.0.min(o.0))
    }
    unsafe fn max(self, o: Self) -> Self {
        One(self.0.max(o.0))
    }
    unsafe fn gt(self, o: Self) -> Self {
        mask(self.0 > o.0)
    }
    unsafe fn ge(self, o: Self) -> Self {
        mask(self.0 >= o.0)
    }
    unsafe fn lt(self, o: Self) -> Self {
        mask(self.0 < o.0)
    }
    unsafe fn ne(self, o: Self) -> Self {
        mask(self.0 != o.0)
    }
    unsafe fn nge(self, o: Self) -> Self {
        mask(!(self.0 >= o.0))
    }
    unsafe fn select(m: Self, a: Self, b: Self) -> Self {
        if m.0.to_bits() != 0 {
            a
        } else {
            b
        }
    }
    unsafe fn any(m: Self) -> bool {
        m.0.to_bits() != 0
    }
    unsafe fn add_where(self, m: Self, x: Self) -> Self {
        if m.0.to_bits() != 0 {
            One(self.0 + x.0)
        } else {
            self
        }
    }
    unsafe fn add_or_zero(self, m: Self, x: Self) -> Self {
        if m.0.to_bits() != 0 {
            One(self.0 + x.0)
        } else {
            One(0.0)
        }
    }
}
