//! The two migration sets (`migrations/sqlite`, `migrations/postgres`) must build the same
//! schema: the same tables, each with the same columns, the same named indexes (with the
//! same columns) and the same triggers on the same tables. Both databases are migrated by the
//! real server, then read back from each catalogue. Runs on the PostgreSQL pass (it needs both
//! databases).

mod common;

use std::collections::BTreeMap;

use common::{Server, TestDb};
use sqlx::Row;

/// table → columns, index → (table, columns), each sorted, and trigger → table.
#[derive(Debug, PartialEq)]
struct Schema {
    tables: BTreeMap<String, Vec<String>>,
    indexes: BTreeMap<String, (String, Vec<String>)>,
    triggers: BTreeMap<String, String>,
}

async fn sqlite_schema(url: &str) -> Schema {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let mut tables = BTreeMap::new();
    let mut indexes = BTreeMap::new();
    let names = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT LIKE '_sqlx_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for row in names {
        let table: String = row.get(0);
        let mut columns: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        columns.sort();
        // Named indexes only: SQLite's automatic ones (for UNIQUE / PRIMARY KEY constraints)
        // have no PostgreSQL counterpart of the same name.
        let index_rows = sqlx::query("SELECT name FROM pragma_index_list(?) WHERE origin = 'c'")
            .bind(&table)
            .fetch_all(&pool)
            .await
            .unwrap();
        for index in index_rows {
            let name: String = index.get(0);
            let mut columns: Vec<String> = sqlx::query("SELECT name FROM pragma_index_info(?)")
                .bind(&name)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String, _>(0).unwrap_or_else(|_| "<expression>".into()))
                .collect();
            columns.sort();
            indexes.insert(name, (table.clone(), columns));
        }
        tables.insert(table, columns);
    }
    let triggers = sqlx::query("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    pool.close().await;
    Schema { tables, indexes, triggers }
}

async fn postgres_schema(url: &str) -> Schema {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let rows = sqlx::query(
        "SELECT c.table_name::text, c.column_name::text FROM information_schema.columns c \
         JOIN information_schema.tables t USING (table_schema, table_name) \
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' \
         AND c.table_name NOT LIKE '\\_sqlx\\_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for row in rows {
        tables.entry(row.get(0)).or_default().push(row.get(1));
    }
    tables.values_mut().for_each(|c| c.sort());
    // Named indexes, the ones behind constraints (primary keys, UNIQUE in a table's
    // definition) left out as SQLite's automatic ones are.
    let rows = sqlx::query(
        "SELECT i.relname::text, t.relname::text, \
                coalesce(a.attname::text, '<expression>') \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public' \
         CROSS JOIN LATERAL unnest(x.indkey) AS k(attnum) \
         LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
           AND t.relname NOT LIKE '\\_sqlx\\_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut indexes: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for row in rows {
        let entry = indexes.entry(row.get(0)).or_insert_with(|| (row.get(1), Vec::new()));
        entry.1.push(row.get(2));
    }
    indexes.values_mut().for_each(|(_, c)| c.sort());
    let triggers = sqlx::query(
        "SELECT DISTINCT trigger_name::text, event_object_table::text FROM information_schema.triggers \
         WHERE trigger_schema = 'public'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    pool.close().await;
    Schema { tables, indexes, triggers }
}

#[tokio::test]
async fn sqlite_and_postgresql_migrations_build_the_same_schema() {
    if !common::postgres_or_skip() {
        return;
    }
    let pg = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("cronstack.db").display());
    let sqlite = TestDb::alias(&pg, &sqlite_url);
    // Each server migrates its database at start.
    drop(Server::start_on(&pg, &[]));
    drop(Server::start_on(&sqlite, &[]));

    let (lite, post) = (sqlite_schema(&sqlite_url).await, postgres_schema(&pg.url).await);
    assert!(lite.tables.len() > 10 && lite.indexes.len() > 10, "SQLite schema not read: {lite:?}");
    assert!(post.tables.len() > 10 && post.indexes.len() > 10, "PostgreSQL schema not read: {post:?}");
    let mut differences = Vec::new();
    for name in lite.tables.keys().chain(post.tables.keys()) {
        let (a, b) = (lite.tables.get(name), post.tables.get(name));
        if a != b && !differences.iter().any(|d: &String| d.starts_with(&format!("table {name}:"))) {
            differences.push(format!("table {name}: SQLite {a:?}, PostgreSQL {b:?}"));
        }
    }
    for name in lite.indexes.keys().chain(post.indexes.keys()) {
        let (a, b) = (lite.indexes.get(name), post.indexes.get(name));
        if a != b && !differences.iter().any(|d: &String| d.starts_with(&format!("index {name}:"))) {
            differences.push(format!("index {name}: SQLite {a:?}, PostgreSQL {b:?}"));
        }
    }
    if lite.triggers != post.triggers {
        differences.push(format!("triggers: SQLite {:?}, PostgreSQL {:?}", lite.triggers, post.triggers));
    }
    assert!(!lite.triggers.is_empty(), "SQLite triggers not read: {lite:?}");
    assert!(differences.is_empty(), "the migrations disagree:\n{}", differences.join("\n"));
}
