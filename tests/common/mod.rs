pub mod guest;
pub mod moo;
pub mod native;
pub mod simd;
