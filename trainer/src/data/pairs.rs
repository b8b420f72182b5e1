//! Verification pairs files (`a,b,same[,fold]`, as `prepare --layout lfw` writes them): which
//! pairs and people belong to chosen View 2 folds. Training leaves those people out; `eval`
//! and `export` measure on them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A pairs file's pairs in the kept folds, as crop paths relative to the file.
pub struct FoldPairs {
    /// (a, b, same).
    pub pairs: Vec<(PathBuf, PathBuf, bool)>,
    /// The people they name.
    pub people: HashSet<String>,
}

/// Reads `pairs.csv` (`a,b,same,fold`) keeping `folds` (empty: all).
pub fn fold_pairs(path: &Path, folds: &[u32]) -> Result<FoldPairs, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    let mut out = FoldPairs {
        pairs: Vec::new(),
        people: HashSet::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("a,b,same") {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let (same, fold) = match f.as_slice() {
            [_, _, s] => (*s, "1"),
            [_, _, s, fold] => (*s, *fold),
            _ => {
                return Err(format!(
                    "{}:{}: expected `a,b,same,fold`",
                    path.display(),
                    i + 1
                ));
            }
        };
        let fold: u32 = fold.parse().map_err(|_| {
            format!(
                "{}:{}: fold {fold:?} is not a number",
                path.display(),
                i + 1
            )
        })?;
        if !folds.is_empty() && !folds.contains(&fold) {
            continue;
        }
        for crop in &f[..2] {
            out.people
                .insert(crop.split('/').next().unwrap_or(crop).to_owned());
        }
        out.pairs
            .push((base.join(f[0]), base.join(f[1]), same == "1"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_filter_pairs_and_name_their_people() {
        let dir = std::env::temp_dir().join(format!("facegate-lfw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pairs.csv");
        std::fs::write(
            &path,
            "a,b,same,fold\nA/A_0001.png,A/A_0002.png,1,1\nB/B_0001.png,C/C_0001.png,0,2\n",
        )
        .unwrap();
        let kept = fold_pairs(&path, &[2]).unwrap();
        assert_eq!(kept.pairs.len(), 1);
        assert!(!kept.pairs[0].2);
        assert_eq!(
            kept.people,
            ["B".to_owned(), "C".to_owned()].into_iter().collect()
        );
        assert_eq!(fold_pairs(&path, &[]).unwrap().pairs.len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
