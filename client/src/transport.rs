//! Channels to the services: connection options, transport security and the bearer token.
//!
//! An `https://` URL is served over TLS with the CA and optional client certificate of
//! [`ConnectOptions::tls`]. A plain-text `http://` URL is accepted only for a loopback host, so a
//! token never crosses a network in clear text. Every call on a channel carries the token of
//! [`ConnectOptions::token`], when one is set, as `authorization: Bearer <token>` metadata.

use std::fmt;
use std::time::Duration;

use stella_access::{BearerToken, is_loopback_host};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::error::{ClientError, Service, error_chain};

/// HTTP/2 flow-control window of each stream, in bytes: 4 MiB.
const HTTP2_STREAM_WINDOW: u32 = 4 * 1024 * 1024;

/// HTTP/2 flow-control window of each connection, in bytes: 8 MiB.
const HTTP2_CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// Default time allowed to open the TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for one call. Imports of large tile bundles are the slowest calls.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Default maximum response size. Verification reports and decision records are far smaller.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Timeouts, limits and credentials of a connection.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Time allowed to open the connection.
    pub connect_timeout: Duration,
    /// Time allowed for each call, also sent to the server as `grpc-timeout`. A streamed tile
    /// import gets more time in proportion to its size
    /// ([`stream_import_timeout`](crate::connect::stream_import_timeout)).
    pub request_timeout: Duration,
    /// Maximum size of one decoded response message, in bytes.
    pub max_response_bytes: usize,
    /// Authority token sent with every call. Without one, the services reject every call with
    /// UNAUTHENTICATED.
    pub token: Option<BearerToken>,
    /// TLS settings for `https://` URLs, such as [`stella_access::client_tls`] returns. An
    /// `https://` URL without them is rejected before any connection is made.
    pub tls: Option<ClientTlsConfig>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            token: None,
            tls: None,
        }
    }
}

impl fmt::Debug for ConnectOptions {
    // Written by hand because the derived form of `ClientTlsConfig` prints the client's private
    // key. The token's own Debug form is already redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("token", &self.token)
            .field("tls", &self.tls.as_ref().map(|_| "<configured>"))
            .finish()
    }
}

/// The interceptor of every channel: it adds the bearer token, if any, to each request.
#[derive(Clone, Debug, Default)]
pub struct CallCredentials {
    token: Option<BearerToken>,
}

impl CallCredentials {
    /// Sends `token` with every request, or nothing when it is `None`.
    pub fn new(token: Option<BearerToken>) -> Self {
        CallCredentials { token }
    }
}

impl Interceptor for CallCredentials {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match &mut self.token {
            Some(token) => token.call(request),
            None => Ok(request),
        }
    }
}

/// A channel whose requests carry the connection's bearer token.
pub type AuthenticatedChannel = InterceptedService<Channel, CallCredentials>;

/// Opens a channel to `url`, failing with [`ClientError::InvalidUrl`] for a URL that the
/// transport rules reject and with [`ClientError::Unreachable`] when nothing responds within the
/// connect timeout or the TLS handshake fails.
pub(crate) async fn open_channel(
    service: Service,
    url: &str,
    options: &ConnectOptions,
) -> Result<AuthenticatedChannel, ClientError> {
    let invalid = |detail: String| ClientError::InvalidUrl {
        service,
        url: url.to_owned(),
        detail,
    };
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|error| invalid(error_chain(&error)))?
        .connect_timeout(options.connect_timeout)
        // Larger HTTP/2 windows than the 64 KiB default, so large responses and streams are not
        // held back by flow control on fast links.
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW);
    let host = endpoint.uri().host().unwrap_or_default().to_owned();
    match endpoint.uri().scheme_str() {
        Some("http") => {
            if !is_loopback_host(&host) {
                return Err(invalid(format!(
                    "plain-text http:// is allowed only to a loopback host (localhost, \
                     127.0.0.0/8, [::1]), not {host:?}; use an https:// URL with the CA that \
                     issued the service's certificate"
                )));
            }
        }
        Some("https") => {
            let Some(tls) = &options.tls else {
                return Err(invalid(
                    "an https:// URL needs a TLS configuration with the CA that issued the \
                     service's certificate (the stella option --tls-ca)"
                        .to_owned(),
                ));
            };
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|error| invalid(error_chain(&error)))?;
        }
        _ => {
            return Err(invalid(
                "the URL must start with http:// (loopback only) or https://".to_owned(),
            ));
        }
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|error| ClientError::Unreachable {
            service,
            url: url.to_owned(),
            detail: error_chain(&error),
        })?;
    Ok(InterceptedService::new(
        channel,
        CallCredentials::new(options.token.clone()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(credentials: &mut CallCredentials) -> Option<String> {
        let request = credentials
            .call(tonic::Request::new(()))
            .expect("the interceptor never fails");
        request
            .metadata()
            .get(stella_access::AUTHORIZATION)
            .map(|value| value.to_str().expect("ASCII").to_owned())
    }

    #[test]
    fn credentials_add_token() {
        let token = BearerToken::new("aaa.bbb.ccc").expect("valid token");
        let mut credentials = CallCredentials::new(Some(token));
        assert_eq!(
            header_of(&mut credentials).as_deref(),
            Some("Bearer aaa.bbb.ccc")
        );
    }

    #[test]
    fn credentials_without_token_add_nothing() {
        let mut credentials = CallCredentials::new(None);
        assert_eq!(header_of(&mut credentials), None);
    }

    #[test]
    fn options_debug_hides_secrets() {
        let options = ConnectOptions {
            token: Some(BearerToken::new("secret.token.value").expect("valid token")),
            tls: Some(ClientTlsConfig::new().domain_name("secret-domain")),
            ..ConnectOptions::default()
        };
        let text = format!("{options:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("<configured>"), "{text}");
    }

    #[tokio::test]
    async fn plaintext_to_remote_host_rejected() {
        for url in [
            "http://192.0.2.1:7401",
            "http://example.com:7401",
            "http://[2001:db8::1]:1",
        ] {
            let error = open_channel(Service::Gate, url, &ConnectOptions::default())
                .await
                .expect_err("a remote plain-text URL must be rejected");
            assert!(
                matches!(error, ClientError::InvalidUrl { .. }),
                "{url}: {error:?}"
            );
            assert!(error.to_string().contains("loopback"), "{url}: {error}");
        }
    }

    #[tokio::test]
    async fn https_without_tls_rejected() {
        let error = open_channel(
            Service::Attestor,
            "https://127.0.0.1:1",
            &ConnectOptions::default(),
        )
        .await
        .expect_err("https needs a CA");
        assert!(matches!(error, ClientError::InvalidUrl { .. }), "{error:?}");
        assert!(error.to_string().contains("--tls-ca"), "{error}");
    }

    #[tokio::test]
    async fn other_scheme_rejected() {
        let error = open_channel(
            Service::Gate,
            "ftp://127.0.0.1:1",
            &ConnectOptions::default(),
        )
        .await
        .expect_err("ftp is not a gRPC transport");
        assert!(error.to_string().contains("http://"), "{error}");
    }
}
