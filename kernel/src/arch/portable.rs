//! One lane of plain f64: the generic algorithms on any target (and in tests).

use super::Lanes;

/// A single f64 lane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct One(f64);

// SAFETY: only portable Rust, valid on every target.
unsafe impl Lanes for One {
    const N: usize = 1;
    type Mask = bool;
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
    unsafe fn gt(self, o: Self) -> bool {
        self.0 > o.0
    }
    unsafe fn ge(self, o: Self) -> bool {
        self.0 >= o.0
    }
    unsafe fn lt(self, o: Self) -> bool {
        self.0 < o.0
    }
    unsafe fn ne(self, o: Self) -> bool {
        self.0 != o.0
    }
    unsafe fn nge(self, o: Self) -> bool {
        // Not `<`: a NaN operand sets the mask.
        !matches!(self.0.partial_cmp(&o.0), Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal))
    }
    unsafe fn select(m: bool, a: Self, b: Self) -> Self {
        if m {
            a
        } else {
            b
        }
    }
    unsafe fn any(m: bool) -> bool {
        m
    }
    unsafe fn none() -> bool {
        false
    }
    unsafe fn and(a: bool, b: bool) -> bool {
        a && b
    }
    unsafe fn or(a: bool, b: bool) -> bool {
        a || b
    }
    unsafe fn xor(a: bool, b: bool) -> bool {
        a != b
    }
    unsafe fn add_where(self, m: bool, x: Self) -> Self {
        if m {
            One(self.0 + x.0)
        } else {
            self
        }
    }
    unsafe fn add_or_zero(self, m: bool, x: Self) -> Self {
        if m {
            One(self.0 + x.0)
        } else {
            One(0.0)
        }
    }
}
