//! Step output as log lines of bounded length: a line longer than [`MAX_LINE`] bytes is cut into
//! pieces, and every piece after the first is marked as continuing the one before it, so memory
//! per stream stays bounded whatever a step writes and readers can join the pieces again.

/// Longest log line kept in one piece, in bytes (without its newline).
pub const MAX_LINE: usize = 64 * 1024;

/// One piece of output, ready to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The text, without its newline (and without a `\r` before it).
    pub line: String,
    /// This piece continues the line of the piece before it on the same stream.
    pub continued: bool,
}

/// Cuts a byte stream into lines of at most `cap` bytes.
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    cap: usize,
    /// The bytes in `buf` continue a line already cut.
    continuing: bool,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new(MAX_LINE)
    }
}

impl LineSplitter {
    /// A splitter cutting lines at `cap` bytes (at least 4, so a cut always fits a character).
    pub fn new(cap: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            cap: cap.max(4),
            continuing: false,
        }
    }

    /// Adds output; returns the pieces it completes. Holds back at most `cap` bytes.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let room = self.cap - self.buf.len();
            let window = &bytes[..bytes.len().min(room + 1)];
            if let Some(pos) = window.iter().position(|b| *b == b'\n')
                && pos <= room
            {
                self.buf.extend_from_slice(&bytes[..pos]);
                bytes = &bytes[pos + 1..];
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                if self.buf.is_empty() && self.continuing {
                    // The line ended exactly where it was cut: no empty piece for it.
                    self.continuing = false;
                } else {
                    out.push(self.take(self.buf.len(), false));
                }
                continue;
            }
            let take = bytes.len().min(room);
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() >= self.cap {
                let cut = utf8_cut(&self.buf);
                out.push(self.take(cut, true));
            }
        }
        out
    }

    /// The rest of a stream that did not end with a newline.
    pub fn finish(&mut self) -> Option<Piece> {
        if self.buf.is_empty() && !self.continuing {
            return None;
        }
        let len = self.buf.len();
        let piece = self.take(len, false);
        // A line cut exactly at the cap leaves nothing behind; no empty piece for it.
        (!piece.line.is_empty() || !piece.continued).then_some(piece)
    }

    /// Takes the first `n` bytes as a piece; `more` says the line goes on after them.
    fn take(&mut self, n: usize, more: bool) -> Piece {
        let line = String::from_utf8_lossy(&self.buf[..n]).into_owned();
        self.buf.drain(..n);
        let piece = Piece {
            line,
            continued: self.continuing,
        };
        self.continuing = more;
        piece
    }
}

/// Where to cut a full buffer without splitting a UTF-8 character at its end (which would turn
/// both halves into replacement characters): before an incomplete sequence, if there is one.
fn utf8_cut(buf: &[u8]) -> usize {
    let len = buf.len();
    for back in 1..=3.min(len) {
        let b = buf[len - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if need > back && len - back > 0 {
            len - back
        } else {
            len
        };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pieces: &[Piece]) -> Vec<(&str, bool)> {
        pieces
            .iter()
            .map(|p| (p.line.as_str(), p.continued))
            .collect()
    }

    #[test]
    fn short_lines_pass_whole_across_chunks() {
        let mut s = LineSplitter::new(8);
        let mut got = s.push(b"ab\r\ncd");
        got.extend(s.push(b"e\n\nf"));
        got.extend(s.finish());
        assert_eq!(
            lines(&got),
            [("ab", false), ("cde", false), ("", false), ("f", false)]
        );
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn a_long_line_is_cut_and_its_pieces_marked() {
        let mut s = LineSplitter::new(4);
        let mut got = s.push(b"abcdefghij\nxy");
        got.extend(s.finish());
        assert_eq!(
            lines(&got),
            [("abcd", false), ("efgh", true), ("ij", true), ("xy", false)]
        );
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_not_followed_by_an_empty_piece() {
        let mut s = LineSplitter::new(4);
        let mut got = s.push(b"abcd\nefgh");
        got.extend(s.push(b"\nij\n"));
        assert_eq!(
            lines(&got),
            [("abcd", false), ("efgh", false), ("ij", false)]
        );
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn every_byte_is_kept_and_no_character_is_split() {
        let text = "é".repeat(50) + "x";
        let mut s = LineSplitter::new(7);
        let mut got = Vec::new();
        for chunk in text.as_bytes().chunks(3) {
            got.extend(s.push(chunk));
        }
        got.extend(s.finish());
        assert!(
            got.iter()
                .all(|p| p.line.len() <= 7 && !p.line.contains('\u{fffd}'))
        );
        assert!(got.iter().skip(1).all(|p| p.continued));
        let joined: String = got.iter().map(|p| p.line.as_str()).collect();
        assert_eq!(joined, text);
    }
}
