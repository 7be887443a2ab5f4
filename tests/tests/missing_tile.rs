//! A tile bundle that lacks one hash tile, with its manifest rewritten to match, so the archive
//! itself is well formed: `stella rekor tiles import` must reject it with ERR_REKOR_TILE_MISSING,
//! name the missing tile's path and store nothing of it. The intact bundle then imports.

use serde_json::Value;
use stella_e2e::archive::remove_file;
use stella_e2e::cli::exit;
use stella_e2e::codes;
use stella_e2e::env::{Env, read_file, write_file};
use stella_e2e::forge::{forge_log, forged_entry};
use stella_e2e::runbook::path_arg;
use stella_e2e::vectors::{TESSERA_ORIGIN, TESSERA_VKEY, Vectors};

/// Origin of the forged log.
const FORGED_ORIGIN: &str = "missing-tile.example/log";
/// Seed of the forged log (hexadecimal).
const FORGED_SEED: &str = "01";
/// Entries of the forged log: enough for a full level-1 tile and a level-2 tile.
const FORGED_SIZE: u64 = 70_000;

/// One bundle and the tile removed from it.
struct Row {
    name: &'static str,
    origin: &'static str,
    intact: std::path::PathBuf,
    /// Path of the removed tile inside the archive.
    inner_path: &'static str,
    /// An entry of the log with its index, which no checkpoint proves until the intact import.
    probe: (u64, Vec<u8>),
}

#[test]
fn bundle_missing_tile_rejected() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = Env::builder("missing-tile").start();
    let work = env.scratch("bundles");

    let tessera = env.tiles_pack(&work, &[], &[&vectors.tessera_log()]);
    let forged = forge_log(&work, "forged", FORGED_SIZE, FORGED_ORIGIN, FORGED_SEED);
    env.install_trust(
        &vectors.staging_trusted_root(),
        &[TESSERA_VKEY, forged.vkey.as_str()],
    );

    let rows = [
        Row {
            name: "right-edge level-0 tile of the Tessera log",
            origin: TESSERA_ORIGIN,
            intact: tessera,
            inner_path: "logs/0/tile/0/000.p/15",
            probe: (0, b"one".to_vec()),
        },
        Row {
            name: "full level-1 tile of a forged log",
            origin: FORGED_ORIGIN,
            intact: forged.bundle.clone(),
            inner_path: "logs/0/tile/1/000",
            probe: (12_345, forged_entry(FORGED_SEED, 12_345).to_vec()),
        },
    ];

    for row in &rows {
        let name = row.name;
        let tile_path = row
            .inner_path
            .strip_prefix("logs/0/")
            .unwrap_or(row.inner_path);
        let damaged = work.join(format!("without-{}.tgz", tile_path.replace('/', "-")));
        write_file(&damaged, &remove_file(&read_file(&row.intact), row.inner_path));
        let entry = work.join(format!("entry-{}", row.probe.0));
        write_file(&entry, &row.probe.1);
        let inclusion = |env: &Env| {
            env.stella().run_json([
                "rekor",
                "inclusion",
                "--origin",
                row.origin,
                "--index",
                &row.probe.0.to_string(),
                "--entry",
                &path_arg(&entry),
            ])
        };

        let output = env.tiles_import(&damaged);
        let message = output.assert_rejected(codes::REKOR_TILE_MISSING);
        assert!(
            message.contains(tile_path),
            "{name}: the error must name the missing tile {tile_path}\n{output}"
        );
        let file_name = damaged
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(
            message.contains(&file_name),
            "{name}: the error must name the bundle file\n{output}"
        );

        // Nothing of the rejected bundle is stored.
        let stored = env
            .stella()
            .run_json(["rekor", "checkpoints", "--origin", row.origin]);
        stored.assert_ok();
        let logs = stored.json().get("logs").cloned().unwrap_or(Value::Null);
        assert_eq!(
            logs,
            Value::Array(Vec::new()),
            "{name}: no checkpoint may be stored\n{stored}"
        );
        let missing = inclusion(&env);
        assert_eq!(missing.code, exit::FAILED, "{name}\n{missing}");
        assert_eq!(
            missing.reason_codes(),
            vec![codes::REKOR_TILE_MISSING],
            "{name}\n{missing}"
        );

        // The same bundle with the tile imports, so the one tile made the difference.
        env.tiles_import(&row.intact).assert_ok();
        let included = inclusion(&env);
        included.assert_ok();
        assert!(included.bool_field("included"), "{name}\n{included}");
    }
}
