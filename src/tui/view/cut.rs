//! Text cut to a width, always marked with `…`: the one truncation helper
//! of the UI, counting terminal columns (a wide character takes two).

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// `text` in at most `width` columns, its end cut to `…` when longer.
pub fn end(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` in at most `width` columns, cut in the middle when longer, so
/// that its last words (what often tells two names apart: `deploy #2`)
/// stay: `GitHub Act…deploy #2`. The end keeps whole words in up to half
/// the room; without a word that fits, the text is cut at its end.
pub fn middle(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    if width < 8 {
        return end(text, width);
    }
    let room = (width - 1) / 2;
    let tail = text
        .char_indices()
        .filter(|(_, c)| *c == ' ')
        .map(|(i, _)| &text[i + 1..])
        .find(|tail| !tail.is_empty() && tail.width() <= room);
    match tail {
        Some(tail) => {
            let head = text[..text.len() - tail.len()].trim_end();
            let room = width - tail.width() - 1;
            let mut used = 0;
            let head: String = head
                .chars()
                .take_while(|c| {
                    used += c.width().unwrap_or(0);
                    used <= room
                })
                .collect();
            format!("{}…{tail}", head.trim_end())
        }
        None => end(text, width),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_marked_and_fit_in_columns() {
        assert_eq!(end("Grafana dashboards", 18), "Grafana dashboards");
        assert_eq!(end("Grafana dashboards", 10), "Grafana d…");
        assert_eq!(end("日本語のキー", 7), "日本語…");
        assert_eq!(end("日本語のキー", 7).width(), 7);
        assert_eq!(end("abc", 0), "");
        assert_eq!(
            middle("GitHub Actions deploy #2", 20),
            "GitHub Act…deploy #2"
        );
        assert_eq!(middle("GitHub Actions deploy #1", 12), "GitHub Ac…#1");
        assert_eq!(
            middle("GitHub Actions deploy #3", 23),
            "GitHub Action…deploy #3"
        );
        assert_eq!(middle("Averyveryverylongname", 10), "Averyvery…");
        for width in 1..30 {
            for text in ["GitHub Actions deploy #2", "日本語のキーの名前はとても長い"]
            {
                assert!(middle(text, width).width() <= width, "{text} {width}");
                assert!(end(text, width).width() <= width, "{text} {width}");
            }
        }
    }
}
