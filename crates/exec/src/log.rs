//! The run log: output kept under a byte cap (head + tail), readable and
//! followable while the run is going.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;

/// Cap used when a command asks for `log_cap == 0` (unlimited is not allowed:
/// one chatty job must not be able to eat the service's memory).
pub(crate) const DEFAULT_CAP: usize = 1 << 20;

/// The line put where the middle of an over-long output was dropped.
fn marker(omitted: u64) -> String {
    format!("\n… [{omitted} bytes omitted] …\n")
}

/// A byte stream kept under a cap: the first half of the cap (head) and the
/// last half (tail). Positions are offsets in the full stream, omitted part
/// included, so readers can follow it without knowing what was dropped.
#[derive(Debug)]
pub(crate) struct Capped {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    /// Ring buffer: the most recent bytes after the head.
    tail: VecDeque<u8>,
    written: u64,
}

impl Capped {
    pub(crate) fn new(cap: usize) -> Self {
        let cap = if cap == 0 { DEFAULT_CAP } else { cap };
        let head_cap = cap / 2;
        // Buffers grow on demand: most runs print far less than the cap.
        Capped { head_cap, tail_cap: cap - head_cap, head: Vec::new(), tail: VecDeque::new(), written: 0 }
    }

    pub(crate) fn push(&mut self, mut data: &[u8]) {
        self.written = self.written.saturating_add(data.len() as u64);
        if self.head.len() < self.head_cap {
            let n = (self.head_cap - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if data.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.tail_cap..]);
        } else {
            let overflow = (self.tail.len() + data.len()).saturating_sub(self.tail_cap);
            self.tail.drain(..overflow);
            self.tail.extend(data);
        }
    }

    /// Total bytes ever pushed, omitted ones included.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    pub(crate) fn omitted(&self) -> u64 {
        self.written - self.head.len() as u64 - self.tail.len() as u64
    }

    /// Everything kept after stream position `pos`, with the omission marker
    /// if `pos` lies before or inside the dropped middle; and the new position.
    /// A `pos` beyond the end (a caller's mistake) resyncs to the end.
    pub(crate) fn read_from(&self, pos: u64) -> (Vec<u8>, u64) {
        let end = self.written;
        if pos >= end {
            return (Vec::new(), end);
        }
        let head_len = self.head.len() as u64;
        let tail_start = end - self.tail.len() as u64;
        let mut out = Vec::new();
        if pos < head_len {
            // pos < head_len <= usize::MAX, so the cast is lossless.
            out.extend_from_slice(&self.head[pos as usize..]);
        }
        let skip_in_tail = if pos >= tail_start {
            (pos - tail_start) as usize
        } else {
            let gap_from = pos.max(head_len);
            if tail_start > gap_from {
                out.extend_from_slice(marker(tail_start - gap_from).as_bytes());
            }
            0
        };
        let (a, b) = self.tail.as_slices();
        if skip_in_tail < a.len() {
            out.extend_from_slice(&a[skip_in_tail..]);
            out.extend_from_slice(b);
        } else {
            out.extend_from_slice(&b[skip_in_tail - a.len()..]);
        }
        (out, end)
    }

    /// The kept text, head + marker + tail, as lossy UTF-8.
    pub(crate) fn text(&self) -> String {
        let (bytes, _) = self.read_from(0);
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

struct State {
    buf: Capped,
    closed: bool,
}

/// A run's combined output, shared between the executor (which appends) and
/// any number of readers. Cheap to clone.
///
/// The state lives inside a `watch` channel so one lock guards both the bytes
/// and the wake-up of followers waiting in [`Log::changed`].
#[derive(Clone)]
pub struct Log {
    shared: Arc<watch::Sender<State>>,
}

impl Log {
    pub(crate) fn new(cap: usize) -> Self {
        let (tx, _) = watch::channel(State { buf: Capped::new(cap), closed: false });
        Log { shared: Arc::new(tx) }
    }

    /// Appends output and wakes followers.
    pub(crate) fn push(&self, data: &[u8]) {
        if !data.is_empty() {
            self.shared.send_modify(|s| s.buf.push(data));
        }
    }

    /// Marks the output as ended and wakes followers.
    pub(crate) fn close(&self) {
        self.shared.send_modify(|s| s.closed = true);
    }

    /// Whether some of the output was omitted.
    pub(crate) fn is_truncated(&self) -> bool {
        self.shared.borrow().buf.omitted() > 0
    }

    /// The current capped text (lossy UTF-8).
    pub fn snapshot(&self) -> String {
        self.shared.borrow().buf.text()
    }

    /// Total bytes ever written, omitted ones included.
    pub fn len_written(&self) -> u64 {
        self.shared.borrow().buf.written()
    }

    /// Whether the run's output has ended (no more bytes will come).
    pub fn is_closed(&self) -> bool {
        self.shared.borrow().closed
    }

    /// Bytes available after position `pos` (a count of bytes written so far),
    /// and the new position. If `pos` falls in an omitted middle part, returns
    /// the omission marker then what is kept. A `pos` past the end returns
    /// nothing and the current end.
    pub fn read_from(&self, pos: u64) -> (Vec<u8>, u64) {
        self.shared.borrow().buf.read_from(pos)
    }

    /// Resolves when more output arrives after `pos` or the log closes.
    pub async fn changed(&self, pos: u64) {
        let mut rx = self.shared.subscribe();
        // `wait_for` checks the current value before waiting, so output that
        // arrived between the caller's read and this call is not missed. It
        // only fails if the sender is gone, which our own `Arc` prevents.
        let _ = rx.wait_for(|s| s.closed || s.buf.written() > pos).await;
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared.borrow();
        f.debug_struct("Log")
            .field("len_written", &s.buf.written())
            .field("omitted", &s.buf.omitted())
            .field("closed", &s.closed)
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
        c
    }

    #[test]
    fn under_cap_keeps_everything() {
        let c = capped(10, &[b"abc", b"defg", b"hij"]);
        assert_eq!(c.text(), "abcdefghij");
        assert_eq!(c.omitted(), 0);
        assert_eq!(c.written(), 10);
    }

    #[test]
    fn over_cap_keeps_head_and_tail_with_marker() {
        // cap 6: head 3, tail 3.
        let c = capped(6, &[b"0123", b"456789"]);
        assert_eq!(c.written(), 10);
        assert_eq!(c.omitted(), 4);
        assert_eq!(c.text(), format!("012{}789", marker(4)));
    }

    #[test]
    fn chunk_bigger_than_cap_and_many_small_chunks_agree() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let big = capped(100, &[&data]);
        let mut small = Capped::new(100);
        for b in data.chunks(7) {
            small.push(b);
        }
        assert_eq!(big.read_from(0), small.read_from(0));
        let (bytes, pos) = big.read_from(0);
        assert_eq!(pos, 1000);
        assert_eq!(&bytes[..50], &data[..50]);
        assert_eq!(&bytes[bytes.len() - 50..], &data[950..]);
    }

    #[test]
    fn odd_cap_splits_with_larger_tail() {
        let c = capped(5, &[b"abcdefghij"]);
        assert_eq!(c.text(), format!("ab{}hij", marker(5)));
    }

    #[test]
    fn tiny_cap_does_not_panic() {
        let c = capped(1, &[b"abc", b"", b"d"]);
        assert_eq!(c.text(), format!("{}d", marker(3)));
    }

    #[test]
    fn zero_cap_means_default() {
        let c = Capped::new(0);
        assert_eq!(c.head_cap + c.tail_cap, DEFAULT_CAP);
    }

    #[test]
    fn read_from_positions() {
        // head "012", tail "789", omitted 3..7.
        let c = capped(6, &[b"0123456789"]);
        assert_eq!(c.read_from(1), (format!("12{}789", marker(4)).into_bytes(), 10));
        assert_eq!(c.read_from(3), (format!("{}789", marker(4)).into_bytes(), 10));
        // Inside the gap: only what the reader skips is counted.
        assert_eq!(c.read_from(5), (format!("{}789", marker(2)).into_bytes(), 10));
        assert_eq!(c.read_from(7), (b"789".to_vec(), 10));
        assert_eq!(c.read_from(8), (b"89".to_vec(), 10));
        assert_eq!(c.read_from(10), (Vec::new(), 10));
        assert_eq!(c.read_from(99), (Vec::new(), 10));
    }

    #[test]
    fn read_from_across_ring_wrap() {
        let mut c = Capped::new(8); // head 4, tail 4
        c.push(b"abcd");
        for chunk in [b"ef".as_slice(), b"gh", b"ij", b"k"] {
            c.push(chunk);
        }
        // stream: abcdefghijk; tail keeps "hijk" (positions 7..11).
        assert_eq!(c.read_from(8), (b"ijk".to_vec(), 11));
        assert_eq!(c.read_from(4), (format!("{}hijk", marker(3)).into_bytes(), 11));
    }

    #[test]
    fn following_incrementally_reassembles_the_stream() {
        let mut c = Capped::new(1000);
        let mut pos = 0;
        let mut seen = Vec::new();
        for i in 0..50u8 {
            c.push(&[i; 7]);
            let (b, p) = c.read_from(pos);
            seen.extend(b);
            pos = p;
        }
        assert_eq!(seen.len(), 350);
        assert_eq!(seen, c.read_from(0).0);
    }

    #[test]
    fn lossy_utf8() {
        let c = capped(100, &[b"ok \xff done"]);
        assert_eq!(c.text(), "ok \u{fffd} done");
    }

    #[tokio::test]
    async fn changed_wakes_on_push_and_close() {
        let log = Log::new(100);
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
