//! The certificates of a trusted root's authority, parsed once when the trusted root is loaded,
//! with the issuer links between them whose signatures verified then.
//!
//! Every path validation of a leaf walks up through the authority's own certificates (a Fulcio
//! intermediate to its root, a TSA certificate to its CA). Those links depend only on the trusted
//! root, so checking their signatures on every call repeats the same P-384 work. Path
//! validation skips the signature check of a link recorded here and runs every other check
//! (validity at the time, roles, critical extensions) as before. A link whose signature failed
//! at load time is not recorded, so validation checks it again and reports the same error as
//! without this module.

use super::Certificate;

/// An authority's certificate chain, parsed, with its verified issuer links.
///
/// The contents are derived from `CertificateAuthority::cert_chain`, so equality ignores them.
/// Path validation uses them only when they match that chain byte for byte
/// ([`PreparedChain::certificates_for`]), so an authority whose chain was changed after loading
/// is validated from scratch.
#[derive(Debug, Clone, Default)]
pub struct PreparedChain {
    certificates: Vec<Certificate>,
    /// `(subject, issuer)` index pairs into `certificates`: the subject's signature verified under
    /// the issuer's key.
    verified_links: Vec<(usize, usize)>,
}

impl PartialEq for PreparedChain {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for PreparedChain {}

impl PreparedChain {
    /// Parses `cert_chain` (DER, leaf or intermediate first) and verifies the signature of every
    /// certificate under each other certificate of the chain whose subject is its issuer name.
    /// A chain with a certificate that does not parse yields an empty value, which path
    /// validation treats as not prepared.
    pub fn prepare(cert_chain: &[Vec<u8>]) -> PreparedChain {
        let Ok(certificates) = cert_chain
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
        else {
            return PreparedChain::default();
        };
        let mut verified_links = Vec::new();
        for (subject_index, subject) in certificates.iter().enumerate() {
            for (issuer_index, issuer) in certificates.iter().enumerate() {
                let named = issuer.inner.tbs_certificate().subject()
                    == subject.inner.tbs_certificate().issuer();
                if subject_index != issuer_index
                    && named
                    && subject.verify_issued_by(issuer).is_ok()
                {
                    verified_links.push((subject_index, issuer_index));
                }
            }
        }
        PreparedChain {
            certificates,
            verified_links,
        }
    }

    /// Returns the parsed certificates when they are exactly `cert_chain`, else `None`.
    pub(super) fn certificates_for(&self, cert_chain: &[Vec<u8>]) -> Option<&[Certificate]> {
        let matches = self.certificates.len() == cert_chain.len()
            && !cert_chain.is_empty()
            && self
                .certificates
                .iter()
                .zip(cert_chain)
                .all(|(certificate, der)| certificate.der() == der.as_slice());
        matches.then_some(self.certificates.as_slice())
    }

    /// Reports whether the signature of certificate `subject` verified under certificate
    /// `issuer` (indexes into the chain) when the chain was prepared.
    pub(super) fn link_verified(&self, subject: usize, issuer: usize) -> bool {
        self.verified_links.contains(&(subject, issuer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::tests::fixture;
    use crate::x509::{KeyPurpose, X509Error, verify_fulcio_chain_path};

    /// Fulcio signing time of rekor2-happy-path's certificate.
    fn signing_time(leaf: &Certificate) -> i64 {
        leaf.not_before() + 60
    }

    #[test]
    fn trusted_root_authorities_are_prepared() {
        let Some(fixture) = fixture() else { return };
        for authority in fixture.authorities.iter().chain([&fixture.tsa]) {
            let prepared = &authority.prepared;
            assert!(
                prepared.certificates_for(&authority.cert_chain).is_some(),
                "{} not prepared",
                authority.uri
            );
            // Every certificate but the self-signed anchor has a verified issuer in the chain.
            for subject in 0..authority.cert_chain.len().saturating_sub(1) {
                assert!(
                    (0..authority.cert_chain.len())
                        .any(|issuer| prepared.link_verified(subject, issuer)),
                    "{}: certificate {subject} has no verified issuer link",
                    authority.uri
                );
            }
        }
    }

    #[test]
    fn prepared_and_unprepared_paths_agree() {
        let Some(fixture) = fixture() else { return };
        let at = signing_time(&fixture.leaf);
        let prepared = verify_fulcio_chain_path(&fixture.leaf, &fixture.authorities, at);
        let unprepared_authorities: Vec<_> = fixture
            .authorities
            .iter()
            .cloned()
            .map(|mut authority| {
                authority.prepared = PreparedChain::default();
                authority
            })
            .collect();
        let unprepared = verify_fulcio_chain_path(&fixture.leaf, &unprepared_authorities, at);
        assert!(prepared.is_ok(), "{prepared:?}");
        assert_eq!(prepared, unprepared);

        // Outside the leaf's validity both report the same error.
        let late = fixture.leaf.not_after() + 1;
        assert_eq!(
            verify_fulcio_chain_path(&fixture.leaf, &fixture.authorities, late),
            verify_fulcio_chain_path(&fixture.leaf, &unprepared_authorities, late)
        );
    }

    #[test]
    fn bad_link_is_not_recorded() {
        let Some(fixture) = fixture() else { return };
        let authority = fixture
            .authorities
            .iter()
            .find(|authority| authority.cert_chain.len() >= 2)
            .expect("an authority with an intermediate");
        // Flip the last byte of the intermediate's signature.
        let mut chain = authority.cert_chain.clone();
        if let Some(last) = chain[0].last_mut() {
            *last ^= 0x01;
        }
        let broken = PreparedChain::prepare(&chain);
        assert!(broken.certificates_for(&chain).is_some());
        assert!(!broken.link_verified(0, 1));

        let mut tampered = authority.clone();
        tampered.cert_chain = chain;
        tampered.prepared = broken;
        let at = signing_time(&fixture.leaf);
        let with_prepared = crate::x509::verify_chain_path(
            &fixture.leaf,
            &tampered,
            at,
            KeyPurpose::CodeSigning,
        );
        tampered.prepared = PreparedChain::default();
        let without = crate::x509::verify_chain_path(
            &fixture.leaf,
            &tampered,
            at,
            KeyPurpose::CodeSigning,
        );
        assert!(
            matches!(with_prepared, Err(X509Error::ChainSignatureInvalid { .. })),
            "{with_prepared:?}"
        );
        assert_eq!(with_prepared, without);
    }

    #[test]
    fn stale_preparation_is_ignored() {
        let Some(fixture) = fixture() else { return };
        let authority = &fixture.authorities[0];
        let mut changed = authority.cert_chain.clone();
        changed.reverse();
        if changed != authority.cert_chain {
            assert!(authority.prepared.certificates_for(&changed).is_none());
        }
        assert!(authority.prepared.certificates_for(&[]).is_none());
    }
}
