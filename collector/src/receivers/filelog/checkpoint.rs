//! The committed offsets of a `filelog` receiver, kept in its `file_storage` folder.
//!
//! One small JSON document, `offsets.json`: for every known file its fingerprint (hex), its
//! committed offset and its last path (for people reading it). It is replaced atomically
//! (written to `offsets.json.tmp`, then renamed over the old one), so a crash leaves either
//! the old or the new document, never a torn one. With the extension's `fsync: true` the
//! temporary file is synced before the rename and the folder after it, so the commit also
//! survives a power loss. Writes happen on the receiver's own thread, never on the async
//! runtime.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One file's committed position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub fingerprint: String,
    pub offset: u64,
    pub path: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Document {
    version: u32,
    files: Vec<Committed>,
}

const VERSION: u32 = 1;

/// Where the offsets live.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    fsync: bool,
    /// What was written last (a commit that changes nothing is not written again).
    last: Vec<Committed>,
}

impl Checkpoint {
    /// Opens the folder (creating it) and reads what a previous run committed.
    pub fn open(dir: &Path, fsync: bool) -> anyhow::Result<(Self, Vec<Committed>)> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("offsets.json");
        let files = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Document>(&bytes) {
                Ok(doc) if doc.version == VERSION => doc.files,
                Ok(doc) => anyhow::bail!(
                    "{}: version {} is not one this Weft reads ({VERSION}); move the file away to start over",
                    path.display(),
                    doc.version
                ),
                Err(e) => anyhow::bail!(
                    "{} is damaged ({e}); move it away to start over (files are then read per start_at)",
                    path.display()
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        Ok((
            Self {
                dir: dir.to_path_buf(),
                fsync,
                last: files.clone(),
            },
            files,
        ))
    }

    /// Replaces the committed offsets with `files`.
    pub fn write(&mut self, files: Vec<Committed>) -> std::io::Result<()> {
        if files == self.last {
            return Ok(());
        }
        let doc = Document {
            version: VERSION,
            files,
        };
        let bytes = serde_json::to_vec(&doc).map_err(std::io::Error::other)?;
        let tmp = self.dir.join("offsets.json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        if self.fsync {
            f.sync_data()?;
        }
        drop(f);
        std::fs::rename(&tmp, self.dir.join("offsets.json"))?;
        if self.fsync {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        self.last = doc.files;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_a_reopen_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, files) = Checkpoint::open(dir.path(), true).unwrap();
        assert!(files.is_empty());
        let one = Committed {
            fingerprint: "6869".into(),
            offset: 42,
            path: "/var/log/a.log".into(),
        };
        c.write(vec![one.clone()]).unwrap();
        let (_, files) = Checkpoint::open(dir.path(), false).unwrap();
        assert_eq!(files, vec![one]);
        assert!(!dir.path().join("offsets.json.tmp").exists());
        std::fs::write(dir.path().join("offsets.json"), b"{\"vers").unwrap();
        let err = Checkpoint::open(dir.path(), false).unwrap_err().to_string();
        assert!(err.contains("is damaged"), "{err}");
    }
}
