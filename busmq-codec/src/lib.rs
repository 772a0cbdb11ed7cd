//! Message encodings for busmq: how a typed message becomes the bytes stored in a queue and back.
//!
//! Three codecs are offered:
//!
//! * [`Codec::Json`] (the default): readable, and what node busmq producers and consumers expect.
//! * [`Codec::MessagePack`] through `rmp-serde`, with structs written as **maps** (field names
//!   included), so that a producer that adds a field does not break a consumer that is still
//!   running the old type.
//! * [`Codec::Raw`]: the payload is the message itself. It carries only strings and byte buffers;
//!   decoding into a `String` checks UTF-8 and reports where it breaks.
//!
//! ```
//! use busmq_codec::Codec;
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Order { id: u32, item: String }
//!
//! let order = Order { id: 7, item: "tea".into() };
//! for codec in [Codec::Json, Codec::MessagePack] {
//!     let bytes = codec.encode(&order).unwrap();
//!     assert_eq!(codec.decode::<Order>(&bytes).unwrap(), order);
//! }
//! assert_eq!(Codec::Raw.encode("hello").unwrap(), b"hello");
//! ```

mod error;
mod raw;

pub use error::CodecError;

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// How messages are turned into bytes. Cheap to copy; pick one per bus or per queue handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// JSON text (serde_json). The default.
    #[default]
    Json,
    /// MessagePack (rmp-serde) with structs encoded as maps, so adding a field stays compatible.
    MessagePack,
    /// The payload is the message: only strings and byte buffers are accepted.
    Raw,
}

impl Codec {
    /// Short lowercase name, as used in error messages and configuration (`json`, `msgpack`, `raw`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Json => "json",
            Codec::MessagePack => "msgpack",
            Codec::Raw => "raw",
        }
    }

    /// Encodes `value` into a new buffer.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.encode_into(value, &mut out)?;
        Ok(out)
    }

    /// Appends the encoding of `value` to `out`. On error `out` is left as it was.
    pub fn encode_into<T: Serialize + ?Sized>(
        self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let start = out.len();
        let result = match self {
            Codec::Json => serde_json::to_writer(&mut *out, value).map_err(|e| e.to_string()),
            Codec::MessagePack => {
                let mut ser = rmp_serde::Serializer::new(&mut *out).with_struct_map();
                value.serialize(&mut ser).map_err(|e| e.to_string())
            }
            Codec::Raw => raw::encode_into(value, out).map_err(|e| e.0),
        };
        result.map_err(|message| {
            out.truncate(start);
            CodecError::Encode { codec: self, type_name: std::any::type_name::<T>(), message }
        })
    }

    /// Decodes a value of type `T` from `bytes`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        let decode_error = |message: String| CodecError::Decode {
            codec: self,
            type_name: std::any::type_name::<T>(),
            message,
        };
        match self {
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| decode_error(e.to_string())),
            Codec::MessagePack => {
                rmp_serde::from_slice(bytes).map_err(|e| decode_error(e.to_string()))
            }
            Codec::Raw => raw::decode(bytes).map_err(|e| match e {
                raw::RawError(message) => decode_error(message),
            }),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Codec {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Codec::Json),
            "msgpack" | "messagepack" => Ok(Codec::MessagePack),
            "raw" => Ok(Codec::Raw),
            other => Err(CodecError::UnknownCodec { name: other.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests;
