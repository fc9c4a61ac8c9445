//! Fuzz the scenario TOML reader (`validate::parse`, what `marginflow validate FILE.toml` reads).
#![no_main]

use libfuzzer_sys::fuzz_target;
use marginflow::experiments::validate;

fuzz_target!(|bytes: &[u8]| {
    // A scenario file is text; `validate` refuses other bytes before parsing.
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    match validate::parse(text, "fuzz.toml") {
        // What reads also serializes (the report echoes it).
        Ok(s) => drop(serde_json::to_string(&s).expect("a scenario serializes")),
        Err(e) => assert!(!e.to_string().is_empty(), "empty error message"),
    }
});
