//! The interface crate against the contract as built: reads the metadata that
//! `cargo contract build` writes and checks every message, constructor, event and the
//! error enum of this crate against it. A contract that drifts from the interface (an
//! argument's type, a renamed message, an event field, an error variant) fails here, not
//! in a live call.
//!
//! Types are compared structurally, in a SCALE-equivalent way: both sides are resolved to
//! shapes (primitives, arrays, sequences, tuples, compacts, composites with field names,
//! variants with names, indices and fields), and a composite of one field is its field
//! (so ink!'s `AccountId` and this crate's `[u8; 32]` agree, as they do on the wire). One
//! side is this crate's own `scale_info::TypeInfo`, the other the metadata's registry.
//!
//! The metadata is `$SLOTPAY_CACHE/target/contract/ink/slotpay_channels.json`
//! (`SLOTPAY_CACHE` defaults to `~/.cache/slotpay`); `SLOTPAY_CONTRACT_METADATA` names
//! another file. Without a built contract (a plain `cargo test --workspace` on a fresh
//! checkout) the checks say so and pass vacuously; when `SLOTPAY_CONTRACT_METADATA` is
//! set (the test command sets it after building the contract) a missing file fails.
use interface::events::*;
use interface::messages::*;
use interface::Error;
use scale_info::form::PortableForm;
use scale_info::{PortableRegistry, Registry, TypeDef, TypeDefPrimitive, TypeInfo};
use serde_json::Value;
use std::path::PathBuf;

fn metadata_path() -> PathBuf {
    if let Some(path) = std::env::var_os("SLOTPAY_CONTRACT_METADATA") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("SLOTPAY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/slotpay")
        });
    cache.join("target/contract/ink/slotpay_channels.json")
}

struct Metadata {
    json: Value,
    types: PortableRegistry,
}

/// The metadata, or `None` (after saying why) when no contract was built and none was
/// asked for.
fn metadata() -> Option<Metadata> {
    let path = metadata_path();
    if std::env::var_os("SLOTPAY_CONTRACT_METADATA").is_none() && !path.exists() {
        eprintln!(
            "SKIPPED: no contract metadata at {} (build the contract, as scripts/test.sh does, \
             or set SLOTPAY_CONTRACT_METADATA)",
            path.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the contract's metadata at {}: {e}. Build the contract first \
             (cd contract && CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/contract cargo contract \
             build --release), or point SLOTPAY_CONTRACT_METADATA at its .json",
            path.display()
        )
    });
    let json: Value = serde_json::from_str(&text).expect("the metadata is JSON");
    let types = serde_json::from_value(serde_json::json!({ "types": json["types"] }))
        .expect("the metadata's type registry");
    Some(Metadata { json, types })
}

/// A composite's or a variant's fields: (name, shape).
type Fields = Vec<(Option<String>, Shape)>;

/// A type as SCALE encodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Primitive(&'static str),
    Array(u32, Box<Shape>),
    Sequence(Box<Shape>),
    Tuple(Vec<Shape>),
    Compact(Box<Shape>),
    Composite(Fields),
    /// (index, name, fields)
    Variant(Vec<(u8, String, Fields)>),
    BitSequence,
}

fn primitive(p: &TypeDefPrimitive) -> &'static str {
    match p {
        TypeDefPrimitive::Bool => "bool",
        TypeDefPrimitive::Char => "char",
        TypeDefPrimitive::Str => "str",
        TypeDefPrimitive::U8 => "u8",
        TypeDefPrimitive::U16 => "u16",
        TypeDefPrimitive::U32 => "u32",
        TypeDefPrimitive::U64 => "u64",
        TypeDefPrimitive::U128 => "u128",
        TypeDefPrimitive::U256 => "u256",
        TypeDefPrimitive::I8 => "i8",
        TypeDefPrimitive::I16 => "i16",
        TypeDefPrimitive::I32 => "i32",
        TypeDefPrimitive::I64 => "i64",
        TypeDefPrimitive::I128 => "i128",
        TypeDefPrimitive::I256 => "i256",
    }
}

/// The shape of type `id` in `registry`.
fn shape(registry: &PortableRegistry, id: u32) -> Shape {
    shape_at(registry, id, 0)
}

fn shape_at(registry: &PortableRegistry, id: u32, depth: usize) -> Shape {
    assert!(depth < 64, "type {id} nests too deep (recursive?)");
    let ty = registry
        .resolve(id)
        .unwrap_or_else(|| panic!("type {id} is not in the registry"));
    let fields = |fields: &[scale_info::Field<PortableForm>]| -> Fields {
        fields
            .iter()
            .map(|f| (f.name.clone(), shape_at(registry, f.ty.id, depth + 1)))
            .collect()
    };
    match &ty.type_def {
        TypeDef::Primitive(p) => Shape::Primitive(primitive(p)),
        TypeDef::Array(a) => Shape::Array(
            a.len,
            Box::new(shape_at(registry, a.type_param.id, depth + 1)),
        ),
        TypeDef::Sequence(s) => {
            Shape::Sequence(Box::new(shape_at(registry, s.type_param.id, depth + 1)))
        }
        TypeDef::Tuple(t) => Shape::Tuple(
            t.fields
                .iter()
                .map(|f| shape_at(registry, f.id, depth + 1))
                .collect(),
        ),
        TypeDef::Compact(c) => {
            Shape::Compact(Box::new(shape_at(registry, c.type_param.id, depth + 1)))
        }
        TypeDef::Composite(c) => {
            let mut fields = fields(&c.fields);
            // A composite of one field encodes as that field.
            if fields.len() == 1 {
                fields.remove(0).1
            } else {
                Shape::Composite(fields)
            }
        }
        TypeDef::Variant(v) => Shape::Variant(
            v.variants
                .iter()
                .map(|variant| (variant.index, variant.name.clone(), fields(&variant.fields)))
                .collect(),
        ),
        TypeDef::BitSequence(_) => Shape::BitSequence,
    }
}

/// The shape of this crate's `T`, and its own registry.
fn interface_type<T: TypeInfo + 'static>() -> (PortableRegistry, u32) {
    let mut registry = Registry::new();
    let id = registry.register_type(&scale_info::meta_type::<T>()).id;
    (registry.into(), id)
}

fn interface_shape<T: TypeInfo + 'static>() -> Shape {
    let (registry, id) = interface_type::<T>();
    shape(&registry, id)
}

fn type_id(v: &Value) -> u32 {
    v["type"]
        .as_u64()
        .unwrap_or_else(|| panic!("no type id in {v}")) as u32
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::from("0x");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `Result<T, E>`'s variants, as (ok, err).
fn result_parts(what: &str, result: Shape) -> (Shape, Shape) {
    match result {
        Shape::Variant(variants) => {
            let mut ok = None;
            let mut err = None;
            for (_, name, mut fields) in variants {
                assert_eq!(fields.len(), 1, "{what}: {name} has one field");
                match name.as_str() {
                    "Ok" => ok = Some(fields.remove(0).1),
                    "Err" => err = Some(fields.remove(0).1),
                    other => panic!("{what}: {other} is not a Result variant"),
                }
            }
            (
                ok.unwrap_or_else(|| panic!("{what}: no Ok")),
                err.unwrap_or_else(|| panic!("{what}: no Err")),
            )
        }
        other => panic!("{what}: {other:?} is not a Result"),
    }
}

/// The message's arguments as the interface declares them: its struct's fields.
fn declared_args<M: TypeInfo + 'static>() -> Vec<(String, Shape)> {
    let (registry, id) = interface_type::<M>();
    let ty = registry.resolve(id).expect("registered");
    match &ty.type_def {
        TypeDef::Composite(c) => c
            .fields
            .iter()
            .map(|f| {
                (
                    f.name.clone().expect("message arguments are named fields"),
                    shape(&registry, f.ty.id),
                )
            })
            .collect(),
        other => panic!("a message type is a struct, not {other:?}"),
    }
}

fn find<'a>(list: &'a Value, what: &str, label: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("no {what} list in the metadata"))
        .iter()
        .find(|item| item["label"] == label)
        .unwrap_or_else(|| panic!("the contract has no {what} labelled {label:?}"))
}

fn check_args<M: TypeInfo + 'static>(m: &Metadata, label: &str, spec: &Value) {
    let args: Vec<(String, Shape)> = spec["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| {
            (
                a["label"].as_str().expect("arg label").to_string(),
                shape(&m.types, type_id(&a["type"])),
            )
        })
        .collect();
    let declared = declared_args::<M>();
    let names = |v: &[(String, Shape)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&args),
        names(&declared),
        "{label}: argument labels (contract vs interface)"
    );
    for ((name, on_chain), (_, interface)) in args.iter().zip(&declared) {
        assert_eq!(
            on_chain, interface,
            "{label}: argument {name}'s type (contract vs interface)"
        );
    }
}

fn check_message<M>(m: &Metadata) -> String
where
    M: Message + TypeInfo + 'static,
    M::Output: TypeInfo + 'static,
{
    let spec = find(&m.json["spec"]["messages"], "message", M::LABEL);
    let label = M::LABEL;
    assert_eq!(
        spec["selector"].as_str(),
        Some(hex(&selector(label)).as_str()),
        "{label}: selector"
    );
    assert_eq!(
        spec["payable"].as_bool(),
        Some(M::PAYABLE),
        "{label}: payable"
    );
    assert_eq!(
        spec["mutates"].as_bool(),
        Some(M::MUTATES),
        "{label}: mutates"
    );
    check_args::<M>(m, label, spec);
    // ink! wraps every output in MessageResult = Result<Output, LangError>.
    let returned = shape(&m.types, type_id(&spec["returnType"]));
    let (output, _lang_error) = result_parts(label, returned);
    assert_eq!(
        output,
        interface_shape::<M::Output>(),
        "{label}: return type (contract vs interface)"
    );
    label.to_string()
}

fn check_constructor<M>(m: &Metadata) -> String
where
    M: Message + TypeInfo + 'static,
    M::Output: TypeInfo + 'static,
{
    let spec = find(&m.json["spec"]["constructors"], "constructor", M::LABEL);
    let label = M::LABEL;
    assert_eq!(
        spec["selector"].as_str(),
        Some(hex(&selector(label)).as_str()),
        "{label}: selector"
    );
    assert_eq!(
        spec["payable"].as_bool(),
        Some(M::PAYABLE),
        "{label}: payable"
    );
    check_args::<M>(m, label, spec);
    let returned = shape(&m.types, type_id(&spec["returnType"]));
    let (output, _lang_error) = result_parts(label, returned);
    assert_eq!(
        output,
        interface_shape::<M::Output>(),
        "{label}: return type"
    );
    label.to_string()
}

fn check_event<E: ContractEvent + TypeInfo + 'static>(m: &Metadata) -> String {
    let (registry, id) = interface_type::<E>();
    let ty = registry.resolve(id).expect("registered");
    let name = ty.path.ident().expect("an event is a named struct");
    let spec = find(&m.json["spec"]["events"], "event", &name);
    assert_eq!(
        spec["signature_topic"].as_str(),
        Some(hex(&E::signature_topic()).as_str()),
        "{name}: signature topic (is SIGNATURE \"{}\" the fields' types as written?)",
        E::SIGNATURE
    );
    let declared: Vec<(String, Shape, bool)> = match &ty.type_def {
        TypeDef::Composite(c) => c
            .fields
            .iter()
            .map(|f| {
                let field = f.name.clone().expect("named fields");
                let indexed = E::TOPICS.contains(&field.as_str());
                (field, shape(&registry, f.ty.id), indexed)
            })
            .collect(),
        other => panic!("{name}: an event is a struct, not {other:?}"),
    };
    let on_chain: Vec<(String, Shape, bool)> = spec["args"]
        .as_array()
        .expect("event args")
        .iter()
        .map(|a| {
            (
                a["label"].as_str().expect("label").to_string(),
                shape(&m.types, type_id(&a["type"])),
                a["indexed"].as_bool().expect("indexed"),
            )
        })
        .collect();
    let labels = |v: &[(String, Shape, bool)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(labels(&on_chain), labels(&declared), "{name}: field labels");
    for (chain, interface) in on_chain.iter().zip(&declared) {
        assert_eq!(chain.1, interface.1, "{name}: field {}'s type", chain.0);
        assert_eq!(
            chain.2, interface.2,
            "{name}: whether field {} is a topic",
            chain.0
        );
    }
    name
}

#[test]
fn the_contract_implements_the_interface() {
    let Some(m) = metadata() else { return };
    let constructors = [check_constructor::<New>(&m)];
    let messages = [
        check_message::<Open>(&m),
        check_message::<TopUp>(&m),
        check_message::<Extend>(&m),
        check_message::<Rotate>(&m),
        check_message::<Settle>(&m),
        check_message::<Close>(&m),
        check_message::<ClaimExpired>(&m),
        check_message::<Withdraw>(&m),
        check_message::<GetChannel>(&m),
        check_message::<Owed>(&m),
        check_message::<GetDomain>(&m),
        check_message::<NextChannelId>(&m),
    ];
    let events = [
        check_event::<Opened>(&m),
        check_event::<ToppedUp>(&m),
        check_event::<Extended>(&m),
        check_event::<RotationAnnounced>(&m),
        check_event::<Settled>(&m),
        check_event::<Closed>(&m),
        check_event::<ExpiredClaimed>(&m),
        check_event::<PaymentDeferred>(&m),
        check_event::<Withdrawn>(&m),
    ];
    // Nothing on the contract that the interface does not know.
    for (list, known, what) in [
        ("constructors", &constructors[..], "constructor"),
        ("messages", &messages[..], "message"),
        ("events", &events[..], "event"),
    ] {
        for item in m.json["spec"][list].as_array().expect("list") {
            let label = item["label"].as_str().expect("label");
            assert!(
                known.iter().any(|k| k == label),
                "the contract's {what} {label:?} is not in the interface"
            );
        }
    }
}

/// The error every fallible message returns is the interface's, variant for variant
/// (name, index, fields), checked on `open`'s `Result<ChannelId, Error>`.
#[test]
fn the_contracts_error_is_the_interfaces() {
    let Some(m) = metadata() else { return };
    let open = find(&m.json["spec"]["messages"], "message", Open::LABEL);
    let (output, _) = result_parts("open", shape(&m.types, type_id(&open["returnType"])));
    let (_, error) = result_parts("open's output", output);
    let names = |shape: &Shape| match shape {
        Shape::Variant(v) => v
            .iter()
            .map(|(i, name, _)| format!("{i}:{name}"))
            .collect::<Vec<_>>(),
        other => panic!("the error is an enum, not {other:?}"),
    };
    let interface = interface_shape::<Error>();
    assert_eq!(names(&error), names(&interface), "the error's variants");
    assert_eq!(error, interface);
}

/// The comparison is not vacuous: shapes tell apart what the wire tells apart.
#[test]
fn shapes_tell_types_apart() {
    assert_ne!(interface_shape::<u32>(), interface_shape::<u64>());
    assert_ne!(interface_shape::<[u8; 32]>(), interface_shape::<[u8; 33]>());
    assert_ne!(
        interface_shape::<Option<u32>>(),
        interface_shape::<Result<u32, ()>>()
    );
    assert_eq!(
        interface_shape::<interface::ChannelId>(),
        interface_shape::<u64>()
    );
    assert_ne!(
        interface_shape::<interface::Authority>(),
        interface_shape::<Option<[u8; 32]>>()
    );
}
