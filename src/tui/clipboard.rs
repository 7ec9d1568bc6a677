//! Copying a secret: OSC 52 to the admin's own terminal (works over SSH and in
//! tmux with `set-clipboard on`), and locally also the system clipboard.

use std::io::Write;

use base64::Engine;

/// Where a copied secret goes.
pub trait Clipboard: Send {
    /// Copies `text`; `true` if the local system clipboard took it as well.
    fn copy(&mut self, text: &str) -> bool;
}

/// The OSC 52 sequence that asks the terminal to put `text` on its clipboard.
pub fn osc52(text: &str) -> String {
    format!(
        "\x1b]52;c;{}\x07",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// The real one: OSC 52 on stdout, plus arboard where a local display exists.
#[derive(Default)]
pub struct TerminalClipboard {
    // Kept alive: on X11 the clipboard's contents live as long as this does.
    system: Option<arboard::Clipboard>,
}

/// A local graphical session, and not an SSH one.
fn has_local_display() -> bool {
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let ssh = std::env::var_os("SSH_CONNECTION").is_some() || std::env::var_os("SSH_TTY").is_some();
    display && !ssh
}

impl Clipboard for TerminalClipboard {
    fn copy(&mut self, text: &str) -> bool {
        let sequence = zeroize::Zeroizing::new(osc52(text));
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(sequence.as_bytes());
        let _ = out.flush();
        if !has_local_display() {
            return false;
        }
        if self.system.is_none() {
            self.system = arboard::Clipboard::new().ok();
        }
        // If the system clipboard fails, OSC 52 alone has to do.
        self.system
            .as_mut()
            .is_some_and(|c| c.set_text(text.to_owned()).is_ok())
    }
}

/// For tests: remembers the OSC 52 sequences it would have written.
#[derive(Default)]
pub struct RecordingClipboard {
    pub written: Vec<String>,
}

impl Clipboard for RecordingClipboard {
    fn copy(&mut self, text: &str) -> bool {
        self.written.push(osc52(text));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_carries_the_text_in_base64() {
        assert_eq!(osc52("hello"), "\x1b]52;c;aGVsbG8=\x07");
    }
}
