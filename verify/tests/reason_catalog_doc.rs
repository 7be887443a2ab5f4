//! Checks that `docs/reason-codes.md` documents exactly the codes of the catalog.

use std::collections::BTreeSet;

use stella_verify::reason::ReasonCode;

#[test]
fn catalog_doc_lists_every_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/reason-codes.md");
    let doc = std::fs::read_to_string(path).expect("read docs/reason-codes.md");

    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|code| code.starts_with("ERR_") || *code == "BREAK_GLASS_OVERRIDE")
        .map(str::to_owned)
        .collect();
    let catalog: BTreeSet<String> = ReasonCode::ALL
        .iter()
        .map(|code| code.as_str().to_owned())
        .collect();

    let undocumented: Vec<_> = catalog.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&catalog).collect();
    assert!(undocumented.is_empty(), "codes missing from docs/reason-codes.md: {undocumented:?}");
    assert!(unknown.is_empty(), "docs/reason-codes.md lists codes not in the catalog: {unknown:?}");
}
