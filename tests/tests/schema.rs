//! The two migration sets describe one schema: after migrating, SQLite and
//! PostgreSQL have the same tables, the same columns in each, the same
//! primary keys and the same indexes (by table, indexed columns and
//! uniqueness — names and column types may differ).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::{Backend, DATABASE_URL_VAR, TestDb};
use std::collections::{BTreeMap, BTreeSet};

/// One backend's schema, reduced to what must match.
#[derive(Debug, Default, PartialEq, Eq)]
struct Schema {
    /// Table → its columns.
    columns: BTreeMap<String, BTreeSet<String>>,
    /// Table → its primary key columns, in key order.
    primary_keys: BTreeMap<String, Vec<String>>,
    /// (table, indexed columns in order, unique) of every other index,
    /// unique constraints included.
    indexes: BTreeSet<(String, Vec<String>, bool)>,
}

/// Tables that are not ours: sqlx's bookkeeping and SQLite's own.
fn ours(table: &str) -> bool {
    table != "_sqlx_migrations" && !table.starts_with("sqlite_")
}

async fn sqlite_schema(db: &TestDb) -> Schema {
    let store = db.store().await;
    let mut schema = Schema::default();
    let pillarbox_store::Db::Sqlite(pool) = store.db() else {
        panic!("an SQLite store");
    };
    let tables: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(pool)
            .await
            .unwrap();
    for (table,) in tables.into_iter().filter(|(t,)| ours(t)) {
        let columns: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, pk FROM pragma_table_info($1) ORDER BY pk, cid")
                .bind(&table)
                .fetch_all(pool)
                .await
                .unwrap();
        let primary: Vec<String> = columns
            .iter()
            .filter(|(_, pk)| *pk > 0)
            .map(|(name, _)| name.clone())
            .collect();
        schema.primary_keys.insert(table.clone(), primary);
        schema.columns.insert(
            table.clone(),
            columns.into_iter().map(|(name, _)| name).collect(),
        );
        let indexes: Vec<(String, bool, String)> =
            sqlx::query_as("SELECT name, \"unique\", origin FROM pragma_index_list($1)")
                .bind(&table)
                .fetch_all(pool)
                .await
                .unwrap();
        for (index, unique, origin) in indexes {
            if origin == "pk" {
                continue;
            }
            let columns: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                    .bind(&index)
                    .fetch_all(pool)
                    .await
                    .unwrap();
            schema.indexes.insert((
                table.clone(),
                columns.into_iter().map(|(c,)| c).collect(),
                unique,
            ));
        }
    }
    store.close().await;
    schema
}

async fn postgres_schema(db: &TestDb) -> Schema {
    let store = db.store().await;
    let mut schema = Schema::default();
    let pillarbox_store::Db::Postgres(pool) = store.db() else {
        panic!("a PostgreSQL store");
    };
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, column) in columns.into_iter().filter(|(t, _)| ours(t)) {
        schema.columns.entry(table).or_default().insert(column);
    }
    // Every index, with its columns in key order.
    let indexes: Vec<(String, bool, bool, Vec<String>)> = sqlx::query_as(
        "SELECT t.relname::text, ix.indisprimary, ix.indisunique, \
                ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
                      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord) \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for table in schema.columns.keys() {
        schema.primary_keys.insert(table.clone(), Vec::new());
    }
    for (table, primary, unique, columns) in indexes.into_iter().filter(|(t, ..)| ours(t)) {
        if primary {
            schema.primary_keys.insert(table, columns);
        } else {
            schema.indexes.insert((table, columns, unique));
        }
    }
    store.close().await;
    schema
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_make_the_same_schema() {
    if std::env::var(DATABASE_URL_VAR).is_err() {
        eprintln!("schema parity skipped: set {DATABASE_URL_VAR} to compare with PostgreSQL");
        return;
    }
    let sqlite_db = TestDb::new(Backend::Sqlite).await;
    let postgres_db = TestDb::new(Backend::Postgres).await;
    let sqlite = sqlite_schema(&sqlite_db).await;
    let postgres = postgres_schema(&postgres_db).await;
    postgres_db.cleanup().await;

    let tables = |s: &Schema| s.columns.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(tables(&sqlite), tables(&postgres), "tables differ");
    for (table, columns) in &sqlite.columns {
        let other = &postgres.columns[table];
        let only_sqlite: Vec<_> = columns.difference(other).collect();
        let only_postgres: Vec<_> = other.difference(columns).collect();
        assert!(
            only_sqlite.is_empty() && only_postgres.is_empty(),
            "table {table}: columns only in SQLite {only_sqlite:?}, only in PostgreSQL {only_postgres:?}"
        );
    }
    assert_eq!(
        sqlite.primary_keys, postgres.primary_keys,
        "primary keys differ"
    );
    let only_sqlite: Vec<_> = sqlite.indexes.difference(&postgres.indexes).collect();
    let only_postgres: Vec<_> = postgres.indexes.difference(&sqlite.indexes).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "indexes only in SQLite {only_sqlite:?}, only in PostgreSQL {only_postgres:?}"
    );
    // The comparison sees what it compares.
    assert!(sqlite.columns["mailbox_messages"].contains("internal_date"));
    assert!(sqlite.indexes.contains(&(
        "mailbox_messages".into(),
        vec!["message_id".into()],
        false
    )));
}
