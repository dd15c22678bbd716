//! Listing pages bounded by count and by bytes, with `X-Next-Cursor`.

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;

/// Bytes of JSON one listing page holds at most (besides its first item):
/// runs can be large (results, logs), and a page of a thousand of them
/// must not cost the server gigabytes.
pub(crate) const PAGE_BUDGET_BYTES: usize = 4 << 20;

/// Rows read per query while a page fills, so a page cut by its byte budget
/// has not loaded many more rows than it answers. Fixed, not grown from the
/// sizes seen so far: small rows say nothing of the next ones, and a run
/// record may hold about 2 MiB within its caps.
pub(crate) const PAGE_CHUNK: i64 = 25;

/// Items of a listing page, already encoded, and the cursor to the next
/// page when the page stopped before the end of the listing.
#[derive(Default)]
pub(crate) struct Page {
    items: Vec<Box<RawValue>>,
    bytes: usize,
    /// The last item read (kept or not).
    last: Option<String>,
    scanned: i64,
    next: Option<String>,
}

impl Page {
    /// Adds an item unless the page is full by size: then `false`, and the
    /// cursor points after the last item kept.
    pub(crate) fn push(&mut self, id: &str, item: impl Serialize) -> bool {
        let item = serde_json::value::to_raw_value(&item).unwrap_or_else(|_| crate::routes::null());
        if !self.items.is_empty() && self.bytes + item.get().len() > PAGE_BUDGET_BYTES {
            self.next = self.last.clone();
            return false;
        }
        self.bytes += item.get().len();
        self.items.push(item);
        self.skip(id);
        true
    }

    /// Counts an item read but not shown (the caller may not read it).
    pub(crate) fn skip(&mut self, id: &str) {
        self.last = Some(id.to_owned());
        self.scanned += 1;
    }

    /// The answer: a JSON array, with `X-Next-Cursor` (pass it as
    /// `before`) when there may be more.
    pub(crate) fn into_response(self, limit: i64) -> Response {
        let next = self
            .next
            .or_else(|| (self.scanned >= limit).then_some(self.last).flatten());
        let mut res = axum::Json(self.items).into_response();
        if let Some(next) = next
            && let Ok(value) = axum::http::HeaderValue::from_str(&next)
        {
            res.headers_mut().insert("x-next-cursor", value);
        }
        res
    }

    /// Whether the page is done (cut by size, or `limit` items read).
    pub(crate) fn done(&self, limit: i64) -> bool {
        self.next.is_some() || self.scanned >= limit
    }

    /// Rows to read next.
    pub(crate) fn want(&self, limit: i64) -> i64 {
        (limit - self.scanned).clamp(1, PAGE_CHUNK)
    }
}
