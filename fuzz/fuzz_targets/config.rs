//! A config file's text, as `check-config` and `run` read it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = facegate::config::check(text, std::path::Path::new("/nonexistent"));
    }
});
