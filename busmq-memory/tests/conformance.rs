//! The shared conformance suite (busmq-testkit) against the in-memory backend.

busmq_testkit::conformance!({
    let memory = busmq_memory::Memory::new();
    busmq_testkit::FnBackend::new("memory", true, move || std::sync::Arc::new(memory.store()))
});
