//! SORT and UID SORT (RFC 5256 §3) with SORT=DISPLAY (RFC 5957): the
//! messages SEARCH finds, ordered by the criteria in turn and then by
//! message sequence number; text keys compare with i;ascii-casemap.

use crate::command::search::run_search;
use crate::parse::{SearchKey, SearchReturn, SortCriterion, SortKey};
use crate::session::{Done, Session};
use crate::sort_keys::{base_subject, decode_header, display_key, mailbox_key, sent_date};
use crate::threading::{ThreadInput, message_ids};
use pillarbox_store::meta::MessageMeta;
use pillarbox_store::{Result, TextColumns};
use std::cmp::Ordering;

/// One message's value for one key.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Number(i64),
    Text(String),
}

fn value(key: SortKey, meta: &MessageMeta, size: u64, internal_date: i64) -> Value {
    let e = &meta.envelope;
    match key {
        SortKey::Arrival => Value::Number(internal_date),
        SortKey::Size => Value::Number(size as i64),
        SortKey::Date => Value::Number(sent_date(e, internal_date)),
        SortKey::Subject => Value::Text(base_subject(&decode_header(
            e.subject.as_deref().unwrap_or_default(),
        ))),
        SortKey::From => Value::Text(mailbox_key(&e.from)),
        SortKey::To => Value::Text(mailbox_key(&e.to)),
        SortKey::Cc => Value::Text(mailbox_key(&e.cc)),
        SortKey::DisplayFrom => Value::Text(display_key(&e.from)),
        SortKey::DisplayTo => Value::Text(display_key(&e.to)),
    }
}

impl Session<'_> {
    pub(crate) async fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<&[SearchReturn]>,
        criteria: &[SortCriterion],
        charset: &str,
        key: &SearchKey,
    ) -> Result<Done> {
        if let Some(refused) = self.refuse_charset(Some(charset), false) {
            return Ok(refused);
        }
        let store = self.server.store.clone();
        let rev2 = self.rev2;
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::Bad("No mailbox selected".into()));
        };
        let hits = run_search(&store, selected, key, rev2).await?;
        let needs_meta = criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
        // (values, sequence number, UID) per message found.
        let mut rows = Vec::with_capacity(hits.len());
        for window in hits.chunks(500) {
            let ids: Vec<_> = window
                .iter()
                .map(|(seq, _)| selected.messages[*seq as usize - 1].message)
                .collect();
            let mut metas = if needs_meta {
                store.message_metas(&ids).await?
            } else {
                Default::default()
            };
            for (seq, uid) in window {
                let m = &selected.messages[*seq as usize - 1];
                // A message expunged meanwhile sorts with empty keys.
                let meta = metas.remove(&m.message).unwrap_or_default();
                let values: Vec<Value> = criteria
                    .iter()
                    .map(|c| value(c.key, &meta, m.size, m.internal_date))
                    .collect();
                rows.push((values, *seq, *uid));
            }
        }
        rows.sort_by(|a, b| {
            for (i, criterion) in criteria.iter().enumerate() {
                let order = a.0[i].cmp(&b.0[i]);
                let order = if criterion.reverse {
                    order.reverse()
                } else {
                    order
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
            a.1.cmp(&b.1)
        });
        let numbers: Vec<u32> = rows
            .iter()
            .map(|(_, seq, u)| if uid { u.0 } else { *seq })
            .collect();
        let line = match ret {
            None => {
                let mut line = String::from("* SORT");
                for n in &numbers {
                    line.push_str(&format!(" {n}"));
                }
                line
            }
            // ESORT (RFC 5267 §3): MIN and MAX are the first and last in
            // sort order, ALL the whole order (ascending runs as ranges).
            Some(options) => {
                let options = if options.is_empty() {
                    &[SearchReturn::All][..]
                } else {
                    options
                };
                let mut line = format!("* ESEARCH (TAG \"{tag}\")");
                if uid {
                    line.push_str(" UID");
                }
                for option in options {
                    match option {
                        SearchReturn::Min => {
                            if let Some(first) = numbers.first() {
                                line.push_str(&format!(" MIN {first}"));
                            }
                        }
                        SearchReturn::Max => {
                            if let Some(last) = numbers.last() {
                                line.push_str(&format!(" MAX {last}"));
                            }
                        }
                        SearchReturn::Count => line.push_str(&format!(" COUNT {}", numbers.len())),
                        SearchReturn::All => {
                            if !numbers.is_empty() {
                                line.push_str(&format!(
                                    " ALL {}",
                                    crate::sequence::in_order(&numbers)
                                ));
                            }
                        }
                        SearchReturn::Save => {}
                    }
                }
                line
            }
        };
        self.conn.write(format!("{line}\r\n").as_bytes());
        Ok(Done::Ok(format!(
            "{}SORT completed",
            if uid { "UID " } else { "" }
        )))
    }
}

impl Session<'_> {
    /// THREAD (RFC 5256 §4). ORDEREDSUBJECT: messages grouped by base
    /// subject; in each group the earliest (by sent date, then sequence
    /// number) is the parent of the others, in date order; groups in the
    /// order of their first message. REFERENCES: `threading.rs`.
    pub(crate) async fn thread(
        &mut self,
        uid: bool,
        algorithm: &str,
        charset: &str,
        key: &SearchKey,
    ) -> Result<Done> {
        if !matches!(algorithm, "ORDEREDSUBJECT" | "REFERENCES") {
            return Ok(Done::Bad(format!(
                "THREAD algorithm {algorithm} is not supported: use REFERENCES or ORDEREDSUBJECT"
            )));
        }
        if let Some(refused) = self.refuse_charset(Some(charset), false) {
            return Ok(refused);
        }
        let store = self.server.store.clone();
        let rev2 = self.rev2;
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::Bad("No mailbox selected".into()));
        };
        let hits = run_search(&store, selected, key, rev2).await?;
        if algorithm == "REFERENCES" {
            let mut input = Vec::with_capacity(hits.len());
            for window in hits.chunks(500) {
                let ids: Vec<_> = window
                    .iter()
                    .map(|(seq, _)| selected.messages[*seq as usize - 1].message)
                    .collect();
                let mut metas = store.message_metas(&ids).await?;
                let mut texts = store
                    .message_search_texts(
                        &ids,
                        TextColumns {
                            header: true,
                            body: false,
                            fields: true,
                        },
                    )
                    .await?;
                for (seq, u) in window {
                    let m = &selected.messages[*seq as usize - 1];
                    let meta = metas.remove(&m.message).unwrap_or_default();
                    let fields = texts.remove(&m.message).map(|t| {
                        t.fields
                            .unwrap_or_else(|| pillarbox_store::meta::header_fields(&t.header))
                    });
                    let envelope = &meta.envelope;
                    // References, or In-Reply-To's first ID when it has none.
                    let mut references = fields
                        .as_deref()
                        .and_then(|f| pillarbox_store::meta::field_values(f, "references").next())
                        .map(message_ids)
                        .unwrap_or_default();
                    if references.is_empty() {
                        references = envelope
                            .in_reply_to
                            .as_deref()
                            .map(message_ids)
                            .unwrap_or_default();
                        references.truncate(1);
                    }
                    input.push(ThreadInput {
                        number: if uid { u.0 } else { *seq },
                        seq: *seq,
                        date: sent_date(envelope, m.internal_date),
                        message_id: envelope
                            .message_id
                            .as_deref()
                            .and_then(|id| message_ids(id).into_iter().next()),
                        references,
                        subject: decode_header(envelope.subject.as_deref().unwrap_or_default()),
                    });
                }
            }
            let line = format!("* THREAD {}", crate::threading::references(&input));
            self.conn
                .write(format!("{}\r\n", line.trim_end()).as_bytes());
            return Ok(Done::Ok(format!(
                "{}THREAD completed",
                if uid { "UID " } else { "" }
            )));
        }
        // Base subject → (sent date, sequence number, number to answer).
        let mut groups: std::collections::HashMap<String, Vec<(i64, u32, u32)>> =
            Default::default();
        for window in hits.chunks(500) {
            let ids: Vec<_> = window
                .iter()
                .map(|(seq, _)| selected.messages[*seq as usize - 1].message)
                .collect();
            let mut metas = store.message_metas(&ids).await?;
            for (seq, u) in window {
                let m = &selected.messages[*seq as usize - 1];
                let meta = metas.remove(&m.message).unwrap_or_default();
                let subject = base_subject(&decode_header(
                    meta.envelope.subject.as_deref().unwrap_or_default(),
                ));
                let date = sent_date(&meta.envelope, m.internal_date);
                let number = if uid { u.0 } else { *seq };
                groups
                    .entry(subject)
                    .or_default()
                    .push((date, *seq, number));
            }
        }
        let mut threads: Vec<Vec<(i64, u32, u32)>> = groups.into_values().collect();
        for thread in &mut threads {
            thread.sort_unstable();
        }
        threads.sort_unstable_by_key(|t| (t[0].0, t[0].1));
        let mut line = String::from("* THREAD ");
        for thread in &threads {
            // One child follows its parent ("(1 2)"); several are nested
            // lists, as thread-nested needs two or more ("(1 (2)(3))").
            line.push_str(&format!("({}", thread[0].2));
            match &thread[1..] {
                [] => {}
                [(_, _, only)] => line.push_str(&format!(" {only}")),
                children => {
                    line.push(' ');
                    for (_, _, number) in children {
                        line.push_str(&format!("({number})"));
                    }
                }
            }
            line.push(')');
        }
        let line = format!("{}\r\n", line.trim_end());
        self.conn.write(line.as_bytes());
        Ok(Done::Ok(format!(
            "{}THREAD completed",
            if uid { "UID " } else { "" }
        )))
    }
}
