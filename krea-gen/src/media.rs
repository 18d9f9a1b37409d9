//! What `POST /assets` accepts: the file types and size Krea documents, recognised by content
//! (not by name), so a client can refuse a bad upload before sending it and a server can refuse
//! it the same way.

/// Krea's upload limit: 75 MB.
pub const MAX_UPLOAD_BYTES: u64 = 75 * 1024 * 1024;

/// The types Krea takes, for messages.
pub const ACCEPTED: &str = "JPEG, PNG, WebP, HEIC, MP4, MOV, WebM, GLB, WAV or MP3";

/// Media types and the file extension each is saved under (the first of a type's rows is its
/// extension; later rows are other names for it).
const TYPES: [(&str, &str); 14] = [
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/jpg", "jpg"),
    ("image/jpeg", "jpeg"),
    ("image/webp", "webp"),
    ("image/gif", "gif"),
    ("image/heic", "heic"),
    ("video/mp4", "mp4"),
    ("video/quicktime", "mov"),
    ("video/webm", "webm"),
    ("audio/mpeg", "mp3"),
    ("audio/wav", "wav"),
    ("audio/x-wav", "wav"),
    ("model/gltf-binary", "glb"),
];

/// The extension a file of media type `mime` is saved under (`image/jpeg` is `jpg`); any
/// parameters (`; charset=...`) and case are ignored. `None` for a type not listed.
pub fn extension_for(mime: &str) -> Option<&'static str> {
    let mime = mime.split(';').next().unwrap_or_default().trim();
    TYPES
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(mime))
        .map(|(_, e)| *e)
}

/// The media type of a file named with extension `ext` (any case); `None` for one not listed.
pub fn mime_for(ext: &str) -> Option<&'static str> {
    TYPES
        .iter()
        .find(|(_, e)| e.eq_ignore_ascii_case(ext))
        .map(|(m, _)| *m)
}

/// The MIME type of a file from its first bytes (16 are enough); `None` for a type Krea does
/// not take.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if at(0, &[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        Some("image/webp")
    } else if at(0, b"RIFF") && at(8, b"WAVE") {
        Some("audio/wav")
    } else if at(4, b"ftyp") {
        match bytes.get(8..12).unwrap_or_default() {
            b"heic" | b"heix" | b"mif1" | b"msf1" | b"hevc" => Some("image/heic"),
            b"qt  " => Some("video/quicktime"),
            _ => Some("video/mp4"),
        }
    } else if at(0, &[0x1a, 0x45, 0xdf, 0xa3]) {
        Some("video/webm")
    } else if at(0, b"glTF") {
        Some("model/gltf-binary")
    } else if at(0, b"ID3") || at(0, &[0xff, 0xfb]) || at(0, &[0xff, 0xf3]) || at(0, &[0xff, 0xf2])
    {
        Some("audio/mpeg")
    } else {
        None
    }
}

/// Width and height of a PNG or JPEG, from its header.
pub fn image_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() >= 24 {
        let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
        let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
        return Some((w, h));
    }
    if bytes.starts_with(&[0xff, 0xd8]) {
        let mut i = 2;
        while i + 9 < bytes.len() {
            if bytes[i] != 0xff {
                return None;
            }
            let marker = bytes[i + 1];
            let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
            if matches!(marker, 0xc0..=0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf) {
                let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]) as u32;
                let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]) as u32;
                return Some((w, h));
            }
            i += 2 + len;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_names_types_and_extensions_both_ways() {
        assert_eq!(extension_for("image/jpeg"), Some("jpg"));
        assert_eq!(extension_for("IMAGE/JPG; q=1"), Some("jpg"));
        assert_eq!(extension_for("audio/x-wav"), Some("wav"));
        assert_eq!(extension_for("text/html"), None);
        assert_eq!(mime_for("JPEG"), Some("image/jpeg"));
        assert_eq!(mime_for("mov"), Some("video/quicktime"));
        assert_eq!(mime_for("txt"), None);
        // Every type a sniff can return has an extension.
        for (mime, _) in TYPES {
            assert!(extension_for(mime).is_some_and(|e| mime_for(e).is_some()));
        }
    }

    #[test]
    fn recognises_the_documented_types_and_refuses_others() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypqt  "), Some("video/quicktime"));
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypheic"), Some("image/heic"));
        assert_eq!(sniff(b"RIFF\x00\x00\x00\x00WAVEfmt "), Some("audio/wav"));
        assert_eq!(sniff(b"glTF\x02\x00\x00\x00"), Some("model/gltf-binary"));
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b""), None);
    }
}
