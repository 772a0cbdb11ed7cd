//! libFuzzer entry for `busmq_core::fuzzing::headers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| busmq_core::fuzzing::headers(data));
