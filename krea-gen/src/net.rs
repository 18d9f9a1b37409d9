//! What counts as a loopback address, shared by the client (an http:// base URL or webhook is
//! allowed only there) and the simulator (it delivers webhooks only there).

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
