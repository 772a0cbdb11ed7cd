//! libFuzzer entry for `busmq_core::fuzzing::service_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| busmq_core::fuzzing::service_frame(data));
