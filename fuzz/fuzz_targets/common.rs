//! Shared invariant check for the data-file fuzz targets.

use marginflow::model::data::Dataset;
use std::path::Path;

/// Parse `bytes` as a data file named `name` (the extension picks the format) and check what
/// `Dataset::parse_bytes` promises: either a one-line error, or a data set with n*d finite
/// features and labels in {-1, +1}.
pub fn check(name: &str, bytes: &[u8]) {
    match Dataset::parse_bytes(Path::new(name), bytes) {
        Ok(data) => {
            assert!(data.n > 0 && data.d > 0, "empty data set accepted");
            assert_eq!(data.x.len(), data.n * data.d, "x has the wrong length");
            assert_eq!(data.y.len(), data.n, "y has the wrong length");
            assert!(data.x.iter().all(|v| v.is_finite()), "non-finite feature accepted");
            assert!(data.y.iter().all(|&v| v == 1.0 || v == -1.0), "label outside {{-1, +1}}");
        }
        Err(e) => {
            assert!(!e.to_string().is_empty(), "empty error message");
        }
    }
}
