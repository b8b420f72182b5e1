//! A Motion-JPEG recording: the splitter walks JPEG segments from a file.
#![no_main]

use facegate::source::FrameSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("facegate-fuzz-mjpeg-{}", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(mut clip) = facegate::source::recorded::MjpegFile::open(&path) {
        // Every frame takes at least two bytes of the file: the splitter must end by then.
        for _ in 0..data.len() / 2 + 2 {
            match clip.next_frame() {
                Ok(Some(_)) => {}
                Err(e) if e.is_recoverable() => {}
                _ => break,
            }
        }
    }
});
