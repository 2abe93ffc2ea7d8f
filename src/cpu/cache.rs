//! Decoded-block cache keyed by physical address.
//!
//! A block is a run of decoded instructions that starts at a physical address and stays
//! inside one 4 KiB page; it ends after an instruction that may change control flow or
//! CPU mode (see [`super::decode::iflags::END`]), before an instruction that would cross
//! the page, or after [`MAX_BLOCK`] instructions. Blocks are keyed by physical address and
//! the code-segment size (the same bytes decode differently in 16- and 32-bit code).
//!
//! Coherence: every page that holds a cached block is marked in [`PhysMem`]'s code-page
//! bitmap; a guest (or DMA, or loader) write to such a page queues the page, and the CPU
//! drops all blocks of queued pages before it executes the next instruction.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::decode::Insn;
use crate::mmu::PhysMem;

pub const MAX_BLOCK: usize = 64;

#[derive(Debug)]
pub struct Block {
    pub insns: Vec<Insn>,
    /// Total length in bytes.
    pub bytes: u32,
}

/// Multiplicative hasher for integer keys (deterministic; we never iterate the maps in a
/// way that is guest-visible).
#[derive(Default)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
}

type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

#[derive(Default)]
pub struct BlockCache {
    blocks: IntMap<u64, Arc<Block>>,
    by_page: IntMap<u32, Vec<u64>>,
    /// Counters for users and benchmarks.
    pub stats: CacheStats,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CacheStats {
    pub blocks_built: u64,
    pub invalidations: u64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("blocks", &self.blocks.len())
            .field("stats", &self.stats)
            .finish()
    }
}

#[inline]
pub fn key(phys: u32, code32: bool) -> u64 {
    phys as u64 | (code32 as u64) << 32
}

impl BlockCache {
    #[inline]
    pub fn get(&self, key: u64) -> Option<&Arc<Block>> {
        self.blocks.get(&key)
    }

    pub fn insert(&mut self, key: u64, block: Arc<Block>, mem: &mut PhysMem) {
        let phys = key as u32;
        mem.mark_code(phys);
        self.by_page.entry(phys >> 12).or_default().push(key);
        self.blocks.insert(key, block);
        self.stats.blocks_built += 1;
    }

    /// Drop every block of the pages queued by guest writes.
    pub fn invalidate_written(&mut self, mem: &mut PhysMem) {
        for page in std::mem::take(&mut mem.smc_pages) {
            if let Some(keys) = self.by_page.remove(&page) {
                self.stats.invalidations += 1;
                for k in keys {
                    self.blocks.remove(&k);
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.blocks.clear();
        self.by_page.clear();
    }
}
