//! POP3 command parser: one line in, a [`Command`] or a precise error out.
//! Pure and total: never panics, whatever the bytes.

/// RFC 2449 §4: a command line is at most 255 octets, CRLF included.
pub const MAX_COMMAND_LINE: usize = 255;

/// A POP3 command (RFC 1939, 2449, 2595, 5034).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    /// AUTH [mechanism [initial-response]]; no mechanism lists them.
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    Capa,
    Stls,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Quit,
    Top(u32, u32),
    Uidl(Option<u32>),
}

/// Why a line is not a command; the text goes after `-ERR `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

fn number(argument: &str, what: &str) -> Result<u32, ParseError> {
    if argument.is_empty() || !argument.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError(format!(
            "{what} must be a positive number, not {argument:?}"
        )));
    }
    match argument.parse::<u32>() {
        Ok(0) => Err(ParseError(format!(
            "{what} must be 1 or more; messages are numbered from 1"
        ))),
        Ok(n) => Ok(n),
        Err(_) => Err(ParseError(format!("{what} {argument} is out of range"))),
    }
}

fn count(argument: &str) -> Result<u32, ParseError> {
    if argument.is_empty() || !argument.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError(format!(
            "the line count must be a number, not {argument:?}"
        )));
    }
    argument
        .parse::<u32>()
        .map_err(|_| ParseError(format!("line count {argument} is out of range")))
}

/// Parses one command line (with or without its CRLF).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))
        .unwrap_or(line);
    let Ok(text) = std::str::from_utf8(line) else {
        return Err(ParseError("commands are ASCII text".into()));
    };
    let (keyword, rest) = match text.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (text, None),
    };
    let args: Vec<&str> = rest.map(|r| r.split(' ').collect()).unwrap_or_default();
    let keyword = keyword.to_ascii_uppercase();
    let no_args = |command: Command| {
        if args.is_empty() {
            Ok(command)
        } else {
            Err(ParseError(format!("{keyword} takes no arguments")))
        }
    };
    match keyword.as_str() {
        "USER" => match rest {
            Some(name) if !name.is_empty() => Ok(Command::User(name.to_string())),
            _ => Err(ParseError("USER needs a name: USER you@example.com".into())),
        },
        // RFC 1939 §7: the password may contain spaces; it is the rest of the line.
        "PASS" => match rest {
            Some(password) if !password.is_empty() => Ok(Command::Pass(password.to_string())),
            _ => Err(ParseError("PASS needs a password".into())),
        },
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [mechanism] => Ok(Command::Auth {
                mechanism: Some(mechanism.to_ascii_uppercase()),
                initial: None,
            }),
            [mechanism, initial] => Ok(Command::Auth {
                mechanism: Some(mechanism.to_ascii_uppercase()),
                initial: Some(initial.to_string()),
            }),
            _ => Err(ParseError(
                "AUTH takes a mechanism and an optional initial response".into(),
            )),
        },
        "CAPA" => no_args(Command::Capa),
        "STLS" => no_args(Command::Stls),
        "STAT" => no_args(Command::Stat),
        "NOOP" => no_args(Command::Noop),
        "RSET" => no_args(Command::Rset),
        "QUIT" => no_args(Command::Quit),
        "LIST" | "UIDL" => {
            let which = match args.as_slice() {
                [] => None,
                [n] => Some(number(n, "the message number")?),
                _ => {
                    return Err(ParseError(format!(
                        "{keyword} takes at most one message number"
                    )));
                }
            };
            Ok(if keyword == "LIST" {
                Command::List(which)
            } else {
                Command::Uidl(which)
            })
        }
        "RETR" | "DELE" => match args.as_slice() {
            [n] => {
                let n = number(n, "the message number")?;
                Ok(if keyword == "RETR" {
                    Command::Retr(n)
                } else {
                    Command::Dele(n)
                })
            }
            _ => Err(ParseError(format!("{keyword} needs one message number"))),
        },
        "TOP" => match args.as_slice() {
            [n, lines] => Ok(Command::Top(
                number(n, "the message number")?,
                count(lines)?,
            )),
            _ => Err(ParseError(
                "TOP needs a message number and a line count".into(),
            )),
        },
        "APOP" => Err(ParseError(
            "APOP is not offered: use USER/PASS or AUTH PLAIN over TLS".into(),
        )),
        "" => Err(ParseError("empty command".into())),
        _ => Err(ParseError(format!(
            "unknown command {:?}; see CAPA",
            keyword.chars().take(20).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1939_examples_parse() {
        assert_eq!(parse(b"USER mrose\r\n"), Ok(Command::User("mrose".into())));
        assert_eq!(
            parse(b"PASS secret words\r\n"),
            Ok(Command::Pass("secret words".into()))
        );
        assert_eq!(parse(b"STAT\r\n"), Ok(Command::Stat));
        assert_eq!(parse(b"LIST\r\n"), Ok(Command::List(None)));
        assert_eq!(parse(b"LIST 2\r\n"), Ok(Command::List(Some(2))));
        assert_eq!(parse(b"retr 1\r\n"), Ok(Command::Retr(1)));
        assert_eq!(parse(b"DELE 1\r\n"), Ok(Command::Dele(1)));
        assert_eq!(parse(b"TOP 1 10\r\n"), Ok(Command::Top(1, 10)));
        assert_eq!(parse(b"TOP 1 0\r\n"), Ok(Command::Top(1, 0)));
        assert_eq!(parse(b"UIDL\r\n"), Ok(Command::Uidl(None)));
        assert_eq!(parse(b"UIDL 2\r\n"), Ok(Command::Uidl(Some(2))));
        assert_eq!(
            parse(b"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n"),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("dGVzdAB0ZXN0AHRlc3Q=".into())
            })
        );
        assert_eq!(parse(b"QUIT\r\n"), Ok(Command::Quit));
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        for bad in [
            &b"RETR 0\r\n"[..],
            b"RETR -1\r\n",
            b"RETR x\r\n",
            b"RETR 99999999999999\r\n",
            b"RETR\r\n",
            b"RETR 1 2\r\n",
            b"DELE\r\n",
            b"TOP 1\r\n",
            b"TOP 1 -3\r\n",
            b"LIST 0\r\n",
            b"STAT 1\r\n",
            b"USER\r\n",
            b"PASS\r\n",
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
            b"FOO\r\n",
            b"\r\n",
            b"\xff\xfe\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn any_bytes_give_a_value_or_an_error() {
        let mut seed = 0x2545_f491_u32;
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let line: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    b"RETLISTOPDE 0123456789-\r\n\xff"[(seed % 25) as usize]
                })
                .collect();
            let _ = parse(&line);
        }
    }
}
