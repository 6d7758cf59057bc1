//! The SMTP DATA decoder (RFC 5321 §4.1.1.4, §4.5.2) against a reference
//! written straight from the rule: the data ends at the first `<CRLF>.<CRLF>`
//! (the CRLF of the DATA command counting as the first), a line that starts
//! with `.` loses it, and nothing else ends or changes the data — whatever
//! the line lengths and however the input arrives in pieces. Over the size
//! limit the message is refused, and the end is still found in the same place.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox_smtp::data::{DataDecoder, Progress};

/// Where the data ends (bytes consumed) and the un-stuffed message, by the rule.
fn reference(data: &[u8]) -> Option<(usize, Vec<u8>)> {
    let mut prefixed = b"\r\n".to_vec();
    prefixed.extend_from_slice(data);
    let marker = prefixed.windows(5).position(|w| w == b"\r\n.\r\n")?;
    // The message is everything before the marker's ".\r\n", its CRLF included.
    let content = &data[..marker];
    let mut message = Vec::with_capacity(content.len());
    for (i, byte) in content.iter().enumerate() {
        let line_start = i == 0 || (i >= 2 && &content[i - 2..i] == b"\r\n");
        if !(line_start && *byte == b'.') {
            message.push(*byte);
        }
    }
    Some((marker + 3, message))
}

/// Feeds `data` in pieces whose sizes come from `cuts`; returns where the
/// decoder said the data ended and what it kept.
fn decode(data: &[u8], cuts: &[u8], max_size: u64) -> Option<(usize, Result<Vec<u8>, ()>)> {
    let mut decoder = DataDecoder::new(max_size);
    let mut offset = 0;
    let mut cut = cuts.iter().cycle();
    while offset < data.len() {
        let size = (*cut.next().unwrap_or(&255) as usize).max(1);
        let end = (offset + size).min(data.len());
        match decoder.feed(&data[offset..end]) {
            Progress::NeedMore => offset = end,
            Progress::Done { consumed } => {
                assert!(decoder.is_done());
                return Some((offset + consumed, decoder.finish().map_err(|_| ())));
            }
        }
    }
    assert!(!decoder.is_done());
    None
}

fuzz_target!(|input: &[u8]| {
    let Some((&limit, rest)) = input.split_first() else {
        return;
    };
    let Some((&pieces, data)) = rest.split_first() else {
        return;
    };
    let cuts: Vec<u8> = data.iter().take(pieces as usize % 8).copied().collect();
    let cuts = if cuts.is_empty() { vec![255] } else { cuts };
    let max_size = limit as u64 * 4;
    let expected = reference(data);
    let whole = decode(data, &[255], u64::MAX);
    let pieced = decode(data, &cuts, max_size);
    match expected {
        None => {
            assert!(whole.is_none() && pieced.is_none(), "no end marker, no end");
        }
        Some((end, message)) => {
            assert_eq!(whole, Some((end, Ok(message.clone()))), "fed whole");
            let (pieced_end, pieced_message) = pieced.expect("the end is found in pieces too");
            assert_eq!(pieced_end, end, "same end in pieces");
            if message.len() as u64 > max_size {
                assert!(pieced_message.is_err(), "over the limit is refused");
            } else {
                assert_eq!(pieced_message, Ok(message), "same message in pieces");
            }
        }
    }
});
