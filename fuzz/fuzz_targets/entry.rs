//! libFuzzer entry for `busmq_redis::fuzzing::entry`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| busmq_redis::fuzzing::entry(data));
