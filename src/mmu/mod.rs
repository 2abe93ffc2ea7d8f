//! Memory: the physical address map and the software TLB. Segmentation checks and the
//! page walk live with the interpreter (`cpu::exec`), which owns the translation context.

mod phys;
pub mod tlb;

pub use phys::{MapError, PhysMem};
