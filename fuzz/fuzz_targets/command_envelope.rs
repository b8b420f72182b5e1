//! A request as it arrives from the broker: the envelope, the request inside, the signature.
#![no_main]

use facegate::command::{CommandKey, Gate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut gate = Gate::new(CommandKey::from_bytes(b"0123456789abcdef-fuzz"), 60.0);
    // Nothing the fuzzer makes carries a valid HMAC of this key.
    assert!(
        gate.check("facegate/door/request/enroll", data, 1000.0)
            .is_err()
    );
});
