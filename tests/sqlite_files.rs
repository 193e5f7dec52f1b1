//! The SQLite database file holds password and token hashes, webhook secrets and the cookie
//! key: it is created readable by its owner only, and so are its `-wal` and `-shm` files.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::json;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn the_database_files_are_created_with_mode_0600() {
    if std::env::var("CRONSTACK_TEST_POSTGRES").is_ok_and(|s| !s.is_empty()) {
        eprintln!("skipped: SQLite only");
        return;
    }
    // Created by `cronstack user add`, then opened by the server: a write fills the WAL.
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &[]);
    Api::new(&server, Some(&token))
        .create("/api/v1/blockstacks", json!({"name": "s", "command": "true"}))
        .await;
    let file = db.dir().join("cronstack.db");
    for path in [file.clone(), file.with_extension("db-wal"), file.with_extension("db-shm")] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }

    // Created by the server itself.
    let db = TestDb::new();
    let _server = Server::start_on(&db, &[]);
    let file = db.dir().join("cronstack.db");
    for path in [file.clone(), file.with_extension("db-wal"), file.with_extension("db-shm")] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}
