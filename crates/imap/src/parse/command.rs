//! Commands of RFC 9051 / RFC 3501 and the extensions Pillarbox advertises.

use super::search::{
    SearchKey, SearchReturn, SortCriterion, parse_search, parse_sort, parse_thread,
};
use super::{Cursor, FetchAttr, PResult, ParseError};
use crate::parse::fetch::parse_fetch_attrs;
use crate::sequence::SequenceSet;

/// One tagged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub tag: String,
    pub command: Command,
}

/// STATUS data items (RFC 9051 §6.3.11, RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    Recent,
    HighestModSeq,
    /// RFC 9208 §4.3: octets that EXPUNGE would free.
    DeletedStorage,
    /// RFC 8474 §4.
    MailboxId,
}

/// Parts in one CATENATE, at most.
pub const MAX_CATENATE_PARTS: usize = 64;

/// Patterns in one LIST (RFC 5258 allows several), at most.
pub const MAX_LIST_PATTERNS: usize = 64;

/// LIST selection options (RFC 5258).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSelect {
    pub subscribed: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// LIST return options (RFC 5258, RFC 5819, RFC 6154).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<StatusItem>>,
}

/// SELECT's `QRESYNC (uidvalidity modseq [known-uids [seq-match]])`
/// (RFC 7162 §3.2.5). The sequence-match data only helps a server that
/// forgets expunges; this one keeps them, so it is read and not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    pub uid_validity: u32,
    pub modseq: u64,
    pub known_uids: Option<SequenceSet>,
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    /// Unix seconds.
    pub date: Option<i64>,
    pub message: Vec<u8>,
    /// Sent as `UTF8 (~{n}…)` (RFC 6855 §4): a message whose header may
    /// hold UTF-8 (RFC 6532).
    pub utf8: bool,
    /// CATENATE (RFC 4469): the message is made of these parts (and
    /// `message` is empty).
    pub catenate: Vec<CatPart>,
}

/// One part of a CATENATE: text sent with the command, or an IMAP URL
/// naming a message or part already stored (RFC 4469 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    Text(Vec<u8>),
    Url(String),
}

/// How STORE combines flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Replace,
    Add,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    /// UNAUTHENTICATE (RFC 8437).
    Unauthenticate,
    Logout,
    StartTls,
    /// COMPRESS (RFC 4978) with the mechanism named, upper-cased.
    Compress(String),
    /// GETMETADATA (RFC 5464 §4.2); entry names as sent.
    GetMetadata {
        mailbox: Vec<u8>,
        entries: Vec<Vec<u8>>,
        max_size: Option<u32>,
        depth: super::MetadataDepth,
    },
    /// SETMETADATA (RFC 5464 §4.3); `None` removes the entry.
    SetMetadata {
        mailbox: Vec<u8>,
        entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    },
    Authenticate {
        mechanism: String,
        /// SASL-IR initial response (base64, `=` for empty).
        initial: Option<String>,
    },
    Login {
        user: String,
        password: String,
    },
    Enable(Vec<String>),
    Select {
        mailbox: Vec<u8>,
        read_only: bool,
        /// `(CONDSTORE)` (RFC 7162 §3.1.8).
        condstore: bool,
        /// `(QRESYNC (…))` (RFC 7162 §3.2.5).
        qresync: Option<QresyncParams>,
    },
    Create {
        mailbox: Vec<u8>,
        /// `(USE (\\Sent …))` (RFC 6154 §3, CREATE-SPECIAL-USE).
        special_use: Vec<String>,
    },
    /// GETQUOTA root (RFC 9208 §4.2).
    GetQuota(Vec<u8>),
    /// GETQUOTAROOT mailbox (RFC 9208 §4.3).
    GetQuotaRoot(Vec<u8>),
    /// SETQUOTA: parsed, always refused (quotas are the operator's).
    SetQuota,
    Delete(Vec<u8>),
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    List {
        reference: Vec<u8>,
        patterns: Vec<Vec<u8>>,
        select: ListSelect,
        ret: ListReturn,
        /// Whether any LIST-EXTENDED syntax was used.
        extended: bool,
    },
    Lsub {
        reference: Vec<u8>,
        pattern: Vec<u8>,
    },
    Namespace,
    Status {
        mailbox: Vec<u8>,
        items: Vec<StatusItem>,
    },
    /// APPEND, one message or several (MULTIAPPEND, RFC 3502).
    Append {
        mailbox: Vec<u8>,
        messages: Vec<AppendMessage>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    Expunge {
        /// UID EXPUNGE (RFC 4315): only these UIDs.
        uids: Option<SequenceSet>,
    },
    Search {
        uid: bool,
        /// `RETURN (...)` given (ESEARCH); `None` = plain SEARCH.
        ret: Option<Vec<SearchReturn>>,
        charset: Option<String>,
        key: SearchKey,
    },
    /// THREAD and UID THREAD (RFC 5256 §4); the algorithm upper-cased.
    Thread {
        uid: bool,
        algorithm: String,
        charset: String,
        key: SearchKey,
    },
    /// SORT and UID SORT (RFC 5256), with ESORT's RETURN (RFC 5267).
    Sort {
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        criteria: Vec<SortCriterion>,
        charset: String,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        attrs: Vec<FetchAttr>,
        /// `(CHANGEDSINCE n)` (RFC 7162 §3.1.4.1).
        changed_since: Option<u64>,
        /// `VANISHED` with CHANGEDSINCE in UID FETCH (RFC 7162 §3.2.6).
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        op: StoreOp,
        silent: bool,
        flags: Vec<String>,
        /// `(UNCHANGEDSINCE n)` (RFC 7162 §3.1.3).
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: Vec<u8>,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: Vec<u8>,
    },
    Id(Vec<(String, Option<String>)>),
}

impl Command {
    /// The command's name as the client spelled it, for logs and answers.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Sort { .. } => "SORT",
            Command::Thread { .. } => "THREAD",
            Command::Unauthenticate => "UNAUTHENTICATE",
            Command::Logout => "LOGOUT",
            Command::StartTls => "STARTTLS",
            Command::Compress(_) => "COMPRESS",
            Command::GetMetadata { .. } => "GETMETADATA",
            Command::SetMetadata { .. } => "SETMETADATA",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::Login { .. } => "LOGIN",
            Command::Enable(_) => "ENABLE",
            Command::Select {
                read_only: false, ..
            } => "SELECT",
            Command::Select {
                read_only: true, ..
            } => "EXAMINE",
            Command::Create { .. } => "CREATE",
            Command::GetQuota(_) => "GETQUOTA",
            Command::GetQuotaRoot(_) => "GETQUOTAROOT",
            Command::SetQuota => "SETQUOTA",
            Command::Delete(_) => "DELETE",
            Command::Rename { .. } => "RENAME",
            Command::Subscribe(_) => "SUBSCRIBE",
            Command::Unsubscribe(_) => "UNSUBSCRIBE",
            Command::List { .. } => "LIST",
            Command::Lsub { .. } => "LSUB",
            Command::Namespace => "NAMESPACE",
            Command::Status { .. } => "STATUS",
            Command::Append { .. } => "APPEND",
            Command::Idle => "IDLE",
            Command::Check => "CHECK",
            Command::Close => "CLOSE",
            Command::Unselect => "UNSELECT",
            Command::Expunge { .. } => "EXPUNGE",
            Command::Search { .. } => "SEARCH",
            Command::Fetch { .. } => "FETCH",
            Command::Store { .. } => "STORE",
            Command::Copy { .. } => "COPY",
            Command::Move { .. } => "MOVE",
            Command::Id(_) => "ID",
        }
    }
}

/// Reads the tag of a command line, if it has a valid one (for answering a
/// command that could not be parsed).
pub fn parse_tag(line: &[u8]) -> Option<String> {
    let mut c = Cursor::new(line);
    let tag = tag(&mut c).ok()?;
    Some(tag.to_string())
}

fn tag<'a>(c: &mut Cursor<'a>) -> PResult<&'a str> {
    let tag = c
        .astring_atom()
        .map_err(|_| ParseError::new("missing tag"))?;
    if tag.contains('+') {
        return Err(ParseError::new("a tag cannot contain '+'"));
    }
    Ok(tag)
}

/// Parses one complete command (literals inline).
pub fn parse_request(input: &[u8]) -> Result<Request, (Option<String>, ParseError)> {
    let mut c = Cursor::new(input);
    let tag = match tag(&mut c) {
        Ok(tag) => tag.to_string(),
        Err(e) => return Err((None, e)),
    };
    let result = (|| {
        c.sp()?;
        let command = command(&mut c)?;
        c.end()?;
        Ok(command)
    })();
    match result {
        Ok(command) => Ok(Request { tag, command }),
        Err(e) => Err((Some(tag), e)),
    }
}

fn mailbox(c: &mut Cursor) -> PResult<Vec<u8>> {
    c.astring()
}

fn text(c: &mut Cursor, what: &str) -> PResult<String> {
    String::from_utf8(c.astring()?).map_err(|_| ParseError::new(format!("{what} is not UTF-8")))
}

fn command(c: &mut Cursor) -> PResult<Command> {
    let name = c.atom()?.to_ascii_uppercase();
    let command = match name.as_str() {
        "CAPABILITY" => Command::Capability,
        "NOOP" => Command::Noop,
        "LOGOUT" => Command::Logout,
        "UNAUTHENTICATE" => Command::Unauthenticate,
        "STARTTLS" => Command::StartTls,
        "NAMESPACE" => Command::Namespace,
        "IDLE" => Command::Idle,
        "CHECK" => Command::Check,
        "CLOSE" => Command::Close,
        "UNSELECT" => Command::Unselect,
        "EXPUNGE" => Command::Expunge { uids: None },
        "GETMETADATA" => super::metadata::getmetadata(c)?,
        "SETMETADATA" => super::metadata::setmetadata(c)?,
        "COMPRESS" => {
            c.sp()?;
            Command::Compress(c.atom()?.to_ascii_uppercase())
        }
        "AUTHENTICATE" => {
            c.sp()?;
            let mechanism = c.atom()?.to_ascii_uppercase();
            let initial = if c.eat(b' ') {
                let ir = c.astring_atom()?;
                Some(ir.to_string())
            } else {
                None
            };
            Command::Authenticate { mechanism, initial }
        }
        "LOGIN" => {
            c.sp()?;
            let user = text(c, "the user name")?;
            c.sp()?;
            let password = text(c, "the password")?;
            Command::Login { user, password }
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while c.eat(b' ') {
                caps.push(c.atom()?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return Err(ParseError::new("ENABLE needs at least one capability"));
            }
            Command::Enable(caps)
        }
        "SELECT" | "EXAMINE" => {
            c.sp()?;
            let mailbox = mailbox(c)?;
            // RFC 4466 select parameters: CONDSTORE and QRESYNC (RFC 7162).
            let mut condstore = false;
            let mut qresync = None;
            if c.eat(b' ') {
                c.expect(b'(', "'(' opening the select parameters")?;
                loop {
                    let param = c.atom()?.to_ascii_uppercase();
                    match param.as_str() {
                        "CONDSTORE" => condstore = true,
                        "QRESYNC" => {
                            c.sp()?;
                            qresync = Some(qresync_params(c)?);
                        }
                        _ => {
                            return Err(ParseError::new(format!(
                                "{name} parameter {param} is not supported: only CONDSTORE and QRESYNC are"
                            )));
                        }
                    }
                    if c.eat(b')') {
                        break;
                    }
                    c.sp()?;
                }
            }
            Command::Select {
                mailbox,
                read_only: name == "EXAMINE",
                condstore,
                qresync,
            }
        }
        "CREATE" => {
            c.sp()?;
            let mailbox = mailbox(c)?;
            // RFC 4466 create parameters: USE (RFC 6154 §3).
            let mut special_use = Vec::new();
            if c.eat(b' ') {
                c.expect(b'(', "'(' opening the CREATE parameters")?;
                loop {
                    let param = c.atom()?.to_ascii_uppercase();
                    if param != "USE" {
                        return Err(ParseError::new(format!(
                            "CREATE parameter {param} is not supported: only USE is"
                        )));
                    }
                    c.sp()?;
                    special_use.extend(c.flag_list()?);
                    if c.eat(b')') {
                        break;
                    }
                    c.sp()?;
                }
            }
            Command::Create {
                mailbox,
                special_use,
            }
        }
        "GETQUOTA" => {
            c.sp()?;
            Command::GetQuota(c.astring()?)
        }
        "GETQUOTAROOT" => {
            c.sp()?;
            Command::GetQuotaRoot(mailbox(c)?)
        }
        "SETQUOTA" => {
            // SETQUOTA root (resource limit …): read whole, then refused.
            c.sp()?;
            c.astring()?;
            c.sp()?;
            skip_parenthesized(c)?;
            Command::SetQuota
        }
        "DELETE" => {
            c.sp()?;
            Command::Delete(mailbox(c)?)
        }
        "RENAME" => {
            c.sp()?;
            let from = mailbox(c)?;
            c.sp()?;
            let to = mailbox(c)?;
            Command::Rename { from, to }
        }
        "SUBSCRIBE" => {
            c.sp()?;
            Command::Subscribe(mailbox(c)?)
        }
        "UNSUBSCRIBE" => {
            c.sp()?;
            Command::Unsubscribe(mailbox(c)?)
        }
        "LIST" => list(c)?,
        "LSUB" => {
            c.sp()?;
            let reference = mailbox(c)?;
            c.sp()?;
            let pattern = c.list_mailbox()?;
            Command::Lsub { reference, pattern }
        }
        "STATUS" => {
            c.sp()?;
            let mailbox = mailbox(c)?;
            c.sp()?;
            Command::Status {
                mailbox,
                items: status_items(c)?,
            }
        }
        "APPEND" => append(c)?,
        "SEARCH" => search(c, false)?,
        "SORT" => sort(c, false)?,
        "THREAD" => thread(c, false)?,
        "FETCH" => fetch(c, false)?,
        "STORE" => store(c, false)?,
        "COPY" => copy(c, false, false)?,
        "MOVE" => copy(c, false, true)?,
        "UID" => {
            c.sp()?;
            let sub = c.atom()?.to_ascii_uppercase();
            match sub.as_str() {
                "SEARCH" => search(c, true)?,
                "SORT" => sort(c, true)?,
                "THREAD" => thread(c, true)?,
                "FETCH" => fetch(c, true)?,
                "STORE" => store(c, true)?,
                "COPY" => copy(c, true, false)?,
                "MOVE" => copy(c, true, true)?,
                "EXPUNGE" => {
                    c.sp()?;
                    Command::Expunge {
                        uids: Some(c.sequence_set()?),
                    }
                }
                _ => {
                    return Err(ParseError::new(format!(
                        "UID {sub} is not a command: use UID FETCH, STORE, SEARCH, SORT, THREAD, COPY, MOVE or EXPUNGE"
                    )));
                }
            }
        }
        "ID" => {
            c.sp()?;
            Command::Id(id_params(c)?)
        }
        _ => {
            return Err(ParseError::new(format!("unknown command {name}")));
        }
    };
    Ok(command)
}

fn skip_parenthesized(c: &mut Cursor) -> PResult<()> {
    c.expect(b'(', "'('")?;
    c.enter()?;
    loop {
        match c.peek() {
            Some(b')') => {
                c.eat(b')');
                c.leave();
                return Ok(());
            }
            Some(b'(') => skip_parenthesized(c)?,
            Some(b' ') => {
                c.eat(b' ');
            }
            Some(b'"') | Some(b'{') => {
                c.string()?;
            }
            Some(b'\r') | Some(b'\n') | None => return Err(c.error("')'")),
            _ => {
                c.list_mailbox()
                    .or_else(|_| c.flag().map(|f| f.into_bytes()))?;
            }
        }
    }
}

fn status_items(c: &mut Cursor) -> PResult<Vec<StatusItem>> {
    c.expect(b'(', "'(' opening the status items")?;
    let mut items = Vec::new();
    loop {
        let item = c.atom()?.to_ascii_uppercase();
        items.push(match item.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "DELETED" => StatusItem::Deleted,
            "SIZE" => StatusItem::Size,
            "RECENT" => StatusItem::Recent,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "DELETED-STORAGE" => StatusItem::DeletedStorage,
            "MAILBOXID" => StatusItem::MailboxId,
            _ => return Err(ParseError::new(format!("unknown STATUS item {item}"))),
        });
        if c.eat(b')') {
            return Ok(items);
        }
        c.sp()?;
    }
}

fn list(c: &mut Cursor) -> PResult<Command> {
    c.sp()?;
    let mut select = ListSelect::default();
    let mut extended = false;
    if c.eat(b'(') {
        extended = true;
        if !c.eat(b')') {
            loop {
                let option = c.atom()?.to_ascii_uppercase();
                match option.as_str() {
                    "SUBSCRIBED" => select.subscribed = true,
                    "RECURSIVEMATCH" => select.recursive_match = true,
                    "SPECIAL-USE" => select.special_use = true,
                    "REMOTE" => {}
                    _ => {
                        return Err(ParseError::new(format!(
                            "unknown LIST selection option {option}"
                        )));
                    }
                }
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
            }
        }
        if select.recursive_match && !(select.subscribed || select.special_use) {
            return Err(ParseError::new(
                "RECURSIVEMATCH needs another selection option (RFC 5258)",
            ));
        }
        c.sp()?;
    }
    let reference = mailbox(c)?;
    c.sp()?;
    let mut patterns = Vec::new();
    if c.eat(b'(') {
        extended = true;
        loop {
            patterns.push(c.list_mailbox()?);
            // Every name is matched against every pattern.
            if patterns.len() > MAX_LIST_PATTERNS {
                return Err(ParseError::new(format!(
                    "more than {MAX_LIST_PATTERNS} patterns in one LIST"
                )));
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    } else {
        patterns.push(c.list_mailbox()?);
    }
    let mut ret = ListReturn::default();
    if c.eat(b' ') {
        if !c.eat_word("RETURN") {
            return Err(c.error("RETURN"));
        }
        extended = true;
        c.sp()?;
        c.expect(b'(', "'(' opening the return options")?;
        if !c.eat(b')') {
            loop {
                let option = c.atom()?.to_ascii_uppercase();
                match option.as_str() {
                    "SUBSCRIBED" => ret.subscribed = true,
                    "CHILDREN" => ret.children = true,
                    "SPECIAL-USE" => ret.special_use = true,
                    "STATUS" => {
                        c.sp()?;
                        ret.status = Some(status_items(c)?);
                    }
                    _ => {
                        return Err(ParseError::new(format!(
                            "unknown LIST return option {option}"
                        )));
                    }
                }
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
            }
        }
    }
    Ok(Command::List {
        reference,
        patterns,
        select,
        ret,
        extended,
    })
}

fn append(c: &mut Cursor) -> PResult<Command> {
    c.sp()?;
    let mailbox = mailbox(c)?;
    // RFC 3502: 1*(SP [flag-list SP] [date-time SP] append-data).
    let mut messages = Vec::new();
    while c.eat(b' ') {
        let mut flags = Vec::new();
        let mut date = None;
        if c.peek() == Some(b'(') {
            flags = c.flag_list()?;
            c.sp()?;
        }
        if c.peek() == Some(b'"') {
            date = Some(c.date_time()?);
            c.sp()?;
        }
        // RFC 4469 §5: append-data =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")".
        if c.eat_word("CATENATE (") {
            let mut parts = Vec::new();
            loop {
                if c.eat_word("TEXT ") {
                    parts.push(CatPart::Text(c.literal()?.to_vec()));
                } else if c.eat_word("URL ") {
                    let url = String::from_utf8(c.astring()?)
                        .map_err(|_| ParseError::new("a CATENATE URL is ASCII"))?;
                    parts.push(CatPart::Url(url));
                } else {
                    return Err(c.error("TEXT literal or URL url in CATENATE"));
                }
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
                if parts.len() >= MAX_CATENATE_PARTS {
                    return Err(ParseError::new(format!(
                        "a CATENATE has at most {MAX_CATENATE_PARTS} parts"
                    )));
                }
            }
            messages.push(AppendMessage {
                flags,
                date,
                message: Vec::new(),
                utf8: false,
                catenate: parts,
            });
            continue;
        }
        // RFC 6855 §4: append-data =/ "UTF8" SP "(" literal8 ")".
        let utf8 = c.eat_word("UTF8 (");
        if !matches!(c.peek(), Some(b'{') | Some(b'~')) {
            return Err(c.error("the message as a literal ({size})"));
        }
        let message = c.literal()?.to_vec();
        if utf8 {
            c.expect(b')', "')' after the UTF8 message")?;
        }
        messages.push(AppendMessage {
            flags,
            date,
            message,
            utf8,
            catenate: Vec::new(),
        });
    }
    if messages.is_empty() {
        return Err(c.error("a message to append"));
    }
    Ok(Command::Append { mailbox, messages })
}

fn search(c: &mut Cursor, uid: bool) -> PResult<Command> {
    c.sp()?;
    let (ret, charset, key) = parse_search(c)?;
    Ok(Command::Search {
        uid,
        ret,
        charset,
        key,
    })
}

fn sort(c: &mut Cursor, uid: bool) -> PResult<Command> {
    c.sp()?;
    let (ret, criteria, charset, key) = parse_sort(c)?;
    Ok(Command::Sort {
        uid,
        ret,
        criteria,
        charset,
        key,
    })
}

fn thread(c: &mut Cursor, uid: bool) -> PResult<Command> {
    c.sp()?;
    let (algorithm, charset, key) = parse_thread(c)?;
    Ok(Command::Thread {
        uid,
        algorithm,
        charset,
        key,
    })
}

fn fetch(c: &mut Cursor, uid: bool) -> PResult<Command> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let attrs = parse_fetch_attrs(c)?;
    // RFC 4466 fetch modifiers: CHANGEDSINCE and, for UID FETCH, VANISHED
    // (RFC 7162).
    let mut changed_since = None;
    let mut vanished = false;
    if c.eat(b' ') {
        c.expect(b'(', "'(' opening the FETCH modifiers")?;
        loop {
            let modifier = c.atom()?.to_ascii_uppercase();
            match modifier.as_str() {
                "CHANGEDSINCE" => {
                    c.sp()?;
                    changed_since = Some(mod_sequence(c)?);
                }
                "VANISHED" if uid => vanished = true,
                _ => {
                    return Err(ParseError::new(format!(
                        "FETCH modifier {modifier} is not supported: only CHANGEDSINCE and (UID FETCH) VANISHED are"
                    )));
                }
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    // RFC 7162 §3.2.6: VANISHED only with CHANGEDSINCE.
    if vanished && changed_since.is_none() {
        return Err(ParseError::new(
            "the VANISHED modifier needs CHANGEDSINCE too",
        ));
    }
    Ok(Command::Fetch {
        uid,
        set,
        attrs,
        changed_since,
        vanished,
    })
}

/// `(uidvalidity modseq [known-uids [(known-seqs known-uids)]])`.
fn qresync_params(c: &mut Cursor) -> PResult<QresyncParams> {
    c.expect(b'(', "'(' opening the QRESYNC parameters")?;
    let uid_validity = c.nz_number()?;
    c.sp()?;
    let modseq = mod_sequence(c)?;
    let mut known_uids = None;
    if c.eat(b' ') {
        if c.peek() != Some(b'(') {
            known_uids = Some(c.sequence_set()?);
            if !c.eat(b' ') {
                c.expect(b')', "')' closing the QRESYNC parameters")?;
                return Ok(QresyncParams {
                    uid_validity,
                    modseq,
                    known_uids,
                });
            }
        }
        // seq-match-data = "(" known-sequence-set SP known-uid-set ")"
        c.expect(b'(', "'(' opening the sequence match data")?;
        c.sequence_set()?;
        c.sp()?;
        c.sequence_set()?;
        c.expect(b')', "')' closing the sequence match data")?;
    }
    c.expect(b')', "')' closing the QRESYNC parameters")?;
    Ok(QresyncParams {
        uid_validity,
        modseq,
        known_uids,
    })
}

/// mod-sequence-value: 1 to 2^63-1 (RFC 7162 §7); `zero` allows 0
/// (mod-sequence-valzer, as UNCHANGEDSINCE takes).
fn mod_sequence_value(c: &mut Cursor, zero: bool) -> PResult<u64> {
    let n = c.number64()?;
    if n > i64::MAX as u64 || (n == 0 && !zero) {
        return Err(ParseError::new(format!(
            "{n} is not a mod-sequence: they run from 1 to 9223372036854775807"
        )));
    }
    Ok(n)
}

fn mod_sequence(c: &mut Cursor) -> PResult<u64> {
    mod_sequence_value(c, false)
}

fn store(c: &mut Cursor, uid: bool) -> PResult<Command> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    // RFC 4466 store modifiers: UNCHANGEDSINCE (RFC 7162) only.
    let mut unchanged_since = None;
    if c.eat(b'(') {
        loop {
            let modifier = c.atom()?.to_ascii_uppercase();
            match modifier.as_str() {
                "UNCHANGEDSINCE" => {
                    c.sp()?;
                    unchanged_since = Some(mod_sequence_value(c, true)?);
                }
                _ => {
                    return Err(ParseError::new(format!(
                        "STORE modifier {modifier} is not supported: only UNCHANGEDSINCE is"
                    )));
                }
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
        c.sp()?;
    }
    let op = if c.eat(b'+') {
        StoreOp::Add
    } else if c.eat(b'-') {
        StoreOp::Remove
    } else {
        StoreOp::Replace
    };
    let item = c.atom()?.to_ascii_uppercase();
    let silent = match item.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => {
            return Err(ParseError::new(format!(
                "expected FLAGS or FLAGS.SILENT, found {item}"
            )));
        }
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        c.flag_list()?
    } else {
        let mut flags = vec![c.flag()?];
        while c.eat(b' ') {
            flags.push(c.flag()?);
        }
        flags
    };
    Ok(Command::Store {
        uid,
        set,
        op,
        silent,
        flags,
        unchanged_since,
    })
}

fn copy(c: &mut Cursor, uid: bool, is_move: bool) -> PResult<Command> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let mailbox = mailbox(c)?;
    Ok(if is_move {
        Command::Move { uid, set, mailbox }
    } else {
        Command::Copy { uid, set, mailbox }
    })
}

fn nstring(c: &mut Cursor) -> PResult<Option<String>> {
    if c.eat_word("NIL") {
        return Ok(None);
    }
    let s = c.string()?;
    Ok(Some(String::from_utf8_lossy(&s).into_owned()))
}

fn id_params(c: &mut Cursor) -> PResult<Vec<(String, Option<String>)>> {
    if c.eat_word("NIL") {
        return Ok(Vec::new());
    }
    c.expect(b'(', "'(' or NIL")?;
    let mut params = Vec::new();
    if c.eat(b')') {
        return Ok(params);
    }
    loop {
        let key = String::from_utf8_lossy(&c.string()?).into_owned();
        c.sp()?;
        let value = nstring(c)?;
        params.push((key, value));
        if params.len() > 30 {
            return Err(ParseError::new("ID takes at most 30 field-value pairs"));
        }
        if c.eat(b')') {
            return Ok(params);
        }
        c.sp()?;
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
