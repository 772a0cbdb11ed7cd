//! libFuzzer entry for `busmq_redis::fuzzing::script_reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| busmq_redis::fuzzing::script_reply(data));
