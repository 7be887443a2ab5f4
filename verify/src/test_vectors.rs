//! Handling of absent test vectors in unit tests: a test skips locally and fails in CI.

/// Returns true when the environment variable `CI` is set to a value other than empty, `0` or
/// `false`. CI services set `CI=true`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| {
        !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
    })
}

/// Reports why the calling test skips. In CI this fails the test instead, so a run without the
/// vectors cannot pass.
pub(crate) fn skip_or_fail(reason: &str) {
    assert!(!in_ci(), "{reason}, and CI is set, so the test fails instead of skipping");
    eprintln!("skipping: {reason}");
}
