//! libFuzzer entry for `busmq_core::fuzzing::channel_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| busmq_core::fuzzing::channel_frame(data));
