//! What SEARCH reads: the header block and decoded body text kept for each
//! message at delivery, and a coarse filter the database applies first so
//! that a search reads the texts of likely matches only.

use crate::error::{Result, StoreError};
use crate::types::{MailboxId, MessageId};
use crate::{Db, Store, with_pool};
use std::collections::{HashMap, HashSet};

/// A necessary condition on the stored texts, evaluated by the database:
/// every message a search matches passes it (more may pass; the caller
/// checks those exactly). Strings are ASCII and compared as substrings,
/// case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextFilter {
    /// The header fields contain the string, as written or decoded (for a
    /// message stored before decoded fields were kept: the header block
    /// contains it, or has RFC 2047 encoded words).
    Header(String),
    /// The decoded body text contains the string.
    Body(String),
    And(Vec<TextFilter>),
    Or(Vec<TextFilter>),
}

/// Which texts a search needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextColumns {
    pub header: bool,
    pub body: bool,
    /// The header fields, unfolded and decoded (`meta::header_fields`).
    pub fields: bool,
}

/// Header block and body text of one message; a text not asked for is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchText {
    pub header: String,
    pub body: String,
    /// `None` for a message stored before the fields were kept (make them
    /// from `header` with `meta::header_fields`).
    pub fields: Option<String>,
}

/// Strings a filter hands to the database, at most. SQL built from a
/// client's SEARCH must stay far within both databases' limits (SQLite:
/// an expression tree at most 1000 deep, which a chain of 1000 ANDs
/// reaches, and its number of parameters; PostgreSQL: 65535 parameters and
/// its stack depth). The filter only narrows; the exact check is done in
/// Rust on what passes, so a smaller filter costs time, never correctness.
const MAX_TERMS: usize = 64;
/// ANDs and ORs nested in a filter handed to the database, at most.
const MAX_NESTING: usize = 8;

impl TextFilter {
    /// The filter cut to what the database is given: at most [`MAX_TERMS`]
    /// strings and [`MAX_NESTING`] levels. What remains is still met by
    /// every message the original is met by: an AND may drop members
    /// (fewer conditions pass more messages), and an OR that does not fit
    /// is dropped whole. `None`: no condition is left.
    fn bounded(&self) -> Option<TextFilter> {
        let mut terms = MAX_TERMS;
        self.bounded_within(&mut terms, 0)
    }

    fn bounded_within(&self, terms: &mut usize, depth: usize) -> Option<TextFilter> {
        match self {
            TextFilter::Header(_) | TextFilter::Body(_) => {
                *terms = terms.checked_sub(1)?;
                Some(self.clone())
            }
            _ if depth >= MAX_NESTING => None,
            TextFilter::And(all) => {
                let kept: Vec<TextFilter> = all
                    .iter()
                    .filter_map(|f| f.bounded_within(terms, depth + 1))
                    .collect();
                (!kept.is_empty()).then_some(TextFilter::And(kept))
            }
            TextFilter::Or(any) => {
                // Every alternative must fit, or the OR says nothing.
                let mut left = *terms;
                let kept = any
                    .iter()
                    .map(|f| f.bounded_within(&mut left, depth + 1))
                    .collect::<Option<Vec<_>>>()?;
                *terms = left;
                Some(TextFilter::Or(kept))
            }
        }
    }

    /// The SQL condition on `mm` (mailbox_messages) and `f` (message_fields),
    /// with its parameters appended to `params` (numbered after `first`
    /// parameters already bound). The message row is read only where needed
    /// (its body text, or the header of a message without fields): scanning
    /// small fields must not walk over every body.
    fn sql(&self, db: Db<'_>, first: usize, params: &mut Vec<String>) -> String {
        // LIKE / ILIKE with the wildcards of the needle escaped: a
        // case-insensitive substring test that copies nothing.
        let contains = |column: &str, needle: &str, params: &mut Vec<String>| {
            let escaped = needle
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            params.push(format!("%{escaped}%"));
            let n = first + params.len();
            let like = match db {
                Db::Sqlite(_) => "LIKE",
                Db::Postgres(_) => "ILIKE",
            };
            // The database may fold ASCII letters only (SQLite always,
            // PostgreSQL under the C locale): a row with one of the two
            // non-ASCII letters that lowercase to ASCII ones (U+0130 İ,
            // U+212A Kelvin sign) goes through to the exact check.
            let lower = needle.to_ascii_lowercase();
            let has = |letter: char| match db {
                Db::Sqlite(_) => format!(" OR instr({column}, '{letter}') > 0"),
                Db::Postgres(_) => format!(" OR strpos({column}, '{letter}') > 0"),
            };
            let mut exotic = String::new();
            if lower.contains('i') {
                exotic.push_str(&has('\u{130}'));
            }
            if lower.contains('k') {
                exotic.push_str(&has('\u{212a}'));
            }
            format!("({column} {like} ${n} ESCAPE '\\'{exotic})")
        };
        let in_message = |condition: String| {
            format!("EXISTS (SELECT 1 FROM messages m WHERE m.id = mm.message_id AND {condition})")
        };
        match self {
            TextFilter::Header(needle) => {
                let fields = contains("f.fields", needle, params);
                // A message stored before fields were kept: its header block
                // has the string, or encoded words that may decode to it.
                let raw = contains("m.header_text", needle, params);
                let encoded = match db {
                    Db::Sqlite(_) => "instr(m.header_text, '=?') > 0",
                    Db::Postgres(_) => "strpos(m.header_text, '=?') > 0",
                };
                let old = in_message(format!("({raw} OR {encoded})"));
                format!("({fields} OR (f.fields IS NULL AND {old}))")
            }
            TextFilter::Body(needle) => in_message(contains("m.body_text", needle, params)),
            TextFilter::And(all) | TextFilter::Or(all) if all.is_empty() => "TRUE".into(),
            TextFilter::And(all) => {
                let parts: Vec<String> = all.iter().map(|f| f.sql(db, first, params)).collect();
                format!("({})", parts.join(" AND "))
            }
            TextFilter::Or(any) => {
                let parts: Vec<String> = any.iter().map(|f| f.sql(db, first, params)).collect();
                format!("({})", parts.join(" OR "))
            }
        }
    }
}

impl Store {
    /// The messages of `mailbox` that pass `filter` (one query; the
    /// database reads the texts, nothing is sent back but ids).
    pub async fn search_candidates(
        &self,
        mailbox: MailboxId,
        filter: &TextFilter,
    ) -> Result<HashSet<MessageId>> {
        let db = self.db();
        let mut params = Vec::new();
        let condition = match filter.bounded() {
            Some(filter) => filter.sql(db, 1, &mut params),
            None => "TRUE".into(),
        };
        let sql = format!(
            "SELECT mm.message_id FROM mailbox_messages mm \
             LEFT JOIN message_fields f ON f.message_id = mm.message_id \
             WHERE mm.mailbox_id = $1 AND {condition}"
        );
        let rows: Vec<(i64,)> = with_pool!(db, pool => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(mailbox.0);
            for p in &params {
                query = query.bind(p);
            }
            query.fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|(id,)| MessageId(id)).collect())
    }

    /// The search texts of many messages (500 per query), only the columns asked for.
    pub async fn message_search_texts(
        &self,
        messages: &[MessageId],
        columns: TextColumns,
    ) -> Result<HashMap<MessageId, SearchText>> {
        let mut out = HashMap::with_capacity(messages.len());
        let header = if columns.header {
            "m.header_text"
        } else {
            "''"
        };
        let body = if columns.body { "m.body_text" } else { "''" };
        let fields = if columns.fields { "f.fields" } else { "NULL" };
        for chunk in messages.chunks(500) {
            let list = crate::id_list(chunk.iter().map(|m| m.0));
            let rows: Vec<(i64, String, String, Option<String>)> = with_pool!(self.db(), pool => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT m.id, {header}, {body}, {fields} FROM messages m \
                     LEFT JOIN message_fields f ON f.message_id = m.id WHERE m.id IN ({list})"
                )))
                .fetch_all(pool)
                .await?
            });
            for (id, header, body, fields) in rows {
                out.insert(
                    MessageId(id),
                    SearchText {
                        header,
                        body,
                        fields,
                    },
                );
            }
        }
        Ok(out)
    }

    /// The header block and decoded body text kept for SEARCH.
    pub async fn message_search_text(&self, message: MessageId) -> Result<(String, String)> {
        let row: Option<(String, String)> = with_pool!(self.db(), pool => {
            sqlx::query_as("SELECT header_text, body_text FROM messages WHERE id = $1")
                .bind(message.0)
                .fetch_optional(pool)
                .await?
        });
        row.ok_or(StoreError::MessageExpunged(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(s: &str) -> TextFilter {
        TextFilter::Header(s.into())
    }

    fn terms(filter: &TextFilter) -> usize {
        match filter {
            TextFilter::Header(_) | TextFilter::Body(_) => 1,
            TextFilter::And(all) | TextFilter::Or(all) => all.iter().map(terms).sum(),
        }
    }

    fn depth(filter: &TextFilter) -> usize {
        match filter {
            TextFilter::Header(_) | TextFilter::Body(_) => 0,
            TextFilter::And(all) | TextFilter::Or(all) => {
                1 + all.iter().map(depth).max().unwrap_or(0)
            }
        }
    }

    #[test]
    fn small_filters_are_kept_whole() {
        let filter = TextFilter::And(vec![
            header("a"),
            TextFilter::Or(vec![header("b"), TextFilter::Body("c".into())]),
        ]);
        assert_eq!(filter.bounded(), Some(filter.clone()));
    }

    #[test]
    fn thousands_of_keys_are_cut_to_what_the_database_takes() {
        // SEARCH with 5,000 keys: an AND keeps its first members.
        let and = TextFilter::And((0..5000).map(|i| header(&format!("s{i}"))).collect());
        let bounded = and.bounded().unwrap();
        assert_eq!(terms(&bounded), MAX_TERMS);
        // An OR of 5,000 cannot be narrowed by 64 of them: no condition.
        let or = TextFilter::Or((0..5000).map(|i| header(&format!("s{i}"))).collect());
        assert_eq!(or.bounded(), None);
        // Beside one that fits, the AND keeps what fits.
        let both = TextFilter::And(vec![or, header("x")]);
        assert_eq!(both.bounded(), Some(TextFilter::And(vec![header("x")])));
        // Deep nesting is cut at MAX_NESTING.
        let mut deep = header("z");
        for _ in 0..100 {
            deep = TextFilter::And(vec![TextFilter::Or(vec![deep, header("y")]), header("w")]);
        }
        let bounded = deep.bounded().unwrap();
        assert!(depth(&bounded) <= MAX_NESTING, "{}", depth(&bounded));
        assert!(terms(&bounded) <= MAX_TERMS);
    }
}
