//! x86-64 paths: AVX2 and AVX-512 (both runtime-detected).

pub(crate) mod avx2;
pub(crate) mod avx512;
