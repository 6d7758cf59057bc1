//! The POP3-vs-IMAP lab: one page on the HTTP listener (`/lab`) showing a
//! mailbox as an IMAP client sees it and as a POP3 client sees it under the
//! account's policy, with actions that run real SMTP, POP3 and IMAP sessions
//! over the server's own listeners and show their transcripts. Changes
//! arrive live over server-sent events from the store's change feed.

mod session;

use crate::http::HttpState;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use pillarbox_directory::{Account, AccountUpdate, AfterDownload, Directory, Pop3List, Protocol};
use pillarbox_store::UidRange;
use serde::Deserialize;
use serde_json::json;
use session::Transcript;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

const PAGE: &str = include_str!("lab.html");

/// The lab's own state: the throw-away account, and what the simulated
/// POP3 "laptop" has downloaded so far (its UIDL memory).
#[derive(Default)]
pub struct Lab {
    /// (address, password) in throw-away mode: no login asked.
    pub demo: Option<(String, String)>,
    laptop: Mutex<HashMap<String, HashSet<String>>>,
}

impl Lab {
    pub fn demo(address: &str, password: &str) -> Lab {
        Lab {
            demo: Some((address.to_string(), password.to_string())),
            laptop: Mutex::default(),
        }
    }
}

pub fn routes() -> axum::Router<Arc<HttpState>> {
    axum::Router::new()
        .route("/lab", get(page))
        .route("/lab/state", get(state))
        .route("/lab/events", get(events))
        .route("/lab/send", post(send))
        .route("/lab/pop3", post(pop3))
        .route("/lab/imap", post(imap))
        .route("/lab/policy", post(policy))
}

fn problem(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

/// The account the page acts on: the demo account, or the one whose
/// credentials the browser sent (HTTP Basic; the account's own password),
/// checked through the login throttle every protocol shares.
async fn who(
    s: &HttpState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: &HeaderMap,
) -> Result<(Account, String), Response> {
    let Some(lab) = &s.lab else {
        return Err(problem(
            StatusCode::NOT_FOUND,
            "the lab is not enabled on this server ([lab] enabled = true)",
        ));
    };
    let directory = &s.directory;
    let (address, password) = match &lab.demo {
        // Throw-away mode asks for no login: look the account up instead of
        // verifying its configured password (an argon2id hash) on every
        // request the page makes. The sessions it runs still log in.
        Some((a, p)) => {
            return match directory.account_by_address(a).await {
                Ok(Some(account)) => Ok((account, p.clone())),
                _ => Err(problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("the demo account {a} does not exist"),
                )),
            };
        }
        None => {
            let creds = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.split_once(':')
                        .map(|(a, p)| (a.to_string(), p.to_string()))
                });
            let Some(creds) = creds else {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Basic realm=\"Pillarbox lab\"")],
                    "log in with your mail address and password\n",
                )
                    .into_response());
            };
            creds
        }
    };
    match directory
        .login(peer.ip(), &address, &password, Protocol::Imap)
        .await
    {
        Ok(account) => Ok((account, password)),
        Err(_) => Err((
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"Pillarbox lab\"")],
            "wrong address or password\n",
        )
            .into_response()),
    }
}

async fn page(
    State(s): State<Arc<HttpState>>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = who(&s, peer, &headers).await {
        return response;
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

fn flag_names(flags: &pillarbox_store::Flags) -> Vec<String> {
    flags
        .system_flags()
        .map(|f| f.as_imap().to_string())
        .chain(flags.keywords().iter().cloned())
        .collect()
}

async fn state(
    State(s): State<Arc<HttpState>>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let (account, _) = match who(&s, peer, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match snapshot(&s, &account).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot read the mailbox: {e}"),
        ),
    }
}

async fn snapshot(s: &HttpState, account: &Account) -> anyhow::Result<serde_json::Value> {
    let store = &s.store;
    let mut folders = Vec::new();
    // INBOX as read for the IMAP view is also the POP3 maildrop below.
    let mut maildrop = None;
    for mailbox in store.list_mailboxes(account.id).await? {
        let entries = store.messages(mailbox.id, UidRange::all()).await?;
        let ids: Vec<_> = entries.iter().map(|m| m.message).collect();
        let subjects: HashMap<_, _> = store
            .message_metas(&ids)
            .await?
            .into_iter()
            .map(|(id, meta)| (id, meta.envelope.subject.unwrap_or_default()))
            .collect();
        let messages: Vec<_> = entries
            .iter()
            .map(|m| {
                json!({
                    "uid": m.uid.0,
                    "subject": subjects.get(&m.message).cloned().unwrap_or_default(),
                    "flags": flag_names(&m.flags),
                    "downloaded": m.downloaded,
                })
            })
            .collect();
        folders.push(json!({"name": mailbox.name, "uidvalidity": mailbox.uid_validity.0, "messages": messages}));
        if mailbox.name == pillarbox_store::INBOX {
            maildrop = Some((mailbox.uid_validity, entries, subjects));
        }
    }
    // The POP3 view: INBOX as the maildrop, filtered by the listing mode.
    let fresh = Directory::new(store.clone())
        .require_account(&account.address)
        .await?;
    let policy = &fresh.pop3_policy;
    let (uid_validity, inbox, subjects) =
        maildrop.ok_or_else(|| anyhow::anyhow!("the account has no INBOX"))?;
    let laptop = s
        .lab
        .as_ref()
        .and_then(|l| {
            l.laptop
                .lock()
                .ok()
                .map(|m| m.get(&account.address).cloned().unwrap_or_default())
        })
        .unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut listing = Vec::new();
    for m in &inbox {
        let listed = match policy.list {
            Pop3List::All => true,
            Pop3List::New => !m.downloaded,
            Pop3List::Recent => m.internal_date >= now - 30 * 86400,
        };
        if !listed {
            continue;
        }
        let uidl = format!("{}.{}", uid_validity.0, m.uid.0);
        listing.push(json!({
            "n": listing.len() + 1,
            "uidl": uidl,
            "size": m.size,
            "subject": subjects.get(&m.message).cloned().unwrap_or_default(),
            "downloaded": m.downloaded,
            "on_laptop": laptop.contains(&uidl),
        }));
    }
    Ok(json!({
        "account": account.address,
        "demo": s.lab.as_ref().is_some_and(|l| l.demo.is_some()),
        "policy": {
            "after_download": match policy.after_download {
                AfterDownload::Keep => "keep",
                AfterDownload::MarkSeen => "mark-seen",
                AfterDownload::Archive => "archive",
                AfterDownload::Delete => "delete",
            },
            "honour_deletes": policy.honour_deletes,
            "list": format!("{:?}", policy.list).to_lowercase(),
        },
        "imap": folders,
        "pop3": listing,
        "laptop": laptop.len(),
    }))
}

async fn events(
    State(s): State<Arc<HttpState>>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let (account, _) = match who(&s, peer, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let feed = s.store.subscribe();
    let shutdown = s.shutdown.clone();
    let stream = futures::stream::unfold(feed, move |mut feed| {
        let shutdown = shutdown.clone();
        async move {
            loop {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    received = feed.recv() => received,
                };
                match received {
                    Ok(e) if e.account == account.id => {
                        let event = Event::default()
                            .event("changed")
                            .data(format!("{:?}", e.kind));
                        return Some((Ok::<_, std::convert::Infallible>(event), feed));
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        return Some((Ok(Event::default().event("changed").data("lagged")), feed));
                    }
                    Err(_) => return None,
                }
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn addr(s: &HttpState, name: &str) -> anyhow::Result<std::net::SocketAddr> {
    let mut a = *s
        .addrs
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("the {name} listener is off: the lab needs it"))?;
    if a.ip().is_unspecified() {
        a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(a)
}

fn reply(result: anyhow::Result<Vec<String>>, transcript: Vec<String>) -> Response {
    match result {
        Ok(explain) => {
            Json(json!({"ok": true, "transcript": transcript, "explain": explain})).into_response()
        }
        Err(e) => {
            Json(json!({"ok": false, "transcript": transcript, "explain": [format!("{e:#}")]}))
                .into_response()
        }
    }
}

#[derive(Deserialize)]
struct SendForm {
    subject: String,
    body: String,
}

async fn send(
    State(s): State<Arc<HttpState>>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(form): Json<SendForm>,
) -> Response {
    let (account, _) = match who(&s, peer, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let target = match addr(&s, "smtp") {
        Ok(a) => a,
        Err(e) => return reply(Err(e), Vec::new()),
    };
    let mut c = match Transcript::connect(target, false, None).await {
        Ok(c) => c,
        Err(e) => return reply(Err(e), Vec::new()),
    };
    let result = async {
        let t = &mut c;
        t.smtp().await?;
        t.send("EHLO lab.visitor").await?;
        t.smtp().await?;
        t.send("MAIL FROM:<visitor@lab.visitor>").await?;
        t.smtp().await?;
        t.send(&format!("RCPT TO:<{}>", account.address)).await?;
        let r = t.smtp().await?;
        if !r.starts_with('2') {
            anyhow::bail!("the recipient was refused: {r}");
        }
        t.send("DATA").await?;
        t.smtp().await?;
        let subject: String = form.subject.chars().filter(|c| !c.is_control()).take(200).collect();
        let body: String = form.body.replace("\r\n", "\n").replace('\n', "\r\n").replace("\r\n.", "\r\n..");
        let data = format!(
            "From: Lab Visitor <visitor@lab.visitor>\r\nTo: {}\r\nSubject: {subject}\r\n\r\n{body}\r\n.\r\n",
            account.address
        );
        t.send_data(&data, &format!("(the message “{subject}”, then a line with a single dot)"))
            .await?;
        let done = t.smtp().await?;
        t.send("QUIT").await?;
        let _ = t.smtp().await;
        if !done.starts_with("250") {
            anyhow::bail!("not accepted: {done}");
        }
        Ok(vec![
            "SMTP delivered the message into INBOX. The 250 came after the store committed it.".into(),
            "IMAP clients in IDLE are told at once; a POP3 client sees it the next time it checks.".into(),
        ])
    }
    .await;
    reply(result, c.lines)
}

#[derive(Deserialize)]
struct Pop3Form {
    leave_copy: bool,
}

async fn pop3(
    State(s): State<Arc<HttpState>>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(form): Json<Pop3Form>,
) -> Response {
    let (account, password) = match who(&s, peer, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(lab) = s.lab.as_ref() else {
        return problem(StatusCode::NOT_FOUND, "lab off");
    };
    let known: HashSet<String> = lab
        .laptop
        .lock()
        .ok()
        .and_then(|m| m.get(&account.address).cloned())
        .unwrap_or_default();
    let mut c = match Transcript::connect(
        match addr(&s, "pop3s") {
            Ok(a) => a,
            Err(e) => return reply(Err(e), Vec::new()),
        },
        true,
        Some(&password),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return reply(Err(e), Vec::new()),
    };
    let mut fetched = Vec::new();
    let result = async {
        let t = &mut c;
        t.line().await?;
        t.send(&format!("USER {}", account.address)).await?;
        t.line().await?;
        t.send(&format!("PASS {password}")).await?;
        let ok = t.line().await?;
        if !ok.starts_with("+OK") {
            anyhow::bail!("login refused: {ok}");
        }
        t.send("STAT").await?;
        t.line().await?;
        t.send("UIDL").await?;
        let first = t.line().await?;
        let mut listing = Vec::new();
        if first.starts_with("+OK") {
            loop {
                let line = t.line().await?;
                if line == "." {
                    break;
                }
                if let Some((n, uidl)) = line.split_once(' ') {
                    listing.push((n.to_string(), uidl.to_string()));
                }
            }
        }
        let mut explain = Vec::new();
        for (n, uidl) in &listing {
            if known.contains(uidl) {
                continue;
            }
            t.send(&format!("RETR {n}")).await?;
            let status = t.line().await?;
            if !status.starts_with("+OK") {
                continue;
            }
            let mut lines = 0;
            loop {
                let line = t.quiet_line().await?;
                if line == ".\r\n" {
                    break;
                }
                lines += 1;
            }
            t.lines.push(format!("S: ({lines} lines of message {n})"));
            t.lines.push("S: .".into());
            fetched.push(uidl.clone());
            if !form.leave_copy {
                t.send(&format!("DELE {n}")).await?;
                t.line().await?;
            }
        }
        t.send("QUIT").await?;
        t.line().await?;
        explain.push(format!(
            "The laptop downloaded {} new message(s); it already had {} (it remembers UIDLs).",
            fetched.len(),
            known.len()
        ));
        if form.leave_copy {
            explain.push("“Leave a copy on the server” is on: no DELE was sent, so IMAP still sees every message.".into());
        } else if !fetched.is_empty() {
            explain.push("“Leave a copy” is off: DELE at each message, applied at QUIT — unless the account's policy ignores deletes, IMAP sees them vanish (EXPUNGE).".into());
        }
        Ok(explain)
    }
    .await;
    if let Ok(mut laptop) = lab.laptop.lock() {
        laptop
            .entry(account.address.clone())
            .or_default()
            .extend(fetched);
    }
    reply(result, c.lines)
}

#[derive(Deserialize)]
struct ImapForm {
    /// seen, unseen, flag, unflag, archive, delete
    action: String,
    uid: u32,
    #[serde(default = "inbox")]
    folder: String,
}

fn inbox() -> String {
    "INBOX".into()
}

async fn imap(
    State(s): State<Arc<HttpState>>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(form): Json<ImapForm>,
) -> Response {
    let (account, password) = match who(&s, peer, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let command = match form.action.as_str() {
        "seen" => format!("UID STORE {} +FLAGS (\\Seen)", form.uid),
        "unseen" => format!("UID STORE {} -FLAGS (\\Seen)", form.uid),
        "flag" => format!("UID STORE {} +FLAGS (\\Flagged)", form.uid),
        "unflag" => format!("UID STORE {} -FLAGS (\\Flagged)", form.uid),
        "archive" => format!("UID MOVE {} Archive", form.uid),
        "delete" => format!("UID STORE {} +FLAGS (\\Deleted)", form.uid),
        other => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("unknown action {other:?}"),
            );
        }
    };
    let target = match addr(&s, "imaps") {
        Ok(a) => a,
        Err(e) => return reply(Err(e), Vec::new()),
    };
    let mut c = match Transcript::connect(target, true, Some(&password)).await {
        Ok(c) => c,
        Err(e) => return reply(Err(e), Vec::new()),
    };
    let folder: String = form
        .folder
        .chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect();
    let result = async {
        let t = &mut c;
        t.line().await?;
        t.send(&format!("a LOGIN {} \"{password}\"", account.address)).await?;
        let ok = t.imap("a").await?;
        if !ok.starts_with("a OK") {
            anyhow::bail!("login refused: {ok}");
        }
        t.send(&format!("b SELECT \"{folder}\"")).await?;
        t.imap("b").await?;
        t.send(&format!("c {command}")).await?;
        let done = t.imap("c").await?;
        if form.action == "delete" {
            t.send(&format!("d UID EXPUNGE {}", form.uid)).await?;
            t.imap("d").await?;
        }
        t.send("e LOGOUT").await?;
        let _ = t.imap("e").await;
        let mut explain = vec![match form.action.as_str() {
            "seen" | "unseen" => "Flags live on the server: every IMAP client sees the change, and a POP3 policy like “mark-seen” writes the same flag.".to_string(),
            "flag" | "unflag" => "\\Flagged is stored on the server; POP3 has no flags at all, so a POP3 client never sees it.".to_string(),
            "archive" => "MOVE takes the message out of INBOX: to POP3, which only ever sees INBOX, it is gone.".to_string(),
            _ => "Deleted and expunged: gone for IMAP and POP3 alike.".to_string(),
        }];
        if !done.contains("OK") {
            explain.push(format!("The server said: {done}"));
        }
        Ok(explain)
    }
    .await;
    reply(result, c.lines)
}

#[derive(Deserialize)]
struct PolicyForm {
    after_download: Option<String>,
    honour_deletes: Option<bool>,
    list: Option<String>,
}

async fn policy(
    State(s): State<Arc<HttpState>>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(form): Json<PolicyForm>,
) -> Response {
    let (account, _) = match who(&s, peer, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let after_download: Option<AfterDownload> = match form.after_download.as_deref().map(str::parse)
    {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => return problem(StatusCode::BAD_REQUEST, &e),
        None => None,
    };
    let list: Option<Pop3List> = match form.list.as_deref().map(str::parse) {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => return problem(StatusCode::BAD_REQUEST, &e),
        None => None,
    };
    let update = AccountUpdate {
        after_download,
        honour_deletes: form.honour_deletes,
        pop3_list: list,
        ..Default::default()
    };
    match Directory::new(s.store.clone())
        .update_account(&account.address, &update)
        .await
    {
        Ok(_) => {
            // The page refreshes on the next event; say something changed.
            Json(json!({"ok": true})).into_response()
        }
        Err(e) => problem(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}
