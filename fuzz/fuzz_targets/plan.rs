//! Fuzz the sweep plan reader (`Plan::parse_bytes`, what `sweep run|merge|submit DIR` read from
//! DIR/plan.json).
#![no_main]

use libfuzzer_sys::fuzz_target;
use marginflow::experiments::sweep::Plan;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    match Plan::parse_bytes(Path::new("plan.json"), bytes) {
        Ok(plan) => {
            // What a plan reads as it writes, byte for byte on the second round.
            let again = Plan::parse_bytes(Path::new("plan.json"), &plan.to_json()).expect("a written plan reads");
            assert_eq!(again.to_json(), plan.to_json(), "plan.json does not round-trip");
            // Checking the settings of a read plan never panics.
            let _ = plan.settings.validate();
        }
        Err(e) => assert!(!e.to_string().is_empty(), "empty error message"),
    }
});
