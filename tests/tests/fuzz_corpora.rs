//! Every committed fuzz corpus replayed through its target on the stable compiler. The target
//! bodies live in `fuzz/src/targets.rs`: the cargo-fuzz targets call them and this test
//! includes the same file, so a crash the fuzzer once found, kept in a corpus, fails here.

#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::any::Any;
use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The inputs of one corpus, sorted; hidden files (libFuzzer's scratch) are not inputs.
fn corpus(name: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join("corpus").join(name);
    let entries = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} of target {name}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-text panic".into())
}

#[test]
fn every_corpus_input_replays_through_its_target() {
    let mut failures = Vec::new();
    for &(name, body) in targets::TARGETS {
        let files = corpus(name);
        assert!(!files.is_empty(), "the corpus of target {name} is empty");
        for file in files {
            let data = fs::read(&file).expect("corpus input");
            if let Err(payload) = panic::catch_unwind(|| body(&data)) {
                failures.push(format!("{}: {}", file.display(), panic_text(&*payload)));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} input(s) fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_fuzz_target_is_replayed() {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut on_disk: Vec<String> = fs::read_dir(&dir)
        .expect("fuzz_targets")
        .map(|e| e.expect("fuzz target").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut replayed: Vec<String> = targets::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    replayed.sort();
    assert_eq!(on_disk, replayed, "fuzz_targets/*.rs and TARGETS differ");
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in &replayed {
        let entry = format!("name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"");
        assert!(
            manifest.contains(&entry),
            "{name} is not a [[bin]] of fuzz/Cargo.toml"
        );
        let target = fs::read_to_string(dir.join(format!("{name}.rs"))).expect("fuzz target");
        assert!(
            target.contains(&format!("livepulse_fuzz::{name}(data)")),
            "fuzz_targets/{name}.rs does not run livepulse_fuzz::{name}"
        );
    }
}
