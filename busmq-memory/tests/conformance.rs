//! The shared conformance suite (busmq-testkit) against the in-memory backend.

busmq_testkit::conformance!({
    let memory = busmq_memory::Memory::new();
    busmq_testkit::FnBackend::new("memory", move || std::sync::Arc::new(memory.store()))
        .paused_clock()
        .model_cases(256)
});
