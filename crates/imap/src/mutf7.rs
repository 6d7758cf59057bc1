//! Modified UTF-7 for mailbox names (RFC 3501 §5.1.3), used unless the client
//! enabled IMAP4rev2 (which uses UTF-8 names).

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

fn engine() -> GeneralPurpose {
    // RFC 3501: base64 with ',' instead of '/' and no padding.
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
            .unwrap_or(base64::alphabet::STANDARD);
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    )
}

/// Encodes a UTF-8 name.
pub fn encode(name: &str) -> String {
    let engine = engine();
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine.encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a modified UTF-7 name; `None` when it is not valid modified UTF-7.
pub fn decode(name: &str) -> Option<String> {
    let engine = engine();
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(amp) = rest.find('&') {
        let (plain, encoded) = rest.split_at(amp);
        if !plain.chars().all(|c| (' '..='~').contains(&c)) {
            return None;
        }
        out.push_str(plain);
        let encoded = &encoded[1..];
        let end = encoded.find('-')?;
        let chunk = &encoded[..end];
        if chunk.is_empty() {
            out.push('&');
        } else {
            let bytes = engine.decode(chunk).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            let text = String::from_utf16(&units).ok()?;
            // Printable ASCII must not be encoded.
            if text.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&text);
        }
        rest = &encoded[end + 1..];
    }
    if !rest.chars().all(|c| (' '..='~').contains(&c)) {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3501_example() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語"
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            "~peter/mail/台北/日本語"
        );
    }

    #[test]
    fn ampersand_and_round_trips() {
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode("Tom &- Jerry").unwrap(), "Tom & Jerry");
        for name in ["Entwürfe", "Gelöschte Elemente", "📬 mail", "a&b/ü"] {
            assert_eq!(decode(&encode(name)).unwrap(), name);
        }
        assert!(decode("&Jjo!").is_none());
        assert!(decode("&AGE-").is_none(), "encoded ASCII is not allowed");
        assert!(decode("Entwürfe").is_none());
    }

    #[test]
    fn hostile_names_are_refused_or_decoded_without_panic() {
        for name in [
            "&", "&-&", "&&&&&&-", "&2D0-",    // a lone surrogate
            "&2D3cAA-", // a surrogate pair: U+1F400
            "&A-",      // too few bits for a character
            "&AAAA-&", "&,,,,-", "abc&",
        ] {
            let _ = decode(name);
        }
        assert!(decode("&2D0-").is_none());
        assert_eq!(decode("&2D3cAA-").as_deref(), Some("\u{1f400}"));
        let long = "&".repeat(100_000);
        assert!(decode(&long).is_none());
        let long = "&-".repeat(100_000);
        assert_eq!(decode(&long).map(|s| s.len()), Some(100_000));
        let wide = "日".repeat(50_000);
        assert_eq!(decode(&encode(&wide)).as_deref(), Some(wide.as_str()));
    }
}
