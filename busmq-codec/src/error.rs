//! The codec's typed error: which codec, which direction, which Rust type, and what went wrong.

use crate::Codec;

/// A message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be turned into bytes.
    #[error("{codec} codec could not encode a {type_name}: {message}")]
    Encode {
        /// The codec that failed.
        codec: Codec,
        /// The Rust type being encoded or decoded.
        type_name: &'static str,
        /// What happened, in words.
        message: String,
    },
    /// The bytes do not decode into the requested type.
    #[error("{codec} codec could not decode the payload into a {type_name}: {message}")]
    Decode {
        /// The codec that failed.
        codec: Codec,
        /// The Rust type being encoded or decoded.
        type_name: &'static str,
        /// What happened, in words.
        message: String,
    },
    /// A codec name in configuration is not one of `json`, `msgpack`, `raw`.
    #[error("unknown codec {name:?} (expected json, msgpack or raw)")]
    UnknownCodec {
        /// The name (shortened when long).
        name: String,
    },
}
