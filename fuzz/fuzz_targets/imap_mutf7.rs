//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3): any text encodes to
//! printable ASCII that decodes back to it; any name that decodes encodes
//! to a name that decodes to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox_imap::mutf7::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let encoded = encode(text);
    assert!(
        encoded.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{encoded:?}"
    );
    assert_eq!(decode(&encoded).as_deref(), Some(text), "{encoded:?}");
    if let Some(decoded) = decode(text) {
        assert_eq!(decode(&encode(&decoded)), Some(decoded));
    }
});
