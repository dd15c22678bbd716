//! Byte offsets and generated positions mapped back to the user's source.

/// Line starts of the wrapped source, to turn an oxc byte offset into the
/// user's 1-based line and column.
pub(crate) struct LineIndex<'s> {
    text: &'s str,
    starts: Vec<u32>,
    prefix_len: u32,
}

impl<'s> LineIndex<'s> {
    pub(crate) fn new(text: &'s str, prefix_len: u32) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i as u32 + 1),
        );
        LineIndex {
            text,
            starts,
            prefix_len,
        }
    }

    /// The user's (line, column) of a byte offset in the wrapped text. Offsets
    /// in the wrapper itself clamp to the nearest user position.
    pub(crate) fn user_position(&self, offset: u32) -> (u32, u32) {
        let offset = offset.min(self.text.len() as u32);
        // The last line holds only the closing `})` of the wrapper.
        let user_lines = (self.starts.len() - 1).max(1);
        let line_idx = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        if line_idx >= user_lines {
            let last = user_lines - 1;
            let start = self.starts[last] as usize;
            let end = self.starts[user_lines] as usize - 1;
            return self.finish(last, start, end);
        }
        let start = self.starts[line_idx] as usize;
        self.finish(line_idx, start, offset as usize)
    }

    fn finish(&self, line_idx: usize, start: usize, end: usize) -> (u32, u32) {
        let text = self.text.get(start..end).unwrap_or("");
        let mut column = text.chars().count() as u32 + 1;
        if line_idx == 0 {
            column = column.saturating_sub(self.prefix_len).max(1);
        }
        (line_idx as u32 + 1, column)
    }
}

/// Maps a 1-based (line, column) in the JavaScript the sandbox runs to the
/// 1-based (line, column) in the user's source.
#[derive(Debug, Clone, Default)]
pub struct PositionMap {
    /// (generated line, generated column, source line, source column), all
    /// 0-based and sorted; empty when the generated text is the wrapped source.
    tokens: Vec<(u32, u32, u32, u32)>,
}

impl PositionMap {
    /// The map of a JavaScript script, which runs exactly as wrapped.
    pub fn identity() -> Self {
        PositionMap { tokens: Vec::new() }
    }

    pub(crate) fn from_tokens(tokens: impl Iterator<Item = (u32, u32, u32, u32)>) -> Self {
        let mut tokens: Vec<_> = tokens.collect();
        tokens.sort_unstable();
        tokens.dedup_by_key(|t| (t.0, t.1));
        PositionMap { tokens }
    }

    /// The user's position of a generated position.
    pub fn map(&self, line: u32, column: u32) -> (u32, u32) {
        let (line0, col0) = (line.saturating_sub(1), column.saturating_sub(1));
        let (src_line0, src_col0) = if self.tokens.is_empty() {
            (line0, col0)
        } else {
            let idx = self.tokens.partition_point(|t| (t.0, t.1) <= (line0, col0));
            match idx.checked_sub(1).map(|i| self.tokens[i]) {
                // Same generated line: carry the distance past the token over.
                Some(t) if t.0 == line0 => (t.2, t.3 + (col0 - t.1)),
                Some(t) => (t.2, t.3),
                None => (0, 0),
            }
        };
        let prefix = super::WRAP_PREFIX.len() as u32;
        let column = if src_line0 == 0 {
            src_col0.saturating_sub(prefix)
        } else {
            src_col0
        };
        (src_line0 + 1, column + 1)
    }
}
