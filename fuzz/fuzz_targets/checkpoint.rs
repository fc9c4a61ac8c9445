//! Fuzz the checkpoint reader (`Checkpoint::load`, what `flow --resume DIR` reads from
//! DIR/checkpoint) and, for a checkpoint that reads, the state it restores
//! (`Checkpoint::weights` on the data set of the seed checkpoints: n = 8 Gaussian points in
//! d = 200, seed 2).
#![no_main]

use libfuzzer_sys::fuzz_target;
use marginflow::flow::checkpoint::Checkpoint;
use marginflow::model::data::{self, DataKind, Dataset, GenSettings};
use std::path::PathBuf;
use std::sync::OnceLock;

fn data() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        data::generate(&GenSettings { kind: DataKind::Gaussian, n: 8, d: 200, seed: 2, ..Default::default() })
            .expect("generates")
    })
}

/// The file this process writes each input to (the reader takes a path).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("marginflow-fuzz-checkpoint-{}", std::process::id())))
}

fuzz_target!(|bytes: &[u8]| {
    let path = scratch();
    std::fs::write(path, bytes).expect("the scratch file is writable");
    match Checkpoint::load(path) {
        Ok(cp) => match cp.weights(data()) {
            Ok(w) => assert_eq!(w.len(), cp.settings.model.width * data().d, "W has the wrong size"),
            Err(e) => assert!(!e.to_string().is_empty(), "empty error message"),
        },
        Err(e) => assert!(!e.to_string().is_empty(), "empty error message"),
    }
});
