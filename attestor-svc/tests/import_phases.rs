//! The `import phase` log lines of a tile import, which operators and the kill test in
//! `tests/tests/import_kill.rs` rely on.
//!
//! This test has a binary of its own: `tracing` caches per call site whether anyone listens, and
//! tests on other threads that hit the same call sites without a subscriber can make a
//! thread-local subscriber miss lines.

mod common;

use std::sync::Arc;

use stella_attestor::attestor::{Attestor, AttestorState};
use stella_attestor::spool::SpoolDir;
use stella_attestor::store::Store;
use stella_attestor::tile_import::streamed_limits;
use stella_bundle::Limits;

use common::{TENANT, tenant, tessera_tiles, tessera_trust_set, vectors};

/// Log lines written through the `tracing` fmt subscriber, kept for inspection.
#[derive(Clone, Default)]
struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn import_logs_each_phase() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    let spool = SpoolDir::open(dir.path()).expect("open spool");
    let state = Arc::new(AttestorState::new(store, Limits::default(), streamed_limits(1 << 34), spool));
    let attestor = Attestor::for_tenant(&state, &tenant(TENANT));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    attestor
        .import_trust_roots("trust.tgz", &tessera_trust_set(&vectors), now)
        .expect("import trust roots");
    let archive = tessera_tiles(&vectors, 15);

    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        attestor
            .import_tiles("phases.tgz", &archive, now)
            .expect("first import");
        attestor
            .import_tiles("phases.tgz", &archive, now)
            .expect("second import");
    });

    let text = String::from_utf8(log.0.lock().expect("log lock").clone()).expect("UTF-8 log");
    let phases: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("import phase"))
        .map(|line| {
            assert!(line.contains("file=phases.tgz"), "{line}");
            line.split("phase=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("<none>")
        })
        .collect();
    // The second import is a no-op: it logs only `done`.
    assert_eq!(
        phases,
        vec!["staging", "verifying", "committing", "done", "done"],
        "{text}"
    );
    assert!(text.contains("already_imported=true"), "{text}");
}
