use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use prost_reflect::prost::Message as _;
use prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
use prost_reflect::prost_types::{
    DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
    FileDescriptorProto, FileDescriptorSet, MessageOptions, OneofDescriptorProto,
};
use prost_reflect::{DescriptorPool, DynamicMessage, Value};

use crate::common::testing::{Rng, options};
use crate::{Decoded, decoder_for, encoder_for};

fn field(name: &str, number: i32, ty: Type, type_name: Option<&str>) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(ty as i32),
        type_name: type_name.map(str::to_string),
        json_name: Some(name.into()),
        ..Default::default()
    }
}

/// The descriptor set of `shop.Order` (and google.protobuf.Timestamp), as protoc
/// would write it for:
///
/// ```proto
/// syntax = "proto3";
/// package shop;
/// import "google/protobuf/timestamp.proto";
/// enum Status { NEW = 0; PAID = 1; }
/// message Item { string sku = 1; int32 qty = 2; }
/// message Order {
///   int64 id = 1; string customer = 2; double amount = 3; Status status = 4;
///   repeated string tags = 5; map<string, int32> counts = 6; Item item = 7;
///   google.protobuf.Timestamp created = 8; optional int32 discount = 9; bytes blob = 10;
/// }
/// ```
fn descriptor_set() -> Vec<u8> {
    let timestamp = FileDescriptorProto {
        name: Some("google/protobuf/timestamp.proto".into()),
        package: Some("google.protobuf".into()),
        syntax: Some("proto3".into()),
        message_type: vec![DescriptorProto {
            name: Some("Timestamp".into()),
            field: vec![
                field("seconds", 1, Type::Int64, None),
                field("nanos", 2, Type::Int32, None),
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut tags = field("tags", 5, Type::String, None);
    tags.label = Some(Label::Repeated as i32);
    let mut counts = field("counts", 6, Type::Message, Some(".shop.Order.CountsEntry"));
    counts.label = Some(Label::Repeated as i32);
    let mut discount = field("discount", 9, Type::Int32, None);
    discount.proto3_optional = Some(true);
    discount.oneof_index = Some(0);
    let shop = FileDescriptorProto {
        name: Some("shop.proto".into()),
        package: Some("shop".into()),
        syntax: Some("proto3".into()),
        dependency: vec!["google/protobuf/timestamp.proto".into()],
        enum_type: vec![EnumDescriptorProto {
            name: Some("Status".into()),
            value: vec![
                EnumValueDescriptorProto {
                    name: Some("NEW".into()),
                    number: Some(0),
                    ..Default::default()
                },
                EnumValueDescriptorProto {
                    name: Some("PAID".into()),
                    number: Some(1),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        message_type: vec![
            DescriptorProto {
                name: Some("Item".into()),
                field: vec![
                    field("sku", 1, Type::String, None),
                    field("qty", 2, Type::Int32, None),
                ],
                ..Default::default()
            },
            DescriptorProto {
                name: Some("Order".into()),
                field: vec![
                    field("id", 1, Type::Int64, None),
                    field("customer", 2, Type::String, None),
                    field("amount", 3, Type::Double, None),
                    field("status", 4, Type::Enum, Some(".shop.Status")),
                    tags,
                    counts,
                    field("item", 7, Type::Message, Some(".shop.Item")),
                    field(
                        "created",
                        8,
                        Type::Message,
                        Some(".google.protobuf.Timestamp"),
                    ),
                    discount,
                    field("blob", 10, Type::Bytes, None),
                ],
                nested_type: vec![DescriptorProto {
                    name: Some("CountsEntry".into()),
                    field: vec![
                        field("key", 1, Type::String, None),
                        field("value", 2, Type::Int32, None),
                    ],
                    options: Some(MessageOptions {
                        map_entry: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                oneof_decl: vec![OneofDescriptorProto {
                    name: Some("_discount".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    FileDescriptorSet {
        file: vec![timestamp, shop],
    }
    .encode_to_vec()
}

fn table() -> SchemaRef {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int32, true),
        ])),
        false,
    );
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("customer", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("status", DataType::Utf8, true),
        Field::new_list("tags", Field::new("item", DataType::Utf8, true), true),
        Field::new("counts", DataType::Map(Arc::new(entries), false), true),
        Field::new(
            "item",
            DataType::Struct(Fields::from(vec![
                Field::new("sku", DataType::Utf8, true),
                Field::new("qty", DataType::Int32, true),
            ])),
            true,
        ),
        Field::new(
            "created",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        Field::new("discount", DataType::Int32, true),
        Field::new("blob", DataType::Binary, true),
    ]))
}

struct Fixture {
    _file: tempfile::NamedTempFile,
    path: String,
}

fn fixture() -> Fixture {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&descriptor_set()).unwrap();
    let path = f.path().display().to_string();
    Fixture { _file: f, path }
}

fn pairs(fx: &Fixture) -> Vec<(&str, &str)> {
    vec![
        ("protobuf.descriptor-file", fx.path.as_str()),
        ("protobuf.message-name", "shop.Order"),
    ]
}

/// A message built with prost-reflect directly (not with Sluice's encoder).
fn order(id: i64, paid: bool, discount: Option<i32>) -> Vec<u8> {
    let pool = DescriptorPool::decode(descriptor_set().as_slice()).unwrap();
    let desc = pool.get_message_by_name("shop.Order").unwrap();
    let mut m = DynamicMessage::new(desc.clone());
    m.set_field_by_name("id", Value::I64(id));
    m.set_field_by_name("customer", Value::String(format!("c{id}")));
    m.set_field_by_name("amount", Value::F64(id as f64 * 1.5));
    m.set_field_by_name("status", Value::EnumNumber(i32::from(paid)));
    m.set_field_by_name(
        "tags",
        Value::List(vec![Value::String("a".into()), Value::String("b".into())]),
    );
    let mut counts = std::collections::HashMap::new();
    counts.insert(prost_reflect::MapKey::String("x".into()), Value::I32(7));
    m.set_field_by_name("counts", Value::Map(counts));
    let item_desc = pool.get_message_by_name("shop.Item").unwrap();
    let mut item = DynamicMessage::new(item_desc);
    item.set_field_by_name("sku", Value::String("sku-1".into()));
    item.set_field_by_name("qty", Value::I32(3));
    m.set_field_by_name("item", Value::Message(item));
    let ts_desc = pool
        .get_message_by_name("google.protobuf.Timestamp")
        .unwrap();
    let mut ts = DynamicMessage::new(ts_desc);
    ts.set_field_by_name("seconds", Value::I64(1_767_225_600));
    ts.set_field_by_name("nanos", Value::I32(123_000_000));
    m.set_field_by_name("created", Value::Message(ts));
    if let Some(d) = discount {
        m.set_field_by_name("discount", Value::I32(d));
    }
    m.set_field_by_name("blob", Value::Bytes(vec![0, 1, 2].into()));
    m.encode_to_vec()
}

fn decode(pairs: &[(&str, &str)], messages: &[Vec<u8>]) -> Decoded {
    let mut d = decoder_for("protobuf", &options(table(), pairs)).unwrap();
    for (i, m) in messages.iter().enumerate() {
        d.decode(m, "topic", i as u64).unwrap();
    }
    d.flush().unwrap()
}

fn text(batch: &RecordBatch) -> Vec<String> {
    let opts = datafusion::arrow::util::display::FormatOptions::default().with_null("NULL");
    (0..batch.num_rows())
        .map(|r| {
            batch
                .columns()
                .iter()
                .map(|c| {
                    datafusion::arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &opts)
                        .unwrap()
                        .value(r)
                        .to_string()
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

#[test]
fn messages_decode_into_every_column_type() {
    let fx = fixture();
    let out = decode(
        &pairs(&fx),
        &[order(1, true, Some(5)), order(2, false, None)],
    );
    assert!(out.dead_letters.is_empty(), "{:?}", out.dead_letters);
    let rows = text(&out.batch.unwrap());
    assert_eq!(
        rows,
        [
            "1 | c1 | 1.5 | PAID | [a, b] | {x: 7} | {sku: sku-1, qty: 3} | 2026-01-01T00:00:00.123 | 5 | 000102",
            "2 | c2 | 3.0 | NEW | [a, b] | {x: 7} | {sku: sku-1, qty: 3} | 2026-01-01T00:00:00.123 | NULL | 000102",
        ]
    );
    // With read-default-values an unset optional field reads as its default.
    let mut p = pairs(&fx);
    p.push(("protobuf.read-default-values", "true"));
    let rows = text(&decode(&p, &[order(2, false, None)]).batch.unwrap());
    assert!(rows[0].contains("| 0 | 000102"), "{rows:?}");
}

#[test]
fn rows_round_trip_through_the_encoder() {
    let fx = fixture();
    let first = decode(
        &pairs(&fx),
        &[order(1, true, Some(5)), order(2, false, None)],
    )
    .batch
    .unwrap();
    let mut e = encoder_for("protobuf", &options(table(), &pairs(&fx))).unwrap();
    let mut out = Vec::new();
    let mut ends = Vec::new();
    e.encode_each(&first, &mut out, &mut ends).unwrap();
    assert_eq!(ends.len(), 2);
    let messages = vec![out[..ends[0]].to_vec(), out[ends[0]..ends[1]].to_vec()];
    // What Sluice wrote is what prost-reflect wrote.
    assert_eq!(messages[1], order(2, false, None));
    let second = decode(&pairs(&fx), &messages).batch.unwrap();
    assert_eq!(second, first);
}

#[test]
fn bad_messages_are_dead_letters() {
    let fx = fixture();
    let good = order(1, true, Some(5));
    let mut messages = vec![good.clone()];
    for cut in 1..good.len() {
        messages.push(good[..cut].to_vec());
    }
    let mut rng = Rng::new(11);
    for _ in 0..300 {
        let n = rng.below(40) as usize;
        messages.push((0..n).map(|_| rng.next() as u8).collect());
    }
    let out = decode(&pairs(&fx), &messages);
    let rows = out.batch.as_ref().map_or(0, RecordBatch::num_rows);
    assert!(rows >= 1);
    assert_eq!(rows + out.dead_letters.len(), messages.len());
    assert!(
        out.dead_letters
            .iter()
            .all(|d| d.reason.contains("not a shop.Order message")),
        "{:?}",
        out.dead_letters.first()
    );
}

#[test]
fn option_mistakes_are_explained() {
    let fx = fixture();
    let not_a_set = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_a_set.path(), b"\xff\xff\xff").unwrap();
    let junk = not_a_set.path().display().to_string();
    type Case<'a> = (Vec<(&'a str, &'a str)>, SchemaRef, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("protobuf.message-name", "shop.Order")],
            table(),
            "descriptor-file' : is required",
        ),
        (
            vec![
                ("protobuf.descriptor-file", "/nonexistent.desc"),
                ("protobuf.message-name", "x"),
            ],
            table(),
            "cannot read",
        ),
        (
            vec![
                ("protobuf.descriptor-file", junk.as_str()),
                ("protobuf.message-name", "x"),
            ],
            table(),
            "not a descriptor set",
        ),
        (
            vec![
                ("protobuf.descriptor-file", fx.path.as_str()),
                ("protobuf.message-name", "shop.Nope"),
            ],
            table(),
            "it has: ",
        ),
        (
            pairs(&fx),
            Arc::new(Schema::new(vec![Field::new("nope", DataType::Int64, true)])),
            "not a field of shop.Order",
        ),
        (
            pairs(&fx),
            Arc::new(Schema::new(vec![Field::new(
                "customer",
                DataType::Int64,
                true,
            )])),
            "column 'customer' is BIGINT but field customer of shop.Order is string",
        ),
    ];
    for (p, schema, says) in cases {
        let e = decoder_for("protobuf", &options(schema, &p))
            .err()
            .unwrap()
            .to_string();
        let says = says.replace("' : ", "': ");
        assert!(e.contains(&says), "{p:?}: {e}");
    }
    // Flink's Java class name finds the message too.
    let p = vec![
        ("protobuf.descriptor-file", fx.path.as_str()),
        ("protobuf.message-class-name", "com.shop.Proto$Order"),
    ];
    assert!(decoder_for("protobuf", &options(table(), &p)).is_ok());
}
