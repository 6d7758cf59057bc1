//! References that tie a client's error answer to the server's log line.
//!
//! Clients never see internal error text (it names files, tables and ids).
//! Every protocol answers a server-side failure with a short reference and
//! logs the detail under the same reference, so an operator can find the
//! line a user quotes.

/// A short random id (8 hex digits) for one failure.
pub fn error_reference() -> String {
    format!("{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_eight_hex_digits_and_differ() {
        let a = error_reference();
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        // 32 random bits: twenty equal draws in a row do not happen.
        assert!((0..20).any(|_| error_reference() != a));
    }
}
