//! Promotions: a request to move subject digests into a target environment, backed by
//! evidence bundles registered with the attestor.

use serde::{Deserialize, Serialize};

/// Maximum length of a promotion id or environment name, in bytes.
pub const MAX_ID_LENGTH: usize = 128;

/// Maximum number of subject digests or evidence bundle ids in one promotion. Each bundle
/// costs one attestor call per evaluation.
pub const MAX_LIST_LENGTH: usize = 256;

/// A validated promotion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub promotion_id: String,
    /// "sha256:<64 lowercase hex>", sorted and deduplicated.
    pub subject_digests: Vec<String>,
    pub target_environment: String,
    /// "sha256:<64 lowercase hex>", sorted and deduplicated.
    pub evidence_bundle_ids: Vec<String>,
}

/// A promotion request field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct PromotionError {
    pub field: String,
    pub why: String,
}

impl Promotion {
    /// Validates the request fields and returns a promotion with sorted, deduplicated
    /// lists.
    ///
    /// # Errors
    ///
    /// [`PromotionError`] naming the first invalid field.
    pub fn new(
        promotion_id: &str,
        subject_digests: &[String],
        target_environment: &str,
        evidence_bundle_ids: &[String],
    ) -> Result<Self, PromotionError> {
        validate_id("promotion_id", promotion_id)?;
        validate_id("target_environment", target_environment)?;
        let subject_digests = validate_digests("subject_digests", subject_digests)?;
        let evidence_bundle_ids = validate_digests("evidence_bundle_ids", evidence_bundle_ids)?;
        Ok(Promotion {
            promotion_id: promotion_id.to_owned(),
            subject_digests,
            target_environment: target_environment.to_owned(),
            evidence_bundle_ids,
        })
    }
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> PromotionError {
    PromotionError {
        field: field.into(),
        why: why.into(),
    }
}

fn validate_id(field: &str, value: &str) -> Result<(), PromotionError> {
    if value.is_empty() {
        return Err(invalid(field, "missing"));
    }
    if value.len() > MAX_ID_LENGTH {
        return Err(invalid(
            field,
            format!("{} bytes, maximum is {MAX_ID_LENGTH}", value.len()),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/');
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(invalid(
            field,
            format!("character {bad:?} is not allowed (use letters, digits and - _ . : /)"),
        ));
    }
    Ok(())
}

fn validate_digests(field: &str, values: &[String]) -> Result<Vec<String>, PromotionError> {
    if values.is_empty() {
        return Err(invalid(field, "missing (at least one is required)"));
    }
    if values.len() > MAX_LIST_LENGTH {
        return Err(invalid(
            field,
            format!("{} values, maximum is {MAX_LIST_LENGTH}", values.len()),
        ));
    }
    for (position, value) in values.iter().enumerate() {
        if !is_sha256_digest(value) {
            return Err(invalid(
                format!("{field}[{position}]"),
                format!("{value:?} is not \"sha256:\" followed by 64 lowercase hex digits"),
            ));
        }
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(sorted)
}

/// Returns whether `value` is "sha256:" and 64 lowercase hex digits.
pub fn is_sha256_digest(value: &str) -> bool {
    value
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: &str) -> String {
        format!("sha256:{}", byte.repeat(32))
    }

    #[test]
    fn new_sorts_and_dedups() {
        let promotion = Promotion::new(
            "rel-1",
            &[digest("bb"), digest("aa"), digest("bb")],
            "prod",
            &[digest("cc")],
        )
        .expect("valid promotion");
        assert_eq!(promotion.subject_digests, vec![digest("aa"), digest("bb")]);
    }

    #[test]
    fn new_rejects_invalid_fields() {
        struct Row {
            name: &'static str,
            id: &'static str,
            subjects: Vec<String>,
            target: &'static str,
            evidence: Vec<String>,
            field: &'static str,
        }
        let rows = [
            Row {
                name: "empty id",
                id: "",
                subjects: vec![digest("aa")],
                target: "prod",
                evidence: vec![digest("cc")],
                field: "promotion_id",
            },
            Row {
                name: "space in id",
                id: "rel 1",
                subjects: vec![digest("aa")],
                target: "prod",
                evidence: vec![digest("cc")],
                field: "promotion_id",
            },
            Row {
                name: "empty target",
                id: "rel-1",
                subjects: vec![digest("aa")],
                target: "",
                evidence: vec![digest("cc")],
                field: "target_environment",
            },
            Row {
                name: "no subjects",
                id: "rel-1",
                subjects: vec![],
                target: "prod",
                evidence: vec![digest("cc")],
                field: "subject_digests",
            },
            Row {
                name: "uppercase hex",
                id: "rel-1",
                subjects: vec![digest("AA")],
                target: "prod",
                evidence: vec![digest("cc")],
                field: "subject_digests[0]",
            },
            Row {
                name: "sha512 subject",
                id: "rel-1",
                subjects: vec![digest("aa"), format!("sha512:{}", "aa".repeat(64))],
                target: "prod",
                evidence: vec![digest("cc")],
                field: "subject_digests[1]",
            },
            Row {
                name: "no evidence",
                id: "rel-1",
                subjects: vec![digest("aa")],
                target: "prod",
                evidence: vec![],
                field: "evidence_bundle_ids",
            },
            Row {
                name: "short evidence id",
                id: "rel-1",
                subjects: vec![digest("aa")],
                target: "prod",
                evidence: vec!["sha256:abc".to_owned()],
                field: "evidence_bundle_ids[0]",
            },
        ];
        for row in rows {
            let error = Promotion::new(row.id, &row.subjects, row.target, &row.evidence).expect_err(row.name);
            assert_eq!(error.field, row.field, "row {}: {error}", row.name);
        }
    }
}
