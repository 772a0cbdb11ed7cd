//! libFuzzer entry for `busmq_core::fuzzing::traceparent`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| busmq_core::fuzzing::traceparent(data));
