//! Errors of the backup location: a full, read-only or forbidden directory is
//! reported as [`ApplyError::BackupLocation`], naming the directory and how to
//! choose another.

use super::ApplyError;
use std::io;
use std::path::Path;

/// `ENOSPC`, `EDQUOT`, `EROFS`, `EACCES`, `EPERM`, `ENOENT`, `ENOTDIR`: the
/// location is the problem, not the firewall.
pub(crate) fn is_location_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28 | 122 | 30 | 13 | 1 | 2 | 20))
}

/// [`ApplyError::BackupLocation`] for `dir` when `e` is about the location.
pub(crate) fn location_error(dir: &Path, e: io::Error) -> Result<ApplyError, io::Error> {
    if is_location_error(&e) {
        Ok(ApplyError::BackupLocation {
            dir: dir.to_path_buf(),
            error: e,
        })
    } else {
        Err(e)
    }
}

/// What the error means for a backup directory, in words.
pub(crate) fn meaning(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(28) | Some(122) => "the file system is full",
        Some(30) => "the file system is read-only",
        Some(13) | Some(1) => "permission denied",
        Some(2) | Some(20) => "the directory does not exist",
        _ => "it cannot be written",
    }
}
