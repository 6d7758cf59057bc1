//! Address lists of From, To, Cc and the like (RFC 5322 §3.4, with the
//! obsolete forms of §4.4), parsed as IMAP's ENVELOPE carries them (RFC 9051
//! §7.5.2): display name, source route (adl), mailbox and host, and groups
//! as start and end markers.
//!
//! Header values come from anyone, so the parser is a loop over tokens: no
//! recursion, comments nested to any depth are skipped with a counter, and
//! the work is linear in the value's length.

use crate::meta::Address;

/// Host given to an address that has none, as Dovecot does: a NIL host
/// would make IMAP clients read the address as the start of a group.
pub const MISSING_DOMAIN: &str = "MISSING_DOMAIN";
/// Mailbox given to an address that has a host but no local part.
pub const MISSING_MAILBOX: &str = "MISSING_MAILBOX";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Atom text, dots included (dot-atom and obs-phrase).
    Atom(String),
    /// A quoted string's content, escapes undone.
    Quoted(String),
    /// A domain literal, brackets included.
    Literal(String),
    /// One of `< > @ , ; :`.
    Special(char),
    /// A comment's text (outermost parentheses removed).
    Comment(String),
}

/// Splits a header value into tokens. Characters that fit nowhere (a stray
/// `>` or `]`, control characters) end up as atom text rather than errors:
/// a broken header still gives the best address it can.
fn tokens(value: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                chars.next();
            }
            '(' => {
                chars.next();
                let mut depth = 1usize;
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                text.push(escaped);
                            }
                        }
                        '(' => {
                            depth += 1;
                            text.push(c);
                        }
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            text.push(c);
                        }
                        c => text.push(c),
                    }
                }
                out.push(Token::Comment(text.trim().to_string()));
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                text.push(escaped);
                            }
                        }
                        '"' => break,
                        '\r' | '\n' => {}
                        c => text.push(c),
                    }
                }
                out.push(Token::Quoted(text));
            }
            '[' => {
                let mut text = String::new();
                for c in chars.by_ref() {
                    text.push(c);
                    if c == ']' {
                        break;
                    }
                }
                out.push(Token::Literal(text));
            }
            '<' | '>' | '@' | ',' | ';' | ':' => {
                chars.next();
                out.push(Token::Special(c));
            }
            _ => {
                let mut text = String::new();
                while let Some(&c) = chars.peek() {
                    if matches!(
                        c,
                        ' ' | '\t'
                            | '\r'
                            | '\n'
                            | '('
                            | '"'
                            | '['
                            | '<'
                            | '>'
                            | '@'
                            | ','
                            | ';'
                            | ':'
                    ) {
                        break;
                    }
                    text.push(c);
                    chars.next();
                }
                out.push(Token::Atom(text));
            }
        }
    }
    out
}

/// Parses an address list (`From:`, `To:`, `Cc:` …) for ENVELOPE.
pub fn parse_address_list(value: &str) -> Vec<Address> {
    let tokens = tokens(value);
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_group = false;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Special(',') | Token::Comment(_) => {
                i += 1;
                continue;
            }
            Token::Special(';') => {
                if in_group {
                    out.push(Address::default());
                    in_group = false;
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        // A phrase: the display name, a group's name, or a local part.
        let start = i;
        while i < tokens.len()
            && matches!(
                tokens[i],
                Token::Atom(_) | Token::Quoted(_) | Token::Comment(_) | Token::Literal(_)
            )
        {
            i += 1;
        }
        let phrase = &tokens[start..i];
        match tokens.get(i) {
            Some(Token::Special(':')) if !in_group => {
                i += 1;
                out.push(Address {
                    name: None,
                    adl: None,
                    mailbox: Some(words(phrase).unwrap_or_default()),
                    host: None,
                });
                in_group = true;
            }
            Some(Token::Special('<')) => {
                i += 1;
                let (address, next) = angle_addr(&tokens, i);
                i = next;
                let mut address = address;
                address.name = words(phrase);
                // A comment after the address names it when nothing else does.
                if address.name.is_none()
                    && let Some(Token::Comment(c)) = tokens.get(i)
                    && !c.is_empty()
                {
                    address.name = Some(c.clone());
                }
                out.push(address);
            }
            Some(Token::Special('@')) => {
                i += 1;
                let (host, next) = domain(&tokens, i);
                i = next;
                out.push(Address {
                    name: last_comment(&tokens[start..i]),
                    adl: None,
                    mailbox: Some(local_part(phrase).unwrap_or_else(|| MISSING_MAILBOX.into())),
                    host: Some(host.unwrap_or_else(|| MISSING_DOMAIN.into())),
                });
            }
            _ => {
                // A bare word (`undisclosed-recipients`), or something
                // broken: an address with no domain, if it has any text.
                if let Some(mailbox) = local_part(phrase) {
                    out.push(Address {
                        name: None,
                        adl: None,
                        mailbox: Some(mailbox),
                        host: Some(MISSING_DOMAIN.into()),
                    });
                }
                if i == start {
                    // A special out of place (`>`, `:` inside a group, a
                    // stray `@` handled above): step over it.
                    i += 1;
                }
            }
        }
    }
    if in_group {
        out.push(Address::default());
    }
    out
}

/// `<[@route,@route:]local@domain>` from just after `<`; returns the
/// address (no name yet) and the index after `>`.
fn angle_addr(tokens: &[Token], mut i: usize) -> (Address, usize) {
    let mut adl = Vec::new();
    // obs-route: `@a,@b:` before the address.
    let mut j = i;
    let mut route = Vec::new();
    while let Some(Token::Special('@')) = tokens.get(j) {
        let (d, next) = domain(tokens, j + 1);
        route.push(format!("@{}", d.unwrap_or_default()));
        j = next;
        while let Some(Token::Special(',') | Token::Comment(_)) = tokens.get(j) {
            j += 1;
        }
    }
    if !route.is_empty() && matches!(tokens.get(j), Some(Token::Special(':'))) {
        adl = route;
        i = j + 1;
    }
    let start = i;
    while i < tokens.len()
        && matches!(
            tokens[i],
            Token::Atom(_) | Token::Quoted(_) | Token::Comment(_)
        )
    {
        i += 1;
    }
    let local = local_part(&tokens[start..i]);
    let mut host = None;
    if let Some(Token::Special('@')) = tokens.get(i) {
        let (d, next) = domain(tokens, i + 1);
        host = d;
        i = next;
    }
    // Whatever else is inside the brackets is skipped.
    while i < tokens.len() && tokens[i] != Token::Special('>') {
        if matches!(tokens[i], Token::Special(',') | Token::Special(';')) {
            break;
        }
        i += 1;
    }
    if tokens.get(i) == Some(&Token::Special('>')) {
        i += 1;
    }
    let address = match (local, host) {
        // `<>`: the null path, as in Return-Path.
        (None, None) => Address {
            name: None,
            adl: None,
            mailbox: None,
            host: Some(MISSING_DOMAIN.into()),
        },
        (local, host) => Address {
            name: None,
            adl: (!adl.is_empty()).then(|| adl.join(",")),
            mailbox: Some(local.unwrap_or_else(|| MISSING_MAILBOX.into())),
            host: Some(host.unwrap_or_else(|| MISSING_DOMAIN.into())),
        },
    };
    (address, i)
}

/// A domain from `i`: atoms (with dots) or a domain literal, comments
/// skipped; returns it and the index after it.
fn domain(tokens: &[Token], mut i: usize) -> (Option<String>, usize) {
    let mut text = String::new();
    while let Some(token) = tokens.get(i) {
        match token {
            Token::Atom(a) => text.push_str(a),
            Token::Literal(l) => text.push_str(l),
            Token::Comment(_) => {}
            _ => break,
        }
        i += 1;
    }
    ((!text.is_empty()).then_some(text), i)
}

/// A local part: its words joined without spaces (obs-local-part allows
/// `john . smith`), quoted strings unquoted; comments dropped.
fn local_part(tokens: &[Token]) -> Option<String> {
    let mut text = String::new();
    for token in tokens {
        match token {
            Token::Atom(a) | Token::Quoted(a) | Token::Literal(a) => text.push_str(a),
            _ => {}
        }
    }
    (!text.is_empty()).then_some(text)
}

/// A display name: its words joined by one space, quoted strings unquoted,
/// comments dropped; encoded words stay as they are, for the client to
/// decode (as ENVELOPE sends them).
fn words(tokens: &[Token]) -> Option<String> {
    let words: Vec<&str> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Atom(a) | Token::Quoted(a) | Token::Literal(a) => Some(a.as_str()),
            _ => None,
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The last non-empty comment among `tokens`: the name of `john@x (John)`.
fn last_comment(tokens: &[Token]) -> Option<String> {
    tokens.iter().rev().find_map(|t| match t {
        Token::Comment(c) if !c.is_empty() => Some(c.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, adl: Option<&str>, mailbox: &str, host: &str) -> Address {
        Address {
            name: name.map(str::to_string),
            adl: adl.map(str::to_string),
            mailbox: Some(mailbox.to_string()),
            host: Some(host.to_string()),
        }
    }

    fn group(name: &str) -> Address {
        Address {
            name: None,
            adl: None,
            mailbox: Some(name.to_string()),
            host: None,
        }
    }

    #[test]
    fn rfc_5322_appendix_a_examples() {
        // A.1.1
        assert_eq!(
            parse_address_list("John Doe <jdoe@machine.example>"),
            vec![a(Some("John Doe"), None, "jdoe", "machine.example")]
        );
        assert_eq!(
            parse_address_list("\"Joe Q. Public\" <john.q.public@example.com>"),
            vec![a(
                Some("Joe Q. Public"),
                None,
                "john.q.public",
                "example.com"
            )]
        );
        // A.1.2
        assert_eq!(
            parse_address_list("Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>"),
            vec![
                a(Some("Mary Smith"), None, "mary", "x.test"),
                a(None, None, "jdoe", "example.org"),
                a(Some("Who?"), None, "one", "y.test"),
            ]
        );
        assert_eq!(
            parse_address_list(
                "<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>"
            ),
            vec![
                a(None, None, "boss", "nil.test"),
                a(
                    Some("Giant; \"Big\" Box"),
                    None,
                    "sysservices",
                    "example.net"
                ),
            ]
        );
        // A.1.3: groups.
        assert_eq!(
            parse_address_list("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;"),
            vec![
                group("A Group"),
                a(Some("Ed Jones"), None, "c", "a.test"),
                a(None, None, "joe", "where.test"),
                a(Some("John"), None, "jdoe", "one.test"),
                Address::default(),
            ]
        );
        assert_eq!(
            parse_address_list("Undisclosed recipients:;"),
            vec![group("Undisclosed recipients"), Address::default()]
        );
        // A.5: comments and white space everywhere.
        assert_eq!(
            parse_address_list("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
            vec![a(Some("Pete"), None, "pete", "silly.test")]
        );
        assert_eq!(
            parse_address_list(
                "A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)"
            ),
            vec![
                group("A Group"),
                a(Some("Chris Jones"), None, "c", "public.example"),
                a(None, None, "joe", "example.org"),
                a(Some("John"), None, "jdoe", "one.test"),
                Address::default(),
            ]
        );
    }

    #[test]
    fn groups_with_only_comments_are_empty() {
        assert_eq!(
            parse_address_list("group:;, group2: (foo) ;"),
            vec![
                group("group"),
                Address::default(),
                group("group2"),
                Address::default(),
            ]
        );
    }

    #[test]
    fn source_routes_go_to_the_adl() {
        assert_eq!(
            parse_address_list("<@route:user@domain>"),
            vec![a(None, Some("@route"), "user", "domain")]
        );
        assert_eq!(
            parse_address_list("Name <@a.test,@b.test:user@domain>"),
            vec![a(Some("Name"), Some("@a.test,@b.test"), "user", "domain")]
        );
    }

    #[test]
    fn comments_inside_the_address_are_dropped() {
        assert_eq!(
            parse_address_list("<user-from (comment)@ (comment) domain.org>"),
            vec![a(None, None, "user-from", "domain.org")]
        );
        // The old `address (Name)` form names the address by its comment.
        assert_eq!(
            parse_address_list("jdoe@example.org (John Doe)"),
            vec![a(Some("John Doe"), None, "jdoe", "example.org")]
        );
    }

    #[test]
    fn broken_lists_give_what_they_can() {
        assert_eq!(
            parse_address_list("undisclosed-recipients"),
            vec![a(None, None, "undisclosed-recipients", MISSING_DOMAIN)]
        );
        assert_eq!(
            parse_address_list("@host.test"),
            vec![a(None, None, MISSING_MAILBOX, "host.test")]
        );
        assert_eq!(parse_address_list(""), vec![]);
        assert_eq!(parse_address_list(",,, ;"), vec![]);
        // An unclosed group is closed; unclosed brackets and quotes end.
        assert_eq!(
            parse_address_list("g: a@b.test"),
            vec![group("g"), a(None, None, "a", "b.test"), Address::default()]
        );
        assert_eq!(
            parse_address_list("\"Open <a@b.test"),
            vec![a(None, None, "Open <a@b.test", MISSING_DOMAIN)]
        );
        assert_eq!(
            parse_address_list("X <a@b.test"),
            vec![a(Some("X"), None, "a", "b.test")]
        );
        // Encoded words stay for the client to decode.
        assert_eq!(
            parse_address_list("=?UTF-8?Q?J=C3=BCrgen?= <j@remote.test>"),
            vec![a(Some("=?UTF-8?Q?J=C3=BCrgen?="), None, "j", "remote.test")]
        );
    }

    #[test]
    fn deep_comments_and_long_lists_are_linear() {
        let deep = format!("{}x{} <a@b.test>", "(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(
            parse_address_list(&deep),
            vec![a(None, None, "a", "b.test")]
        );
        let many = "a@b.test, ".repeat(20_000);
        assert_eq!(parse_address_list(&many).len(), 20_000);
    }
}
