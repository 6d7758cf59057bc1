//! Address and domain syntax, checked at the edge.

use crate::DirectoryError;

/// Lowercases and checks a domain name (letters, digits, hyphens, dots; IDNA
/// A-labels; no leading/trailing dot).
pub fn normalize_domain(domain: &str) -> Result<String, DirectoryError> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if domain.is_empty() || domain.len() > 253 || !domain.split('.').all(valid_label) {
        return Err(DirectoryError::InvalidDomain(domain));
    }
    Ok(domain)
}

/// Lowercases and checks `local@domain`. The local part may be UTF-8
/// (RFC 6531) but has no spaces, quotes, angle brackets or control characters.
pub fn normalize_address(address: &str) -> Result<String, DirectoryError> {
    let trimmed = address.trim();
    let invalid = || DirectoryError::InvalidAddress(address.to_string());
    let (local, domain) = trimmed.rsplit_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "\"<>()[]\\,;:@".contains(c))
    {
        return Err(invalid());
    }
    let domain = normalize_domain(domain).map_err(|_| invalid())?;
    Ok(format!("{}@{domain}", local.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lowercased_and_checked() {
        assert_eq!(
            normalize_address(" Alice@Example.TEST ").unwrap(),
            "alice@example.test"
        );
        assert_eq!(
            normalize_address("jörg@example.test").unwrap(),
            "jörg@example.test"
        );
        for bad in [
            "",
            "alice",
            "@example.test",
            "alice@",
            "a b@example.test",
            "a@@b",
            "a..b@example.test",
            "a@-x.test",
            "a@x..test",
            "<a@x.test>",
        ] {
            assert!(normalize_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domains_are_checked() {
        assert_eq!(normalize_domain("Example.Test.").unwrap(), "example.test");
        assert!(normalize_domain("exa mple.test").is_err());
        assert!(normalize_domain("").is_err());
    }
}
