//! A file with size-based rotation, as lumberjack (the Collector's rotating writer)
//! does it: when a write would take the file past its limit, the file is renamed to
//! `<stem>-<timestamp><.ext>` (timestamp `2006-01-02T15-04-05.000`, UTC unless local time is
//! asked for), a new file is started, and old backups are pruned by count and age.
//!
//! Records are written straight to the file, one `write` each (no buffer: the exporter
//! answers only once its batch is in the file). Every method does blocking I/O: call them
//! from a blocking thread.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDateTime;

/// The timestamp in a backup's name, as lumberjack writes it.
const BACKUP_TIME_FORMAT: &str = "%Y-%m-%dT%H-%M-%S%.3f";

/// When to rotate and what to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    pub max_bytes: u64,
    /// 0 keeps every backup.
    pub max_backups: usize,
    pub max_age: Option<Duration>,
    pub localtime: bool,
}

pub(crate) struct RotatingFile {
    path: PathBuf,
    out: File,
    /// Bytes in the current file.
    size: u64,
    policy: Option<Policy>,
}

impl RotatingFile {
    /// Opens `path`, creating it and its parent directories. Without rotation and without
    /// `append` an existing file is truncated (the Collector's behaviour); with rotation it
    /// is appended to, and its current size counts towards the limit.
    pub fn open(path: &Path, policy: Option<Policy>, append: bool) -> io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let append = append || policy.is_some();
        let file = open_file(path, append)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            out: file,
            size,
            policy,
        })
    }

    /// Writes one whole record, rotating first if it would not fit. A record larger than
    /// the limit goes alone into a fresh file rather than being split or refused.
    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        let len = record.len() as u64;
        if let Some(policy) = &self.policy {
            if self.size > 0 && self.size + len > policy.max_bytes {
                self.rotate()?;
            }
        }
        self.out.write_all(record)?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let Some(policy) = self.policy.clone() else {
            return Ok(());
        };
        let backup = free_backup_name(&self.path, now(policy.localtime));
        fs::rename(&self.path, &backup)?;
        let file = open_file(&self.path, true)?;
        // Dropping the old handle only closes the renamed file: everything was written.
        self.out = file;
        self.size = 0;
        if let Err(e) = prune(&self.path, &policy, now(policy.localtime)) {
            tracing::warn!(
                component = "file", path = %self.path.display(), error = %e,
                "could not remove old backups; they stay on disk"
            );
        }
        Ok(())
    }
}

fn open_file(path: &Path, append: bool) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
}

fn now(localtime: bool) -> NaiveDateTime {
    if localtime {
        chrono::Local::now().naive_local()
    } else {
        chrono::Utc::now().naive_utc()
    }
}

/// `<stem>-` and `<.ext>` of `path`'s backups.
fn backup_affixes(path: &Path) -> (String, String) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (format!("{stem}-"), ext)
}

/// The backup name for `at`, moved on by a millisecond while a file of that name exists.
pub(crate) fn free_backup_name(path: &Path, mut at: NaiveDateTime) -> PathBuf {
    let (prefix, ext) = backup_affixes(path);
    loop {
        let name = format!("{prefix}{}{ext}", at.format(BACKUP_TIME_FORMAT));
        let candidate = path.with_file_name(name);
        if !candidate.exists() {
            return candidate;
        }
        at += chrono::Duration::milliseconds(1);
    }
}

/// The backups of `path`, newest first.
pub(crate) fn backups(path: &Path) -> io::Result<Vec<(NaiveDateTime, PathBuf)>> {
    let (prefix, ext) = backup_affixes(path);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stamp) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(&ext))
        else {
            continue;
        };
        if let Ok(at) = NaiveDateTime::parse_from_str(stamp, BACKUP_TIME_FORMAT) {
            found.push((at, entry.path()));
        }
    }
    found.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    Ok(found)
}

/// Removes backups beyond `max_backups` and older than `max_age`.
fn prune(path: &Path, policy: &Policy, now: NaiveDateTime) -> io::Result<()> {
    for (i, (at, backup)) in backups(path)?.into_iter().enumerate() {
        let too_many = policy.max_backups > 0 && i >= policy.max_backups;
        let too_old = policy
            .max_age
            .is_some_and(|age| (now - at).to_std().is_ok_and(|elapsed| elapsed > age));
        if too_many || too_old {
            fs::remove_file(&backup)?;
        }
    }
    Ok(())
}
