//! The closed set of scopes that Authority tokens grant, and the `scope`
//! claim syntax (a space-separated list, RFC 6749 section 3.3, as RFC 8693
//! section 4.2 uses it in JWTs).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A permission a token grants for one kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `trust:import`: import trust roots into the attestor.
    TrustImport,
    /// `tiles:import`: import tlog tiles and offline bundles.
    TilesImport,
    /// `evidence:import`: import attestation evidence.
    EvidenceImport,
    /// `evidence:verify`: run offline inclusion and evidence verification.
    EvidenceVerify,
    /// `reports:read`: read verification reports.
    ReportsRead,
    /// `promotion:preview`: preview a promotion decision without recording it.
    PromotionPreview,
    /// `promotion:evaluate`: evaluate and record a promotion decision.
    PromotionEvaluate,
    /// `promotion:break-glass`: record an emergency override of a denied promotion.
    PromotionBreakGlass,
    /// `decisions:read`: read recorded promotion decisions.
    DecisionsRead,
    /// `policy:import`: store a new version of the tenant's gate policy.
    PolicyImport,
}

impl Scope {
    /// Every scope, in a fixed order.
    pub const ALL: [Scope; 10] = [
        Scope::TrustImport,
        Scope::TilesImport,
        Scope::EvidenceImport,
        Scope::EvidenceVerify,
        Scope::ReportsRead,
        Scope::PromotionPreview,
        Scope::PromotionEvaluate,
        Scope::PromotionBreakGlass,
        Scope::DecisionsRead,
        Scope::PolicyImport,
    ];

    /// Returns the spelling used in the `scope` claim.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::TrustImport => "trust:import",
            Scope::TilesImport => "tiles:import",
            Scope::EvidenceImport => "evidence:import",
            Scope::EvidenceVerify => "evidence:verify",
            Scope::ReportsRead => "reports:read",
            Scope::PromotionPreview => "promotion:preview",
            Scope::PromotionEvaluate => "promotion:evaluate",
            Scope::PromotionBreakGlass => "promotion:break-glass",
            Scope::DecisionsRead => "decisions:read",
            Scope::PolicyImport => "policy:import",
        }
    }

    /// Looks up a scope by its exact, case-sensitive spelling.
    pub fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == name)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A scope name that is not one of [`Scope::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {name:?}: expected one of {}", scope_list())]
pub struct UnknownScope {
    /// The rejected name.
    pub name: String,
}

fn scope_list() -> String {
    let names: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
    names.join(", ")
}

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Scope::from_name(name).ok_or_else(|| UnknownScope {
            name: name.to_owned(),
        })
    }
}

/// Formats scopes as a `scope` claim value, in [`Scope::ALL`] order without repeats.
pub fn format_scope_claim(scopes: &[Scope]) -> String {
    let set: BTreeSet<Scope> = scopes.iter().copied().collect();
    let names: Vec<&str> = set.iter().map(|scope| scope.as_str()).collect();
    names.join(" ")
}

/// Parses a `scope` claim value into the known scopes it grants.
///
/// Returns `None` unless the value is one or more scope tokens separated by
/// single spaces, each made of printable ASCII other than `"` and `\`
/// (RFC 6749 section 3.3). Names outside [`Scope::ALL`] are valid syntax but
/// grant nothing here, so an Authority may issue tokens that also serve
/// other systems.
pub(crate) fn parse_scope_claim(value: &str) -> Option<BTreeSet<Scope>> {
    let mut granted = BTreeSet::new();
    for token in value.split(' ') {
        let valid = !token.is_empty()
            && token
                .bytes()
                .all(|byte| matches!(byte, 0x21 | 0x23..=0x5b | 0x5d..=0x7e));
        if !valid {
            return None;
        }
        if let Some(scope) = Scope::from_name(token) {
            granted.insert(scope);
        }
    }
    Some(granted)
}

#[cfg(test)]
mod tests {
    use super::{Scope, format_scope_claim, parse_scope_claim};

    #[test]
    fn names_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
    }

    #[test]
    fn names_are_case_sensitive() {
        assert!("Trust:Import".parse::<Scope>().is_err());
        assert!("reports:read ".parse::<Scope>().is_err());
    }

    #[test]
    fn claim_ignores_unknown_names() {
        let granted = parse_scope_claim("openid reports:read other:thing");
        assert_eq!(granted, Some([Scope::ReportsRead].into_iter().collect()));
    }

    #[test]
    fn claim_rejects_bad_syntax() {
        for value in [
            "",
            " reports:read",
            "reports:read ",
            "reports:read  decisions:read",
            "reports:read\tdecisions:read",
            "reports:read,decisions:read\"",
            "reports\\read",
            "r\u{e9}ports:read",
        ] {
            assert_eq!(parse_scope_claim(value), None, "{value:?}");
        }
    }

    #[test]
    fn format_sorts_and_deduplicates() {
        let claim = format_scope_claim(&[
            Scope::DecisionsRead,
            Scope::TrustImport,
            Scope::DecisionsRead,
        ]);
        assert_eq!(claim, "trust:import decisions:read");
    }
}
