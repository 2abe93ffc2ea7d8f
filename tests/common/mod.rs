pub mod moo;
pub mod native;
