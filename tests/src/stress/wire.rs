//! IMAP responses as a client reads them (RFC 9051 §7, §9): where one
//! response ends in a byte stream (its line and every literal it carries),
//! and the response parsed into a small tree. Pure: bytes in, values out.

use std::fmt;

/// A value of a response: atom, string (quoted or literal), list or NIL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Atom(String),
    Str(Vec<u8>),
    List(Vec<Value>),
    Nil,
}

impl Value {
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<u64> {
        self.as_atom().and_then(|a| a.parse().ok())
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// Text of a string or atom; `None` for NIL and lists.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Atom(a) => Some(a.clone()),
            Value::Str(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        }
    }

    /// A canonical form (quoted and literal strings alike), for hashing.
    pub fn canonical(&self, out: &mut Vec<u8>) {
        match self {
            Value::Atom(a) => out.extend_from_slice(a.as_bytes()),
            Value::Str(bytes) => {
                out.extend_from_slice(format!("{{{}}}", bytes.len()).as_bytes());
                out.extend_from_slice(bytes);
            }
            Value::Nil => out.extend_from_slice(b"NIL"),
            Value::List(items) => {
                out.push(b'(');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    item.canonical(out);
                }
                out.push(b')');
            }
        }
    }
}

/// The status of a tagged response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        })
    }
}

/// A response code (`[NAME args]`, RFC 9051 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub name: String,
    pub args: String,
}

impl Code {
    /// `[UIDVALIDITY n]`, `[UIDNEXT n]`: the number.
    pub fn number(&self) -> Option<u32> {
        self.args.trim().parse().ok()
    }

    /// `[APPENDUID validity uid]` (RFC 4315 §3).
    pub fn append_uid(&self) -> Option<(u32, u32)> {
        let mut words = self.args.split_whitespace();
        let validity = words.next()?.parse().ok()?;
        let uid = words.next()?.parse().ok()?;
        Some((validity, uid))
    }

    /// `[COPYUID validity source-set target-set]` (RFC 4315 §3): the
    /// validity and the (source, target) pairs in order.
    pub fn copy_uid(&self) -> Option<(u32, Vec<(u32, u32)>)> {
        let mut words = self.args.split_whitespace();
        let validity = words.next()?.parse().ok()?;
        let from = uid_set(words.next()?)?;
        let to = uid_set(words.next()?)?;
        if from.len() != to.len() {
            return None;
        }
        Some((validity, from.into_iter().zip(to).collect()))
    }
}

/// Most numbers a uid-set from the server may expand to (bounds a hostile range).
const MAX_SET: u64 = 100_000;

/// A uid-set (`1:3,7`) as its numbers in the order written.
pub fn uid_set(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (a, b) = match part.split_once(':') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        let (low, high) = (a.min(b), a.max(b));
        if out.len() as u64 + u64::from(high - low) + 1 > MAX_SET {
            return None;
        }
        out.extend(low..=high);
    }
    Some(out)
}

/// An untagged response (`* …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagged {
    /// `* OK/NO/BAD/BYE/PREAUTH [code] text`.
    State {
        status: String,
        code: Option<Code>,
        text: String,
    },
    Exists(u32),
    Expunge(u32),
    Recent(u32),
    /// `* n FETCH (name value …)`; names upper-cased.
    Fetch {
        seq: u32,
        items: Vec<(String, Value)>,
    },
    Flags(Vec<String>),
    /// `* SEARCH n …`.
    Search(Vec<u32>),
    /// `* ESEARCH (TAG "t") [UID] ALL set COUNT n …` (RFC 4731).
    Esearch {
        uid: bool,
        all: Vec<u32>,
    },
    /// `* STATUS mailbox (NAME n …)`.
    Status {
        mailbox: String,
        items: Vec<(String, u64)>,
    },
    /// `* LIST (attributes) delimiter name`.
    List {
        attributes: Vec<String>,
        name: String,
    },
    /// `* VANISHED [(EARLIER)] uid-set` (RFC 7162 §3.2.10).
    Vanished {
        earlier: bool,
        uids: Vec<u32>,
    },
    /// CAPABILITY, ENABLED, ID and the like: not modelled.
    Other(String),
}

/// One server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Continuation(String),
    Tagged {
        tag: String,
        status: Status,
        code: Option<Code>,
        text: String,
    },
    Untagged(Untagged),
}

/// The length of the first whole response in `buf` (its line and the
/// literals it announces, each followed by the rest of the line), or
/// `None` when more bytes are needed.
pub fn complete_len(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let newline = at + buf[at..].iter().position(|b| *b == b'\n')?;
        let line = &buf[at..newline + 1];
        match literal_len(line) {
            Some(n) => {
                let next = (newline + 1).checked_add(n)?;
                if next > buf.len() {
                    return None;
                }
                at = next;
            }
            None => return Some(newline + 1),
        }
    }
}

/// `{n}` or `{n+}` (or literal8 `~{n}`) at the end of a line: n.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|b| *b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Why a response could not be parsed (the checker reports it as a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

/// Parses one whole response (as [`complete_len`] delimits it).
pub fn parse(raw: &[u8]) -> Result<Response, ParseError> {
    let mut c = Cursor { bytes: raw, at: 0 };
    if c.eat(b"+") {
        c.eat(b" ");
        return Ok(Response::Continuation(c.rest_of_line()));
    }
    let tag = c.word();
    c.eat(b" ");
    if tag == "*" {
        return parse_untagged(&mut c).map(Response::Untagged);
    }
    let status = match c.word().to_ascii_uppercase().as_str() {
        "OK" => Status::Ok,
        "NO" => Status::No,
        "BAD" => Status::Bad,
        other => return Err(ParseError(format!("tagged response with status {other:?}"))),
    };
    c.eat(b" ");
    let (code, text) = code_and_text(&c.rest_of_line());
    Ok(Response::Tagged {
        tag,
        status,
        code,
        text,
    })
}

/// `[NAME args] text` → the code and the text after it.
pub fn code_and_text(rest: &str) -> (Option<Code>, String) {
    let Some(inner) = rest.strip_prefix('[') else {
        return (None, rest.to_string());
    };
    let Some(close) = inner.find(']') else {
        return (None, rest.to_string());
    };
    let code = &inner[..close];
    let (name, args) = code.split_once(' ').unwrap_or((code, ""));
    (
        Some(Code {
            name: name.to_ascii_uppercase(),
            args: args.to_string(),
        }),
        inner[close + 1..].trim_start().to_string(),
    )
}

fn parse_untagged(c: &mut Cursor<'_>) -> Result<Untagged, ParseError> {
    let first = c.word();
    let upper = first.to_ascii_uppercase();
    if let Ok(n) = first.parse::<u32>() {
        c.eat(b" ");
        let kind = c.word().to_ascii_uppercase();
        return Ok(match kind.as_str() {
            "EXISTS" => Untagged::Exists(n),
            "EXPUNGE" => Untagged::Expunge(n),
            "RECENT" => Untagged::Recent(n),
            "FETCH" => {
                c.eat(b" ");
                let Value::List(list) = c.value()? else {
                    return Err(ParseError("FETCH without a list".into()));
                };
                let mut items = Vec::new();
                let mut it = list.into_iter();
                while let Some(name) = it.next() {
                    let Value::Atom(name) = name else {
                        return Err(ParseError("FETCH item name is not an atom".into()));
                    };
                    let value = it
                        .next()
                        .ok_or_else(|| ParseError(format!("FETCH item {name} has no value")))?;
                    items.push((name.to_ascii_uppercase(), value));
                }
                Untagged::Fetch { seq: n, items }
            }
            other => Untagged::Other(format!("{n} {other}")),
        });
    }
    c.eat(b" ");
    Ok(match upper.as_str() {
        "OK" | "NO" | "BAD" | "BYE" | "PREAUTH" => {
            let (code, text) = code_and_text(&c.rest_of_line());
            Untagged::State {
                status: upper,
                code,
                text,
            }
        }
        "FLAGS" => Untagged::Flags(atoms(&c.value()?)),
        "SEARCH" => Untagged::Search(
            c.rest_of_line()
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect(),
        ),
        "ESEARCH" => {
            let mut uid = false;
            let mut all = Vec::new();
            let values = c.values()?;
            let mut it = values.iter().peekable();
            while let Some(v) = it.next() {
                match v.as_atom().map(str::to_ascii_uppercase).as_deref() {
                    Some("UID") => uid = true,
                    Some("ALL") => {
                        if let Some(set) = it.next().and_then(Value::as_atom) {
                            all = uid_set(set).unwrap_or_default();
                        }
                    }
                    // MIN, MAX, COUNT and their numbers.
                    Some(_) if it.peek().and_then(|v| v.as_number()).is_some() => {
                        it.next();
                    }
                    Some(_) => {}
                    None => {}
                }
            }
            Untagged::Esearch { uid, all }
        }
        "STATUS" => {
            let mailbox = c.value()?.as_text().unwrap_or_default();
            c.eat(b" ");
            let list = c.value()?;
            let mut items = Vec::new();
            if let Some(list) = list.as_list() {
                for pair in list.chunks(2) {
                    if let [name, value] = pair
                        && let (Some(name), Some(value)) = (name.as_atom(), value.as_number())
                    {
                        items.push((name.to_ascii_uppercase(), value));
                    }
                }
            }
            Untagged::Status { mailbox, items }
        }
        "LIST" | "LSUB" => {
            let attributes = atoms(&c.value()?);
            c.eat(b" ");
            let _delimiter = c.value()?;
            c.eat(b" ");
            let name = c.value()?.as_text().unwrap_or_default();
            Untagged::List { attributes, name }
        }
        "VANISHED" => {
            let mut earlier = false;
            let mut value = c.value()?;
            if let Value::List(_) = value {
                earlier = true;
                c.eat(b" ");
                value = c.value()?;
            }
            let uids = value.as_atom().and_then(uid_set).unwrap_or_default();
            Untagged::Vanished { earlier, uids }
        }
        _ => Untagged::Other(format!("{first} {}", c.rest_of_line())),
    })
}

fn atoms(value: &Value) -> Vec<String> {
    value
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_text)
        .collect()
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// Nesting a response may have before it is refused (ours are shallow).
const MAX_DEPTH: usize = 64;

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, what: &[u8]) -> bool {
        if self.bytes[self.at..].starts_with(what) {
            self.at += what.len();
            true
        } else {
            false
        }
    }

    fn at_end(&self) -> bool {
        matches!(self.peek(), None | Some(b'\r') | Some(b'\n'))
    }

    /// Up to the next space or end of line.
    fn word(&mut self) -> String {
        let start = self.at;
        while let Some(b) = self.peek() {
            if b == b' ' || b == b'\r' || b == b'\n' {
                break;
            }
            self.at += 1;
        }
        String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned()
    }

    fn rest_of_line(&mut self) -> String {
        let start = self.at;
        while !self.at_end() {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned()
    }

    /// Values separated by spaces to the end of the line.
    fn values(&mut self) -> Result<Vec<Value>, ParseError> {
        let mut out = Vec::new();
        loop {
            while self.eat(b" ") {}
            if self.at_end() {
                return Ok(out);
            }
            out.push(self.value()?);
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError("response nested too deeply".into()));
        }
        match self.peek() {
            Some(b'(') => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    while self.eat(b" ") {}
                    match self.peek() {
                        Some(b')') => {
                            self.at += 1;
                            return Ok(Value::List(items));
                        }
                        None | Some(b'\r') | Some(b'\n') => {
                            return Err(ParseError("list not closed".into()));
                        }
                        _ => items.push(self.value_at(depth + 1)?),
                    }
                }
            }
            Some(b'"') => {
                self.at += 1;
                let mut out = Vec::new();
                loop {
                    match self.peek() {
                        None | Some(b'\r') | Some(b'\n') => {
                            return Err(ParseError("quoted string not closed".into()));
                        }
                        Some(b'"') => {
                            self.at += 1;
                            return Ok(Value::Str(out));
                        }
                        Some(b'\\') => {
                            self.at += 1;
                            if let Some(b) = self.peek() {
                                out.push(b);
                                self.at += 1;
                            }
                        }
                        Some(b) => {
                            out.push(b);
                            self.at += 1;
                        }
                    }
                }
            }
            Some(b'{') | Some(b'~') => {
                self.eat(b"~");
                let close = self.bytes[self.at..]
                    .iter()
                    .position(|b| *b == b'}')
                    .ok_or_else(|| ParseError("literal length not closed".into()))?;
                let digits = &self.bytes[self.at + 1..self.at + close];
                let digits = digits.strip_suffix(b"+").unwrap_or(digits);
                let n: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| ParseError("bad literal length".into()))?;
                self.at += close + 1;
                self.eat(b"\r");
                if !self.eat(b"\n") {
                    return Err(ParseError("literal length not followed by CRLF".into()));
                }
                let end = self
                    .at
                    .checked_add(n)
                    .filter(|end| *end <= self.bytes.len())
                    .ok_or_else(|| ParseError("literal longer than the response".into()))?;
                let data = self.bytes[self.at..end].to_vec();
                self.at = end;
                Ok(Value::Str(data))
            }
            None | Some(b'\r') | Some(b'\n') => Err(ParseError("value expected".into())),
            Some(_) => {
                // An atom; `[…]` inside it (BODY[HEADER.FIELDS (A B)]) is
                // taken whole, spaces and parentheses included.
                let start = self.at;
                let mut brackets = 0usize;
                while let Some(b) = self.peek() {
                    match b {
                        b'[' => brackets += 1,
                        b']' if brackets > 0 => brackets -= 1,
                        b'\r' | b'\n' => break,
                        b' ' | b'(' | b')' if brackets == 0 => break,
                        _ => {}
                    }
                    self.at += 1;
                }
                let atom = String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned();
                if atom.eq_ignore_ascii_case("NIL") {
                    Ok(Value::Nil)
                } else {
                    Ok(Value::Atom(atom))
                }
            }
        }
    }
}

/// The value of a FETCH item (`BODY[]` as the server names it), if present.
pub fn item<'a>(items: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    items.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
