//! SEARCH keys (RFC 9051 §6.4.4) and ESEARCH return options (RFC 4731, 5182).

use super::{Cursor, PResult, ParseError};
use crate::sequence::SequenceSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
}

/// A search key. Dates are days since 1970-01-01.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    /// Any of the keys: a chain `OR a OR b c` is one `Or` of three.
    Or(Vec<SearchKey>),
    Not(Box<SearchKey>),
    Seq(SequenceSet),
    Uid(SequenceSet),
    Flag(&'static str, bool),
    Keyword(String, bool),
    New,
    Old,
    Recent,
    Header(String, String),
    Body(String),
    Text(String),
    Before(i64),
    On(i64),
    Since(i64),
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Larger(u64),
    /// MODSEQ (RFC 7162 §3.1.5): messages with a mod-sequence of at least this.
    ModSeq(u64),
    /// SAVEDBEFORE, SAVEDON, SAVEDSINCE (RFC 8514): by the day the
    /// message was saved into the mailbox.
    SavedBefore(i64),
    SavedOn(i64),
    SavedSince(i64),
    /// SAVEDATESUPPORTED: every message, as every mailbox keeps save dates.
    SaveDateSupported,
    /// EMAILID and THREADID (RFC 8474 §6).
    EmailId(String),
    ThreadId(String),
    /// OLDER n (RFC 5032): internal date more than n seconds ago.
    Older(u32),
    /// YOUNGER n (RFC 5032): internal date at most n seconds ago.
    Younger(u32),
    Smaller(u64),
}

type Parsed = (Option<Vec<SearchReturn>>, Option<String>, SearchKey);

/// `[RETURN (...)] [CHARSET x] key *(SP key)`.
pub(crate) fn parse_search(c: &mut Cursor) -> PResult<Parsed> {
    let ret = return_options(c, true)?;
    let mut charset = None;
    if c.eat_word("CHARSET ") {
        charset = Some(charset_name(c)?);
        c.sp()?;
    }
    let key = search_program(c)?;
    Ok((ret, charset, key))
}

/// `search-key *(SP search-key)`: what SEARCH, SORT and THREAD end with;
/// several keys are their AND.
fn search_program(c: &mut Cursor) -> PResult<SearchKey> {
    let mut keys = vec![key(c)?];
    while c.eat(b' ') {
        keys.push(key(c)?);
    }
    Ok(if keys.len() == 1 {
        keys.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(keys)
    })
}

/// A charset name, upper-cased.
fn charset_name(c: &mut Cursor) -> PResult<String> {
    Ok(String::from_utf8_lossy(&c.astring()?).to_ascii_uppercase())
}

/// A SORT key (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// One sort criterion: a key, possibly reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub key: SortKey,
    pub reverse: bool,
}

/// `algorithm charset search-key…` after `THREAD ` (RFC 5256 §4).
pub(crate) fn parse_thread(c: &mut Cursor) -> PResult<(String, String, SearchKey)> {
    let algorithm = c.atom()?.to_ascii_uppercase();
    c.sp()?;
    let charset = charset_name(c)?;
    c.sp()?;
    let key = search_program(c)?;
    Ok((algorithm, charset, key))
}

pub(crate) type ParsedSort = (
    Option<Vec<SearchReturn>>,
    Vec<SortCriterion>,
    String,
    SearchKey,
);

/// `[RETURN (…)] (criteria) charset search-key…` after `SORT ` (RFC 5256
/// §3, RFC 5267 ESORT).
pub(crate) fn parse_sort(c: &mut Cursor) -> PResult<ParsedSort> {
    let ret = return_options(c, false)?;
    c.expect(b'(', "'(' opening the sort criteria")?;
    let mut criteria = Vec::new();
    loop {
        let mut reverse = false;
        let mut word = c.atom()?.to_ascii_uppercase();
        if word == "REVERSE" {
            reverse = true;
            c.sp()?;
            word = c.atom()?.to_ascii_uppercase();
        }
        let key = match word.as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            _ => return Err(ParseError::new(format!("unknown SORT key {word}"))),
        };
        if criteria.len() == 16 {
            return Err(ParseError::new("more than 16 SORT criteria"));
        }
        criteria.push(SortCriterion { key, reverse });
        if c.eat(b')') {
            break;
        }
        c.sp()?;
    }
    c.sp()?;
    let charset = charset_name(c)?;
    c.sp()?;
    let key = search_program(c)?;
    Ok((ret, criteria, charset, key))
}

/// `RETURN (…) ` (RFC 4731 ESEARCH, RFC 5267 ESORT), if given; `save`:
/// whether SAVE (RFC 5182) is allowed.
fn return_options(c: &mut Cursor, save: bool) -> PResult<Option<Vec<SearchReturn>>> {
    if !c.eat_word("RETURN ") {
        return Ok(None);
    }
    c.expect(b'(', "'(' opening the return options")?;
    let mut options = Vec::new();
    if !c.eat(b')') {
        loop {
            let option = c.atom()?.to_ascii_uppercase();
            options.push(match option.as_str() {
                "MIN" => SearchReturn::Min,
                "MAX" => SearchReturn::Max,
                "ALL" => SearchReturn::All,
                "COUNT" => SearchReturn::Count,
                "SAVE" if save => SearchReturn::Save,
                _ => {
                    return Err(ParseError::new(format!("unknown return option {option}")));
                }
            });
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    c.sp()?;
    Ok(Some(options))
}

fn string(c: &mut Cursor) -> PResult<String> {
    c.sp()?;
    Ok(String::from_utf8_lossy(&c.astring()?).into_owned())
}

/// One search key. Input decides how deep keys nest, so nesting is bounded
/// and the common long forms cost no depth at all: a run of NOTs is read in
/// a loop (an even number cancels out), and an OR whose second key is again
/// an OR (`OR a OR b OR c d`, what clients send for "any of") is read in a
/// loop into one flat `Or`. What else nests (a parenthesised list, each key
/// of an OR but a chained OR) enters one level of the cursor's depth limit
/// ([`super::MAX_DEPTH`]); deeper is refused with BAD.
fn key(c: &mut Cursor) -> PResult<SearchKey> {
    let mut negations = 0usize;
    while c.eat_word("NOT ") {
        negations += 1;
    }
    let key = if c.eat_word("OR ") {
        or_chain(c)?
    } else {
        simple_key(c)?
    };
    Ok(if negations % 2 == 1 {
        SearchKey::Not(Box::new(key))
    } else {
        key
    })
}

/// A key one level down.
fn nested(c: &mut Cursor) -> PResult<SearchKey> {
    c.enter()?;
    let inner = key(c)?;
    c.leave();
    Ok(inner)
}

/// The keys of `OR a b` after the `OR `, with `b` = `OR …` read in a loop.
fn or_chain(c: &mut Cursor) -> PResult<SearchKey> {
    let mut any = Vec::new();
    loop {
        let first = nested(c)?;
        any.push(first);
        c.sp()?;
        if !c.eat_word("OR ") {
            any.push(nested(c)?);
            return Ok(SearchKey::Or(any));
        }
    }
}

fn simple_key(c: &mut Cursor) -> PResult<SearchKey> {
    if c.eat(b'(') {
        c.enter()?;
        let mut keys = vec![key(c)?];
        while c.eat(b' ') {
            keys.push(key(c)?);
        }
        c.expect(b')', "')' closing the search key list")?;
        c.leave();
        return Ok(if keys.len() == 1 {
            keys.pop().unwrap_or(SearchKey::All)
        } else {
            SearchKey::And(keys)
        });
    }
    if matches!(c.peek(), Some(b'0'..=b'9' | b'*' | b'$')) {
        return Ok(SearchKey::Seq(c.sequence_set()?));
    }
    let word = c.atom()?.to_ascii_uppercase();
    let header = |c: &mut Cursor, name: &str| Ok(SearchKey::Header(name.into(), string(c)?));
    let date = |c: &mut Cursor| {
        c.sp()?;
        c.date()
    };
    Ok(match word.as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => SearchKey::Flag("\\Answered", true),
        "DELETED" => SearchKey::Flag("\\Deleted", true),
        "DRAFT" => SearchKey::Flag("\\Draft", true),
        "FLAGGED" => SearchKey::Flag("\\Flagged", true),
        "SEEN" => SearchKey::Flag("\\Seen", true),
        "UNANSWERED" => SearchKey::Flag("\\Answered", false),
        "UNDELETED" => SearchKey::Flag("\\Deleted", false),
        "UNDRAFT" => SearchKey::Flag("\\Draft", false),
        "UNFLAGGED" => SearchKey::Flag("\\Flagged", false),
        "UNSEEN" => SearchKey::Flag("\\Seen", false),
        "KEYWORD" => {
            c.sp()?;
            SearchKey::Keyword(c.flag()?, true)
        }
        "UNKEYWORD" => {
            c.sp()?;
            SearchKey::Keyword(c.flag()?, false)
        }
        "NEW" => SearchKey::New,
        "OLD" => SearchKey::Old,
        "RECENT" => SearchKey::Recent,
        "BCC" => header(c, "Bcc")?,
        "CC" => header(c, "Cc")?,
        "FROM" => header(c, "From")?,
        "TO" => header(c, "To")?,
        "SUBJECT" => header(c, "Subject")?,
        "HEADER" => {
            let name = string(c)?;
            SearchKey::Header(name, string(c)?)
        }
        "BODY" => SearchKey::Body(string(c)?),
        "TEXT" => SearchKey::Text(string(c)?),
        "BEFORE" => SearchKey::Before(date(c)?),
        "ON" => SearchKey::On(date(c)?),
        "SINCE" => SearchKey::Since(date(c)?),
        "SENTBEFORE" => SearchKey::SentBefore(date(c)?),
        "SENTON" => SearchKey::SentOn(date(c)?),
        "SENTSINCE" => SearchKey::SentSince(date(c)?),
        "LARGER" => {
            c.sp()?;
            SearchKey::Larger(c.number64()?)
        }
        "SMALLER" => {
            c.sp()?;
            SearchKey::Smaller(c.number64()?)
        }
        "SAVEDBEFORE" => SearchKey::SavedBefore(date(c)?),
        "SAVEDON" => SearchKey::SavedOn(date(c)?),
        "SAVEDSINCE" => SearchKey::SavedSince(date(c)?),
        "SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
        "EMAILID" | "THREADID" => {
            c.sp()?;
            let id = c.atom()?;
            if id.len() > 255
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(ParseError::new(format!(
                    "{word} takes an object id (RFC 8474 §3)"
                )));
            }
            if word == "EMAILID" {
                SearchKey::EmailId(id.to_string())
            } else {
                SearchKey::ThreadId(id.to_string())
            }
        }
        "OLDER" => {
            c.sp()?;
            SearchKey::Older(c.nz_number()?)
        }
        "YOUNGER" => {
            c.sp()?;
            SearchKey::Younger(c.nz_number()?)
        }
        "MODSEQ" => {
            // MODSEQ ["/flags/\\Seen" priv|shared|all] n (RFC 7162 §3.1.5):
            // every flag of a message shares its one mod-sequence here, so
            // the entry named does not narrow anything.
            c.sp()?;
            if c.peek() == Some(b'"') {
                c.quoted()?;
                c.sp()?;
                let kind = c.atom()?.to_ascii_lowercase();
                if !matches!(kind.as_str(), "priv" | "shared" | "all") {
                    return Err(ParseError::new(format!(
                        "MODSEQ entry type {kind} is not priv, shared or all"
                    )));
                }
                c.sp()?;
            }
            let n = c.number64()?;
            if n > i64::MAX as u64 {
                return Err(ParseError::new(format!("{n} is not a mod-sequence")));
            }
            SearchKey::ModSeq(n)
        }
        "UID" => {
            c.sp()?;
            SearchKey::Uid(c.sequence_set()?)
        }
        "NOT" | "OR" => {
            // `NOT ` and `OR ` are read by `key`; here only without a space.
            return Err(c.error(&format!("a search key after {word}")));
        }
        _ => return Err(ParseError::new(format!("unknown search key {word}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(s: &str) -> Parsed {
        parse_search(&mut Cursor::new(s.as_bytes())).unwrap()
    }

    #[test]
    fn rfc_examples() {
        // RFC 9051 §6.4.4
        let (_, _, key) = search("FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
        match key {
            SearchKey::And(keys) => {
                assert_eq!(keys.len(), 3);
                assert_eq!(keys[0], SearchKey::Flag("\\Flagged", true));
                assert!(matches!(keys[2], SearchKey::Not(_)));
            }
            other => panic!("{other:?}"),
        }
        let (_, charset, key) = search("CHARSET UTF-8 TEXT {4}\r\nXXXX");
        assert_eq!(charset.as_deref(), Some("UTF-8"));
        assert_eq!(key, SearchKey::Text("XXXX".into()));
        let (ret, _, _) = search("RETURN (MIN COUNT) UNSEEN");
        assert_eq!(ret, Some(vec![SearchReturn::Min, SearchReturn::Count]));
        let (_, _, key) = search("OR (SEEN DRAFT) 1:3");
        assert!(matches!(key, SearchKey::Or(ref any) if any.len() == 2));
        let (_, _, key) = search("$");
        assert_eq!(key, SearchKey::Seq(SequenceSet::Saved));
        assert!(parse_search(&mut Cursor::new(b"FROBNICATE")).is_err());
        assert!(parse_search(&mut Cursor::new(b"SINCE 31-Foo-2020")).is_err());
    }

    #[test]
    fn long_chains_are_flat_and_deep_nesting_is_refused() {
        // OR a OR b … OR y z: one Or of all of them.
        let chain = "OR SEEN ".repeat(5000) + "DRAFT";
        let (_, _, key) = search(&chain);
        assert!(matches!(key, SearchKey::Or(ref any) if any.len() == 5001));
        // A run of NOTs: an even number cancels out.
        let (_, _, key) = search(&("NOT ".repeat(5000) + "SEEN"));
        assert_eq!(key, SearchKey::Flag("\\Seen", true));
        let (_, _, key) = search(&("not ".repeat(5001) + "SEEN"));
        assert_eq!(
            key,
            SearchKey::Not(Box::new(SearchKey::Flag("\\Seen", true)))
        );
        // NOT and OR without their keys.
        assert!(parse_search(&mut Cursor::new(b"NOT")).is_err());
        assert!(parse_search(&mut Cursor::new(b"OR SEEN")).is_err());
        // What nests for real is bounded.
        let deep = "(".repeat(5000) + "ALL" + &")".repeat(5000);
        let error = parse_search(&mut Cursor::new(deep.as_bytes())).unwrap_err();
        assert!(error.0.contains("nested"), "{error:?}");
        let left = "OR ".repeat(5000) + "SEEN" + &" SEEN".repeat(5000);
        assert!(parse_search(&mut Cursor::new(left.as_bytes())).is_err());
        let alternating = "OR SEEN NOT ".repeat(5000) + "SEEN";
        assert!(parse_search(&mut Cursor::new(alternating.as_bytes())).is_err());
        let within = "OR SEEN NOT ".repeat(20) + "SEEN";
        assert!(parse_search(&mut Cursor::new(within.as_bytes())).is_ok());
    }
}
