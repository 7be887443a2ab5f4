//! `stella trust pack` and `stella trust import`.

use std::collections::BTreeMap;

use stella_bundle::{Limits, TrustSetInput, open_trust_set, pack_trust_set};

use super::args;
use super::files;
use super::output::{Exit, Failure, Report};
use super::{BundleFileArgs, Services, TrustPackArgs};

/// `stella trust pack`: builds a trust root set bundle without any service.
pub fn pack(args: &TrustPackArgs) -> Result<Report, Failure> {
    let now = args::now_unix();
    let expires_at = args
        .expires
        .resolve(now)
        .map_err(|error| Failure::usage(format!("--expires: {error}")))?;

    let mut kms_keys = BTreeMap::new();
    for key in &args.kms_keys {
        let pem = files::read(&key.pem_file)?;
        if kms_keys.insert(key.id.clone(), pem).is_some() {
            return Err(Failure::usage(format!(
                "--kms-key: the key id {:?} is given twice",
                key.id
            )));
        }
    }
    let input = TrustSetInput {
        trusted_root_json: files::read(&args.trusted_root)?,
        note_keys: args.note_keys.clone(),
        kms_keys,
        version: args.version,
        expires_at,
    };
    let context = format!(
        "cannot pack a trust root set from {}",
        args.trusted_root.display()
    );
    let archive =
        pack_trust_set(&input).map_err(|error| files::pack_failure(&context, &args.out, &error))?;
    let opened = open_trust_set(
        &files::display_name(&args.out),
        &archive,
        &Limits::default(),
    )
    .map_err(|error| {
        Failure::other(format!(
            "the packed trust root set does not open again: {error}"
        ))
    })?;
    files::write_atomically(&args.out, &archive)?;

    let out = args.out.display().to_string();
    let expires_text = args::format_rfc3339(opened.expires_at);
    let kms_ids: Vec<String> = opened.kms_keys.iter().map(|key| key.id.clone()).collect();
    let mut report = Report::new(Exit::Success);
    report
        .field("out", out.clone())
        .field("sha256", files::sha256_prefixed(&archive))
        .field("trust_set_digest", opened.digest.clone())
        .field("version", opened.version)
        .field("expires_at", expires_text.clone())
        .field("tlogs", opened.trusted_root.tlogs.len())
        .field("note_keys", opened.note_verifiers.len())
        .field("kms_keys", kms_ids);
    report.line(format!(
        "wrote {out}: trust root set version {} ({}), expires {expires_text}",
        opened.version, opened.digest
    ));
    report.line(format!(
        "  transparency logs: {}, note keys: {}, KMS keys: {}",
        opened.trusted_root.tlogs.len(),
        opened.note_verifiers.len(),
        opened.kms_keys.len()
    ));
    Ok(report)
}

/// `stella trust import --bundle FILE`.
pub async fn import(services: &Services, args: &BundleFileArgs) -> Result<Report, Failure> {
    let archive = files::read(&args.bundle)?;
    let name = files::display_name(&args.bundle);
    let mut attestor = services.attestor().await?;
    let response = attestor.import_trust_roots(&name, archive).await?;

    let mut report = Report::new(Exit::Success);
    report
        .field("trust_set_digest", response.trust_set_digest.clone())
        .field("version", response.version)
        .field("expires_at", response.expires_at.clone())
        .field("already_imported", response.already_imported);
    let state = if response.already_imported {
        "already imported"
    } else {
        "imported"
    };
    report.line(format!(
        "{state} trust root set version {} ({}), expires {}",
        response.version, response.trust_set_digest, response.expires_at
    ));
    Ok(report)
}
