pub mod moo;
pub mod native;
pub mod simd;
