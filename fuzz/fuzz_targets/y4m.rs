//! A YUV4MPEG2 recording: its header line and frames.
#![no_main]

use facegate::source::FrameSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("facegate-fuzz-y4m-{}", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(mut clip) = facegate::source::recorded::Y4mFile::open(&path) {
        for _ in 0..8 {
            match clip.next_frame() {
                Ok(Some(_)) => {}
                Err(e) if e.is_recoverable() => {}
                _ => break,
            }
        }
    }
});
