//! Fuzz the `.npy` reader (`npy::parse_npy`): either an error, or a shape whose product is the
//! number of values returned.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    if let Ok((shape, data)) = marginflow::io::npy::parse_npy(Path::new("fuzz.npy"), bytes) {
        let count = shape.iter().try_fold(1usize, |a, &s| a.checked_mul(s));
        assert_eq!(count, Some(data.len()), "shape does not match the data length");
    }
});
