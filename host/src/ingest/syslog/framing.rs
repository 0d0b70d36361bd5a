//! RFC 6587 framing of syslog over TCP: octet counting (`MSG-LEN SP SYSLOG-MSG`, §3.4.1)
//! and non-transparent framing with an LF trailer (§3.4.2; a CR before the LF is
//! dropped). The method is chosen per connection by its first byte, as §3.4 suggests: a
//! digit means octet counting, anything else (normally `<`) LF-terminated frames.
//!
//! Frames longer than the maximum are skipped, not buffered: with octet counting the
//! announced length is known and the bytes are discarded as they arrive; with LF framing
//! everything up to the next LF is discarded. Either way the decoder reports
//! [`Decoded::Oversize`] once and carries on with the next frame. A MSG-LEN that is not a
//! number cannot be resynchronised and is a [`FramingError`] (the receiver closes that
//! connection after counting it).

use bytes::{Buf, BytesMut};

/// Framing method of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `MSG-LEN SP SYSLOG-MSG`.
    OctetCounting,
    /// Frames terminated by LF.
    NonTransparent,
}

/// What the decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// One frame (without length prefix or trailer).
    Frame(bytes::Bytes),
    /// A frame larger than the maximum was skipped.
    Oversize {
        /// Its length when known (octet counting), else at least this much was skipped.
        len: usize,
    },
}

/// An unrecoverable framing error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// MSG-LEN is not a number followed by a space.
    #[error("octet-counting frame: invalid MSG-LEN {0:?}")]
    BadLength(String),
    /// The peer closed the connection in the middle of an octet-counted frame.
    #[error("connection closed inside a frame ({missing} bytes missing)")]
    Truncated {
        /// Bytes still expected.
        missing: usize,
    },
}

/// Incremental decoder for one TCP connection.
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    framing: Option<Framing>,
    /// Bytes still to discard of an oversize frame (octet counting), or `usize::MAX`
    /// while discarding up to the next LF.
    skipping: usize,
    skipped: usize,
    /// Bytes of `buf` already scanned for LF (so a long line is scanned once).
    scanned: usize,
}

impl FrameDecoder {
    /// A decoder accepting frames of up to `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            max,
            framing: None,
            skipping: 0,
            skipped: 0,
            scanned: 0,
        }
    }

    /// The framing detected so far.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Take the next item out of `buf`, if complete.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, FramingError> {
        loop {
            if self.skipping > 0 {
                if let Some(done) = self.skip(buf) {
                    return Ok(Some(done));
                }
                return Ok(None);
            }
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            let framing = *self.framing.get_or_insert(if first.is_ascii_digit() {
                Framing::OctetCounting
            } else {
                Framing::NonTransparent
            });
            match framing {
                Framing::OctetCounting => {
                    // Stray LFs between frames are tolerated (some senders add them).
                    if matches!(first, b'\n' | b'\r') {
                        buf.advance(1);
                        continue;
                    }
                    let Some(space) = buf.iter().take(11).position(|&b| b == b' ') else {
                        if buf.len() >= 11 || !buf.iter().all(u8::is_ascii_digit) {
                            return Err(self.bad_length(buf));
                        }
                        return Ok(None);
                    };
                    let digits = &buf[..space];
                    if digits.is_empty()
                        || digits[0] == b'0'
                        || !digits.iter().all(u8::is_ascii_digit)
                    {
                        return Err(self.bad_length(buf));
                    }
                    let len: usize = std::str::from_utf8(digits)
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .ok_or_else(|| self.bad_length(buf))?;
                    if len > self.max {
                        buf.advance(space + 1);
                        self.skipping = len;
                        self.skipped = len;
                        continue;
                    }
                    if buf.len() < space + 1 + len {
                        buf.reserve(space + 1 + len - buf.len());
                        return Ok(None);
                    }
                    buf.advance(space + 1);
                    return Ok(Some(Decoded::Frame(buf.split_to(len).freeze())));
                }
                Framing::NonTransparent => {
                    let from = self.scanned.min(buf.len());
                    match buf[from..].iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            let end = from + i;
                            self.scanned = 0;
                            if end > self.max {
                                buf.advance(end + 1);
                                return Ok(Some(Decoded::Oversize { len: end }));
                            }
                            let mut line = buf.split_to(end + 1);
                            line.truncate(end);
                            if line.last() == Some(&b'\r') {
                                line.truncate(end - 1);
                            }
                            if line.is_empty() {
                                continue;
                            }
                            return Ok(Some(Decoded::Frame(line.freeze())));
                        }
                        None if buf.len() > self.max => {
                            self.skipped = buf.len();
                            buf.clear();
                            self.scanned = 0;
                            self.skipping = usize::MAX;
                            return Ok(None);
                        }
                        None => {
                            self.scanned = buf.len();
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    /// At end of stream: an unterminated last line is a frame; a partial octet-counted
    /// frame is an error.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, FramingError> {
        if let Some(d) = self.decode(buf)? {
            return Ok(Some(d));
        }
        if self.skipping > 0 {
            self.skipping = 0;
            return Ok(Some(Decoded::Oversize { len: self.skipped }));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        match self.framing {
            Some(Framing::NonTransparent) => {
                let line = buf.split().freeze();
                let trimmed = line
                    .strip_suffix(b"\r")
                    .map(<[u8]>::len)
                    .unwrap_or(line.len());
                Ok(Some(Decoded::Frame(line.slice(..trimmed))))
            }
            _ => {
                let missing = buf
                    .iter()
                    .position(|&b| b == b' ')
                    .and_then(|s| {
                        std::str::from_utf8(&buf[..s])
                            .ok()?
                            .parse::<usize>()
                            .ok()
                            .map(|n| n + s + 1)
                    })
                    .map(|total| total.saturating_sub(buf.len()))
                    .unwrap_or(0);
                buf.clear();
                Err(FramingError::Truncated { missing })
            }
        }
    }

    fn bad_length(&self, buf: &BytesMut) -> FramingError {
        let shown = &buf[..buf.len().min(16)];
        FramingError::BadLength(String::from_utf8_lossy(shown).into_owned())
    }

    fn skip(&mut self, buf: &mut BytesMut) -> Option<Decoded> {
        if self.skipping == usize::MAX {
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.skipped += i;
                    buf.advance(i + 1);
                    self.skipping = 0;
                    Some(Decoded::Oversize { len: self.skipped })
                }
                None => {
                    self.skipped += buf.len();
                    buf.clear();
                    None
                }
            }
        } else {
            let n = self.skipping.min(buf.len());
            buf.advance(n);
            self.skipping -= n;
            (self.skipping == 0).then_some(Decoded::Oversize { len: self.skipped })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(max: usize, chunks: &[&[u8]]) -> (Vec<Decoded>, Option<FramingError>) {
        let mut d = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            loop {
                match d.decode(&mut buf) {
                    Ok(Some(x)) => out.push(x),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        loop {
            match d.finish(&mut buf) {
                Ok(Some(x)) => out.push(x),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    fn frame(s: &str) -> Decoded {
        Decoded::Frame(bytes::Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn octet_counting_across_chunk_boundaries() {
        let stream = b"11 <13>hello a12 <13>hello\nbc";
        for split in 0..stream.len() {
            let (out, err) = run(1024, &[&stream[..split], &stream[split..]]);
            assert_eq!(err, None);
            assert_eq!(
                out,
                vec![frame("<13>hello a"), frame("<13>hello\nbc")],
                "split at {split}"
            );
        }
    }

    #[test]
    fn newline_framing_with_crlf_and_unterminated_tail() {
        let (out, err) = run(1024, &[b"<13>one\r\n<13>tw", b"o\n\n<13>three"]);
        assert_eq!(err, None);
        assert_eq!(
            out,
            vec![frame("<13>one"), frame("<13>two"), frame("<13>three")]
        );
    }

    #[test]
    fn oversize_frames_are_skipped_and_decoding_continues() {
        let (out, err) = run(8, &[b"20 <13>0123456789abcdef", b"5 <13>x"]);
        assert_eq!(err, None);
        assert_eq!(out, vec![Decoded::Oversize { len: 20 }, frame("<13>x")]);
        let (out, err) = run(8, &[b"<13>0123", b"456789abc", b"def\n<13>y\n"]);
        assert_eq!(err, None);
        assert_eq!(out, vec![Decoded::Oversize { len: 20 }, frame("<13>y")]);
    }

    #[test]
    fn bad_length_and_truncation_are_errors() {
        let (out, err) = run(1024, &[b"5 <13>x12x <13>y"]);
        assert_eq!(out, vec![frame("<13>x")]);
        assert!(matches!(err, Some(FramingError::BadLength(_))));
        let (_, err) = run(1024, &[b"99999999999999 x"]);
        assert!(matches!(err, Some(FramingError::BadLength(_))));
        let (_, err) = run(1024, &[b"10 <13>x"]);
        assert_eq!(err, Some(FramingError::Truncated { missing: 5 }));
    }
}
