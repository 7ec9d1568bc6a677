//! The SSH sessions' way into the service: a Unix socket of mode 0600 in the
//! data dir (no loopback port that any local user could fill, and no
//! loopback address whose failures could lock anyone out), made without a
//! moment when others could connect, and removed at shutdown.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::key::random_base62;

/// The socket's name in the data dir.
pub const SOCKET_FILE: &str = "ssh-sessions.sock";

/// Longest path a Unix socket can have on Linux: `sun_path` holds 108 bytes
/// with the final NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The bound socket; dropping it removes the socket (and the private
/// directory it was made in, if it is not in the data dir).
#[derive(Debug)]
pub struct InternalSocket {
    path: PathBuf,
    /// The 0700 directory outside the data dir holding the socket, when the
    /// data dir's path is too long for a socket or another process serves there.
    private_dir: Option<PathBuf>,
    /// Device and inode of our socket: another one at the path is left alone.
    id: (u64, u64),
}

impl InternalSocket {
    /// Binds `DATA_DIR/ssh-sessions.sock` (a stale socket there is removed),
    /// or, if that path is too long for a socket or a live socket of another
    /// process is there, a socket in a new 0700 directory under the system's
    /// temporary directory.
    ///
    /// The socket is bound inside a new 0700 directory, made 0600, and only
    /// then moved to its place: nobody else can connect to it at any time.
    pub fn bind(data_dir: &Path) -> Result<(Self, UnixListener), String> {
        let wanted = data_dir.join(SOCKET_FILE);
        let in_data_dir = wanted.as_os_str().len() <= MAX_SOCKET_PATH && clear_stale(&wanted)?;
        let parent = if in_data_dir {
            data_dir.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = parent.join(format!(".keydeck-{}", random_base62(10).as_str()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let bound = dir.join("s");
        let made = (|| {
            let listener = UnixListener::bind(&bound)?;
            std::fs::set_permissions(&bound, std::fs::Permissions::from_mode(0o600))?;
            let path = if in_data_dir {
                std::fs::rename(&bound, &wanted)?;
                std::fs::remove_dir(&dir)?;
                wanted.clone()
            } else {
                bound.clone()
            };
            let meta = std::fs::symlink_metadata(&path)?;
            io::Result::Ok((listener, path, (meta.dev(), meta.ino())))
        })();
        let (listener, path, id) = made.map_err(|e| {
            let _ = std::fs::remove_file(&bound);
            let _ = std::fs::remove_dir(&dir);
            format!(
                "cannot make the SSH sessions' socket {}: {e}",
                if in_data_dir { &wanted } else { &bound }.display()
            )
        })?;
        if !in_data_dir {
            tracing::info!(socket = %path.display(), "the SSH sessions' socket is in a private directory outside the data dir");
        }
        let socket = Self {
            path,
            private_dir: (!in_data_dir).then_some(dir),
            id,
        };
        Ok((socket, listener))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes room at `path`: `Ok(true)` if nothing is there (a stale socket is
/// removed), `Ok(false)` if another process serves on it; anything but a
/// socket there is refused.
fn clear_stale(path: &Path) -> Result<bool, String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{} is in the way of the SSH sessions' socket; remove it",
            path.display()
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        tracing::warn!(socket = %path.display(), "another process serves on this data dir's SSH sessions' socket; leaving it alone");
        return Ok(false);
    }
    std::fs::remove_file(path)
        .map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))?;
    tracing::info!(socket = %path.display(), "removed a stale SSH sessions' socket");
    Ok(true)
}

impl Drop for InternalSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| (meta.dev(), meta.ino()) == self.id);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Some(dir) = &self.private_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[tokio::test]
    async fn the_socket_is_private_replaces_a_stale_one_and_goes_at_the_end() {
        let data = tempfile::tempdir().unwrap();
        let wanted = data.path().join(SOCKET_FILE);
        // A stale socket (its listener gone) is replaced.
        drop(std::os::unix::net::UnixListener::bind(&wanted).unwrap());
        let (socket, listener) = InternalSocket::bind(data.path()).unwrap();
        assert_eq!(socket.path(), wanted);
        assert_eq!(mode(&wanted), 0o600);
        assert_eq!(
            std::fs::read_dir(data.path()).unwrap().count(),
            1,
            "no directory left behind"
        );
        // A live one is left alone: the next goes to a private directory.
        let (other, _other_listener) = InternalSocket::bind(data.path()).unwrap();
        assert_ne!(other.path(), wanted);
        let dir = other.path().parent().unwrap().to_path_buf();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(other.path()), 0o600);
        drop(other);
        assert!(!dir.exists(), "the private directory is removed");
        assert!(wanted.exists(), "the first socket is untouched");
        drop(listener);
        drop(socket);
        assert!(!wanted.exists(), "removed at the end");
    }

    #[tokio::test]
    async fn a_data_dir_too_deep_for_a_socket_gets_a_private_directory() {
        let data = tempfile::tempdir().unwrap();
        let deep = data.path().join("d".repeat(120));
        std::fs::create_dir(&deep).unwrap();
        let (socket, _listener) = InternalSocket::bind(&deep).unwrap();
        assert!(!socket.path().starts_with(&deep));
        assert_eq!(mode(socket.path().parent().unwrap()), 0o700);
        assert_eq!(mode(socket.path()), 0o600);
        let path = socket.path().to_path_buf();
        drop(socket);
        assert!(!path.exists());
    }

    #[test]
    fn anything_but_a_socket_in_the_way_is_refused() {
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join(SOCKET_FILE), "x").unwrap();
        let refused = clear_stale(&data.path().join(SOCKET_FILE)).unwrap_err();
        assert!(refused.contains("in the way"), "{refused}");
    }
}
