//! Round trips and error messages of every codec.

use super::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct V1 {
    id: u64,
    name: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct V2 {
    id: u64,
    name: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[test]
fn json_is_the_default() {
    assert_eq!(Codec::default(), Codec::Json);
    assert_eq!(
        Codec::Json.encode(&V1 { id: 1, name: "a".into() }).unwrap(),
        br#"{"id":1,"name":"a"}"#
    );
}

#[test]
fn msgpack_writes_structs_as_maps_so_added_fields_stay_compatible() {
    let v2 = V2 { id: 3, name: "n".into(), tags: vec!["x".into()] };
    let bytes = Codec::MessagePack.encode(&v2).unwrap();
    // An old consumer that does not know `tags` still decodes the new message.
    let old: V1 = Codec::MessagePack.decode(&bytes).unwrap();
    assert_eq!(old, V1 { id: 3, name: "n".into() });
    // A new consumer decodes messages from an old producer.
    let from_old = Codec::MessagePack.encode(&old).unwrap();
    let new: V2 = Codec::MessagePack.decode(&from_old).unwrap();
    assert_eq!(new.tags, Vec::<String>::new());
}

#[test]
fn raw_carries_strings_and_bytes_verbatim() {
    assert_eq!(Codec::Raw.encode("héllo").unwrap(), "héllo".as_bytes());
    assert_eq!(Codec::Raw.encode(&String::from("x")).unwrap(), b"x");
    assert_eq!(Codec::Raw.encode(&vec![0u8, 255, 7]).unwrap(), vec![0u8, 255, 7]);
    let b = bytes::Bytes::from_static(b"\x00\x01");
    assert_eq!(Codec::Raw.encode(&b).unwrap(), b"\x00\x01");
    assert_eq!(Codec::Raw.decode::<String>(b"abc").unwrap(), "abc");
    assert_eq!(Codec::Raw.decode::<Vec<u8>>(&[1, 2, 3]).unwrap(), vec![1, 2, 3]);
    assert_eq!(Codec::Raw.decode::<bytes::Bytes>(&[9]).unwrap(), bytes::Bytes::from_static(&[9]));
}

#[test]
fn raw_refuses_structured_values_and_names_them() {
    let err = Codec::Raw.encode(&V1 { id: 1, name: "a".into() }).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("raw codec could not encode"), "{text}");
    assert!(text.contains("the struct V1"), "{text}");
    assert!(Codec::Raw.encode(&5u32).unwrap_err().to_string().contains("not a number"));
}

#[test]
fn raw_reports_invalid_utf8_with_its_offset() {
    let err = Codec::Raw.decode::<String>(b"ab\xffcd").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not valid UTF-8"), "{text}");
    assert!(text.contains("offset 2"), "{text}");
    assert!(text.contains("alloc::string::String"), "{text}");
}

#[test]
fn decode_errors_name_the_codec_and_the_type() {
    let err = Codec::Json.decode::<V1>(b"{\"id\":\"x\"}").unwrap_err();
    assert!(matches!(err, CodecError::Decode { codec: Codec::Json, .. }));
    assert!(err.to_string().contains("json codec could not decode the payload into a"), "{err}");
    assert!(err.to_string().contains("V1"), "{err}");
    let err = Codec::MessagePack.decode::<V1>(b"\xc1").unwrap_err();
    assert!(err.to_string().starts_with("msgpack codec"), "{err}");
}

#[test]
fn encode_into_leaves_the_buffer_unchanged_on_error() {
    let mut buf = b"keep".to_vec();
    assert!(Codec::Raw.encode_into(&1u8, &mut buf).is_err());
    assert_eq!(buf, b"keep");
}

#[test]
fn codec_names_parse_back() {
    for c in [Codec::Json, Codec::MessagePack, Codec::Raw] {
        assert_eq!(c.name().parse::<Codec>().unwrap(), c);
    }
    assert!("yaml".parse::<Codec>().unwrap_err().to_string().contains("\"yaml\""));
}

proptest! {
    #[test]
    fn structured_codecs_round_trip(id in any::<u64>(), name in ".*") {
        let v = V1 { id, name };
        for codec in [Codec::Json, Codec::MessagePack] {
            let bytes = codec.encode(&v).unwrap();
            prop_assert_eq!(codec.decode::<V1>(&bytes).unwrap(), v.clone());
        }
    }

    #[test]
    fn raw_round_trips_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let bytes = Codec::Raw.encode(&data).unwrap();
        prop_assert_eq!(&bytes, &data);
        prop_assert_eq!(Codec::Raw.decode::<Vec<u8>>(&bytes).unwrap(), data);
    }
}
