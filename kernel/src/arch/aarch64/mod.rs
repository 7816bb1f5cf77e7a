//! AArch64 paths: NEON (always present on AArch64).

pub(crate) mod neon;
