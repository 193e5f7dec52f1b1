//! Redaction of secret values from a run's output, as it streams.
//!
//! Every occurrence of a secret value becomes `***` before a byte reaches the log (stored or
//! followed) or the kept stdout. Occurrences that overlap or touch (`abcd` and `cdef` in
//! `abcdef`, `abab` in `abababab`) are redacted as one `***`, so no part of either shows. Output is read in chunks: a value may be
//! split between two reads. Bytes that might begin a value are held back until the next read
//! (or the end of the stream) tells; everything else is passed on at once, so a follower sees
//! ordinary output as soon as it is written.

use memchr::memmem::Finder;

/// What each occurrence becomes.
pub const MASK: &[u8] = b"***";

/// Replaces secret values in one output stream (stdout and stderr each need their own: a value
/// split across two reads of one stream may have the other's output between its halves in
/// the log).
pub(crate) struct Redactor {
    finders: Vec<Finder<'static>>,
    /// Bytes received and not yet passed on: a possible start of a value, or the end of one
    /// whose redaction might still grow.
    pending: Vec<u8>,
    /// `pending[..covered]` belongs to an occurrence already passed on as `***`.
    covered: usize,
    /// The last bytes passed on were a `***` that reached `pending`'s start: an occurrence
    /// starting there continues it.
    joined: bool,
}

impl Redactor {
    /// A redactor for `values`; `None` when there is nothing to redact (empty values are
    /// ignored: they would match everywhere).
    pub(crate) fn new(values: &[String]) -> Option<Self> {
        let mut values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).filter(|v| !v.is_empty()).collect();
        values.sort_unstable();
        values.dedup();
        if values.is_empty() {
            return None;
        }
        let finders = values.into_iter().map(|v| Finder::new(v).into_owned()).collect();
        Some(Redactor { finders, pending: Vec::new(), covered: 0, joined: false })
    }

    /// Takes the next chunk of output; appends to `out` what can be passed on.
    pub(crate) fn push(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(data);
        let hold = self.held_from();
        self.emit(hold, out);
    }

    /// The end of the stream: passes on everything left.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        self.emit(self.pending.len(), out);
    }

    /// Where the bytes that might begin an occurrence completed by later output start: the
    /// longest suffix of `pending` that is a proper prefix of some value (no occurrence can
    /// start before it and still be incomplete).
    fn held_from(&self) -> usize {
        let len = self.pending.len();
        let mut from = len;
        for finder in &self.finders {
            let needle = finder.needle();
            let first = needle[0];
            let earliest = len.saturating_sub(needle.len() - 1);
            // Only starts before the current best can improve it.
            let mut at = earliest;
            while at < from {
                match memchr::memchr(first, &self.pending[at..from]) {
                    Some(i) => {
                        let start = at + i;
                        if needle.starts_with(&self.pending[start..]) {
                            from = start;
                            break;
                        }
                        at = start + 1;
                    }
                    None => break,
                }
            }
        }
        from
    }

    /// Passes on `pending[..cut]` with its occurrences masked, keeping the rest. Every
    /// occurrence starting before `cut` is complete; one that reaches past `cut` is masked
    /// now and the part past `cut` is remembered as covered.
    fn emit(&mut self, cut: usize, out: &mut Vec<u8>) {
        if cut == 0 {
            return;
        }
        let continues = self.covered > 0 || self.joined;
        let (mut pos, mut masked_to) = (0, None);
        for (start, end) in self.regions(cut) {
            out.extend_from_slice(&self.pending[pos..start]);
            if !(start == 0 && continues) {
                out.extend_from_slice(MASK);
            }
            pos = end.min(cut);
            masked_to = Some(end);
        }
        out.extend_from_slice(&self.pending[pos..cut]);
        self.pending.drain(..cut);
        self.joined = masked_to.is_some_and(|end| end >= cut);
        self.covered = masked_to.map_or(0, |end| end.saturating_sub(cut));
    }

    /// The masked regions of `pending` that start before `cut`: the occurrences of every
    /// value, with the covered start, merged where they overlap or touch; sorted.
    fn regions(&self, cut: usize) -> Vec<(usize, usize)> {
        let mut found: Vec<(usize, usize)> = Vec::new();
        if self.covered > 0 {
            found.push((0, self.covered));
        }
        for finder in &self.finders {
            let n = finder.needle().len();
            // Overlapping occurrences too (`find_iter` skips them): `aaaa` in `aaaaaa` masks all.
            let mut at = 0;
            while at < cut {
                let Some(i) = finder.find(&self.pending[at..]) else { break };
                if at + i >= cut {
                    break;
                }
                found.push((at + i, at + i + n));
                at += i + 1;
            }
        }
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (start, end) in found {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(values: &[&str], chunks: &[&[u8]]) -> String {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let mut r = Redactor::new(&values).unwrap();
        let mut out = Vec::new();
        for c in chunks {
            r.push(c, &mut out);
        }
        r.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// The whole input at once, and split at every point (and byte by byte): always the same.
    fn check(values: &[&str], input: &str, want: &str) {
        let bytes = input.as_bytes();
        assert_eq!(redact(values, &[bytes]), want, "whole");
        for i in 0..=bytes.len() {
            assert_eq!(redact(values, &[&bytes[..i], &bytes[i..]]), want, "split at {i}");
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(redact(values, &single), want, "byte by byte");
    }

    #[test]
    fn every_occurrence_is_masked_at_any_split() {
        check(&["hunter2"], "pw=hunter2 again hunter2\n", "pw=*** again ***\n");
        check(&["hunter2"], "hunter2hunter2", "***");
        check(&["hunter2"], "hunter hunter3 hunte", "hunter hunter3 hunte");
        check(&["s3cr3t", "tok-abc"], "a=s3cr3t b=tok-abc c=s3cr3", "a=*** b=*** c=s3cr3");
        check(&["aaaa"], "aaaaaa b aaa", "*** b aaa");
        check(&["abcd", "cdef"], "xabcdefx", "x***x");
        check(&["long-secret", "secret"], "a long-secret, a secret", "a ***, a ***");
        check(&["é-secret"], "caf\u{e9}-secret!", "caf***!");
    }

    #[test]
    fn ordinary_output_is_passed_on_at_once() {
        let mut r = Redactor::new(&["hunter2".into()]).unwrap();
        let mut out = Vec::new();
        r.push(b"progress: 50%", &mut out);
        assert_eq!(out, b"progress: 50%");
        // A possible start of the value is held until the next read says.
        out.clear();
        r.push(b" hun", &mut out);
        assert_eq!(out, b" ");
        r.push(b"ter2 done", &mut out);
        assert_eq!(out, b" *** done");
    }

    #[test]
    fn a_repeated_value_keeps_memory_bounded() {
        let mut r = Redactor::new(&["abab".into()]).unwrap();
        let mut out = Vec::new();
        for _ in 0..10_000 {
            r.push(b"ab", &mut out);
            assert!(r.pending.len() <= 4, "{} bytes pending", r.pending.len());
        }
        r.finish(&mut out);
        assert_eq!(out, b"***");
    }

    /// The union of every occurrence, computed on the whole text at once.
    fn reference(values: &[&str], input: &[u8]) -> Vec<u8> {
        let mut masked = vec![false; input.len()];
        for v in values.iter().map(|v| v.as_bytes()) {
            for start in 0..input.len() {
                if input[start..].starts_with(v) {
                    masked[start..start + v.len()].iter_mut().for_each(|m| *m = true);
                }
            }
        }
        let mut out = Vec::new();
        for (i, &b) in input.iter().enumerate() {
            if !masked[i] {
                out.push(b);
            } else if i == 0 || !masked[i - 1] {
                out.extend_from_slice(MASK);
            }
        }
        out
    }

    #[test]
    fn random_texts_and_splits_match_the_whole_text_reference() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let word = |len: u64, next: &mut dyn FnMut(u64) -> u64| -> String {
            (0..len).map(|_| (b'a' + next(3) as u8) as char).collect()
        };
        for _ in 0..2000 {
            let values: Vec<String> = (0..1 + next(3)).map(|_| word(1 + next(5), &mut next)).collect();
            let input = word(next(40), &mut next);
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let mut chunks = Vec::new();
            let mut rest = input.as_bytes();
            while !rest.is_empty() {
                let n = (1 + next(6) as usize).min(rest.len());
                chunks.push(&rest[..n]);
                rest = &rest[n..];
            }
            let want = String::from_utf8(reference(&values, input.as_bytes())).unwrap();
            assert_eq!(redact(&values, &chunks), want, "{values:?} in {input:?}, chunks {chunks:?}");
        }
    }

    #[test]
    fn nothing_to_redact_is_no_redactor() {
        assert!(Redactor::new(&[]).is_none());
        assert!(Redactor::new(&[String::new()]).is_none());
    }
}
