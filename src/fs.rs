//! Private files, for the service's data dir and the client's config alike: a
//! directory only its owner can enter, files only their owner can read
//! (whatever the umask), replaced atomically without following links.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

use crate::key::random_base62;

/// Creates a directory (and its parents) that only its owner can enter;
/// existing directories are left as they are.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path)
}

/// Refuses a data dir that group or others may write to: whoever can write
/// there could replace the database or plant a link where a secret is written.
/// A symbolic link to a directory is followed (that is normal); its target is checked.
pub fn check_data_dir(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read the data dir {}: {e}", path.display()))?;
        if !meta.is_dir() {
            return Err(format!(
                "the data dir {} is not a directory",
                path.display()
            ));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "the data dir {dir} can be written by {who} (mode {mode:o}), so its database and \
                 admin token could be replaced; refusing to use it. Fix it with: chmod go-w {dir}",
                dir = path.display(),
                who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                    (true, true) => "its group and others",
                    (true, false) => "its group",
                    _ => "others",
                },
            ));
        }
    }
    Ok(())
}

/// [`create_private_dir`], then [`check_data_dir`]: what every command that
/// keeps files in the data dir does first.
pub fn prepare_data_dir(path: &Path) -> Result<(), String> {
    create_private_dir(path)
        .map_err(|e| format!("cannot create the data dir {}: {e}", path.display()))?;
    check_data_dir(path)
}

/// Writes `contents` (and a newline) to a file only its owner can read,
/// atomically and without following a link at `path`: the text goes to a new
/// temporary file beside it, which then replaces `path` (a link planted there
/// is replaced, never written through). For tokens, host keys and the like.
pub fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    replace_private(path, &[contents.as_bytes(), b"\n"])
}

/// Replaces `path` with a file of `parts` (written one after the other, so a
/// secret need not be copied to be joined), readable by its owner only:
/// written to a new temporary file beside it, synced, then renamed over it.
pub fn replace_private(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", random_base62(10).as_str()));
    let tmp = dir.join(tmp_name);
    let mut options = OpenOptions::new();
    // create_new (O_EXCL) never follows a link: it fails if anything is there.
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&tmp)?;
    let written = (|| {
        #[cfg(unix)]
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    // The rename itself survives a crash once the directory is on disk.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Opens a log file for appending, creating it readable by its owner only; an
/// existing one is made so. A link at `path` is refused rather than followed.
pub fn open_private_log(path: &Path) -> io::Result<File> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io::Error::other(format!(
            "{} is a symbolic link; remove it so that the log is written there",
            path.display()
        )));
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    options.mode(0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Creates an empty file only its owner can read, if nothing is at `path`
/// yet; used for the SQLite database before SQLite opens it, so that its
/// `-wal` and `-shm` files (which SQLite gives the database's mode) are private too.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        #[cfg(unix)]
        Ok(file) => file.set_permissions(std::fs::Permissions::from_mode(0o600)),
        #[cfg(not(unix))]
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_private_write_replaces_a_planted_link_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "precious").unwrap();
        let target = dir.path().join("token");
        std::os::unix::fs::symlink(&outside, &target).unwrap();
        write_private(&target, "secret").unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(mode(&target), 0o600);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret\n");
        // Nothing left behind but the two files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn group_or_world_writable_data_dirs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (m, ok) in [
            (0o700, true),
            (0o755, true),
            (0o770, false),
            (0o1777, false),
        ] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(m)).unwrap();
            let result = check_data_dir(dir.path());
            assert_eq!(result.is_ok(), ok, "{m:o}: {result:?}");
            if let Err(e) = result {
                assert!(e.contains("chmod go-w"), "{e}");
                assert!(e.contains(&dir.path().display().to_string()), "{e}");
            }
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn logs_are_private_and_not_followed_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("keydeck.log");
        std::fs::write(&log, "old\n").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(open_private_log(&log).unwrap());
        assert_eq!(mode(&log), 0o600);
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&log, &link).unwrap();
        assert!(open_private_log(&link).is_err());
    }
}
