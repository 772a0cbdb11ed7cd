//! The shared conformance suite (busmq-testkit) against the in-memory backend.

// One Memory per test thread (libtest runs each case on a thread of its own): each case has
// its own paused clock, and a Memory shared by cases running at the same time would sweep every
// queue with whichever clock had run furthest ahead, expiring the others' queues and leases.
thread_local! {
    static MEMORY: busmq_memory::Memory = busmq_memory::Memory::new();
}

busmq_testkit::conformance!({
    busmq_testkit::FnBackend::new("memory", || {
        std::sync::Arc::new(MEMORY.with(busmq_memory::Memory::store))
    })
    .paused_clock()
    .model_cases(256)
});
