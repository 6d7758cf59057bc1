//! IMAP URLs (RFC 5092) as CATENATE takes them: any text parses or is
//! refused without a panic, and what parses names a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox_imap::imap_url::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(url) = parse(text) {
        assert!(url.uid > 0 && !url.mailbox.is_empty(), "{text:?}");
        assert!(url.uid_validity != Some(0), "{text:?}");
    }
});
