//! The codec's typed error: which codec, which direction, which Rust type, and what went wrong.

use crate::Codec;

/// A message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be turned into bytes.
    #[error("{codec} codec could not encode a {type_name}: {message}")]
    Encode { codec: Codec, type_name: &'static str, message: String },
    /// The bytes do not decode into the requested type.
    #[error("{codec} codec could not decode the payload into a {type_name}: {message}")]
    Decode { codec: Codec, type_name: &'static str, message: String },
    /// A codec name in configuration is not one of `json`, `msgpack`, `raw`.
    #[error("unknown codec {name:?} (expected json, msgpack or raw)")]
    UnknownCodec { name: String },
}
