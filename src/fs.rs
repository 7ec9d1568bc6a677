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

/// Makes an existing file that group or others may read or write (one left
/// by an older build, a copy, a restore) readable by its owner only: its mode
/// loses every group and other bit (0644 becomes 0600), and a log line
/// (naming it `what`) says so. Nothing at `path` is fine; a file that cannot
/// be changed (owned by another user, on a read-only mount) is an error that
/// gives the command that fixes it. A link is never followed (whoever planted
/// it would choose what is changed): if its target is open to others, a
/// warning gives the command instead.
pub fn make_private(path: &Path, what: &str) -> Result<(), String> {
    #[cfg(unix)]
    {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("cannot read the {what} {}: {e}", path.display())),
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            if let Ok(meta) = std::fs::metadata(&target) {
                let mode = meta.permissions().mode() & 0o7777;
                if meta.is_file() && mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        target = %target.display(),
                        mode = %format!("{mode:04o}"),
                        "the {what} is a link to a file open to other users; it is not changed \
                         through the link. Fix it with: chmod {:o} {}",
                        mode & 0o600,
                        target.display()
                    );
                }
            }
            return Ok(());
        }
        let mode = meta.permissions().mode() & 0o7777;
        if !meta.is_file() || mode & 0o077 == 0 {
            return Ok(());
        }
        let private = mode & 0o600;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(private)).map_err(|e| {
            format!(
                "the {what} {path} is open to other users (mode {mode:04o}) and cannot be made \
                 private: {e}; refusing to use it. Fix it with: chmod {private:o} {path}",
                path = path.display(),
            )
        })?;
        tracing::warn!(
            path = %path.display(),
            was = %format!("{mode:04o}"),
            now = %format!("{private:04o}"),
            "the {what} was open to other users; made it private"
        );
    }
    #[cfg(not(unix))]
    let _ = (path, what);
    Ok(())
}

/// The database URL to use: the one given, or the SQLite file in the data dir.
pub fn database_url(given: Option<&str>, data_dir: &Path) -> String {
    match given {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}", data_dir.join("keydeck.db").display()),
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
    fn loose_files_are_made_private_and_strict_ones_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        for (before, after) in [
            (0o644, 0o600),
            (0o666, 0o600),
            (0o755, 0o600),
            (0o440, 0o400),
            (0o600, 0o600),
            (0o400, 0o400),
        ] {
            let file = dir.path().join(format!("f{before:o}"));
            std::fs::write(&file, "x").unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(before)).unwrap();
            make_private(&file, "test file").unwrap();
            assert_eq!(mode(&file), after, "{before:o}");
        }
        // Nothing there is fine.
        make_private(&dir.path().join("missing"), "test file").unwrap();
        // A link is not followed: what it points to keeps its mode.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "x").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        make_private(&link, "test file").unwrap();
        assert_eq!(mode(&victim), 0o644);
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
