//! SMTP command parser (RFC 5321 §4.1): one line in, a [`Command`] or a
//! reply out. Pure and total.

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets; with the
/// extensions' parameters we accept up to the 1000 octets of a text line.
pub const MAX_COMMAND_LINE: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// Reverse path (empty for the null sender) and parameters.
    Mail {
        from: String,
        params: Vec<(String, Option<String>)>,
    },
    Rcpt {
        to: String,
        params: Vec<(String, Option<String>)>,
    },
    Data,
    /// RFC 3030 CHUNKING: a chunk of `size` octets follows the command line.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
}

/// A syntax error: the reply code, enhanced code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject(pub u16, pub &'static str, pub String);

/// ESMTP parameters of MAIL/RCPT: `KEY[=value]`, keys upper-cased.
pub type Params = Vec<(String, Option<String>)>;

fn path(argument: &str, keyword: &str) -> Result<(String, Params), Reject> {
    let syntax = || {
        Reject(
            501,
            "5.5.4",
            format!("syntax: {keyword}:<address> [parameters]"),
        )
    };
    let rest = argument.trim_start();
    let rest = rest.strip_prefix('<').ok_or_else(syntax)?;
    let end = rest.find('>').ok_or_else(syntax)?;
    let address = rest[..end].to_string();
    // A source route (@a,@b:user@c) is accepted and ignored (RFC 5321 §4.1.2).
    let address = match address.rsplit_once(':') {
        Some((route, mailbox)) if route.starts_with('@') => mailbox.to_string(),
        _ => address,
    };
    if address
        .chars()
        .any(|c| c.is_control() || c == ' ' || c == '<')
    {
        return Err(Reject(
            501,
            "5.1.3",
            format!("bad address syntax: {address:?}"),
        ));
    }
    let mut params = Vec::new();
    for param in rest[end + 1..].split_whitespace() {
        match param.split_once('=') {
            Some((k, v)) => params.push((k.to_ascii_uppercase(), Some(v.to_string()))),
            None => params.push((param.to_ascii_uppercase(), None)),
        }
    }
    Ok((address, params))
}

/// Parses one command line (CRLF included or not).
pub fn parse(line: &[u8]) -> Result<Command, Reject> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))
        .unwrap_or(line);
    let Ok(text) = std::str::from_utf8(line) else {
        return Err(Reject(500, "5.5.2", "commands must be UTF-8 text".into()));
    };
    let upper = text.to_ascii_uppercase();
    let word = upper.split(' ').next().unwrap_or_default();
    let argument = text.get(word.len()..).unwrap_or_default().trim();
    let no_argument = |command: Command| {
        if argument.is_empty() {
            Ok(command)
        } else {
            Err(Reject(501, "5.5.4", format!("{word} takes no argument")))
        }
    };
    match word {
        "EHLO" | "HELO" => {
            if argument.is_empty() {
                return Err(Reject(
                    501,
                    "5.5.4",
                    format!("{word} needs your host name: {word} client.example.com"),
                ));
            }
            let name = argument
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            Ok(if word == "EHLO" {
                Command::Ehlo(name)
            } else {
                Command::Helo(name)
            })
        }
        "MAIL" => {
            let rest = upper.strip_prefix("MAIL FROM:").map(|_| &text[10..]);
            let rest = rest.ok_or_else(|| {
                Reject(
                    501,
                    "5.5.4",
                    "syntax: MAIL FROM:<address> [parameters]".into(),
                )
            })?;
            let (from, params) = path(rest, "MAIL FROM")?;
            Ok(Command::Mail { from, params })
        }
        "RCPT" => {
            let rest = upper.strip_prefix("RCPT TO:").map(|_| &text[8..]);
            let rest = rest.ok_or_else(|| {
                Reject(
                    501,
                    "5.5.4",
                    "syntax: RCPT TO:<address> [parameters]".into(),
                )
            })?;
            let (to, params) = path(rest, "RCPT TO")?;
            if to.is_empty() {
                return Err(Reject(
                    501,
                    "5.1.3",
                    "a recipient address is required".into(),
                ));
            }
            Ok(Command::Rcpt { to, params })
        }
        "DATA" => no_argument(Command::Data),
        "BDAT" => {
            let mut parts = argument.split_whitespace();
            let size = parts
                .next()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| Reject(501, "5.5.4", "syntax: BDAT <size> [LAST]".into()))?;
            let last = match parts.next() {
                None => false,
                Some(word) if word.eq_ignore_ascii_case("LAST") && parts.next().is_none() => true,
                Some(_) => return Err(Reject(501, "5.5.4", "syntax: BDAT <size> [LAST]".into())),
            };
            Ok(Command::Bdat { size, last })
        }
        "RSET" => no_argument(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_argument(Command::Quit),
        "VRFY" | "EXPN" => Ok(Command::Vrfy),
        "HELP" => Ok(Command::Help),
        "STARTTLS" => no_argument(Command::StartTls),
        "AUTH" => {
            let mut parts = argument.split_whitespace();
            let mechanism = parts
                .next()
                .ok_or_else(|| {
                    Reject(
                        501,
                        "5.5.4",
                        "AUTH needs a mechanism: PLAIN or LOGIN".into(),
                    )
                })?
                .to_ascii_uppercase();
            let initial = parts.next().map(str::to_string);
            Ok(Command::Auth { mechanism, initial })
        }
        "" => Err(Reject(500, "5.5.2", "empty command".into())),
        _ => Err(Reject(
            500,
            "5.5.2",
            format!(
                "unknown command {:?}",
                word.chars().take(16).collect::<String>()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5321_examples_parse() {
        assert_eq!(
            parse(b"EHLO bar.com\r\n"),
            Ok(Command::Ehlo("bar.com".into()))
        );
        assert_eq!(
            parse(b"MAIL FROM:<Smith@bar.com>\r\n"),
            Ok(Command::Mail {
                from: "Smith@bar.com".into(),
                params: vec![]
            })
        );
        assert_eq!(
            parse(b"mail from:<> SIZE=1000 BODY=8BITMIME\r\n"),
            Ok(Command::Mail {
                from: String::new(),
                params: vec![
                    ("SIZE".into(), Some("1000".into())),
                    ("BODY".into(), Some("8BITMIME".into()))
                ]
            })
        );
        assert_eq!(
            parse(b"RCPT TO:<Jones@foo.com>\r\n"),
            Ok(Command::Rcpt {
                to: "Jones@foo.com".into(),
                params: vec![]
            })
        );
        assert_eq!(
            parse(b"RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>\r\n"),
            Ok(Command::Rcpt {
                to: "userc@d.bar.org".into(),
                params: vec![]
            })
        );
        assert_eq!(parse(b"DATA\r\n"), Ok(Command::Data));
        assert_eq!(
            parse(b"BDAT 86 LAST\r\n"),
            Ok(Command::Bdat {
                size: 86,
                last: true
            })
        );
        assert_eq!(
            parse(b"BDAT 0\r\n"),
            Ok(Command::Bdat {
                size: 0,
                last: false
            })
        );
        assert!(parse(b"BDAT x\r\n").is_err());
        assert!(parse(b"BDAT 10 FIRST\r\n").is_err());
        assert_eq!(parse(b"QUIT\r\n"), Ok(Command::Quit));
        assert_eq!(
            parse(b"AUTH PLAIN AGEAYg==\r\n"),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            })
        );
    }

    #[test]
    fn bad_lines_get_a_reply() {
        for bad in [
            &b"MAIL Smith@bar.com\r\n"[..],
            b"MAIL FROM:Smith\r\n",
            b"RCPT TO:<>\r\n",
            b"EHLO\r\n",
            b"DATA now\r\n",
            b"FOO\r\n",
            b"\xff\r\n",
            b"",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
