//! Finding this deployment's keys in text, offline: the prefix by a SIMD
//! substring search, then the length, the base62 characters and the CRC32
//! checksum, so that real keys are found and their look-alikes are not.

use memchr::memmem;

use super::secret::{checksum_holds, Secret, SecretFormat};

/// How many leading bytes decide whether content is binary (git's rule).
pub const BINARY_SNIFF_LEN: usize = 8 * 1024;

/// Whether `content` is binary: a NUL byte among its first 8 KiB, as git decides.
pub fn looks_binary(content: &[u8]) -> bool {
    memchr::memchr(0, &content[..content.len().min(BINARY_SNIFF_LEN)]).is_some()
}

/// A key found in text, and where.
#[derive(Debug)]
pub struct Found {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column in characters (Unicode code points) from the start of
    /// the line; a byte that is not part of valid UTF-8 counts as one.
    pub column: usize,
    /// 0-based byte offset of the key in the text.
    pub offset: usize,
    /// The key itself: wiped when dropped, never printed.
    pub secret: Secret,
}

/// Finds the keys of one format: searched once, reused for every text.
pub struct KeyFinder {
    format: SecretFormat,
    prefix: memmem::Finder<'static>,
}

impl KeyFinder {
    pub fn new(format: SecretFormat) -> Self {
        let prefix = memmem::Finder::new(format.prefix().as_bytes()).into_owned();
        Self { format, prefix }
    }

    pub fn format(&self) -> &SecretFormat {
        &self.format
    }

    /// Every real key in `text`, in order: the prefix, exactly the format's
    /// number of base62 characters (a longer run is a look-alike), and a
    /// checksum that holds.
    pub fn find_all(&self, text: &[u8]) -> Vec<Found> {
        let mut found = Vec::new();
        let mut lines = Lines::default();
        for offset in self.prefix.find_iter(text) {
            let Some(key) = self.key_at(text, offset) else {
                continue;
            };
            lines.advance_to(text, offset);
            let secret = std::str::from_utf8(key).expect("a key is ASCII");
            found.push(Found {
                line: lines.number,
                column: chars(&text[lines.start..offset]) + 1,
                offset,
                secret: Secret::new(secret.to_owned()),
            });
        }
        found
    }

    /// The key starting at `offset` (where the prefix was found), if it is one.
    fn key_at<'t>(&self, text: &'t [u8], offset: usize) -> Option<&'t [u8]> {
        let end = offset + self.format.secret_len();
        let candidate = text.get(offset..end)?;
        let body = &candidate[self.format.prefix().len()..];
        let shaped = body.iter().all(u8::is_ascii_alphanumeric)
            && !text.get(end).is_some_and(u8::is_ascii_alphanumeric);
        (shaped && checksum_holds(candidate)).then_some(candidate)
    }
}

/// The line reached so far: its number and where it starts. Counting only up
/// to each key keeps the cost of a text without keys at the prefix search.
struct Lines {
    scanned: usize,
    number: usize,
    start: usize,
}

impl Default for Lines {
    fn default() -> Self {
        Self {
            scanned: 0,
            number: 1,
            start: 0,
        }
    }
}

impl Lines {
    fn advance_to(&mut self, text: &[u8], offset: usize) {
        let gap = &text[self.scanned..offset];
        if let Some(last) = memchr::memrchr(b'\n', gap) {
            self.number += memchr::memchr_iter(b'\n', gap).count();
            self.start = self.scanned + last + 1;
        }
        self.scanned = offset;
    }
}

/// Characters in `bytes`: every byte but UTF-8 continuation bytes.
fn chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finder() -> KeyFinder {
        KeyFinder::new(SecretFormat::default())
    }

    fn positions(text: &str) -> Vec<(usize, usize)> {
        let found = finder().find_all(text.as_bytes());
        found.iter().map(|f| (f.line, f.column)).collect()
    }

    #[test]
    fn real_keys_are_found_with_line_and_column() {
        let a = SecretFormat::default().generate();
        let b = SecretFormat::default().generate();
        let text = format!(
            "first line\nlet k = \"{}\";\n\nné: {} and more\n",
            a.expose(),
            b.expose()
        );
        let found = finder().find_all(text.as_bytes());
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].line, found[0].column), (2, 10));
        assert_eq!(found[0].secret, a);
        // "né: " is four characters (five bytes): the column counts characters.
        assert_eq!((found[1].line, found[1].column), (4, 5));
        assert_eq!(found[1].secret, b);
        assert_eq!(&text.as_bytes()[found[1].offset..][..4], b"eg_l");
    }

    #[test]
    fn look_alikes_are_not_found() {
        let key = SecretFormat::default().generate();
        let v = key.expose();
        let mut broken = v.to_owned();
        let last = if v.ends_with('a') { "b" } else { "a" };
        broken.replace_range(v.len() - 1.., last);
        let mut dashed = v.to_owned();
        dashed.replace_range(12..13, "-");
        for fake in [
            broken,
            dashed,
            format!("{v}x"),
            v[..v.len() - 1].to_owned(),
            v.replace("eg_live_", "eg_test_"),
            "eg_live_".to_owned(),
        ] {
            assert_eq!(positions(&format!("x = {fake}\n")), vec![], "{fake}");
        }
        // Followed by punctuation or at the very end, it is still a key.
        assert_eq!(positions(&format!("{v}_\n{v}")), vec![(1, 1), (2, 1)]);
    }

    #[test]
    fn a_custom_prefix_finds_only_its_own_keys() {
        let acme = SecretFormat::new("acme_").unwrap();
        let ours = acme.generate();
        let theirs = SecretFormat::default().generate();
        let text = format!("{}\r\n{}\n", theirs.expose(), ours.expose());
        let found = KeyFinder::new(acme).find_all(text.as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].column), (2, 1));
    }

    #[test]
    fn binary_means_a_nul_in_the_first_8_kib() {
        assert!(!looks_binary(b"plain text\n"));
        assert!(looks_binary(b"PK\x03\x04\x00\x00"));
        let mut late = vec![b'a'; BINARY_SNIFF_LEN];
        late.push(0);
        assert!(!looks_binary(&late));
        assert!(!looks_binary(b""));
    }
}
