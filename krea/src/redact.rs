//! Text that came from a server (error messages, bodies, URLs) is shown only after this: no
//! control characters (a terminal escape or a fake newline cannot reach the screen), no API
//! token (a server that echoes the Authorization header gives nothing away), bounded length.

/// How much of a server's text an error message keeps.
pub(crate) const MESSAGE_CHARS: usize = 300;
/// How much of a body a debug log line keeps.
pub(crate) const LOG_CHARS: usize = 2048;

/// `text` made safe to show: control characters become spaces (runs collapse to one), every
/// occurrence of `secret` (and of its `Bearer` form) becomes `<redacted>`, and at most
/// `max_chars` characters are kept (with `...` when cut).
pub fn clean(text: &str, secret: Option<&str>, max_chars: usize) -> String {
    let mut redacted = text.to_string();
    if let Some(secret) = secret.map(str::trim).filter(|s| s.len() >= 4) {
        redacted = redacted.replace(secret, "<redacted>");
    }
    let mut out = String::with_capacity(redacted.len().min(max_chars.saturating_add(3)));
    let mut count = 0;
    let mut last_space = false;
    for c in redacted.chars() {
        // Bidirectional overrides can reorder what a terminal shows: treated as control.
        let control = c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c);
        let c = if control { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if count == max_chars {
            out.push_str("...");
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// Like [`clean`] with no secret to remove: for text shown to people (result URLs, job
/// errors) by programs built on this crate.
pub fn for_display(text: &str) -> String {
    clean(text, None, usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_the_token_never_pass() {
        let token = "sk-live-0123456789abcdef";
        let body = format!(
            "{{\"error\":\"bad\\n\",\"echo\":\"Authorization: Bearer {token}\"}}\u{1b}[2J\r\nfake: ok\u{7}"
        );
        let shown = clean(&body, Some(token), 1000);
        assert!(!shown.contains(token), "{shown}");
        assert!(shown.contains("Bearer <redacted>"), "{shown}");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(!shown.contains("  "), "runs of spaces collapse: {shown:?}");
    }

    #[test]
    fn long_text_is_cut_at_a_character() {
        let shown = clean(&"é".repeat(500), None, 10);
        assert_eq!(shown, format!("{}...", "é".repeat(10)));
        assert_eq!(clean("short", None, 10), "short");
    }

    #[test]
    fn bidirectional_overrides_are_neutralised() {
        assert_eq!(for_display("a\u{202e}b"), "a b");
    }
}
