//! x86-64 paths: AVX2 (runtime-detected).

pub(crate) mod avx2;
