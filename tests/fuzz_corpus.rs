//! Replays the committed fuzz corpus (fuzz/corpus/<target>/*) through the same target bodies
//! the fuzzers run, so `cargo test` covers every input the fuzzers kept (SEC-30, SEC-42).

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "no corpus for {target}");
    for path in &entries {
        let data = std::fs::read(path).expect("read corpus file");
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
    }
    eprintln!("{target}: replayed {} inputs", entries.len());
}

#[test]
fn uri_parse_corpus() {
    replay("uri_parse", targets::uri_parse);
}

#[test]
fn base32_secret_corpus() {
    replay("base32_secret", targets::base32_secret);
}

#[test]
fn code_input_corpus() {
    replay("code_input", targets::code_input);
}

#[test]
fn recovery_input_corpus() {
    replay("recovery_input", targets::recovery_input);
}

#[test]
fn flow_sequence_corpus() {
    replay("flow_sequence", targets::flow_sequence);
}
