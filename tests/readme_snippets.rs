//! The README's `rust,ignore` snippets, compiled: they name real items with the right
//! types. (They are `ignore`d in the README because they open files or need features.)

#![cfg(all(feature = "async", feature = "sqlite", feature = "conformance"))]

use totp_mfa::{AsyncMfa, BlockingStore, MemoryStore, Policy, SqliteStore, UserId};

/// "Async hosts", with the database in a temporary directory.
async fn async_hosts(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let store = BlockingStore::new(SqliteStore::open(path)?);
    let mfa = AsyncMfa::new(store, Policy::new("Example Inc"))?;
    let user = UserId::new("42")?;
    let enrollment = mfa.begin_enrollment(&user, "alice@example.com").await?;
    println!("{}", enrollment.manual_key());
    Ok(())
}

#[test]
fn the_async_hosts_snippet_runs() {
    let dir = std::env::temp_dir().join(format!("totp-mfa-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async_hosts(&dir.join("mfa.sqlite3")));
    let _ = std::fs::remove_dir_all(&dir);
    result.unwrap();
}

/// "Write your own store": the kit's test, on a ready store.
#[test]
fn my_store_conforms() {
    let report = totp_mfa::conformance::run(MemoryStore::new).unwrap();
    println!("{:?}", report.checks);
}
