//! The redis-server process harness (see mod docs once written).
