//! The client side of tokens: attaching `authorization: Bearer <token>` to requests.

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::{Request, Status};

use crate::AUTHORIZATION;
use crate::error::AccessError;

/// A bearer token ready to be sent, as a tonic interceptor or per request.
#[derive(Clone)]
pub struct BearerToken {
    value: AsciiMetadataValue,
}

impl BearerToken {
    /// Prepares `token` (surrounding whitespace, such as a file's final newline, is removed).
    ///
    /// # Errors
    ///
    /// [`AccessError::Token`] when the token is empty or contains characters that a JWT never
    /// contains (anything but base64url and dots).
    pub fn new(token: &str) -> Result<Self, AccessError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AccessError::Token("the token is empty"));
        }
        let jwt_character = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if !token.chars().all(jwt_character) {
            return Err(AccessError::Token(
                "the token contains characters other than base64url letters and dots",
            ));
        }
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| AccessError::Token("the token is not valid gRPC metadata"))?;
        Ok(BearerToken { value })
    }

    /// Wraps an `authorization` value received from a caller, to send it on unchanged.
    pub(crate) fn from_header(value: AsciiMetadataValue) -> Self {
        BearerToken { value }
    }

    /// Sets the `authorization` metadata of one request.
    pub fn apply<T>(&self, request: &mut Request<T>) {
        request.metadata_mut().insert(AUTHORIZATION, self.value.clone());
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never print it.
        f.write_str("BearerToken(<redacted>)")
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        self.apply(&mut request);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_trims_newline() {
        let token = BearerToken::new("aaa.bbb.ccc\n").expect("valid");
        let mut request = Request::new(());
        token.apply(&mut request);
        let header = request.metadata().get(AUTHORIZATION).expect("set");
        assert_eq!(header.to_str().expect("ascii"), "Bearer aaa.bbb.ccc");
    }

    #[test]
    fn token_rejects_empty_and_spaces() {
        assert!(BearerToken::new("  \n").is_err());
        assert!(BearerToken::new("aaa bbb").is_err());
        assert!(BearerToken::new("aaa\r\nx-evil: 1").is_err());
    }

    #[test]
    fn debug_hides_token() {
        let token = BearerToken::new("secret.token.value").expect("valid");
        assert!(!format!("{token:?}").contains("secret"));
    }
}
