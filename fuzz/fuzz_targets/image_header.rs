//! An image file's bytes (frames from a folder, enrollment photos, photos sent by command).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = facegate::source::files::decode_image(data, std::path::Path::new("fuzz")) {
        let pixels = u64::from(image.width()) * u64::from(image.height());
        assert!(pixels <= facegate::source::files::MAX_PIXELS);
    }
});
