//! What the fuzz targets check beyond "no panic": a well-formed IMAP
//! response, and the flags IMAP can write.

/// Panics unless `response` is one well-formed IMAP response line: it ends
/// in its only CRLF outside literals, parentheses balance, quoted strings
/// hold no CR, LF or NUL (and 8-bit text only when `utf8`, RFC 9051 §4.3),
/// each literal `{N}` is followed by CRLF and exactly N octets with no NUL
/// (a literal8 `~{N}` may hold NUL, RFC 3516 §4.2), and everything else is
/// printable ASCII.
pub fn assert_well_formed_response(response: &[u8], utf8: bool) {
    let mut depth = 0usize;
    let mut at = 0;
    while at < response.len() {
        let byte = response[at];
        match byte {
            b'(' => depth += 1,
            b')' => {
                assert!(depth > 0, "unbalanced ')' at {at}: {}", show(response));
                depth -= 1;
            }
            b'"' => {
                at += 1;
                loop {
                    let Some(&b) = response.get(at) else {
                        panic!("unterminated quoted string: {}", show(response));
                    };
                    match b {
                        b'"' => break,
                        b'\\' => {
                            assert!(
                                matches!(response.get(at + 1), Some(b'"' | b'\\')),
                                "bad escape in quoted string at {at}: {}",
                                show(response)
                            );
                            at += 1;
                        }
                        b'\r' | b'\n' | 0 => {
                            panic!(
                                "CR, LF or NUL in a quoted string at {at}: {}",
                                show(response)
                            )
                        }
                        b if b >= 0x80 => assert!(
                            utf8,
                            "8-bit quoted string in IMAP4rev1 at {at}: {}",
                            show(response)
                        ),
                        _ => {}
                    }
                    at += 1;
                }
            }
            b'{' => {
                let literal8 = at > 0 && response[at - 1] == b'~';
                let close = response[at..]
                    .iter()
                    .position(|b| *b == b'}')
                    .unwrap_or_else(|| panic!("unterminated literal at {at}: {}", show(response)));
                let digits = &response[at + 1..at + close];
                let size: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or_else(|| panic!("bad literal size at {at}: {}", show(response)));
                at += close + 1;
                assert!(
                    response[at..].starts_with(b"\r\n"),
                    "literal size not followed by CRLF at {at}: {}",
                    show(response)
                );
                at += 2;
                let data = response
                    .get(at..at + size)
                    .unwrap_or_else(|| panic!("literal runs past the end: {}", show(response)));
                assert!(
                    literal8 || !data.contains(&0),
                    "NUL in a literal (needs literal8) at {at}: {}",
                    show(response)
                );
                at += size;
                continue;
            }
            b'\r' => {
                assert_eq!(
                    &response[at..],
                    b"\r\n",
                    "CR before the end of the response at {at}: {}",
                    show(response)
                );
                assert_eq!(depth, 0, "unbalanced '(': {}", show(response));
                return;
            }
            b if (0x20..0x7f).contains(&b) => {}
            b => panic!(
                "byte 0x{b:02x} outside a string at {at}: {}",
                show(response)
            ),
        }
        at += 1;
    }
    panic!("the response does not end in CRLF: {}", show(response));
}

/// Panics unless `keyword` can be written as an IMAP flag keyword: an atom
/// (RFC 9051 §9 `flag-keyword`), since FETCH FLAGS writes it as it is.
pub fn assert_keyword_atom(keyword: &str) {
    assert!(
        !keyword.is_empty()
            && keyword.bytes().all(|b| {
                b > 0x20
                    && b < 0x7f
                    && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
            }),
        "keyword {keyword:?} is not an IMAP atom"
    );
}

/// The start of a response for a panic message.
fn show(response: &[u8]) -> String {
    let end = response.len().min(400);
    format!("{:?}", String::from_utf8_lossy(&response[..end]))
}
