//! Which paths the `include` and `exclude` globs match right now.
//!
//! Globs are matched one path component at a time (`*`, `?`, `[...]` inside a component,
//! `**` for any number of directories), walking only the directories a pattern can reach,
//! so `/var/log/pods/*/*/*.log` lists a few directories rather than the whole tree. `**`
//! does not follow symbolic links to directories, and never enters a directory twice, so a
//! symlink loop cannot make the walk endless. A path that cannot be listed (permissions, a
//! loop) is reported once per poll to the caller, which logs and counts it.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use glob::{MatchOptions, Pattern};

/// How deep `**` descends: deeper trees are not log directories.
const MAX_DEPTH: usize = 32;

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// One include glob, split into its components.
#[derive(Debug)]
struct IncludeGlob {
    /// The leading components without glob characters (where the walk starts).
    base: PathBuf,
    /// The rest, one per component.
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Literal(String),
    Pattern(Pattern),
    AnyDirs,
}

/// The compiled `include` and `exclude` lists.
#[derive(Debug)]
pub struct Finder {
    include: Vec<IncludeGlob>,
    exclude: Vec<Pattern>,
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Finder {
    /// Compiles the globs (validation checked them).
    pub fn new(include: &[String], exclude: &[String]) -> anyhow::Result<Self> {
        let include = include
            .iter()
            .map(|p| {
                let path = Path::new(p);
                let mut base = PathBuf::new();
                let mut parts = Vec::new();
                for c in path.components() {
                    let text = c.as_os_str().to_string_lossy().to_string();
                    let literal = matches!(c, Component::RootDir | Component::Prefix(_))
                        || (!has_meta(&text) && text != "**");
                    if parts.is_empty() && literal {
                        base.push(c.as_os_str());
                    } else if text == "**" {
                        parts.push(Part::AnyDirs);
                    } else if has_meta(&text) {
                        parts.push(Part::Pattern(Pattern::new(&text)?));
                    } else {
                        parts.push(Part::Literal(text));
                    }
                }
                if base.as_os_str().is_empty() {
                    base.push(".");
                }
                Ok(IncludeGlob { base, parts })
            })
            .collect::<anyhow::Result<_>>()?;
        let exclude = exclude
            .iter()
            .map(|p| Pattern::new(p))
            .collect::<Result<_, _>>()?;
        Ok(Self { include, exclude })
    }

    /// The directories to watch for changes: each include glob's fixed leading part.
    pub fn watch_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self.include.iter().map(|g| g.base.clone()).collect();
        roots.sort();
        roots.dedup();
        roots
    }

    /// Every path matched now (files, and whatever else a glob names: the caller checks),
    /// sorted, without repeats. `problems` gets the paths that could not be walked.
    pub fn find(&self, problems: &mut Vec<(PathBuf, std::io::Error)>) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for g in &self.include {
            let mut visited = HashSet::new();
            walk(&g.base, &g.parts, 0, &mut visited, &mut out, problems);
        }
        out.sort();
        out.dedup();
        out.retain(|p| !self.exclude.iter().any(|e| e.matches_path_with(p, OPTIONS)));
        out
    }
}

fn walk(
    dir: &Path,
    parts: &[Part],
    depth: usize,
    visited: &mut HashSet<(u64, u64)>,
    out: &mut Vec<PathBuf>,
    problems: &mut Vec<(PathBuf, std::io::Error)>,
) {
    let Some((first, rest)) = parts.split_first() else {
        if dir.symlink_metadata().is_ok() {
            out.push(dir.to_path_buf());
        }
        return;
    };
    match first {
        Part::Literal(name) => {
            let next = dir.join(name);
            if rest.is_empty() {
                if next.symlink_metadata().is_ok() {
                    out.push(next);
                }
            } else if next.is_dir() {
                walk(&next, rest, depth, visited, out, problems);
            }
        }
        Part::Pattern(p) => {
            for (path, name, _) in list(dir, problems) {
                if p.matches_with(&name, OPTIONS) {
                    if rest.is_empty() {
                        out.push(path);
                    } else if path.is_dir() {
                        walk(&path, rest, depth, visited, out, problems);
                    }
                }
            }
        }
        Part::AnyDirs => {
            // Zero directories here...
            walk(dir, rest, depth, visited, out, problems);
            if depth >= MAX_DEPTH {
                return;
            }
            // ...or one more (real directories only: a link to a directory is not followed).
            if let Ok(meta) = std::fs::metadata(dir) {
                use std::os::unix::fs::MetadataExt;
                if !visited.insert((meta.dev(), meta.ino())) {
                    return;
                }
            }
            for (path, _, is_real_dir) in list(dir, problems) {
                if is_real_dir {
                    walk(&path, parts, depth + 1, visited, out, problems);
                }
            }
        }
    }
}

/// The entries of `dir`: path, name, whether it is a directory (not a link to one).
fn list(dir: &Path, problems: &mut Vec<(PathBuf, std::io::Error)>) -> Vec<(PathBuf, String, bool)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                problems.push((dir.to_path_buf(), e));
            }
            return Vec::new();
        }
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            (
                e.path(),
                e.file_name().to_string_lossy().to_string(),
                is_dir,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x\n").unwrap();
    }

    #[test]
    fn pod_globs_match_and_exclude() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let a = root.join("pods/shop_a_1/app/0.log");
        let b = root.join("pods/kube-system_b_2/dns/0.log");
        touch(&a);
        touch(&b);
        touch(&root.join("pods/shop_a_1/app/0.log.20250101"));
        let f = Finder::new(
            &[format!("{}/pods/*/*/*.log", root.display())],
            &[format!("{}/pods/kube-system_*/*/*.log", root.display())],
        )
        .unwrap();
        let mut problems = Vec::new();
        assert_eq!(f.find(&mut problems), vec![a]);
        assert!(problems.is_empty());
        assert_eq!(f.watch_roots(), vec![root.join("pods")]);
    }

    #[test]
    fn double_star_descends_but_not_through_symlink_loops() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("x/y/z/deep.log"));
        touch(&root.join("top.log"));
        std::os::unix::fs::symlink(root, root.join("x/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("x/l2"), root.join("x/l1")).unwrap();
        std::os::unix::fs::symlink(root.join("x/l1"), root.join("x/l2")).unwrap();
        let f = Finder::new(&[format!("{}/**/*.log", root.display())], &[]).unwrap();
        let found = f.find(&mut Vec::new());
        assert_eq!(
            found,
            vec![root.join("top.log"), root.join("x/y/z/deep.log")]
        );
    }
}
