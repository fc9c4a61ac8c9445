//! Fuzz the csv data reader (`Dataset::parse_bytes` on a `.csv` name).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|bytes: &[u8]| {
    common::check("fuzz.csv", bytes);
});
