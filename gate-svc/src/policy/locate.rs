//! Line and column numbers of nodes in the policy YAML.
//!
//! `serde_yaml_ng` 0.10 gives a node's position only as the location of an error raised while
//! that node is deserialized, and parsing into a `Value` keeps no positions. So the walkers here
//! deserialize the document again and raise an error at the node they look for: [`locate`] at a
//! node that validation rejected, and [`find_duplicate_key`] at the second occurrence of a key.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;

use serde::de::{self, DeserializeSeed, EnumAccess, IgnoredAny, MapAccess, SeqAccess, VariantAccess, Visitor};

/// A 1-based line and column in the policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl From<&serde_yaml_ng::Location> for Position {
    fn from(location: &serde_yaml_ng::Location) -> Self {
        Position {
            line: location.line(),
            column: location.column(),
        }
    }
}

/// One step from a YAML node to a node inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// The value of the mapping entry at this index, counted from 0 in document order.
    Value(usize),
    /// The key of the mapping entry at this index. Only the last step may be a key.
    Key(usize),
    /// The sequence item at this index.
    Item(usize),
}

/// A field of the policy: its name in messages, such as `environments.prod.require[0]`, and
/// the steps from the document root to its node.
#[derive(Debug, Clone, Default)]
pub(super) struct Field {
    pub name: String,
    pub steps: Vec<Step>,
}

impl Field {
    /// Returns the value of the mapping entry `key`, the `index`th entry of this mapping.
    pub fn value(&self, key: &str, index: usize) -> Field {
        self.child(key, Step::Value(index))
    }

    /// Returns the key of the mapping entry `key`, the `index`th entry of this mapping.
    pub fn key(&self, key: &str, index: usize) -> Field {
        self.child(key, Step::Key(index))
    }

    /// Returns this field, pointing at the key of the `index`th entry of its mapping, for a
    /// key that cannot be named, such as a number where a name is required.
    pub fn at_key(&self, index: usize) -> Field {
        let mut steps = self.steps.clone();
        steps.push(Step::Key(index));
        Field {
            name: self.name.clone(),
            steps,
        }
    }

    /// Returns the sequence item at `index`.
    pub fn item(&self, index: usize) -> Field {
        let mut steps = self.steps.clone();
        steps.push(Step::Item(index));
        Field {
            name: format!("{}[{index}]", self.name),
            steps,
        }
    }

    /// Returns a field named `key` in this mapping that points at the mapping itself, for a
    /// key that is missing.
    pub fn missing(&self, key: &str) -> Field {
        Field {
            name: self.child_name(key),
            steps: self.steps.clone(),
        }
    }

    fn child(&self, key: &str, step: Step) -> Field {
        let mut steps = self.steps.clone();
        steps.push(step);
        Field {
            name: self.child_name(key),
            steps,
        }
    }

    fn child_name(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.name)
        }
    }
}

/// Returns the position of the node that `steps` lead to in `bytes`. When a step does not
/// exist, such as the value of a missing key, returns the position of the last node on the
/// way. Returns `None` only when `serde_yaml_ng` gives no location, which does not happen for a
/// document that parsed.
pub(super) fn locate(bytes: &[u8], steps: &[Step]) -> Option<Position> {
    let deserializer = serde_yaml_ng::Deserializer::from_slice(bytes);
    match (Locator { steps }).deserialize(deserializer) {
        Ok(never) => match never {},
        Err(error) => error.location().map(|location| Position::from(&location)),
    }
}

/// Walks along `steps` and raises an error at the node they lead to. Scalars, nulls and tagged
/// nodes use serde's default visitor methods, which raise an invalid-type error, and so mark the
/// node's position as well.
struct Locator<'a> {
    steps: &'a [Step],
}

fn found<E: de::Error>() -> E {
    E::custom("node found")
}

impl<'de> DeserializeSeed<'de> for Locator<'_> {
    type Value = Infallible;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Infallible, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locator<'_> {
    type Value = Infallible;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("the node to locate")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Infallible, A::Error> {
        if let Some((Step::Item(index), rest)) = self.steps.split_first() {
            for _ in 0..*index {
                if sequence.next_element::<IgnoredAny>()?.is_none() {
                    return Err(found());
                }
            }
            if let Some(never) = sequence.next_element_seed(Locator { steps: rest })? {
                match never {}
            }
        }
        Err(found())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut mapping: A) -> Result<Infallible, A::Error> {
        let (index, rest, at_key) = match self.steps.split_first() {
            Some((Step::Value(index), rest)) => (*index, rest, false),
            Some((Step::Key(index), rest)) => (*index, rest, true),
            _ => return Err(found()),
        };
        for _ in 0..index {
            if mapping.next_entry::<IgnoredAny, IgnoredAny>()?.is_none() {
                return Err(found());
            }
        }
        if at_key {
            if let Some(never) = mapping.next_key_seed(Locator { steps: &[] })? {
                match never {}
            }
        } else if mapping.next_key::<IgnoredAny>()?.is_some() {
            match mapping.next_value_seed(Locator { steps: rest })? {}
        }
        Err(found())
    }
}

/// A key that appears twice in one mapping.
#[derive(Debug)]
pub(super) struct DuplicateKey {
    /// The field the key names, such as `environments.prod`.
    pub field: String,
    /// The second occurrence of the key.
    pub position: Option<Position>,
    /// The first occurrence of the key.
    pub first: Option<Position>,
}

/// Returns the first key that appears twice in one mapping of the document, in document
/// order.
///
/// # Errors
///
/// The `serde_yaml_ng` error when the bytes are not one valid YAML document.
pub(super) fn find_duplicate_key(bytes: &[u8]) -> Result<Option<DuplicateKey>, serde_yaml_ng::Error> {
    let duplicate = RefCell::new(None);
    let checker = KeyChecker {
        field: Field::default(),
        duplicate: &duplicate,
    };
    let result = checker.deserialize(serde_yaml_ng::Deserializer::from_slice(bytes));
    match (result, duplicate.into_inner()) {
        (Ok(()), _) => Ok(None),
        (Err(error), Some(found)) => Ok(Some(DuplicateKey {
            field: found.field,
            position: error.location().map(|location| Position::from(&location)),
            first: locate(bytes, &found.first),
        })),
        (Err(error), None) => Err(error),
    }
}

/// The duplicate key that [`KeyChecker`] found, recorded beside the error that stops the walk.
struct FoundDuplicate {
    field: String,
    first: Vec<Step>,
}

/// Walks every node and raises an error at the second occurrence of a key in a mapping.
struct KeyChecker<'a> {
    field: Field,
    duplicate: &'a RefCell<Option<FoundDuplicate>>,
}

impl<'de> DeserializeSeed<'de> for KeyChecker<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyChecker<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    /// Checks the value under the tag of a tagged node, such as `!custom value`.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (IgnoredAny, content) = data.variant::<IgnoredAny>()?;
        content.newtype_variant_seed(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let item = KeyChecker {
                field: self.field.item(index),
                duplicate: self.duplicate,
            };
            if sequence.next_element_seed(item)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut mapping: A) -> Result<(), A::Error> {
        let mut seen: BTreeMap<KeyText, usize> = BTreeMap::new();
        let mut index = 0;
        loop {
            let key_seed = KeySeed {
                mapping: &self,
                seen: &seen,
                index,
            };
            let Some(key) = mapping.next_key_seed(key_seed)? else {
                return Ok(());
            };
            let value = KeyChecker {
                field: self.field.value(&key.to_string(), index),
                duplicate: self.duplicate,
            };
            mapping.next_value_seed(value)?;
            seen.entry(key).or_insert(index);
            index += 1;
        }
    }
}

/// A mapping key as far as duplicates go: YAML scalars that parse to equal values are equal
/// keys, as in `serde_yaml_ng`'s `Mapping`. Sequences, mappings and tagged values as keys are
/// never compared, because validation rejects them anyway.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum KeyText {
    Null,
    Bool(bool),
    Integer(i128),
    /// The bits of an `f64`.
    Float(u64),
    String(String),
    Complex(usize),
}

impl fmt::Display for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyText::Null => f.write_str("null"),
            KeyText::Bool(value) => write!(f, "{value}"),
            KeyText::Integer(value) => write!(f, "{value}"),
            KeyText::Float(bits) => write!(f, "{}", f64::from_bits(*bits)),
            KeyText::String(value) => f.write_str(value),
            KeyText::Complex(_) => f.write_str("?"),
        }
    }
}

/// Reads one key of a mapping and raises an error, at the key, when the mapping has it already.
struct KeySeed<'a, 'b> {
    mapping: &'a KeyChecker<'b>,
    seen: &'a BTreeMap<KeyText, usize>,
    /// The key's entry index in the mapping.
    index: usize,
}

impl KeySeed<'_, '_> {
    fn check<E: de::Error>(self, key: KeyText) -> Result<KeyText, E> {
        let Some(first) = self.seen.get(&key) else {
            return Ok(key);
        };
        let mut first_steps = self.mapping.field.steps.clone();
        first_steps.push(Step::Key(*first));
        *self.mapping.duplicate.borrow_mut() = Some(FoundDuplicate {
            field: self.mapping.field.key(&key.to_string(), self.index).name,
            first: first_steps,
        });
        Err(E::custom("duplicate key"))
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = KeyText;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<KeyText, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = KeyText;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a mapping key")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<KeyText, E> {
        self.check(KeyText::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<KeyText, E> {
        self.check(KeyText::Integer(i128::from(value)))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<KeyText, E> {
        self.check(KeyText::Integer(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<KeyText, E> {
        self.check(KeyText::Integer(i128::from(value)))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<KeyText, E> {
        // A key above i128::MAX is never compared, like a complex key.
        match i128::try_from(value) {
            Ok(value) => self.check(KeyText::Integer(value)),
            Err(_) => Ok(KeyText::Complex(self.index)),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<KeyText, E> {
        self.check(KeyText::Float(value.to_bits()))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<KeyText, E> {
        self.check(KeyText::String(value.to_owned()))
    }

    fn visit_none<E: de::Error>(self) -> Result<KeyText, E> {
        self.check(KeyText::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
        self.check(KeyText::Null)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<KeyText, A::Error> {
        let (IgnoredAny, content) = data.variant::<IgnoredAny>()?;
        content.newtype_variant::<IgnoredAny>()?;
        Ok(KeyText::Complex(self.index))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<KeyText, A::Error> {
        while sequence.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyText::Complex(self.index))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut mapping: A) -> Result<KeyText, A::Error> {
        while mapping.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(KeyText::Complex(self.index))
    }
}
