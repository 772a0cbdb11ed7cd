//! libFuzzer entry for `busmq_redis::fuzzing::object_reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| busmq_redis::fuzzing::object_reply(data));
