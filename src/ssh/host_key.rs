//! The SSH server's host key: an Ed25519 key in the data dir, made on first
//! start and readable by its owner only, or one the operator names
//! (`--ssh-host-key`): replicas behind one address must all be given the same
//! key, or clients see the host key change from one connection to the next.

use std::path::Path;

use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, PrivateKey};

/// The host key's file name in the data dir.
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// The key at `path`, made there (mode 0600) if nothing is; one that others
/// may read is made private first (or refused, with the `chmod` that fixes it).
pub fn load_or_create(path: &Path) -> Result<PrivateKey, String> {
    crate::fs::make_private(path, "SSH host key")?;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = PrivateKey::from_openssh(text.as_bytes())
                .map_err(|e| format!("{} is not an OpenSSH private key: {e}", path.display()))?;
            if key.is_encrypted() {
                return Err(format!(
                    "{} is encrypted: the host key must have no passphrase",
                    path.display()
                ));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
                .map_err(|e| format!("cannot make an SSH host key: {e}"))?;
            let text = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| format!("cannot encode the SSH host key: {e}"))?;
            crate::fs::replace_private(path, &[text.as_bytes()])
                .map_err(|e| format!("cannot write the SSH host key {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "made a new SSH host key");
            Ok(key)
        }
        Err(e) => Err(format!(
            "cannot read the SSH host key {}: {e}",
            path.display()
        )),
    }
}
