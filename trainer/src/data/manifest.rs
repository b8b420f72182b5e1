//! The manifest: one aligned face crop per line, `path,identity[,x1,y1,...]`.
//!
//! `path` is relative to the manifest's folder; `identity` is any name without commas (labels
//! are assigned in sorted name order, so the same set of names always gives the same labels);
//! landmarks, when present, are 5 or 68 `x,y` pairs in crop pixels. Blank lines and lines
//! starting with `#` are skipped, and a first line `path,identity` is a header.

use facegate_contract::Point;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One face crop.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The image file.
    pub path: PathBuf,
    /// Identity label, `0..num_classes`.
    pub label: u32,
    /// 5 or 68 landmarks in crop pixels, if the manifest gives them.
    pub landmarks: Option<Vec<Point>>,
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The crops, in file order.
    pub entries: Vec<Entry>,
    /// Identity names, indexed by label.
    pub identities: Vec<String>,
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The manifest.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The manifest.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The manifest holds too little to train on.
    #[error("manifest {path}: {message}")]
    Content {
        /// The manifest.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
}

impl Manifest {
    /// Reads and parses the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses manifest `text`; `path` names it in errors and anchors relative image paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ManifestError> {
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        let mut rows = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || (i == 0 && line == "path,identity") {
                continue;
            }
            let err = |message: String| ManifestError::Line {
                path: path.to_owned(),
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() < 2 || fields[0].is_empty() || fields[1].is_empty() {
                return Err(err(format!(
                    "expected `path,identity[,x1,y1,...]`, got {line:?}"
                )));
            }
            let coords = &fields[2..];
            let landmarks = match coords.len() {
                0 => None,
                10 | 136 => {
                    let values = coords
                        .iter()
                        .map(|c| c.parse::<f32>().ok().filter(|v| v.is_finite()))
                        .collect::<Option<Vec<f32>>>()
                        .ok_or_else(|| err("landmark coordinates must be finite numbers".into()))?;
                    Some(values.chunks(2).map(|p| Point::new(p[0], p[1])).collect())
                }
                n => {
                    return Err(err(format!(
                        "{n} landmark numbers: expected none, 10 (5 points) or 136 (68 points)"
                    )));
                }
            };
            rows.push((base.join(fields[0]), fields[1].to_owned(), landmarks));
        }
        let mut ids: BTreeMap<String, u32> = rows.iter().map(|r| (r.1.clone(), 0)).collect();
        for (label, slot) in ids.values_mut().enumerate() {
            *slot = label as u32;
        }
        if ids.len() < 2 {
            return Err(ManifestError::Content {
                path: path.to_owned(),
                message: format!("{} identities: a classifier needs at least 2", ids.len()),
            });
        }
        let entries = rows
            .into_iter()
            .map(|(path, identity, landmarks)| Entry {
                path,
                label: ids[&identity],
                landmarks,
            })
            .collect();
        Ok(Self {
            entries,
            identities: ids.into_keys().collect(),
        })
    }

    /// The same crops less every one whose identity is in `names`, labels reassigned in
    /// sorted name order (as a manifest without those lines would have them).
    pub fn without_identities(&self, names: &std::collections::HashSet<String>) -> Self {
        let identities: Vec<String> = self
            .identities
            .iter()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        let relabel: BTreeMap<&str, u32> = identities
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u32))
            .collect();
        let entries = self
            .entries
            .iter()
            .filter_map(|e| {
                let name = self.identities.get(e.label as usize)?;
                let label = *relabel.get(name.as_str())?;
                Some(Entry { label, ..e.clone() })
            })
            .collect();
        Self {
            entries,
            identities,
        }
    }

    /// The same crops of the identities in `names` only (see [`Self::without_identities`]).
    pub fn only_identities(&self, names: &std::collections::HashSet<String>) -> Self {
        let others = self
            .identities
            .iter()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        self.without_identities(&others)
    }

    /// Number of identities (classifier outputs).
    pub fn num_classes(&self) -> usize {
        self.identities.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_and_landmarks() {
        let five = (0..10).map(|v| v.to_string()).collect::<Vec<_>>().join(",");
        let text = format!(
            "path,identity\n# a comment\nb/1.png,bob\na/1.png,alice,{five}\n\nb/2.png,bob\n"
        );
        let m = Manifest::parse(&text, Path::new("/data/train.csv")).unwrap();
        assert_eq!(m.identities, ["alice", "bob"]);
        assert_eq!(m.entries.len(), 3);
        assert_eq!(m.entries[0].label, 1);
        assert_eq!(m.entries[0].path, Path::new("/data/b/1.png"));
        let lm = m.entries[1].landmarks.as_ref().unwrap();
        assert_eq!(lm.len(), 5);
        assert_eq!(lm[4], Point::new(8.0, 9.0));
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let err = Manifest::parse("a.png,x\nb.png\n", Path::new("m.csv")).unwrap_err();
        assert!(err.to_string().starts_with("m.csv:2: expected"), "{err}");
        let err = Manifest::parse("a.png,x,1,2,3\n", Path::new("m.csv")).unwrap_err();
        assert!(
            err.to_string().contains("m.csv:1: 3 landmark numbers"),
            "{err}"
        );
        let bad = "a.png,x,1,2,3,4,5,6,7,8,9,nan\n";
        let err = Manifest::parse(bad, Path::new("m.csv")).unwrap_err();
        assert!(err.to_string().contains("finite"), "{err}");
        let err = Manifest::parse("a.png,x\nb.png,x\n", Path::new("m.csv")).unwrap_err();
        assert!(err.to_string().contains("at least 2"), "{err}");
        let err = Manifest::load(Path::new("/nonexistent/m.csv")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/m.csv"), "{err}");
    }
}
