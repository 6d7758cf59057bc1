//! FETCH over any message bytes: ENVELOPE, BODYSTRUCTURE, BODY, and BINARY,
//! BINARY.SIZE and BODY[…] of every part (up to 64), in IMAP4rev1 and
//! IMAP4rev2 form. The response must be well formed: balanced parentheses,
//! quoted strings without CR/LF/NUL, literals of the announced size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox_fuzz::assert_well_formed_response;
use pillarbox_imap::fuzzing::fetch_response;

fuzz_target!(|data: &[u8]| {
    for utf8 in [false, true] {
        assert_well_formed_response(&fetch_response(data, utf8), utf8);
    }
});
