//! Runs after every other end-to-end test binary (cargo runs them in name order) and lists,
//! in one line, the tests that skipped themselves for a missing tool, so a green local run
//! never silently means "tested nothing". The list is then cleared for the next run.

use livepulse_tests::skip_list;

#[test]
fn skipped_tests_are_listed_in_one_line() {
    let Some(path) = skip_list() else {
        return;
    };
    let listed = std::fs::read_to_string(&path).unwrap_or_default();
    let skipped: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
    if !skipped.is_empty() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {} end-to-end tests: {}",
            skipped.len(),
            skipped.join("; ")
        );
    }
    let _ = std::fs::remove_file(&path);
}
