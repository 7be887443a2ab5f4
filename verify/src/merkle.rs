//! RFC 6962 Merkle tree hashing and proof verification.
//!
//! Implements the leaf and node hashes of RFC 6962 §2.1 and the inclusion and
//! consistency proof verification of RFC 9162 §2.1.3.2 and §2.1.4.2, with the
//! proof length checked before any hashing, as transparency-dev/merkle does.
//! The proof builders ([`inclusion_proof`], [`consistency_proof`]) are the
//! RFC 6962 `PATH` and `SUBPROOF` recursions over leaf hashes in memory. They
//! serve tests and the demo kit. Verification of real logs takes its proofs
//! from tiles (see [`crate::tiles`]).
//!
//! Left out: hash functions other than SHA-256, and RFC 9162's SHA-256-only
//! log parameters that are not part of the proof math.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// Formats a hash in standard base64, as checkpoints write root hashes.
pub(crate) fn base64_text(hash: &Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(hash)
}

use crate::reason::{HasReasonCode, ReasonCode};

/// A SHA-256 Merkle tree hash.
pub type Hash = [u8; 32];

/// Size in bytes of a [`Hash`](type@Hash).
pub const HASH_SIZE: usize = 32;

/// Errors from Merkle proof verification.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// The proof has the wrong number of hashes for its sizes.
    #[error("proof has {got} hashes, expected {want}")]
    WrongProofSize { got: usize, want: usize },
    /// The hash recomputed from the proof differs from the trusted root.
    #[error("computed root {} does not match expected root {}", base64_text(.computed), base64_text(.expected))]
    RootMismatch { computed: Hash, expected: Hash },
    /// A consistency proof does not lead back to the old root.
    #[error("computed old root {} does not match expected old root {}", base64_text(.computed), base64_text(.expected))]
    OldRootMismatch { computed: Hash, expected: Hash },
    /// Consistency between these sizes is undefined: the old size is 0 or above the new size.
    #[error("invalid consistency sizes: old size {size1}, new size {size2} (need 0 < old <= new)")]
    InvalidSizes { size1: u64, size2: u64 },
    /// A hash given as bytes does not have 32 bytes.
    #[error("hash has {got} bytes, expected 32")]
    WrongHashLength { got: usize },
}

impl HasReasonCode for ProofError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            ProofError::IndexOutOfRange { .. }
            | ProofError::WrongProofSize { .. }
            | ProofError::RootMismatch { .. }
            | ProofError::OldRootMismatch { .. }
            | ProofError::InvalidSizes { .. }
            | ProofError::WrongHashLength { .. } => ReasonCode::RekorProofInvalid,
        }
    }
}

/// Computes the RFC 6962 leaf hash `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Computes the RFC 6962 interior node hash `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Returns the root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Converts a byte slice into a [`Hash`](type@Hash).
///
/// # Errors
///
/// [`ProofError::WrongHashLength`] unless `bytes` has exactly 32 bytes.
pub fn hash_from_slice(bytes: &[u8]) -> Result<Hash, ProofError> {
    Hash::try_from(bytes).map_err(|_| ProofError::WrongHashLength { got: bytes.len() })
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with root `root`.
///
/// # Errors
///
/// [`ProofError::IndexOutOfRange`], [`ProofError::WrongProofSize`] or
/// [`ProofError::RootMismatch`].
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion(index, size, leaf, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch {
            computed,
            expected: *root,
        });
    }
    Ok(())
}

/// Computes the root implied by an inclusion proof, so that a caller can report it.
///
/// # Errors
///
/// [`ProofError::IndexOutOfRange`] or [`ProofError::WrongProofSize`].
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let want = inclusion_proof_len(index, size);
    if proof.len() != want {
        return Err(ProofError::WrongProofSize {
            got: proof.len(),
            want,
        });
    }
    let last = size.saturating_sub(1);
    Ok(chain_path(index, last, *leaf, None, proof).0)
}

/// Returns the number of hashes in an inclusion proof for `index < size`.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let last = size.saturating_sub(1);
    let inner = bit_length(index ^ last);
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    len_from_u32(inner).saturating_add(len_from_u32(border))
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the tree
/// of `size1` leaves with root `root1`.
///
/// # Errors
///
/// [`ProofError::InvalidSizes`], [`ProofError::WrongProofSize`],
/// [`ProofError::OldRootMismatch`] or [`ProofError::RootMismatch`].
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size1 == 0 || size1 > size2 {
        return Err(ProofError::InvalidSizes { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofSize {
                got: proof.len(),
                want: 0,
            });
        }
        if root1 != root2 {
            return Err(ProofError::RootMismatch {
                computed: *root1,
                expected: *root2,
            });
        }
        return Ok(());
    }

    let want = consistency_proof_len(size1, size2);
    if proof.len() != want {
        return Err(ProofError::WrongProofSize {
            got: proof.len(),
            want,
        });
    }

    // When size1 is a power of two, the old tree is a complete subtree of the
    // new one and its root is the implicit first proof element.
    let (seed, rest) = if size1.is_power_of_two() {
        (*root1, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(ProofError::WrongProofSize { got: 0, want }),
        }
    };

    // Skip the levels where the old tree's last node is a right child: the
    // seed already covers them.
    let shift = size1.trailing_zeros();
    let first = size1.saturating_sub(1) >> shift;
    let last = size2.saturating_sub(1) >> shift;
    let (new_root, old_root) = chain_path(first, last, seed, Some(seed), rest);
    let old_root = old_root.unwrap_or(seed);

    if old_root != *root1 {
        return Err(ProofError::OldRootMismatch {
            computed: old_root,
            expected: *root1,
        });
    }
    if new_root != *root2 {
        return Err(ProofError::RootMismatch {
            computed: new_root,
            expected: *root2,
        });
    }
    Ok(())
}

/// Returns the number of hashes in a consistency proof for `0 < size1 < size2`.
fn consistency_proof_len(size1: u64, size2: u64) -> usize {
    let shift = size1.trailing_zeros();
    let first = size1.saturating_sub(1) >> shift;
    let last = size2.saturating_sub(1) >> shift;
    let seed_in_proof = usize::from(!size1.is_power_of_two());
    let inner = bit_length(first ^ last);
    let border = first.checked_shr(inner).unwrap_or(0).count_ones();
    seed_in_proof
        .saturating_add(len_from_u32(inner))
        .saturating_add(len_from_u32(border))
}

/// Folds proof hashes into the path from node `index` up to the root of a
/// tree whose last node at this level is `last` (the RFC 9162 loop).
///
/// Returns the new root and, when `old` is given, the root of the tree that
/// ends at `index` (the old tree of a consistency proof). The caller has
/// checked the proof length, so `last` reaches 0 exactly at the end.
fn chain_path(
    index: u64,
    last: u64,
    seed: Hash,
    old: Option<Hash>,
    proof: &[Hash],
) -> (Hash, Option<Hash>) {
    let mut node = index;
    let mut last_node = last;
    let mut new_root = seed;
    let mut old_root = old;
    for sibling in proof {
        if node & 1 == 1 || node == last_node {
            new_root = node_hash(sibling, &new_root);
            old_root = old_root.map(|root| node_hash(sibling, &root));
            if node & 1 == 0 {
                // The node is the right edge of the tree: climb until it is a
                // right child again, because those levels have no sibling.
                while node & 1 == 0 && node != 0 {
                    node >>= 1;
                    last_node >>= 1;
                }
            }
        } else {
            new_root = node_hash(&new_root, sibling);
        }
        node >>= 1;
        last_node >>= 1;
    }
    (new_root, old_root)
}

/// Returns the number of significant bits in `value`.
fn bit_length(value: u64) -> u32 {
    u64::BITS.saturating_sub(value.leading_zeros())
}

/// Converts a bit count (at most 64) to `usize`.
fn len_from_u32(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Computes the Merkle tree hash (RFC 6962 `MTH`) of a list of leaf hashes.
pub fn root_from_leaves(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            let (left, right) = split_tree(leaves);
            node_hash(&root_from_leaves(left), &root_from_leaves(right))
        }
    }
}

/// Builds the RFC 6962 audit path (`PATH`) for leaf `index` over `leaves`.
///
/// # Errors
///
/// [`ProofError::IndexOutOfRange`] if `index` is not below `leaves.len()`.
pub fn inclusion_proof(index: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let size = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
    let position = usize::try_from(index)
        .ok()
        .filter(|&position| position < leaves.len());
    let Some(position) = position else {
        return Err(ProofError::IndexOutOfRange { index, size });
    };
    let mut proof = Vec::new();
    build_path(position, leaves, &mut proof);
    Ok(proof)
}

fn build_path(position: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let (left, right) = split_tree(leaves);
    if position < left.len() {
        build_path(position, left, proof);
        proof.push(root_from_leaves(right));
    } else {
        build_path(position.saturating_sub(left.len()), right, proof);
        proof.push(root_from_leaves(left));
    }
}

/// Builds the RFC 6962 consistency proof (`PROOF`) from the first `size1`
/// leaves to all of `leaves`.
///
/// # Errors
///
/// [`ProofError::InvalidSizes`] unless `0 < size1 <= leaves.len()`.
pub fn consistency_proof(size1: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let size2 = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
    let old = usize::try_from(size1)
        .ok()
        .filter(|&old| old > 0 && old <= leaves.len());
    let Some(old) = old else {
        return Err(ProofError::InvalidSizes { size1, size2 });
    };
    let mut proof = Vec::new();
    build_subproof(old, leaves, true, &mut proof);
    Ok(proof)
}

fn build_subproof(old: usize, leaves: &[Hash], is_whole_old_tree: bool, proof: &mut Vec<Hash>) {
    if old == leaves.len() {
        if !is_whole_old_tree {
            proof.push(root_from_leaves(leaves));
        }
        return;
    }
    let (left, right) = split_tree(leaves);
    if old <= left.len() {
        build_subproof(old, left, is_whole_old_tree, proof);
        proof.push(root_from_leaves(right));
    } else {
        build_subproof(old.saturating_sub(left.len()), right, false, proof);
        proof.push(root_from_leaves(left));
    }
}

/// Splits at the largest power of two below `leaves.len()` (at least 2 leaves).
fn split_tree(leaves: &[Hash]) -> (&[Hash], &[Hash]) {
    let split = largest_power_of_two_below(leaves.len());
    leaves.split_at(split.min(leaves.len()))
}

/// Returns the largest power of two strictly below `n`, for `n >= 2`.
pub(crate) fn largest_power_of_two_below(n: usize) -> usize {
    match n.checked_sub(1) {
        Some(below) if below > 0 => 1usize.checked_shl(below.ilog2()).unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn leaf_hash_of_empty_input() {
        // RFC 6962 test vector: the hash of the empty leaf.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn largest_power_below_small_values() {
        let rows = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 20, 1 << 19),
        ];
        for (n, want) in rows {
            assert_eq!(largest_power_of_two_below(n), want, "n = {n}");
        }
    }

    #[test]
    fn inclusion_every_index_up_to_64() {
        for size in 1..=64u64 {
            let leaves = leaves(size);
            let root = root_from_leaves(&leaves);
            for index in 0..size {
                let proof = inclusion_proof(index, &leaves).expect("proof");
                assert_eq!(
                    proof.len(),
                    inclusion_proof_len(index, size),
                    "index {index} size {size}"
                );
                let leaf = leaves[usize::try_from(index).expect("index")];
                verify_inclusion(index, size, &leaf, &proof, &root)
                    .unwrap_or_else(|err| panic!("index {index} size {size}: {err}"));
            }
        }
    }

    #[test]
    fn consistency_every_pair_up_to_64() {
        for size2 in 1..=64u64 {
            let leaves = leaves(size2);
            let root2 = root_from_leaves(&leaves);
            for size1 in 1..=size2 {
                let root1 = root_from_leaves(&leaves[..usize::try_from(size1).expect("size")]);
                let proof = consistency_proof(size1, &leaves).expect("proof");
                if size1 < size2 {
                    assert_eq!(
                        proof.len(),
                        consistency_proof_len(size1, size2),
                        "{size1} -> {size2}"
                    );
                }
                verify_consistency(size1, size2, &proof, &root1, &root2)
                    .unwrap_or_else(|err| panic!("{size1} -> {size2}: {err}"));
            }
        }
    }

    #[test]
    fn inclusion_wrong_leaf_root_mismatch() {
        let leaves = leaves(7);
        let root = root_from_leaves(&leaves);
        let proof = inclusion_proof(3, &leaves).expect("proof");
        let err = verify_inclusion(3, 7, &leaves[4], &proof, &root).expect_err("wrong leaf");
        assert!(
            matches!(err, ProofError::RootMismatch { expected, .. } if expected == root),
            "{err:?}"
        );
        assert_eq!(err.reason_code(), ReasonCode::RekorProofInvalid);
    }

    #[test]
    fn inclusion_index_beyond_size_rejected() {
        let err = verify_inclusion(7, 7, &[0; 32], &[], &[0; 32]).expect_err("out of range");
        assert_eq!(err, ProofError::IndexOutOfRange { index: 7, size: 7 });
    }

    #[test]
    fn inclusion_extra_hash_rejected() {
        let leaves = leaves(5);
        let root = root_from_leaves(&leaves);
        let mut proof = inclusion_proof(2, &leaves).expect("proof");
        proof.push([7; 32]);
        let err = verify_inclusion(2, 5, &leaves[2], &proof, &root).expect_err("extra hash");
        assert_eq!(err, ProofError::WrongProofSize { got: 4, want: 3 });
    }

    #[test]
    fn inclusion_max_index_no_overflow() {
        // index ^ (size - 1) has bit 63 set, so the shift by 64 must not panic.
        let err = verify_inclusion(u64::MAX - 1, u64::MAX, &[0; 32], &[], &[0; 32])
            .expect_err("short proof");
        assert!(
            matches!(err, ProofError::WrongProofSize { got: 0, .. }),
            "{err:?}"
        );
        let err = verify_inclusion(0, u64::MAX, &[0; 32], &[], &[0; 32]).expect_err("short proof");
        assert_eq!(err, ProofError::WrongProofSize { got: 0, want: 64 });
    }

    #[test]
    fn consistency_zero_size_rejected() {
        let err = verify_consistency(0, 0, &[], &empty_root(), &empty_root()).expect_err("size 0");
        assert_eq!(err, ProofError::InvalidSizes { size1: 0, size2: 0 });
    }

    #[test]
    fn consistency_swapped_roots_rejected() {
        let leaves = leaves(11);
        let root1 = root_from_leaves(&leaves[..6]);
        let root2 = root_from_leaves(&leaves);
        let proof = consistency_proof(6, &leaves).expect("proof");
        let err = verify_consistency(6, 11, &proof, &root2, &root1).expect_err("swapped");
        assert!(matches!(err, ProofError::OldRootMismatch { .. }), "{err:?}");
    }

    #[test]
    fn consistency_equal_sizes_need_empty_proof() {
        let root = root_from_leaves(&leaves(4));
        let err = verify_consistency(4, 4, &[root], &root, &root).expect_err("non-empty");
        assert_eq!(err, ProofError::WrongProofSize { got: 1, want: 0 });
    }

    #[test]
    fn hash_from_slice_wrong_length() {
        assert_eq!(
            hash_from_slice(&[1; 31]),
            Err(ProofError::WrongHashLength { got: 31 })
        );
        assert_eq!(hash_from_slice(&[1; 32]), Ok([1; 32]));
    }
}
