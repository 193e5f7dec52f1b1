//! The run log: output kept as text under a byte cap (head + omission marker + tail), readable
//! and followable while the run is going.
//!
//! Output becomes valid text as it arrives: each NUL and each invalid UTF-8 sequence becomes
//! U+FFFD (PostgreSQL text holds neither). The cap counts that text, marker included: a log is
//! never longer than its cap. Where the middle is omitted, the cuts fall on line boundaries
//! when a newline lies near them.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;

/// Cap used when a command asks for `log_cap == 0` (unlimited is not allowed:
/// one chatty job must not be able to eat the service's memory).
pub(crate) const DEFAULT_CAP: usize = 1 << 20;

/// Smaller caps count as this: room for the marker and a few lines around it.
pub(crate) const MIN_CAP: usize = 256;

/// A cut moves back (head) or forward (tail) to a line boundary when a newline lies within
/// this many bytes of it (within half the part, for small caps).
const LINE_WINDOW: usize = 4096;

/// What a NUL or an invalid UTF-8 sequence becomes.
const REPLACEMENT: &str = "\u{FFFD}";

/// Room kept in the cap for the marker: its longest form.
const MARKER_ROOM: usize = "\n… [18446744073709551615 bytes omitted] …\n".len();

/// The line put where the middle of an over-long output was dropped.
fn marker(omitted: u64) -> String {
    format!("\n… [{omitted} bytes omitted] …\n")
}

fn line_window(part: usize) -> usize {
    LINE_WINDOW.min(part / 2)
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// The char boundary at or before `i` in UTF-8 text `bytes`.
fn floor_boundary(bytes: &[u8], mut i: usize) -> usize {
    while i > 0 && i < bytes.len() && is_continuation(bytes[i]) {
        i -= 1;
    }
    i
}

/// Turns a byte stream into valid text chunk by chunk: a UTF-8 sequence split between two
/// chunks is completed by the second.
#[derive(Debug, Default)]
struct TextDecoder {
    /// The start of a sequence the last chunk ended in (at most 3 bytes).
    pending: Vec<u8>,
}

impl TextDecoder {
    fn decode<'a>(&mut self, data: &'a [u8]) -> Cow<'a, [u8]> {
        if self.pending.is_empty() && !data.contains(&0) && std::str::from_utf8(data).is_ok() {
            return Cow::Borrowed(data);
        }
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(data);
        let mut text = String::with_capacity(input.len());
        let mut rest = &input[..];
        loop {
            let (valid, error) = match std::str::from_utf8(rest) {
                Ok(valid) => (valid, None),
                Err(e) => {
                    let valid = std::str::from_utf8(&rest[..e.valid_up_to()]).expect("checked by from_utf8");
                    (valid, Some(e))
                }
            };
            for (i, part) in valid.split('\0').enumerate() {
                if i > 0 {
                    text.push_str(REPLACEMENT);
                }
                text.push_str(part);
            }
            let Some(e) = error else { break };
            let after = &rest[e.valid_up_to()..];
            match e.error_len() {
                Some(n) => {
                    text.push_str(REPLACEMENT);
                    rest = &after[n..];
                }
                // The chunk ends inside a sequence: the next chunk may complete it.
                None => {
                    self.pending = after.to_vec();
                    break;
                }
            }
        }
        Cow::Owned(text.into_bytes())
    }

    /// The end of the stream: a sequence left unfinished is invalid.
    fn finish(&mut self) -> &'static [u8] {
        if std::mem::take(&mut self.pending).is_empty() { b"" } else { REPLACEMENT.as_bytes() }
    }
}

/// Text kept under a cap. Up to the cap all of it is kept; past it, the log is the head
/// (the first bytes, cut at a line end), the omission marker, and the tail (the last bytes,
/// from a line start), `cap` bytes at most in all.
///
/// Readers follow it by position in that final text: they get what can no longer change —
/// the head as it fills, the rest when the output ends (before then, whether and where the
/// middle is cut is not known). So a follower receives exactly what is stored.
#[derive(Debug)]
pub(crate) struct Capped {
    cap: usize,
    head_cap: usize,
    /// The tail's share of the cap when the middle is omitted.
    tail_keep: usize,
    head: Vec<u8>,
    /// Where the head ends if the middle is omitted; set once the head is full.
    head_cut: Option<usize>,
    /// Ring buffer: the most recent bytes after the head, all of them while the text fits
    /// the cap (its room is `cap - head_cap`).
    tail: VecDeque<u8>,
    /// Bytes of text so far, omitted ones included.
    written: u64,
    decoder: TextDecoder,
    finished: bool,
}

impl Capped {
    pub(crate) fn new(cap: usize) -> Self {
        let cap = if cap == 0 { DEFAULT_CAP } else { cap.max(MIN_CAP) };
        let head_cap = (cap - MARKER_ROOM) / 2;
        // Buffers grow on demand: most runs print far less than the cap.
        Capped {
            cap,
            head_cap,
            tail_keep: cap - MARKER_ROOM - head_cap,
            head: Vec::new(),
            head_cut: None,
            tail: VecDeque::new(),
            written: 0,
            decoder: TextDecoder::default(),
            finished: false,
        }
    }

    /// Appends output (ignored once finished).
    pub(crate) fn push(&mut self, data: &[u8]) {
        if !self.finished {
            let text = self.decoder.decode(data);
            self.append(&text);
        }
    }

    /// Marks the end of the output: what is kept is final.
    pub(crate) fn finish(&mut self) {
        if !self.finished {
            let rest = self.decoder.finish();
            self.append(rest);
            self.finished = true;
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    fn append(&mut self, mut text: &[u8]) {
        self.written = self.written.saturating_add(text.len() as u64);
        if self.head.len() < self.head_cap {
            let n = (self.head_cap - self.head.len()).min(text.len());
            self.head.extend_from_slice(&text[..n]);
            text = &text[n..];
            if self.head.len() == self.head_cap {
                self.head_cut = Some(head_cut(&self.head));
            }
        }
        let room = self.cap - self.head_cap;
        if text.len() >= room {
            self.tail.clear();
            self.tail.extend(&text[text.len() - room..]);
        } else {
            let overflow = (self.tail.len() + text.len()).saturating_sub(room);
            self.tail.drain(..overflow);
            self.tail.extend(text);
        }
    }

    /// Bytes of text ever pushed, omitted ones included.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Whether the middle is omitted.
    pub(crate) fn is_truncated(&self) -> bool {
        self.written > self.cap as u64
    }

    /// Where the kept tail starts in the ring when the middle is omitted: `tail_keep` bytes
    /// from the end, moved to a char boundary, then past a newline if one is near.
    fn tail_start(&self) -> usize {
        let len = self.tail.len();
        let mut start = len.saturating_sub(self.tail_keep);
        while start < len && is_continuation(self.tail[start]) {
            start += 1;
        }
        let window = line_window(self.tail_keep).min(len - start);
        if let Some(i) = self.tail.range(start..start + window).position(|&b| b == b'\n') {
            start += i + 1;
        }
        start
    }

    /// The head's cut, the omitted count and the tail's start of a truncated log.
    fn cuts(&self) -> (usize, u64, usize) {
        let cut = self.head_cut.expect("a truncated log's head is full");
        let start = self.tail_start();
        let omitted = self.written - cut as u64 - (self.tail.len() - start) as u64;
        (cut, omitted, start)
    }

    /// Length of the text as it stands (what [`text`](Self::text) returns).
    fn len(&self) -> usize {
        if !self.is_truncated() {
            return self.head.len() + self.tail.len();
        }
        let (cut, omitted, start) = self.cuts();
        cut + marker(omitted).len() + self.tail.len() - start
    }

    /// The kept text, as bytes: all of it, or head + marker + tail.
    fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        if !self.is_truncated() {
            out.extend_from_slice(&self.head);
            out.extend(&self.tail);
            return out;
        }
        let (cut, omitted, start) = self.cuts();
        out.extend_from_slice(&self.head[..cut]);
        out.extend_from_slice(marker(omitted).as_bytes());
        out.extend(self.tail.range(start..));
        out
    }

    /// How much of the final text is known: all of it once finished; before, the head up to
    /// where its cut may fall.
    fn settled(&self) -> usize {
        if self.finished {
            return self.len();
        }
        match self.head_cut {
            Some(cut) => cut,
            None => {
                let sure = self.head_cap - line_window(self.head_cap);
                floor_boundary(&self.head, self.head.len().min(sure))
            }
        }
    }

    /// What is known of the final text from position `pos` on, and the position after it.
    /// A `pos` beyond that (a caller's mistake) gets nothing and the known end.
    pub(crate) fn read_from(&self, pos: u64) -> (Vec<u8>, u64) {
        let settled = self.settled();
        if pos >= settled as u64 {
            return (Vec::new(), settled as u64);
        }
        // pos < settled <= usize::MAX, so the cast is lossless.
        let pos = pos as usize;
        let bytes =
            if self.finished { self.render().split_off(pos) } else { self.head[pos..settled].to_vec() };
        (bytes, settled as u64)
    }

    /// Whether more than `pos` bytes of the final text are known.
    fn readable_past(&self, pos: u64) -> bool {
        self.settled() as u64 > pos
    }

    /// The kept text.
    pub(crate) fn text(&self) -> String {
        match String::from_utf8(self.render()) {
            Ok(s) => s,
            // Cuts fall on char boundaries: not expected, but never a panic over a log.
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

/// Where a full head is cut if the middle is omitted: before its last newline within the
/// window (the marker starts with one), else after its last complete char.
fn head_cut(head: &[u8]) -> usize {
    let from = head.len() - line_window(head.len());
    match head[from..].iter().rposition(|&b| b == b'\n') {
        Some(i) => from + i,
        None => complete_end(head),
    }
}

/// The end of the last complete char of `bytes`, the start of a valid UTF-8 text.
fn complete_end(bytes: &[u8]) -> usize {
    let last_start = (bytes.len().saturating_sub(4)..bytes.len()).rev().find(|&i| !is_continuation(bytes[i]));
    match last_start {
        Some(i) if std::str::from_utf8(&bytes[i..]).is_err() => i,
        _ => bytes.len(),
    }
}

/// A run's combined output, shared between the executor (which appends) and
/// any number of readers. Cheap to clone.
///
/// The text lives inside a `watch` channel so one lock guards both the bytes
/// and the wake-up of followers waiting in [`Log::changed`].
#[derive(Clone)]
pub struct Log {
    shared: Arc<watch::Sender<Capped>>,
}

impl Log {
    /// An empty log kept within `cap` bytes (head and tail). A process's log is made by
    /// `spawn`; one made here gathers several (cronstack's pipelines: a log for all steps).
    pub fn new(cap: usize) -> Self {
        let (tx, _) = watch::channel(Capped::new(cap));
        Log { shared: Arc::new(tx) }
    }

    /// Appends output and wakes followers.
    pub fn push(&self, data: &[u8]) {
        if !data.is_empty() {
            self.shared.send_modify(|c| c.push(data));
        }
    }

    /// Marks the output as ended and wakes followers.
    pub fn close(&self) {
        self.shared.send_modify(Capped::finish);
    }

    /// Whether some of the output was omitted.
    pub fn is_truncated(&self) -> bool {
        self.shared.borrow().is_truncated()
    }

    /// The current capped text: what would be stored if the output ended now.
    pub fn snapshot(&self) -> String {
        self.shared.borrow().text()
    }

    /// Bytes of text ever written (after replacement), omitted ones included.
    pub fn len_written(&self) -> u64 {
        self.shared.borrow().written()
    }

    /// Whether the run's output has ended (no more bytes will come).
    pub fn is_closed(&self) -> bool {
        self.shared.borrow().is_finished()
    }

    /// The final text from position `pos` on, as far as it is known, and the position after
    /// it. While the run goes that is the head, as it fills; the marker and the tail come
    /// once the output has ended. Followers thus receive exactly the stored log.
    pub fn read_from(&self, pos: u64) -> (Vec<u8>, u64) {
        self.shared.borrow().read_from(pos)
    }

    /// Resolves when more than `pos` bytes can be read or the log closes.
    pub async fn changed(&self, pos: u64) {
        let mut rx = self.shared.subscribe();
        // `wait_for` checks the current value before waiting, so output that
        // arrived between the caller's read and this call is not missed. It
        // only fails if the sender is gone, which our own `Arc` prevents.
        let _ = rx.wait_for(|c| c.is_finished() || c.readable_past(pos)).await;
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.shared.borrow();
        f.debug_struct("Log")
            .field("len_written", &c.written())
            .field("truncated", &c.is_truncated())
            .field("closed", &c.is_finished())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capped(cap: usize, chunks: &[&[u8]]) -> Capped {
        let mut c = Capped::new(cap);
        for ch in chunks {
            c.push(ch);
        }
        c.finish();
        c
    }

    /// Lines `"<i> <filler>\n"` for i in 0..n.
    fn lines(n: usize) -> String {
        (0..n).map(|i| format!("{i:06} abcdefghijklmnopqrstuvwxyz\n")).collect()
    }

    #[test]
    fn marker_room_fits_the_longest_marker() {
        assert_eq!(marker(u64::MAX).len(), MARKER_ROOM);
    }

    #[test]
    fn under_cap_keeps_everything() {
        let c = capped(300, &[b"abc", b"defg", b"hij"]);
        assert_eq!(c.text(), "abcdefghij");
        assert!(!c.is_truncated());
        assert_eq!(c.written(), 10);
        // Exactly the cap is still all of it.
        let exact = "x".repeat(300);
        assert_eq!(capped(300, &[exact.as_bytes()]).text(), exact);
    }

    #[test]
    fn the_cap_bounds_the_text_marker_included() {
        // Valid text, invalid UTF-8 (3 bytes of text per byte of output), NUL, no newlines.
        let inputs: [Vec<u8>; 4] =
            [lines(5000).into_bytes(), vec![0xff; 30_000], vec![0; 30_000], "é".repeat(40_000).into_bytes()];
        for input in &inputs {
            for cap in [256, 257, 300, 1000, 4096, 4097, 10_000, 65_536] {
                for chunk in [1, 7, 4096, input.len()] {
                    let mut c = Capped::new(cap);
                    for piece in input.chunks(chunk) {
                        c.push(piece);
                    }
                    c.finish();
                    let text = c.text();
                    assert!(text.len() <= cap, "cap {cap}, chunks of {chunk}: {} bytes", text.len());
                    assert!(c.is_truncated());
                    assert!(text.contains(" bytes omitted] …\n"), "{text:?}");
                    assert_eq!(text.len(), c.len());
                }
            }
        }
    }

    #[test]
    fn three_megabytes_of_invalid_utf8_stay_within_a_mebibyte() {
        let c = capped(1 << 20, &[&vec![0xff; 3_000_000]]);
        let text = c.text();
        assert!(text.len() <= 1 << 20, "{} bytes", text.len());
        assert!(text.len() > (1 << 20) - 100, "the cap is used: {} bytes", text.len());
        // Each invalid byte became one U+FFFD: 9,000,000 bytes of text, the omitted
        // count included.
        assert_eq!(c.written(), 9_000_000);
        let (head, rest) = text.split_once("\n… [").unwrap();
        let (count, tail) = rest.split_once(" bytes omitted] …\n").unwrap();
        assert_eq!(head.len() + count.parse::<usize>().unwrap() + tail.len(), 9_000_000);
    }

    #[test]
    fn cuts_fall_on_line_boundaries_and_the_marker_counts_the_rest() {
        let input = lines(3000);
        let c = capped(10_000, &[input.as_bytes()]);
        let text = c.text();
        let (head, rest) = text.split_once("\n… [").unwrap();
        let (count, tail) = rest.split_once(" bytes omitted] …\n").unwrap();
        // The head is whole lines (its last newline is the marker's), the tail whole lines.
        assert!(input.starts_with(&format!("{head}\n")), "head {head:?}");
        assert!(head.ends_with("xyz"));
        assert!(input.ends_with(tail) && tail.starts_with("00") && tail.ends_with("xyz\n"), "tail {tail:?}");
        assert!(input[..input.len() - tail.len()].ends_with('\n'));
        let omitted: usize = count.parse().unwrap();
        assert_eq!(head.len() + omitted + tail.len(), input.len());
        assert!(text.len() <= 10_000);
        // At most a line short of the cap on each side.
        assert!(text.len() > 10_000 - MARKER_ROOM - 2 * 34, "{} bytes", text.len());
    }

    #[test]
    fn without_a_newline_nearby_the_cut_falls_between_chars() {
        let input = "é".repeat(5000);
        let c = capped(1001, &[input.as_bytes()]);
        let text = c.text();
        let (head, rest) = text.split_once("\n… [").unwrap();
        let (count, tail) = rest.split_once(" bytes omitted] …\n").unwrap();
        assert!(head.chars().all(|ch| ch == 'é') && tail.chars().all(|ch| ch == 'é'));
        let omitted: usize = count.parse().unwrap();
        assert_eq!(head.len() + omitted + tail.len(), input.len());
        assert!(text.len() <= 1001);
    }

    #[test]
    fn nul_and_invalid_utf8_become_replacement_chars() {
        assert_eq!(capped(300, &[b"a\0b"]).text(), "a\u{fffd}b");
        assert_eq!(capped(300, &[b"ok \xff done"]).text(), "ok \u{fffd} done");
        // One replacement per invalid sequence, as `from_utf8_lossy` does.
        assert_eq!(
            capped(300, &[b"\xe2\x82x\xf0\x9f"]).text(),
            String::from_utf8_lossy(b"\xe2\x82x\xf0\x9f")
        );
        // A sequence split between chunks is completed by the next one…
        assert_eq!(capped(300, &[b"caf\xc3", b"\xa9 \xe2\x82", b"\xac"]).text(), "café €");
        // …and one left unfinished at the end is invalid.
        assert_eq!(capped(300, &[b"end \xe2\x82"]).text(), "end \u{fffd}");
        // The replacement counts as the three bytes it is.
        assert_eq!(capped(300, &[b"\xff"]).written(), 3);
    }

    #[test]
    fn chunk_bigger_than_cap_and_many_small_chunks_agree() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let big = capped(1000, &[&data]);
        let mut small = Capped::new(1000);
        for b in data.chunks(7) {
            small.push(b);
        }
        small.finish();
        assert_eq!(big.text(), small.text());
        assert_eq!(big.read_from(0), small.read_from(0));
    }

    #[test]
    fn tiny_and_zero_caps() {
        let c = capped(1, &[b"abc", b"", b"d"]);
        assert_eq!(c.text(), "abcd");
        assert_eq!(c.cap, MIN_CAP);
        assert_eq!(Capped::new(0).cap, DEFAULT_CAP);
    }

    /// Follows `c` while `input` is pushed in `chunk`-sized pieces; returns what was read
    /// before the end and in all.
    fn follow(cap: usize, input: &[u8], chunk: usize) -> (Vec<u8>, Vec<u8>, Capped) {
        let mut c = Capped::new(cap);
        let (mut seen, mut pos) = (Vec::new(), 0);
        for piece in input.chunks(chunk) {
            c.push(piece);
            let (b, p) = c.read_from(pos);
            seen.extend(b);
            pos = p;
        }
        let live = seen.clone();
        c.finish();
        seen.extend(c.read_from(pos).0);
        (live, seen, c)
    }

    #[test]
    fn a_follower_receives_exactly_the_stored_text() {
        let input = lines(3000);
        for cap in [256, 4096, 10_000, 200_000] {
            for chunk in [1, 100, 5000] {
                let (live, seen, c) = follow(cap, input.as_bytes(), chunk);
                assert_eq!(String::from_utf8(seen).unwrap(), c.text(), "cap {cap}, chunks of {chunk}");
                // While it ran, only the head was given out.
                assert!(live.len() <= c.head_cap, "cap {cap}: {} bytes live", live.len());
            }
        }
    }

    #[test]
    fn short_output_is_followed_live() {
        let (live, seen, c) = follow(DEFAULT_CAP, b"first\nsecond\n", 6);
        assert_eq!(live, b"first\nsecond\n");
        assert_eq!(seen, b"first\nsecond\n");
        assert!(!c.is_truncated());
    }

    #[test]
    fn read_from_positions() {
        let c = capped(300, &[b"0123456789"]);
        assert_eq!(c.read_from(0), (b"0123456789".to_vec(), 10));
        assert_eq!(c.read_from(7), (b"789".to_vec(), 10));
        assert_eq!(c.read_from(10), (Vec::new(), 10));
        assert_eq!(c.read_from(99), (Vec::new(), 10));
        let input = lines(100);
        let c = capped(1000, &[input.as_bytes()]);
        let text = c.text();
        assert_eq!(c.read_from(0), (text.clone().into_bytes(), text.len() as u64));
        assert_eq!(c.read_from(500).0, text.as_bytes()[500..]);
    }

    #[tokio::test]
    async fn changed_wakes_on_push_and_close() {
        let log = Log::new(1000);
        // Already more than pos: resolves at once.
        log.push(b"abc");
        log.changed(0).await;
        let follower = {
            let log = log.clone();
            tokio::spawn(async move {
                log.changed(3).await;
                let (b, p) = log.read_from(3);
                log.changed(p).await;
                (b, log.is_closed())
            })
        };
        tokio::task::yield_now().await;
        log.push(b"de");
        log.close();
        assert_eq!(log.snapshot(), "abcde");
        assert!(!log.is_truncated());
        let (b, closed) = follower.await.unwrap();
        assert_eq!(b, b"de");
        assert!(closed);
        assert!(log.is_closed());
        assert_eq!(log.len_written(), 5);
    }
}
