//! Shared helpers of the forge tests: a seeded generator and an independent
//! RFC 6962 root accumulator.

#![allow(dead_code)]

use stella_verify::merkle::{Hash, node_hash};

/// SplitMix64, a small seeded generator so that every run checks the same cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a value in `low..high`; `high` must exceed `low`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low)
    }

    /// Returns an index below `len`, which must be positive.
    pub fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.range(0, u64::try_from(len).expect("len fits u64")))
            .expect("index fits usize")
    }

    /// Returns a non-zero byte mask for flipping bits.
    pub fn mask(&mut self) -> u8 {
        u8::try_from(self.range(1, 256)).expect("mask fits u8")
    }
}

/// Computes RFC 6962 roots of growing prefixes from leaf hashes appended in
/// order, with a stack of perfect subtree roots and no tile code.
#[derive(Default)]
pub struct RootAccumulator {
    /// (height, hash) of perfect subtrees, highest first.
    stack: Vec<(u32, Hash)>,
}

impl RootAccumulator {
    pub fn push(&mut self, leaf: Hash) {
        let mut entry = (0u32, leaf);
        while let Some(&(height, left)) = self.stack.last() {
            if height != entry.0 {
                break;
            }
            self.stack.pop();
            entry = (height + 1, node_hash(&left, &entry.1));
        }
        self.stack.push(entry);
    }

    /// Returns the root of the leaves pushed so far; there must be at least one.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.stack.iter().rev();
        let mut root = subtrees.next().expect("at least one leaf").1;
        for (_, left) in subtrees {
            root = node_hash(left, &root);
        }
        root
    }
}
