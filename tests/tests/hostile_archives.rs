//! Hostile archives: entries with absolute paths, `..` components, symlinks, hard links, device
//! nodes and fifos, and bundles larger than the attestor's limit. Every import command and every
//! import RPC must reject them with the matching reason code, and nothing may be written outside
//! the attestor's data directory.
//!
//! Each hostile entry points at a path inside the test's own scratch directory, so the test can
//! check that the path still does not exist afterwards. The services and the CLI run with the
//! environment root as their current directory, so a stray relative write would show up in the
//! directory listing that the test compares before and after.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use stella_e2e::archive::{self, HostileEntry, climbing_path, incompressible_tgz};
use stella_e2e::codes;
use stella_e2e::env::{Env, EnvGuard, SharedEnv, read_file, write_file};
use stella_e2e::grpc::{self, ImportRpc};
use stella_e2e::runbook::{BundleKind, LONG_EXPIRY};
use stella_e2e::vectors::{DSSE_HAPPY, Vectors};

/// Good bundles of each kind that the hostile archives start from.
struct GoodBundles {
    trust: PathBuf,
    tiles: PathBuf,
    evidence: PathBuf,
}

impl GoodBundles {
    fn pack(env: &Env, vectors: &Vectors, trust_version: u64) -> GoodBundles {
        let dsse = vectors.case(DSSE_HAPPY);
        let dir = env.scratch("good");
        GoodBundles {
            trust: env.trust_pack(
                &dir,
                &vectors.staging_trusted_root(),
                &[],
                trust_version,
                LONG_EXPIRY,
            ),
            tiles: env.tiles_pack(&dir, &[&dsse.bundle()], &[]),
            evidence: env.evidence_pack(&dir, &[&dsse.bundle()]),
        }
    }

    fn bundle(&self, kind: BundleKind) -> &Path {
        match kind {
            BundleKind::TrustRoots => &self.trust,
            BundleKind::Tiles => &self.tiles,
            BundleKind::Evidence => &self.evidence,
        }
    }
}

static SHARED: SharedEnv<GoodBundles> = SharedEnv::new();

/// Starts an attestor with default limits and imports the staging trust root, so that tile and
/// evidence imports get as far as reading the archive.
fn shared(vectors: &Vectors) -> EnvGuard<'static, GoodBundles> {
    SHARED.get(|| {
        let env = Env::builder("hostile").start();
        env.install_trust(&vectors.staging_trusted_root(), &[]);
        let good = GoodBundles::pack(&env, vectors, 2);
        (env, good)
    })
}

/// Returns every path below `root` (relative, not following symlinks), leaving out the
/// subtrees in `skip`.
fn list_tree(root: &Path, skip: &[&Path]) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) => panic!("cannot list {}: {err}", dir.display()),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => panic!("cannot list {}: {err}", dir.display()),
            };
            let path = entry.path();
            if skip.iter().any(|skipped| path == *skipped) {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            found.insert(relative);
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            if is_dir {
                pending.push(path);
            }
        }
    }
    found
}

/// Returns the names of files below `root` whose name a hostile entry used.
fn planted_names_below(root: &Path, names: &[&str]) -> Vec<PathBuf> {
    list_tree(root, &[])
        .into_iter()
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| names.contains(&name))
        })
        .collect()
}

/// Submits the hostile entry, appended to a good bundle of each kind, through each import
/// command and each import RPC, and checks the rejections and the file system.
fn check_hostile_rejected(label: &str, make: impl Fn(&Path) -> (HostileEntry, Vec<PathBuf>)) {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let scratch = env.scratch(&format!("hostile-{label}"));
    let escape = scratch.join("escape");
    stella_e2e::env::create_dir(&escape);
    let secret = escape.join("secret.txt");
    write_file(&secret, b"secret\n");

    let (hostile, targets) = make(&escape);
    let planted_names = [
        "planted.txt",
        "hostile-abs",
        "hostile-dotdot",
        "hostile-link",
        "hostile-hardlink",
        "hostile-dev",
        "hostile-fifo",
    ];

    // Build every hostile archive before the first listing.
    let mut archives = Vec::new();
    for kind in BundleKind::ALL {
        let file_name = format!("hostile-{label}-{}.tgz", kind.label());
        let path = scratch.join(&file_name);
        let bytes = archive::append_hostile(&read_file(env.fixture().bundle(kind)), &hostile);
        write_file(&path, &bytes);
        archives.push((kind, file_name, path, bytes));
    }

    let data_dir = env.attestor().data_dir().to_path_buf();
    let work_dir = env.root().join("work");
    let gate_data = env.root().join("gate-data");
    let outside_before = list_tree(env.root(), &[&data_dir, &work_dir, &gate_data]);
    let scratch_before = list_tree(&scratch, &[]);

    for (kind, file_name, path, bytes) in archives {
        let output = kind.import(&env, &path);
        let message = output.assert_rejected(codes::BUNDLE_ENTRY_REJECTED);
        assert!(
            message.contains(&file_name),
            "{}: the error must name the bundle {file_name}\n{output}",
            hostile.label()
        );

        let Err(rejection) = grpc::import(&env.attestor_caller(), kind.rpc(), &file_name, bytes)
        else {
            panic!(
                "{} accepted an archive with a {} entry",
                kind.rpc().method(),
                hostile.label()
            );
        };
        assert_eq!(
            rejection.code,
            tonic::Code::InvalidArgument,
            "{rejection:?}"
        );
        assert_eq!(
            rejection.reason_code.as_deref(),
            Some(codes::BUNDLE_ENTRY_REJECTED),
            "{}: {rejection:?}",
            hostile.label()
        );
        assert!(rejection.message.contains(&file_name), "{rejection:?}");
        assert!(
            rejection.message.contains(hostile.entry_path()),
            "{}: the error must name the entry {}: {rejection:?}",
            hostile.label(),
            hostile.entry_path()
        );
    }

    for target in &targets {
        assert!(
            std::fs::symlink_metadata(target).is_err(),
            "{}: {} exists after the import attempts",
            hostile.label(),
            target.display()
        );
    }
    assert_eq!(
        read_file(&secret),
        b"secret\n",
        "the hard link target was written"
    );
    assert_eq!(
        list_tree(env.root(), &[&data_dir, &work_dir, &gate_data]),
        outside_before,
        "{}: files appeared outside the attestor's data directory",
        hostile.label()
    );
    assert_eq!(
        list_tree(&scratch, &[]),
        scratch_before,
        "{}: files appeared in the test's scratch directory",
        hostile.label()
    );
    let planted = planted_names_below(&data_dir, &planted_names);
    assert!(
        planted.is_empty(),
        "{}: hostile entries were written into the data directory: {planted:?}",
        hostile.label()
    );

    // The attestor survived: a good bundle is still recognised.
    let again = env.trust_import(&env.fixture().trust);
    again.assert_ok();
}

#[test]
fn absolute_path_entry_rejected() {
    check_hostile_rejected("abs", |escape| {
        let target = escape.join("hostile-abs");
        let entry = HostileEntry::AbsolutePath {
            path: target.to_string_lossy().into_owned(),
        };
        (entry, vec![target])
    });
}

#[test]
fn parent_dir_entry_rejected() {
    check_hostile_rejected("dotdot", |escape| {
        let target = escape.join("hostile-dotdot");
        let entry = HostileEntry::ParentDir {
            path: climbing_path(&target),
        };
        (entry, vec![target])
    });
}

#[test]
fn symlink_entry_rejected() {
    check_hostile_rejected("symlink", |escape| {
        let link_target = escape.join("symlink-target");
        let entry = HostileEntry::Symlink {
            path: "hostile-link".to_owned(),
            target: link_target.to_string_lossy().into_owned(),
        };
        (entry, vec![link_target.join("planted.txt"), link_target])
    });
}

#[test]
fn hard_link_entry_rejected() {
    check_hostile_rejected("hardlink", |escape| {
        let entry = HostileEntry::HardLink {
            path: "hostile-hardlink".to_owned(),
            target: escape.join("secret.txt").to_string_lossy().into_owned(),
        };
        (entry, vec![])
    });
}

#[test]
fn device_entry_rejected() {
    check_hostile_rejected("device", |_| {
        let entry = HostileEntry::CharDevice {
            path: "hostile-dev".to_owned(),
        };
        (entry, vec![])
    });
}

#[test]
fn fifo_entry_rejected() {
    check_hostile_rejected("fifo", |_| {
        let entry = HostileEntry::Fifo {
            path: "hostile-fifo".to_owned(),
        };
        (entry, vec![])
    });
}

/// The tightened bundle limit of the size tests; every good bundle of the staging vectors is
/// larger.
const SIZE_LIMIT: u64 = 1000;

/// Starts an attestor, imports the staging trust root under the default limit, packs good
/// bundles, and restarts the attestor with `--max-bundle-bytes` and `--max-stream-bundle-bytes`
/// (the limit of `stella rekor tiles import`, which streams) at [`SIZE_LIMIT`].
///
/// The trust root goes in before the operator tightens the limit, so tile and evidence imports
/// fail on size rather than on a missing trust root.
fn start_size_limited(vectors: &Vectors, name: &str) -> (Env, GoodBundles) {
    let mut env = Env::builder(name).start();
    env.install_trust(&vectors.staging_trusted_root(), &[]);
    let good = GoodBundles::pack(&env, vectors, 2);
    env.attestor_mut().stop();
    env.attestor_mut()
        .extra_args_mut()
        .extend([
            "--max-bundle-bytes".into(),
            SIZE_LIMIT.to_string().into(),
            "--max-stream-bundle-bytes".into(),
            SIZE_LIMIT.to_string().into(),
        ]);
    env.attestor_mut().start_again();
    (env, good)
}

#[test]
fn bundles_over_limit_rejected() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let (mut env, good) = start_size_limited(&vectors, "over-limit");

    for kind in BundleKind::ALL {
        let path = good.bundle(kind);
        let size = read_file(path).len() as u64;
        assert!(
            size > SIZE_LIMIT,
            "the good {} bundle has only {size} bytes; the test needs it above {SIZE_LIMIT}",
            kind.label()
        );
        let output = kind.import(&env, path);
        let message = output.assert_rejected(codes::BUNDLE_TOO_LARGE);
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        assert!(
            file_name.is_some_and(|name| message.contains(&name)),
            "the error must name the bundle file\n{output}"
        );
        assert!(
            message.contains(&SIZE_LIMIT.to_string()),
            "the error must state the limit of {SIZE_LIMIT} bytes\n{output}"
        );
    }

    // 16 KiB of incompressible data, sent straight to each RPC.
    let big = incompressible_tgz("manifest.json", 16 * 1024);
    for rpc in ImportRpc::ALL {
        let Err(rejection) = grpc::import(&env.attestor_caller(), rpc, "big.tgz", big.clone())
        else {
            panic!(
                "{} accepted a {} byte archive over a {SIZE_LIMIT} byte limit",
                rpc.method(),
                big.len()
            );
        };
        assert_eq!(
            rejection.code,
            tonic::Code::InvalidArgument,
            "{rejection:?}"
        );
        assert_eq!(
            rejection.reason_code.as_deref(),
            Some(codes::BUNDLE_TOO_LARGE),
            "{}: {rejection:?}",
            rpc.method()
        );
    }

    assert!(
        env.attestor_mut().is_running(),
        "the attestor must survive oversized bundles"
    );
}

#[test]
fn request_over_transport_limit_rejected() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let (mut env, _good) = start_size_limited(&vectors, "over-transport");

    // 256 KiB is more than any gRPC request the attestor accepts under a 1000-byte bundle limit,
    // so the transport rejects the request before the import handler runs. The operator must
    // still get the bundle size reason code.
    let size = 256 * 1024;
    let file_name = format!("big-{size}.tgz");
    let big = incompressible_tgz("manifest.json", size);

    let path = env.scratch("big").join(&file_name);
    write_file(&path, &big);
    for kind in [BundleKind::TrustRoots, BundleKind::Tiles] {
        let output = kind.import(&env, &path);
        let message = output.assert_rejected(codes::BUNDLE_TOO_LARGE);
        assert!(message.contains(&file_name), "{output}");
    }

    for rpc in ImportRpc::ALL {
        let Err(rejection) = grpc::import(&env.attestor_caller(), rpc, &file_name, big.clone())
        else {
            panic!(
                "{} accepted a {} byte archive over a {SIZE_LIMIT} byte limit",
                rpc.method(),
                big.len()
            );
        };
        assert_eq!(
            rejection.reason_code.as_deref(),
            Some(codes::BUNDLE_TOO_LARGE),
            "{} with {} bytes: {rejection:?}",
            rpc.method(),
            big.len()
        );
    }

    assert!(
        env.attestor_mut().is_running(),
        "the attestor must survive oversized requests"
    );
}
