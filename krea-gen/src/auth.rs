//! The bearer token, attached per request by the client's `pre` hook.
//!
//! Never a reqwest default header: a default header would also go to result CDNs and to any
//! host a redirect leads to. The hook adds it only when the request's origin is the API's.

use std::fmt;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{HeaderValue, AUTHORIZATION};

use crate::Client;

/// Credentials for the raw client. `Debug` never shows the token.
#[derive(Clone, Default)]
pub struct ApiAuth {
    header: Option<HeaderValue>,
}

impl ApiAuth {
    /// Sends `Authorization: Bearer {token}` to the API origin.
    ///
    /// Fails if the token cannot be a header value (control characters, non-ASCII); the error
    /// never contains the token.
    pub fn bearer(token: &str) -> Result<ApiAuth, InvalidToken> {
        let mut header =
            HeaderValue::try_from(format!("Bearer {}", token.trim())).map_err(|_| InvalidToken)?;
        header.set_sensitive(true);
        Ok(ApiAuth {
            header: Some(header),
        })
    }

    /// Sends no credentials (the API answers 401).
    pub fn none() -> ApiAuth {
        ApiAuth { header: None }
    }

    /// Whether a token is configured.
    pub fn is_set(&self) -> bool {
        self.header.is_some()
    }
}

impl fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.is_set() {
            "Bearer <redacted>"
        } else {
            "none"
        };
        f.debug_struct("ApiAuth")
            .field("authorization", &shown)
            .finish()
    }
}

/// The token has characters an HTTP header cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Krea API token contains characters that cannot be sent in a header; copy it again from https://krea.ai/settings/api-tokens")
    }
}

impl std::error::Error for InvalidToken {}

/// Same scheme, host and port.
pub(crate) fn same_origin(a: &reqwest::Url, b: &str) -> bool {
    reqwest::Url::parse(b).is_ok_and(|b| a.origin() == b.origin())
}

impl ClientHooks<ApiAuth> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        if let Some(header) = &self.inner().header {
            if same_origin(request.url(), self.baseurl()) {
                request.headers_mut().insert(AUTHORIZATION, header.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let auth = ApiAuth::bearer("sentinel-token-1234").expect("token");
        let shown = format!("{auth:?}");
        assert!(!shown.contains("sentinel"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn a_token_with_a_newline_is_refused_without_echoing_it() {
        let err = ApiAuth::bearer("abc\ndef").unwrap_err().to_string();
        assert!(!err.contains("abc"));
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let url = reqwest::Url::parse("https://api.krea.ai/jobs/1").expect("url");
        assert!(same_origin(&url, "https://api.krea.ai"));
        assert!(!same_origin(&url, "https://cdn.krea.ai"));
        assert!(!same_origin(&url, "http://api.krea.ai"));
        assert!(!same_origin(&url, "https://api.krea.ai:8443"));
    }
}
