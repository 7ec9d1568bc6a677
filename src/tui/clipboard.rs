//! Copying a secret: OSC 52 to the admin's own terminal (works over SSH and in
//! tmux with `set-clipboard on`), and locally also the system clipboard.

use std::io::Write;

use base64::Engine;
use zeroize::Zeroizing;

use super::term::ClipboardMethod;

/// Where a copied secret goes.
pub trait Clipboard: Send {
    /// Copies `text`; `true` if the local system clipboard took it as well.
    fn copy(&mut self, text: &str) -> bool;
}

const OSC52_START: &[u8] = b"\x1b]52;c;";
const OSC52_END: &[u8] = b"\x07";

/// The OSC 52 sequence that asks the terminal to put `text` on its clipboard,
/// built in one buffer of its exact size (no intermediate copy, no
/// reallocation) that is zeroed when dropped.
pub fn osc52(text: &str) -> Zeroizing<String> {
    let encoded = base64::encoded_len(text.len(), true).expect("a clipboard text fits in memory");
    let mut bytes = Zeroizing::new(vec![0u8; OSC52_START.len() + encoded + OSC52_END.len()]);
    bytes[..OSC52_START.len()].copy_from_slice(OSC52_START);
    let end = bytes.len() - OSC52_END.len();
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(text, &mut bytes[OSC52_START.len()..end])
        .expect("the buffer has the encoded length");
    debug_assert_eq!(written, encoded);
    bytes[end..].copy_from_slice(OSC52_END);
    let bytes = std::mem::take(&mut *bytes);
    Zeroizing::new(String::from_utf8(bytes).expect("base64 and the escape are ASCII"))
}

/// The local system clipboard, when the session's options ask for it.
#[derive(Default)]
struct SystemClipboard {
    wanted: bool,
    // Kept alive: on X11 the clipboard's contents live as long as this does.
    system: Option<arboard::Clipboard>,
}

impl SystemClipboard {
    fn new(method: ClipboardMethod) -> Self {
        Self {
            wanted: method == ClipboardMethod::Osc52AndSystem,
            system: None,
        }
    }

    /// `true` if the system clipboard took `text`; if it fails, OSC 52 alone has to do.
    fn copy(&mut self, text: &str) -> bool {
        if !self.wanted {
            return false;
        }
        if self.system.is_none() {
            self.system = arboard::Clipboard::new().ok();
        }
        self.system
            .as_mut()
            .is_some_and(|c| c.set_text(text.to_owned()).is_ok())
    }
}

/// The local terminal's: OSC 52 on stdout, plus arboard when the session's
/// options say a local display exists (decided by the local adapter).
#[derive(Default)]
pub struct TerminalClipboard {
    system: SystemClipboard,
}

impl TerminalClipboard {
    pub fn new(method: ClipboardMethod) -> Self {
        Self {
            system: SystemClipboard::new(method),
        }
    }
}

impl Clipboard for TerminalClipboard {
    fn copy(&mut self, text: &str) -> bool {
        let sequence = osc52(text);
        write_unbuffered(sequence.as_bytes());
        drop(sequence);
        self.system.copy(text)
    }
}

/// A session's that is not the local terminal (e.g. over SSH): OSC 52 into
/// the session's own output, between frames, flushed at once so the sequence
/// does not wait in a buffer; the system clipboard only if the options say so.
pub struct SessionClipboard<W: Write + Send> {
    out: W,
    system: SystemClipboard,
}

impl<W: Write + Send> SessionClipboard<W> {
    pub fn new(out: W, method: ClipboardMethod) -> Self {
        Self {
            out,
            system: SystemClipboard::new(method),
        }
    }
}

impl<W: Write + Send> Clipboard for SessionClipboard<W> {
    fn copy(&mut self, text: &str) -> bool {
        let sequence = osc52(text);
        let _ = self.out.write_all(sequence.as_bytes());
        let _ = self.out.flush();
        drop(sequence);
        self.system.copy(text)
    }
}

/// Writes `bytes` to the terminal straight through the standard output file
/// descriptor, after what is already buffered: a secret's sequence is never
/// left behind in the buffer of `std::io::stdout()`.
fn write_unbuffered(bytes: &[u8]) {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = out.flush();
    if let Ok(fd) = out.as_fd().try_clone_to_owned() {
        let mut file = std::fs::File::from(fd);
        let _ = file.write_all(bytes);
    }
}

/// For tests: remembers the OSC 52 sequences it would have written.
#[derive(Default)]
pub struct RecordingClipboard {
    pub written: Vec<Zeroizing<String>>,
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
        assert_eq!(*osc52("hello"), "\x1b]52;c;aGVsbG8=\x07");
        assert_eq!(*osc52(""), "\x1b]52;c;\x07");
        let secret = "eg_live_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R9s";
        let sequence = osc52(secret);
        assert_eq!(sequence.len(), sequence.capacity(), "built in place");
        assert_eq!(
            *sequence,
            format!(
                "\x1b]52;c;{}\x07",
                base64::engine::general_purpose::STANDARD.encode(secret)
            )
        );
    }
}
