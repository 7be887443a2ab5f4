//! Bounded caches of verification results, shared by the callers that verify many bundles.
//!
//! Two results are cached, each keyed by a SHA-256 digest of every input it depends on:
//!
//! - a certification path that passed validation against one certificate authority for one
//!   purpose (Fulcio code signing or RFC 3161 timestamping). The key covers the purpose, the
//!   authority's URI and `validFor` window, the leaf's DER and the DER of each authority
//!   certificate in chain order. A hit skips path building, the signature checks and the role
//!   checks, but the time checks run again at the new time, in the same order and with the same
//!   errors as without the cache (see [`crate::x509::VerifiedPath`]).
//! - a signed-note signature that verified: the key covers the verifier key (its vkey: name, key
//!   ID, key type and key bytes), the signed text and the signature bytes. A hit returns the
//!   cosignature timestamp that the first verification read from the signature.
//!
//! Only successes are stored, so a failure is always computed afresh, and a hit returns what a
//! fresh verification would: the cache never changes a result. Chain entries are keyed by one
//! authority rather than by the whole trust set, because one authority and the leaf are all that
//! the path validation reads. So two trust sets that list the same authority share entries, and a
//! changed authority (another window or another chain) gets new keys.
//!
//! The caches are bounded by entry count and evict with quick_cache's S3-FIFO policy.
//! [`VerificationCache::stats`] returns hit, miss and eviction counts for metrics.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, UnitWeighter};
use sha2::{Digest as _, Sha256};

use crate::trust_root::{CertificateAuthority, TimeRange};
use crate::x509::{KeyPurpose, VerifiedPath};

/// Default maximum number of cached certification paths: about 16 MiB for typical Fulcio paths
/// (see [`CacheCapacity`]).
pub const DEFAULT_CHAIN_CAPACITY: usize = 1024;
/// Default maximum number of cached note signatures.
pub const DEFAULT_SIGNATURE_CAPACITY: usize = 16384;

/// Paths whose certificates together exceed this many DER bytes are validated but not cached,
/// which bounds the memory of one chain entry. Fulcio and TSA paths have about 3 KiB.
pub const MAX_CACHED_PATH_DER_BYTES: usize = 16 * 1024;

/// A SHA-256 digest that names one cached result.
type CacheKey = [u8; 32];

/// Maximum entry counts of a [`VerificationCache`]. A count of 0 disables that cache.
///
/// Memory per entry: a chain entry contains a 32-byte key and the validated path, with each
/// certificate's DER, TBS and SPKI bytes and its parsed form. Measured with a counting allocator,
/// 2000 entries of the Fulcio path of the conformance case `rekor2-dsse-happy-path` (three
/// certificates, 3161 DER bytes) took about 16 KiB each, about 5 times the DER size. So an entry
/// at [`MAX_CACHED_PATH_DER_BYTES`] would take about 85 KiB. A signature entry contains a 32-byte
/// key and a 16-byte value plus quick_cache's bookkeeping, an estimated 100 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheCapacity {
    /// Maximum number of cached certification paths.
    pub chains: usize,
    /// Maximum number of cached note signatures.
    pub signatures: usize,
}

impl Default for CacheCapacity {
    fn default() -> Self {
        CacheCapacity {
            chains: DEFAULT_CHAIN_CAPACITY,
            signatures: DEFAULT_SIGNATURE_CAPACITY,
        }
    }
}

/// Counters of one cache since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryStats {
    /// Lookups that found a stored result.
    pub hits: u64,
    /// Lookups that found nothing, so the full verification ran.
    pub misses: u64,
    /// Entries removed to make room for new ones.
    pub evictions: u64,
    /// Entries stored now.
    pub len: usize,
    /// Maximum number of entries.
    pub capacity: usize,
}

/// Counters of a [`VerificationCache`], as returned by [`VerificationCache::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Certification paths (Fulcio and TSA chains).
    pub chains: EntryStats,
    /// Signed-note signatures (checkpoint log signatures and witness cosignatures).
    pub signatures: EntryStats,
}

/// Hit, miss and eviction counters of one cache. The eviction counter is shared with the cache's
/// shards through [`CountEvictions`].
#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: Arc<AtomicU64>,
}

/// The quick_cache lifecycle hook that counts evicted entries.
#[derive(Debug, Clone)]
struct CountEvictions(Arc<AtomicU64>);

impl<Key, Val> Lifecycle<Key, Val> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut Self::RequestState, _key: Key, _val: Val) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// One bounded cache with its counters. `map` is `None` when the capacity is 0.
struct Bounded<Val> {
    map: Option<Cache<CacheKey, Val, UnitWeighter, DefaultHashBuilder, CountEvictions>>,
    counters: Counters,
    capacity: usize,
}

impl<Val: Clone> Bounded<Val> {
    fn new(capacity: usize) -> Self {
        let counters = Counters::default();
        let map = (capacity > 0).then(|| {
            Cache::with(
                capacity,
                u64::try_from(capacity).unwrap_or(u64::MAX),
                UnitWeighter,
                DefaultHashBuilder::default(),
                CountEvictions(Arc::clone(&counters.evictions)),
            )
        });
        Bounded {
            map,
            counters,
            capacity,
        }
    }

    fn get(&self, key: &CacheKey) -> Option<Val> {
        let map = self.map.as_ref()?;
        let found = map.get(key);
        let counter = if found.is_some() {
            &self.counters.hits
        } else {
            &self.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn insert(&self, key: CacheKey, value: Val) {
        if let Some(map) = &self.map {
            map.insert(key, value);
        }
    }

    fn stats(&self) -> EntryStats {
        EntryStats {
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
            len: self.map.as_ref().map_or(0, Cache::len),
            capacity: self.capacity,
        }
    }
}

/// Bounded caches of validated certification paths and verified note signatures. It is `Send`
/// and `Sync`, so one cache can serve every thread of a service.
///
/// The functions that take a cache ([`crate::evidence::verify_bundle_cached`],
/// [`crate::checkpoint::verify_checkpoint_cached`], [`crate::note::verify_note_cached`],
/// [`crate::timestamp::verify_timestamp_cached`], and the methods
/// [`VerificationCache::validate_path`] and [`VerificationCache::validate_path_any_authority`])
/// return exactly what their uncached forms return.
///
/// Each cache stores at most its capacity, rounded up to a multiple of quick_cache's shard count
/// (a capacity below 64 uses one shard).
pub struct VerificationCache {
    chains: Bounded<Arc<VerifiedPath>>,
    signatures: Bounded<Option<u64>>,
}

impl VerificationCache {
    /// Creates empty caches of the given capacities.
    pub fn new(capacity: CacheCapacity) -> Self {
        VerificationCache {
            chains: Bounded::new(capacity.chains),
            signatures: Bounded::new(capacity.signatures),
        }
    }

    /// Returns the hit, miss and eviction counts and the current sizes.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            chains: self.chains.stats(),
            signatures: self.signatures.stats(),
        }
    }

    /// Returns the path stored under `key`, counting a hit or a miss.
    pub(crate) fn chain(&self, key: &CacheKey) -> Option<Arc<VerifiedPath>> {
        self.chains.get(key)
    }

    /// Stores a validated path, unless its certificates exceed [`MAX_CACHED_PATH_DER_BYTES`].
    pub(crate) fn insert_chain(&self, key: CacheKey, path: &VerifiedPath) {
        let der_bytes: usize = path.path.iter().map(|cert| cert.der().len()).sum();
        if der_bytes <= MAX_CACHED_PATH_DER_BYTES {
            self.chains.insert(key, Arc::new(path.clone()));
        }
    }

    /// Returns the outcome of a verified signature stored under `key` (the cosignature timestamp
    /// or `None`), counting a hit or a miss.
    pub(crate) fn signature(&self, key: &CacheKey) -> Option<Option<u64>> {
        self.signatures.get(key)
    }

    /// Stores a verified signature with the cosignature timestamp it carried.
    pub(crate) fn insert_signature(&self, key: CacheKey, timestamp: Option<u64>) {
        self.signatures.insert(key, timestamp);
    }
}

impl Default for VerificationCache {
    /// Creates caches of the default capacities ([`CacheCapacity::default`]).
    fn default() -> Self {
        VerificationCache::new(CacheCapacity::default())
    }
}

impl fmt::Debug for VerificationCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationCache")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Domain separation tags, so a chain key can never equal a signature key.
const CHAIN_KEY_DOMAIN: &[u8] = b"stella-verify/cache/chain/v1";
const SIGNATURE_KEY_DOMAIN: &[u8] = b"stella-verify/cache/note-signature/v1";

/// Hashes fields with unambiguous framing: each byte string is preceded by its length.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn new(domain: &[u8]) -> Self {
        let mut hasher = KeyHasher(Sha256::new());
        hasher.bytes(domain);
        hasher
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.0.update(bytes);
    }

    fn count(&mut self, count: usize) {
        // usize is at most 64 bits on every supported target.
        self.0.update((count as u64).to_be_bytes());
    }

    fn byte(&mut self, byte: u8) {
        self.0.update([byte]);
    }

    fn optional_time(&mut self, time: Option<i64>) {
        match time {
            None => self.byte(0),
            Some(seconds) => {
                self.byte(1);
                self.0.update(seconds.to_be_bytes());
            }
        }
    }

    fn finish(self) -> CacheKey {
        self.0.finalize().into()
    }
}

/// Computes the key of a path validated for `leaf_der` against `authority` for `purpose`.
///
/// The key covers every field of `authority` that path validation reads: its URI (named in
/// errors), its `validFor` window and its certificate chain. The certificates are framed as one
/// list, the leaf first, so that no two different chains share an encoding.
pub(crate) fn chain_key(
    authority: &CertificateAuthority,
    purpose: KeyPurpose,
    leaf_der: &[u8],
) -> CacheKey {
    let mut hasher = KeyHasher::new(CHAIN_KEY_DOMAIN);
    hasher.byte(match purpose {
        KeyPurpose::CodeSigning => 1,
        KeyPurpose::TimeStamping => 2,
    });
    hasher.bytes(authority.uri.as_bytes());
    let TimeRange { start, end } = authority.valid_for;
    hasher.optional_time(start);
    hasher.optional_time(end);
    hasher.count(authority.cert_chain.len().saturating_add(1));
    hasher.bytes(leaf_der);
    for der in &authority.cert_chain {
        hasher.bytes(der);
    }
    hasher.finish()
}

/// Computes the key of a note signature: the verifier's vkey (key name, key ID, key type and key
/// bytes), the signed text and the signature bytes after the key ID.
pub(crate) fn note_signature_key(vkey: &str, text: &str, signature: &[u8]) -> CacheKey {
    let mut hasher = KeyHasher::new(SIGNATURE_KEY_DOMAIN);
    hasher.bytes(vkey.as_bytes());
    hasher.bytes(text.as_bytes());
    hasher.bytes(signature);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(chain: &[&[u8]]) -> CertificateAuthority {
        CertificateAuthority {
            common_name: None,
            organization: None,
            uri: "https://ca.example".to_owned(),
            cert_chain: chain.iter().map(|der| der.to_vec()).collect(),
            valid_for: TimeRange {
                start: Some(100),
                end: None,
            },
            operator: None,
            prepared: Default::default(),
        }
    }

    #[test]
    fn chain_key_frames_certificates() {
        let split = chain_key(&authority(&[b"B"]), KeyPurpose::CodeSigning, b"A");
        let joined = chain_key(&authority(&[]), KeyPurpose::CodeSigning, b"AB");
        let moved = chain_key(&authority(&[b"AB"]), KeyPurpose::CodeSigning, b"");
        assert_ne!(split, joined, "[A, B] and [AB]");
        assert_ne!(split, moved, "[A, B] and [, AB]");
        assert_ne!(joined, moved, "[AB] and [, AB]");
        assert_eq!(
            split,
            chain_key(&authority(&[b"B"]), KeyPurpose::CodeSigning, b"A"),
            "the same input gives the same key"
        );
    }

    #[test]
    fn chain_key_covers_purpose_window_and_uri() {
        let base = authority(&[b"B"]);
        let key = chain_key(&base, KeyPurpose::CodeSigning, b"A");
        assert_ne!(key, chain_key(&base, KeyPurpose::TimeStamping, b"A"));

        let mut open_start = base.clone();
        open_start.valid_for.start = None;
        assert_ne!(key, chain_key(&open_start, KeyPurpose::CodeSigning, b"A"));

        // A window that ends at 100 differs from one that starts at 100.
        let mut swapped = base.clone();
        swapped.valid_for = TimeRange {
            start: None,
            end: Some(100),
        };
        assert_ne!(key, chain_key(&swapped, KeyPurpose::CodeSigning, b"A"));

        let mut other_uri = base.clone();
        other_uri.uri.push('/');
        assert_ne!(key, chain_key(&other_uri, KeyPurpose::CodeSigning, b"A"));

        // Fields that path validation never reads do not split entries.
        let mut named = base.clone();
        named.common_name = Some("CA".to_owned());
        assert_eq!(key, chain_key(&named, KeyPurpose::CodeSigning, b"A"));
    }

    #[test]
    fn signature_key_frames_fields() {
        let key = note_signature_key("log+00000001+AQ==", "ab", b"c");
        assert_ne!(key, note_signature_key("log+00000001+AQ==", "a", b"bc"));
        assert_ne!(key, note_signature_key("log+00000001+AQ==a", "b", b"c"));
        assert_ne!(key, note_signature_key("log+00000002+AQ==", "ab", b"c"));
        assert_eq!(key, note_signature_key("log+00000001+AQ==", "ab", b"c"));
    }

    #[test]
    fn chain_and_signature_keys_differ() {
        // The domain tags separate the two kinds of key even when every field is empty.
        let chain = chain_key(&authority(&[]), KeyPurpose::CodeSigning, b"");
        let signature = note_signature_key("", "", b"");
        assert_ne!(chain, signature);
    }

    #[test]
    fn signature_cache_stays_bounded() {
        let capacity = 8;
        let cache = VerificationCache::new(CacheCapacity {
            chains: 1,
            signatures: capacity,
        });
        let inserted = 100;
        for index in 0..inserted {
            let key = note_signature_key("log+00000001+AQ==", &index.to_string(), b"s");
            cache.insert_signature(key, Some(index));
            let stats = cache.stats().signatures;
            assert!(stats.len <= capacity, "{stats:?}");
        }
        let stats = cache.stats().signatures;
        assert_eq!(stats.capacity, capacity);
        assert!(stats.len > 0, "{stats:?}");
        assert_eq!(
            stats.evictions,
            inserted - stats.len as u64,
            "every entry that left was evicted"
        );
    }

    #[test]
    fn lookups_count_hits_and_misses() {
        let cache = VerificationCache::default();
        let key = note_signature_key("log+00000001+AQ==", "text\n", b"s");
        assert_eq!(cache.signature(&key), None);
        cache.insert_signature(key, Some(7));
        assert_eq!(cache.signature(&key), Some(Some(7)));
        let stats = cache.stats().signatures;
        assert_eq!((stats.hits, stats.misses, stats.len), (1, 1, 1));
        assert_eq!(
            cache.stats().chains,
            EntryStats {
                capacity: DEFAULT_CHAIN_CAPACITY,
                ..EntryStats::default()
            }
        );
    }

    #[test]
    fn zero_capacity_stores_nothing() {
        let cache = VerificationCache::new(CacheCapacity {
            chains: 0,
            signatures: 0,
        });
        let key = note_signature_key("log+00000001+AQ==", "text\n", b"s");
        cache.insert_signature(key, None);
        assert_eq!(cache.signature(&key), None);
        assert_eq!(
            cache.stats(),
            CacheStats {
                chains: EntryStats::default(),
                signatures: EntryStats::default(),
            }
        );
    }

    #[test]
    fn cache_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<VerificationCache>();
    }
}
