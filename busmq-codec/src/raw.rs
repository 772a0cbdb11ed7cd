//! The raw codec: a message that is a string or a byte buffer is stored as exactly those bytes.
//!
//! It is written as a tiny serde serializer and deserializer so that the same typed API
//! (`push(&msg)`, `consume::<T>()`) works for raw payloads: `String`, `&str`, `Vec<u8>`,
//! `bytes::Bytes` and newtypes around them are accepted, anything structured is refused with an
//! error that says what was given.

use serde::de::{self, Visitor};
use serde::ser::{self, Impossible, Serialize};
use std::fmt;

#[derive(Debug)]
pub(crate) struct RawError(pub(crate) String);

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RawError {}

impl ser::Error for RawError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        RawError(msg.to_string())
    }
}

impl de::Error for RawError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        RawError(msg.to_string())
    }
}

fn refuse(kind: &str) -> RawError {
    RawError(format!("the raw codec carries only strings and bytes, not {kind}"))
}

pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), RawError> {
    value.serialize(RawSerializer { out })
}

pub(crate) fn decode<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, RawError> {
    T::deserialize(RawDeserializer { bytes })
}

struct RawSerializer<'a> {
    out: &'a mut Vec<u8>,
}

/// Collects the elements of a `Vec<u8>` / `[u8; N]`, which serde presents as a sequence of u8.
struct ByteSeq<'a> {
    out: &'a mut Vec<u8>,
}

struct ByteOnly<'a> {
    out: &'a mut Vec<u8>,
}

macro_rules! refuse_scalars {
    ($($method:ident($ty:ty) => $kind:expr;)*) => {
        $(fn $method(self, _v: $ty) -> Result<(), RawError> { Err(refuse($kind)) })*
    };
}

impl<'a> ser::Serializer for RawSerializer<'a> {
    type Ok = ();
    type Error = RawError;
    type SerializeSeq = ByteSeq<'a>;
    type SerializeTuple = ByteSeq<'a>;
    type SerializeTupleStruct = Impossible<(), RawError>;
    type SerializeTupleVariant = Impossible<(), RawError>;
    type SerializeMap = Impossible<(), RawError>;
    type SerializeStruct = Impossible<(), RawError>;
    type SerializeStructVariant = Impossible<(), RawError>;

    refuse_scalars! {
        serialize_bool(bool) => "a boolean";
        serialize_i8(i8) => "a number";
        serialize_i16(i16) => "a number";
        serialize_i32(i32) => "a number";
        serialize_i64(i64) => "a number";
        serialize_u8(u8) => "a number";
        serialize_u16(u16) => "a number";
        serialize_u32(u32) => "a number";
        serialize_u64(u64) => "a number";
        serialize_f32(f32) => "a number";
        serialize_f64(f64) => "a number";
    }

    fn serialize_char(self, v: char) -> Result<(), RawError> {
        let mut buf = [0u8; 4];
        self.out.extend_from_slice(v.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), RawError> {
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), RawError> {
        self.out.extend_from_slice(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), RawError> {
        Err(refuse("an empty Option"))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), RawError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), RawError> {
        Err(refuse("a unit value"))
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<(), RawError> {
        Err(refuse(&format!("the unit struct {name}")))
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), RawError> {
        Err(refuse(&format!("the enum variant {name}::{variant}")))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), RawError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<(), RawError> {
        Err(refuse(&format!("the enum variant {name}::{variant}")))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<ByteSeq<'a>, RawError> {
        self.out.reserve(len.unwrap_or(0));
        Ok(ByteSeq { out: self.out })
    }

    fn serialize_tuple(self, len: usize) -> Result<ByteSeq<'a>, RawError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, RawError> {
        Err(refuse(&format!("the tuple struct {name}")))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, RawError> {
        Err(refuse(&format!("the enum variant {name}::{variant}")))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, RawError> {
        Err(refuse("a map"))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, RawError> {
        Err(refuse(&format!("the struct {name}")))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, RawError> {
        Err(refuse(&format!("the enum variant {name}::{variant}")))
    }
}

impl ser::SerializeSeq for ByteSeq<'_> {
    type Ok = ();
    type Error = RawError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RawError> {
        value.serialize(ByteOnly { out: self.out })
    }

    fn end(self) -> Result<(), RawError> {
        Ok(())
    }
}

impl ser::SerializeTuple for ByteSeq<'_> {
    type Ok = ();
    type Error = RawError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RawError> {
        value.serialize(ByteOnly { out: self.out })
    }

    fn end(self) -> Result<(), RawError> {
        Ok(())
    }
}

fn not_a_byte() -> RawError {
    refuse("a sequence of anything but bytes")
}

macro_rules! not_byte_scalars {
    ($($method:ident($ty:ty);)*) => {
        $(fn $method(self, _v: $ty) -> Result<(), RawError> { Err(not_a_byte()) })*
    };
}

impl ser::Serializer for ByteOnly<'_> {
    type Ok = ();
    type Error = RawError;
    type SerializeSeq = Impossible<(), RawError>;
    type SerializeTuple = Impossible<(), RawError>;
    type SerializeTupleStruct = Impossible<(), RawError>;
    type SerializeTupleVariant = Impossible<(), RawError>;
    type SerializeMap = Impossible<(), RawError>;
    type SerializeStruct = Impossible<(), RawError>;
    type SerializeStructVariant = Impossible<(), RawError>;

    fn serialize_u8(self, v: u8) -> Result<(), RawError> {
        self.out.push(v);
        Ok(())
    }

    not_byte_scalars! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
    }

    fn serialize_none(self) -> Result<(), RawError> {
        Err(not_a_byte())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), RawError> {
        Err(not_a_byte())
    }
    fn serialize_unit(self) -> Result<(), RawError> {
        Err(not_a_byte())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), RawError> {
        Err(not_a_byte())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), RawError> {
        Err(not_a_byte())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _value: &T,
    ) -> Result<(), RawError> {
        Err(not_a_byte())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), RawError> {
        Err(not_a_byte())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, RawError> {
        Err(not_a_byte())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, RawError> {
        Err(not_a_byte())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, RawError> {
        Err(not_a_byte())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, RawError> {
        Err(not_a_byte())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, RawError> {
        Err(not_a_byte())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, RawError> {
        Err(not_a_byte())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, RawError> {
        Err(not_a_byte())
    }
}

struct RawDeserializer<'de> {
    bytes: &'de [u8],
}

impl<'de> RawDeserializer<'de> {
    fn utf8(&self) -> Result<&'de str, RawError> {
        std::str::from_utf8(self.bytes).map_err(|e| {
            RawError(format!(
                "the payload is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ))
        })
    }
}

impl<'de> de::Deserializer<'de> for RawDeserializer<'de> {
    type Error = RawError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_borrowed_bytes(self.bytes)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_borrowed_str(self.utf8()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_borrowed_bytes(self.bytes)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_byte_buf(self.bytes.to_vec())
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_seq(de::value::SeqDeserializer::new(self.bytes.iter().copied()))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, RawError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 unit unit_struct tuple
        tuple_struct map struct enum identifier ignored_any
    }
}
