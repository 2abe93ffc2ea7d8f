//! Memory: the physical address map. Segmentation checks and the page walk live with the
//! interpreter (`cpu::exec`) for now; a software TLB with host pointers comes with the
//! protected-mode work.

mod phys;

pub use phys::{MapError, PhysMem};
