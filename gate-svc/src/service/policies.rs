//! Policy selection for evaluations and previews, and the `ImportPolicy` and `GetPolicy` calls.

use std::sync::Arc;

use stella_proto::gate::v1 as pb;
use stella_verify::reason::ReasonCode;
use tonic::{Code, Status};
use tracing::info;

use super::{GateService, internal, off_runtime, rejection, rejection_without_code};
use crate::policy_versions::{ImportError, LookupError, SelectedPolicy};
use crate::store::TenantStore;

/// Maximum length of the file name that an import names in validation errors, in bytes.
const MAX_FILE_NAME_BYTES: usize = 1024;
/// The name of an imported document in validation errors when the request names none.
const DEFAULT_FILE_NAME: &str = "policy.yaml";

impl GateService {
    /// Returns the policy that the tenant's evaluations use now.
    ///
    /// # Errors
    ///
    /// FAILED_PRECONDITION with `ERR_POLICY_INVALID` when the active version no longer
    /// validates, and INTERNAL for store errors.
    pub(super) async fn active_policy(&self, store: &TenantStore) -> Result<SelectedPolicy, Status> {
        let policies = Arc::clone(&self.policies);
        let store = store.clone();
        off_runtime(move || policies.active(&store)).await?.map_err(lookup_status)
    }

    /// Returns the policy a preview evaluates with: the version with `digest`, or the active
    /// one when `digest` is empty.
    ///
    /// # Errors
    ///
    /// INVALID_ARGUMENT for a digest that is not `sha256:<64 hex>`, NOT_FOUND for a digest
    /// that is neither the tenant's nor the site-wide default's, and as
    /// [`GateService::active_policy`].
    pub(super) async fn preview_policy(&self, store: &TenantStore, digest: &str) -> Result<SelectedPolicy, Status> {
        if digest.is_empty() {
            return self.active_policy(store).await;
        }
        check_digest("policy_digest", digest)?;
        let policies = Arc::clone(&self.policies);
        let store = store.clone();
        let requested = digest.to_owned();
        off_runtime(move || policies.by_digest(&store, &requested))
            .await?
            .map_err(lookup_status)?
            .ok_or_else(|| policy_not_found(digest))
    }

    /// Validates and stores an imported policy document.
    ///
    /// # Errors
    ///
    /// INVALID_ARGUMENT with `ERR_POLICY_INVALID` naming the file, line and field for an
    /// invalid document, with nothing stored, and INVALID_ARGUMENT for an unusable file name.
    pub(super) async fn import_policy_version(
        &self,
        store: TenantStore,
        request: pb::ImportPolicyRequest,
    ) -> Result<pb::PolicyVersion, Status> {
        let file_name = import_file_name(&request.file_name)?;
        let policies = Arc::clone(&self.policies);
        let imported = off_runtime(move || policies.import(&store, &file_name, &request.policy_yaml))
            .await?
            .map_err(|error| match error {
                ImportError::Invalid(invalid) => {
                    rejection(Code::InvalidArgument, ReasonCode::PolicyInvalid, invalid)
                }
                ImportError::Store(store_error) => internal(store_error),
            })?;
        tracing::Span::current().record("policy_digest", imported.digest.as_str());
        info!(
            version = imported.version,
            already_active = imported.already_active,
            "policy imported"
        );
        Ok(pb::PolicyVersion {
            digest: imported.digest,
            version: imported.version,
            already_active: imported.already_active,
        })
    }

    /// Returns the tenant's policy document with `digest`, or the active one when `digest` is
    /// empty.
    ///
    /// # Errors
    ///
    /// INVALID_ARGUMENT for a malformed digest, NOT_FOUND for a digest that is neither the
    /// tenant's nor the site-wide default's, and INTERNAL for store errors.
    pub(super) async fn policy_document(&self, store: TenantStore, digest: String) -> Result<pb::PolicyDocument, Status> {
        if !digest.is_empty() {
            check_digest("digest", &digest)?;
        }
        let policies = Arc::clone(&self.policies);
        let requested = (!digest.is_empty()).then(|| digest.clone());
        let document = off_runtime(move || policies.document(&store, requested.as_deref()))
            .await?
            .map_err(internal)?
            .ok_or_else(|| policy_not_found(&digest))?;
        tracing::Span::current().record("policy_digest", document.digest.as_str());
        Ok(pb::PolicyDocument {
            digest: document.digest,
            version: document.version,
            policy_yaml: document.document,
            active: document.active,
        })
    }
}

fn lookup_status(error: LookupError) -> Status {
    match error {
        LookupError::StoredInvalid { .. } => rejection(
            Code::FailedPrecondition,
            ReasonCode::PolicyInvalid,
            format!("{error}; import a corrected policy with `stella policy import`"),
        ),
        LookupError::Store(store_error) => internal(store_error),
    }
}

/// NOT_FOUND for a digest the tenant does not have. Another tenant's version gets the same
/// message as a digest that no one imported.
fn policy_not_found(digest: &str) -> Status {
    rejection_without_code(Code::NotFound, format!(
        "policy {digest} does not exist: it is neither a version imported by this tenant nor the gate's default policy"
    ))
}

/// Checks that `digest` (the request field `field`) is `sha256:` and 64 lowercase hex digits.
fn check_digest(field: &str, digest: &str) -> Result<(), Status> {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    let valid = hex.len() == 64 && hex.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
    if valid {
        return Ok(());
    }
    Err(rejection_without_code(Code::InvalidArgument, format!(
        "{field} {digest:?} is invalid: expected sha256: followed by 64 lowercase hex digits"
    )))
}

/// Returns the name for validation errors: the request's file name, or [`DEFAULT_FILE_NAME`].
fn import_file_name(requested: &str) -> Result<String, Status> {
    if requested.is_empty() {
        return Ok(DEFAULT_FILE_NAME.to_owned());
    }
    if requested.len() > MAX_FILE_NAME_BYTES || requested.chars().any(char::is_control) {
        return Err(rejection_without_code(Code::InvalidArgument, format!(
            "file_name must have at most {MAX_FILE_NAME_BYTES} bytes and no control characters"
        )));
    }
    Ok(requested.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_format_checked() {
        let valid = format!("sha256:{}", "0a".repeat(32));
        assert!(check_digest("digest", &valid).is_ok());
        let upper = format!("sha256:{}", "0A".repeat(32));
        let short = format!("sha256:{}", "0a".repeat(31));
        let other = format!("sha512:{}", "0a".repeat(32));
        for invalid in [upper.as_str(), short.as_str(), other.as_str(), "sha256:", "x"] {
            let status = check_digest("digest", invalid).expect_err("accepted");
            assert_eq!(status.code(), Code::InvalidArgument, "{invalid}");
        }
    }

    #[test]
    fn stored_invalid_is_precondition() {
        let source = crate::policy::parse_policy("stored", b"environments: {}\n").expect_err("invalid policy");
        let status = lookup_status(LookupError::StoredInvalid {
            digest: "sha256:00".to_owned(),
            version: 3,
            source: Box::new(source),
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(
            status.message().starts_with("ERR_POLICY_INVALID: stored policy version 3 (sha256:00)"),
            "{:?}",
            status.message()
        );
        assert!(status.message().ends_with("import a corrected policy with `stella policy import`"));
        let code = status.metadata().get(stella_proto::REASON_CODE_METADATA_KEY);
        assert_eq!(code.and_then(|value| value.to_str().ok()), Some("ERR_POLICY_INVALID"));
    }

    #[test]
    fn file_name_default_and_limits() {
        assert_eq!(import_file_name("").expect("default"), DEFAULT_FILE_NAME);
        assert_eq!(import_file_name("prod/policy.yaml").expect("plain"), "prod/policy.yaml");
        assert!(import_file_name("a\nb").is_err());
        assert!(import_file_name(&"a".repeat(MAX_FILE_NAME_BYTES + 1)).is_err());
    }
}
