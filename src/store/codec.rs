//! Stored values: one format-version byte, then bincode (standard config).
//!
//! Storage structs are separate from wire structs: bincode silently mis-handles
//! `skip_serializing_if`, `flatten` and tagged enums, and cannot hold
//! `serde_json::Value`, so free-form JSON is stored as text.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// Bumped when the encoding of rows changes; old rows can then be migrated lazily.
pub const FORMAT_VERSION: u8 = 1;
/// No stored row is larger than this; a corrupt length prefix cannot make us allocate more.
const MAX_VALUE_BYTES: usize = 64 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_VALUE_BYTES>()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes a row of `table`; any mismatch is a typed `Corrupt` error, never a panic.
pub fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    let body = body(table, bytes)?;
    let (value, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| corrupt(table, e.to_string()))?;
    if used != body.len() {
        return Err(corrupt(
            table,
            format!("{} trailing bytes", body.len() - used),
        ));
    }
    Ok(value)
}

/// Decodes a row into a view that borrows its strings from `bytes` (no copies).
pub fn decode_borrowed<'a, T: serde::Deserialize<'a>>(
    table: &'static str,
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    bincode::serde::borrow_decode_from_slice(body(table, bytes)?, config())
        .map(|(value, _)| value)
        .map_err(|e| corrupt(table, e.to_string()))
}

/// Decodes the leading fields of a row: `T`'s fields must be a prefix of the stored
/// struct's, in order. Lets hot reads skip a row's large tail (a task's `task_data`).
pub fn decode_prefix<T: DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    bincode::serde::decode_from_slice(body(table, bytes)?, config())
        .map(|(value, _)| value)
        .map_err(|e| corrupt(table, e.to_string()))
}

/// The bincode part of a stored value, after checking its format-version byte.
fn body<'a>(table: &'static str, bytes: &'a [u8]) -> Result<&'a [u8], StoreError> {
    let (version, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt(table, "empty value".into()))?;
    if *version != FORMAT_VERSION {
        return Err(corrupt(table, format!("unknown format version {version}")));
    }
    Ok(body)
}

fn corrupt(table: &'static str, why: String) -> StoreError {
    StoreError::Corrupt { table, why }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Row {
        id: u64,
        name: String,
        tags: Vec<String>,
        note: Option<String>,
    }

    #[test]
    fn round_trip() {
        let row = Row {
            id: 7,
            name: "x".into(),
            tags: vec!["a".into()],
            note: None,
        };
        let bytes = encode(&row).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Row>("t", &bytes).unwrap(), row);

        #[derive(Debug, Deserialize, PartialEq)]
        struct Head {
            id: u64,
            name: String,
        }
        assert_eq!(
            decode_prefix::<Head>("t", &bytes).unwrap(),
            Head {
                id: 7,
                name: "x".into()
            }
        );
    }

    #[test]
    fn corrupt_rows_are_errors() {
        let bytes = encode(&Row {
            id: 1,
            name: "n".into(),
            tags: vec![],
            note: Some("z".into()),
        })
        .unwrap();
        assert!(matches!(
            decode::<Row>("t", &[]),
            Err(StoreError::Corrupt { .. })
        ));
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 99;
        assert!(decode::<Row>("t", &wrong_version).is_err());
        assert!(decode::<Row>("t", &bytes[..bytes.len() - 1]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode::<Row>("t", &trailing).is_err());
        // Arbitrary garbage never panics.
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            let mut v = vec![FORMAT_VERSION];
            v.extend(junk);
            let _ = decode::<Row>("t", &v);
        }
    }
}
