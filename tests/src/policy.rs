//! Gate policy files written by the tests.

use crate::{IDENTITY, ISSUER, SLSA_PROVENANCE_V1};

/// Environment that requires SLSA provenance from the conformance workflow and denies when a
/// proof is missing.
pub const PROD: &str = "prod";
/// [`PROD`] with `on_missing_proof: pending` and `on_attestor_unavailable: pending`.
pub const PROD_PENDING: &str = "prod-pending";
/// [`PROD`] with the identity written as a `/regex/`.
pub const PROD_REGEX: &str = "prod-regex";
/// [`PROD`] with an identity that no conformance bundle carries.
pub const PROD_OTHER_IDENTITY: &str = "prod-other-identity";
/// [`PROD`] with a `/regex/` identity that no conformance bundle matches in full.
pub const PROD_REGEX_PARTIAL: &str = "prod-regex-partial";
/// Environment without a predicate type, for message-signature evidence.
pub const MSG: &str = "msg";

/// A regex for [`IDENTITY`] that fixes the organisation and branch but not the repository or
/// workflow file. It has no anchors because policy regexes must match the whole identity.
pub const IDENTITY_REGEX: &str =
    r"https://github\.com/sigstore-conformance/[^/]+/\.github/workflows/[^@]+@refs/heads/main";

/// A regex that matches a prefix of [`IDENTITY`] but not all of it, so a policy engine that
/// searches instead of matching in full would accept it.
pub const IDENTITY_REGEX_PREFIX_ONLY: &str = r"https://github\.com/sigstore-conformance/";

/// Returns the policy every suite uses, with the environments named by the constants of this
/// module.
pub fn standard() -> String {
    let prod_requirement = requirement(Some(SLSA_PROVENANCE_V1), IDENTITY);
    let regex_requirement = requirement(Some(SLSA_PROVENANCE_V1), &format!("/{IDENTITY_REGEX}/"));
    let partial_requirement = requirement(
        Some(SLSA_PROVENANCE_V1),
        &format!("/{IDENTITY_REGEX_PREFIX_ONLY}/"),
    );
    let other_requirement = requirement(
        Some(SLSA_PROVENANCE_V1),
        "https://github.com/example/other/.github/workflows/release.yml@refs/heads/main",
    );
    let msg_requirement = requirement(None, IDENTITY);
    format!(
        "# Written by the stella end-to-end suite.
environments:
  {PROD}:
    require:
{prod_requirement}
    on_missing_proof: deny
  {PROD_PENDING}:
    require:
{prod_requirement}
    on_missing_proof: pending
    on_attestor_unavailable: pending
  {PROD_REGEX}:
    require:
{regex_requirement}
    on_missing_proof: deny
  {PROD_REGEX_PARTIAL}:
    require:
{partial_requirement}
    on_missing_proof: deny
  {PROD_OTHER_IDENTITY}:
    require:
{other_requirement}
    on_missing_proof: deny
  {MSG}:
    require:
{msg_requirement}
    on_missing_proof: deny
"
    )
}

/// Returns one `require` list item, indented for [`standard`]. Values are single-quoted YAML
/// scalars, so regex backslashes stay literal.
fn requirement(predicate_type: Option<&str>, identity: &str) -> String {
    let mut item = String::new();
    let mut prefix = "      - ";
    if let Some(predicate_type) = predicate_type {
        item.push_str(&format!("{prefix}predicate_type: '{predicate_type}'\n"));
        prefix = "        ";
    }
    item.push_str(&format!("{prefix}identity: '{identity}'\n"));
    item.push_str(&format!("        issuer: '{ISSUER}'"));
    item
}
