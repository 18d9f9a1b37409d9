//! The HTTP client every part of the project builds on, and what counts as a loopback address
//! (shared by the client, which allows http:// only there, and the simulator).

use std::sync::{Arc, OnceLock};

/// A `reqwest` client builder with TLS set up: rustls with the `ring` provider and the
/// platform's certificate verifier. Use it instead of `reqwest::Client::builder()`: this
/// workspace builds reqwest without a process-wide TLS provider (so no C build of aws-lc),
/// and a plain builder would panic on `build()`.
///
/// ```
/// let http = krea_gen::net::client_builder()
///     .timeout(std::time::Duration::from_secs(30))
///     .build()
///     .expect("client");
/// # drop(http);
/// ```
pub fn client_builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    match tls_config() {
        Some(config) => builder.tls_backend_preconfigured(config.clone()),
        None => builder,
    }
}

/// The TLS configuration, made once. `None` when the platform has no usable certificate
/// store: http:// (loopback) still works, https:// then fails with a connect error.
fn tls_config() -> Option<&'static rustls::ClientConfig> {
    static CONFIG: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).ok()?;
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(config)
        })
        .as_ref()
}

/// The same TLS configuration (ring, the platform's verifier) for another protocol: a
/// database connection, say, with its own ALPN names. `None` when the platform has no usable
/// certificate verifier.
pub fn rustls_config(alpn: &[&[u8]]) -> Option<rustls::ClientConfig> {
    let mut config = tls_config()?.clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Some(config)
}

/// `localhost`, `127.0.0.0/8` or `::1` (brackets allowed).
pub fn is_loopback_host(host: Option<&str>) -> bool {
    match host {
        Some("localhost") => true,
        Some(h) => h
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_builder_builds_without_a_process_wide_tls_provider() {
        assert!(
            tls_config().is_some(),
            "a TLS configuration on this machine"
        );
        client_builder().build().expect("a client");
    }

    #[test]
    fn loopback_hosts() {
        for h in ["localhost", "127.0.0.1", "127.8.9.10", "[::1]", "::1"] {
            assert!(is_loopback_host(Some(h)), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1",
            "192.168.1.2",
            "[::2]",
            "localhost.example.com",
        ] {
            assert!(!is_loopback_host(Some(h)), "{h}");
        }
        assert!(!is_loopback_host(None));
    }
}
