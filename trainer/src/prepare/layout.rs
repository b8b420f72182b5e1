//! The source layouts `prepare` reads, turned into one job per photo: which file, whose face,
//! and which output set (manifest) its crop belongs to.

use std::path::{Path, PathBuf};

/// How a source folder is organised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One sub-folder per identity (CASIA-WebFace, VGGFace2, a site's own enrolment photos):
    /// every photo goes to the training manifest.
    Folders,
    /// LFW: one sub-folder per person with `Name_0001.jpg` files, plus a pairs file
    /// (`name i j` same, `name1 i name2 j` different; a count line first): a test set with
    /// its verification pairs.
    Lfw {
        /// The pairs file (pairs.txt, pairsDevTest.txt...).
        pairs: PathBuf,
    },
    /// The AR face database's names `m-001-01.bmp` / `w-012-26.jpg` (sex, person, shot 1..26):
    /// shots 1-7 and 14-20 are unoccluded, 8-10 and 21-23 wear sunglasses, 11-13 and 24-26 a
    /// scarf: three test sets.
    Ar,
}

/// One photo to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The photo.
    pub source: PathBuf,
    /// Whose face it is.
    pub identity: String,
    /// Output set folder, relative to the output root (`train`, `test/lfw`, `test/scarf`...).
    pub set: String,
    /// The crop's path relative to the set folder.
    pub crop: String,
}

/// A source entry that cannot become a job, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The file or folder.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// One verification pair of the LFW layout, as crop paths relative to its set folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// First crop.
    pub a: String,
    /// Second crop.
    pub b: String,
    /// Whether both show the same person.
    pub same: bool,
    /// The View 2 fold (1-based) the pair belongs to, from the header's pairs-per-fold count
    /// (`10 300`: 600 pairs a fold); 1 for a file without such a header.
    pub fold: u32,
}

/// Everything a layout scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Photos to prepare, in a stable order.
    pub jobs: Vec<Job>,
    /// Entries left out before any decoding.
    pub rejected: Vec<Rejected>,
    /// LFW pairs, when the layout has them.
    pub pairs: Vec<Pair>,
}

/// Why a source could not be scanned at all.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A folder or the pairs file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// What.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A pairs-file line is not in the LFW format.
    #[error("{path}:{line}: {message}")]
    Pairs {
        /// The pairs file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected.
        message: String,
    },
}

const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, LayoutError> {
    let read = |source| LayoutError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(read)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    entries.sort();
    Ok(entries)
}

/// Names that would break a CSV manifest line or a path.
fn usable_name(name: &str) -> bool {
    !name.is_empty() && !name.contains([',', '\n', '\r', '#']) && !name.starts_with('.')
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Identity folders: `src/<identity>/<photo>`.
fn per_identity(src: &Path, set: &str, scan: &mut Scan) -> Result<(), LayoutError> {
    for dir in sorted_entries(src)? {
        let identity = file_name(&dir);
        if !dir.is_dir() {
            if is_image(&dir) {
                scan.rejected.push(Rejected {
                    path: dir,
                    reason: "photo outside an identity folder".into(),
                });
            }
            continue;
        }
        if !usable_name(&identity) {
            scan.rejected.push(Rejected {
                path: dir,
                reason: "identity folder name is empty, hidden or has , # or a line break".into(),
            });
            continue;
        }
        for photo in sorted_entries(&dir)? {
            if !photo.is_file() || !is_image(&photo) {
                continue;
            }
            let name = stem(&photo);
            if !usable_name(&name) {
                scan.rejected.push(Rejected {
                    path: photo,
                    reason: "file name has , # or a line break".into(),
                });
                continue;
            }
            scan.jobs.push(Job {
                source: photo,
                identity: identity.clone(),
                set: set.into(),
                crop: format!("{identity}/{name}.png"),
            });
        }
    }
    Ok(())
}

/// The LFW pairs file as crop-path pairs (`Name/Name_0001.png`).
fn lfw_pairs(path: &Path) -> Result<Vec<Pair>, LayoutError> {
    let text = std::fs::read_to_string(path).map_err(|source| LayoutError::Read {
        path: path.to_owned(),
        source,
    })?;
    let crop = |name: &str, index: &str| -> Option<String> {
        let n: u32 = index.parse().ok()?;
        Some(format!("{name}/{name}_{n:04}.png"))
    };
    let mut pairs = Vec::new();
    let mut per_fold = usize::MAX;
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let fold = u32::try_from(pairs.len() / per_fold + 1).unwrap_or(u32::MAX);
        let pair = match fields.as_slice() {
            [] => continue,
            // The header: "10 300" (folds, matched pairs per fold, as many mismatched) or a
            // single count.
            [a, b] if i == 0 && a.parse::<u32>().is_ok() => {
                per_fold = b.parse::<usize>().map_or(usize::MAX, |n| (2 * n).max(1));
                continue;
            }
            [a] if i == 0 && a.parse::<u32>().is_ok() => continue,
            [name, i1, i2] => crop(name, i1).zip(crop(name, i2)).map(|(a, b)| Pair {
                a,
                b,
                same: true,
                fold,
            }),
            [n1, i1, n2, i2] => crop(n1, i1).zip(crop(n2, i2)).map(|(a, b)| Pair {
                a,
                b,
                same: false,
                fold,
            }),
            _ => None,
        };
        pairs.push(pair.ok_or_else(|| LayoutError::Pairs {
            path: path.to_owned(),
            line: i + 1,
            message: format!(
                "expected `name i j` (same person) or `name1 i name2 j` (different), got {line:?}"
            ),
        })?);
    }
    Ok(pairs)
}

/// The AR database's shot number (1..=26) to its test set.
fn ar_set(shot: u32) -> Option<&'static str> {
    if !(1..=26).contains(&shot) {
        return None;
    }
    Some(match (shot - 1) % 13 + 1 {
        1..=7 => "test/clean",
        8..=10 => "test/sunglasses",
        _ => "test/scarf",
    })
}

/// `m-001-01` -> (`m-001`, 1).
fn ar_name(stem: &str) -> Option<(String, u32)> {
    let mut parts = stem.split('-');
    let (sex, person, shot) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || !matches!(sex, "m" | "w" | "M" | "W")
        || person.is_empty()
        || !person.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((
        format!("{}-{person}", sex.to_ascii_lowercase()),
        shot.parse().ok()?,
    ))
}

fn ar(src: &Path, scan: &mut Scan) -> Result<(), LayoutError> {
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for path in sorted_entries(&dir)? {
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if !is_image(&path) {
                continue;
            }
            let name = stem(&path);
            match ar_name(&name).and_then(|(id, shot)| Some((id, ar_set(shot)?))) {
                Some((identity, set)) => scan.jobs.push(Job {
                    source: path,
                    crop: format!("{identity}/{name}.png"),
                    identity,
                    set: set.into(),
                }),
                None => scan.rejected.push(Rejected {
                    path,
                    reason: "not an AR file name (m-001-01 .. w-999-26)".into(),
                }),
            }
        }
    }
    scan.jobs.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(())
}

/// Lists the photos of `src` as `layout` organises it.
pub fn scan(src: &Path, layout: &Layout) -> Result<Scan, LayoutError> {
    let mut scan = Scan::default();
    match layout {
        Layout::Folders => per_identity(src, "train", &mut scan)?,
        Layout::Lfw { pairs } => {
            per_identity(src, "test/lfw", &mut scan)?;
            scan.pairs = lfw_pairs(pairs)?;
        }
        Layout::Ar => ar(src, &mut scan)?,
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ar_names_and_sets() {
        assert_eq!(ar_name("m-001-01"), Some(("m-001".into(), 1)));
        assert_eq!(ar_name("W-120-26"), Some(("w-120".into(), 26)));
        assert_eq!(ar_name("x-001-01"), None);
        assert_eq!(ar_name("m-001"), None);
        assert_eq!(ar_set(1), Some("test/clean"));
        assert_eq!(ar_set(8), Some("test/sunglasses"));
        assert_eq!(ar_set(13), Some("test/scarf"));
        assert_eq!(ar_set(20), Some("test/clean"));
        assert_eq!(ar_set(21), Some("test/sunglasses"));
        assert_eq!(ar_set(26), Some("test/scarf"));
        assert_eq!(ar_set(0), None);
        assert_eq!(ar_set(27), None);
    }

    #[test]
    fn lfw_pairs_file() {
        let dir = std::env::temp_dir().join(format!("facegate-pairs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pairs.txt");
        std::fs::write(
            &path,
            "2\t1\nAbel_Pacheco\t1\t4\nAbel_Pacheco\t1\tAkhmed_Zakayev\t3\nAbel_Pacheco\t2\t3\n",
        )
        .unwrap();
        let pairs = lfw_pairs(&path).unwrap();
        assert_eq!(
            pairs,
            vec![
                Pair {
                    a: "Abel_Pacheco/Abel_Pacheco_0001.png".into(),
                    b: "Abel_Pacheco/Abel_Pacheco_0004.png".into(),
                    same: true,
                    fold: 1,
                },
                Pair {
                    a: "Abel_Pacheco/Abel_Pacheco_0001.png".into(),
                    b: "Akhmed_Zakayev/Akhmed_Zakayev_0003.png".into(),
                    same: false,
                    fold: 1,
                },
                Pair {
                    a: "Abel_Pacheco/Abel_Pacheco_0002.png".into(),
                    b: "Abel_Pacheco/Abel_Pacheco_0003.png".into(),
                    same: true,
                    fold: 2,
                },
            ]
        );
        std::fs::write(&path, "10 300\nAbel_Pacheco one 4\n").unwrap();
        let err = lfw_pairs(&path).unwrap_err().to_string();
        assert!(err.contains("pairs.txt:2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
