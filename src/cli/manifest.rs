//! Reading manifests: files, directories (recursively) and standard input; multi-document
//! YAML or JSON; `List` kinds flattened. Every document is parsed before anything is sent,
//! so a malformed one changes nothing.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One object from a manifest, with where it came from.
#[derive(Debug, Clone)]
pub struct Doc {
    pub source: String,
    pub object: Value,
}

/// Errors reading manifests.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("error parsing {source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Shape {
        source_name: String,
        message: String,
    },
    #[error("no objects passed to apply: {0} holds no manifests")]
    Empty(String),
}

/// Reads every manifest named by `paths` (`-` is standard input).
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Doc>, ManifestError> {
    let mut docs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| ManifestError::Read {
                    path: path.clone(),
                    source,
                })?;
            docs.extend(parse("STDIN", &text)?);
        } else {
            for file in files(path)? {
                let text =
                    std::fs::read_to_string(&file).map_err(|source| ManifestError::Read {
                        path: file.clone(),
                        source,
                    })?;
                docs.extend(parse(&file.display().to_string(), &text)?);
            }
        }
    }
    if docs.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(ManifestError::Empty(names.join(", ")));
    }
    Ok(docs)
}

/// Manifest files under a path: the file itself, or `.yaml`, `.yml` and `.json` files of a
/// directory tree in name order.
fn files(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let meta = std::fs::metadata(path).map_err(|source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            out.extend(files(&entry)?);
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Parses one manifest text: YAML documents separated by `---` (JSON is YAML too).
pub fn parse(source_name: &str, text: &str) -> Result<Vec<Doc>, ManifestError> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(de).map_err(|e| ManifestError::Parse {
            source_name: source_name.to_string(),
            message: format!("document {}: {e}", i + 1),
        })?;
        match value {
            Value::Null => continue,
            Value::Object(ref m) if m.is_empty() => continue,
            Value::Object(_) => {}
            other => {
                return Err(ManifestError::Shape {
                    source_name: source_name.to_string(),
                    message: format!(
                        "document {} is not an object but {}",
                        i + 1,
                        type_name(&other)
                    ),
                });
            }
        }
        let mut value = value;
        octal_modes(&mut value);
        let label = format!("{source_name} (document {})", i + 1);
        flatten(&label, value, &mut docs)?;
    }
    Ok(docs)
}

/// File modes as manifests write them: kubectl reads YAML 1.1, where `defaultMode: 0640`
/// is octal; our YAML 1.2 reader leaves such a value a string. A `mode` or `defaultMode`
/// that is a string of a leading 0 and octal digits (or `0o…`) becomes that octal number.
fn octal_modes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if (k == "mode" || k == "defaultMode")
                    && let Some(text) = v.as_str()
                {
                    let digits = text
                        .strip_prefix("0o")
                        .or_else(|| text.strip_prefix('0').filter(|d| !d.is_empty()));
                    if let Some(n) = digits.and_then(|d| i64::from_str_radix(d, 8).ok()) {
                        *v = Value::from(n);
                    }
                } else {
                    octal_modes(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(octal_modes),
        _ => {}
    }
}

fn flatten(label: &str, value: Value, out: &mut Vec<Doc>) -> Result<(), ManifestError> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
        let items = value
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for item in items {
            flatten(label, item, out)?;
        }
        return Ok(());
    }
    for field in ["apiVersion", "kind"] {
        if value
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ManifestError::Shape {
                source_name: label.to_string(),
                message: format!("Object '{field}' is missing in '{}'", compact(&value)),
            });
        }
    }
    out.push(Doc {
        source: label.to_string(),
        object: value,
    });
    Ok(())
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(117).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_file_modes_read_as_kubectl_reads_them() {
        let docs = parse(
            "m",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  volumes:\n  - name: s\n    secret:\n      secretName: s\n      defaultMode: 0640\n      items: [{key: a, path: a, mode: 0400}, {key: b, path: b, mode: 420}]\n",
        )
        .unwrap();
        let secret = &docs[0].object["spec"]["volumes"][0]["secret"];
        assert_eq!(secret["defaultMode"], 0o640);
        assert_eq!(secret["items"][0]["mode"], 0o400);
        assert_eq!(secret["items"][1]["mode"], 420, "decimal stays decimal");
    }

    #[test]
    fn multi_document_yaml_and_lists() {
        let docs = parse(
            "t.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n",
        )
        .expect("parse");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].object["metadata"]["name"], "b");
    }

    #[test]
    fn malformed_yaml_names_the_document() {
        let e = parse(
            "t.yaml",
            "apiVersion: v1\nkind: ConfigMap\n---\nkind: [unclosed\n",
        )
        .expect_err("bad");
        assert!(e.to_string().contains("t.yaml"), "{e}");
        assert!(e.to_string().contains("document 2"), "{e}");
    }

    #[test]
    fn missing_kind_is_an_error() {
        let e = parse("t.yaml", "apiVersion: v1\nmetadata: {name: a}\n").expect_err("no kind");
        assert!(e.to_string().contains("'kind' is missing"), "{e}");
        assert!(parse("t.yaml", "- a\n- b\n").is_err());
    }
}
