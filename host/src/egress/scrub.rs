//! Echo scrubbing: an upstream that echoes what it received would hand an injected value (a
//! use-only secret, an `azure-http` token) back to the guest. Every such value, and its common
//! encodings, is masked with `*` in the response's headers, body and trailers before the guest
//! reads them, across body chunk boundaries. A mask keeps the length, so `Content-Length`
//! stays true.
//!
//! The forms masked: the value itself; its base64 and base64url at each of the three byte
//! alignments it can have inside a longer encoded text; its percent-encodings (RFC 3986
//! unreserved kept, or every non-alphanumeric encoded, either hex case, and form encoding);
//! and its JSON string escaping.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use wasmtime_wasi_http::{Error, WasiBody};
use zeroize::Zeroizing;

/// What a mask is made of.
const MASK: u8 = b'*';

/// RFC 3986's unreserved characters stay as they are; everything else is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A base64 fragment shorter than this is not masked on its own (it would mask unrelated
/// text); the value itself and its whole encodings always are.
const MIN_FRAGMENT: usize = 8;

/// One value in every form it is looked for.
pub(super) struct Forms(Vec<Zeroizing<Vec<u8>>>);

/// The forms of the values a component's requests carried last, so that a value used on every
/// request is encoded once, not per request. Bounded; zeroized as entries leave.
#[derive(Default)]
pub(super) struct FormsCache(std::sync::Mutex<Vec<Cached>>);

/// A value, and its forms.
type Cached = (Zeroizing<Vec<u8>>, Arc<Forms>);

/// How many values' forms a [`FormsCache`] keeps.
const CACHED_FORMS: usize = 32;

impl FormsCache {
    /// The forms of `value`, from the cache or made now.
    fn forms(&self, value: &[u8]) -> Arc<Forms> {
        let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, forms)) = entries.iter().find(|(v, _)| v.as_slice() == value) {
            return forms.clone();
        }
        let forms = Arc::new(Forms::of(value));
        if entries.len() >= CACHED_FORMS {
            entries.remove(0);
        }
        entries.push((Zeroizing::new(value.to_vec()), forms.clone()));
        forms
    }
}

/// The values to mask, each in every form it is looked for.
#[derive(Default)]
pub(super) struct Needles(Vec<Arc<Forms>>);

impl Needles {
    /// Adds `value` and its encodings (from `cache`).
    pub(super) fn add(&mut self, cache: &FormsCache, value: &[u8]) {
        if !value.is_empty() {
            self.0.push(cache.forms(value));
        }
    }

    /// Whether there is nothing to mask.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().flat_map(|f| f.0.iter().map(|n| n.as_slice()))
    }
}

impl Forms {
    /// `value` and its encodings.
    fn of(value: &[u8]) -> Self {
        let mut forms: Vec<Zeroizing<Vec<u8>>> = vec![Zeroizing::new(value.to_vec())];
        forms.push(Zeroizing::new(STANDARD.encode(value).into_bytes()));
        for k in 0..3 {
            let mut shifted = Zeroizing::new(vec![0u8; k]);
            shifted.extend_from_slice(value);
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                let encoded = Zeroizing::new(engine.encode(&*shifted).into_bytes());
                // The characters that hold bits of the bytes before the value, or after it.
                let skip = [0, 2, 3][k];
                let tail = usize::from(shifted.len() % 3 != 0);
                if let Some(core) = encoded.get(skip..encoded.len().saturating_sub(tail))
                    && core.len() >= MIN_FRAGMENT
                {
                    forms.push(Zeroizing::new(core.to_vec()));
                }
            }
        }
        let plain = |b: &u8| b.is_ascii_alphanumeric() || b"-._~".contains(b);
        if let Ok(text) = std::str::from_utf8(value)
            && !value.iter().all(plain)
        {
            for set in [UNRESERVED, NON_ALPHANUMERIC] {
                let upper = Zeroizing::new(utf8_percent_encode(text, set).to_string());
                forms.push(Zeroizing::new(lower_hex_escapes(&upper).into_bytes()));
                forms.push(Zeroizing::new(upper.as_bytes().to_vec()));
            }
            let form: Zeroizing<String> =
                Zeroizing::new(url::form_urlencoded::byte_serialize(value).collect());
            forms.push(Zeroizing::new(form.as_bytes().to_vec()));
            if let Ok(json) = serde_json::to_string(text) {
                let json = Zeroizing::new(json);
                forms.push(Zeroizing::new(json.as_bytes()[1..json.len() - 1].to_vec()));
            }
        } else if value.iter().any(|b| !b.is_ascii_alphanumeric()) {
            // `-`, `.`, `_` and `~` only: encoders that escape all but letters and digits.
            let text = String::from_utf8_lossy(value);
            let upper = Zeroizing::new(utf8_percent_encode(&text, NON_ALPHANUMERIC).to_string());
            forms.push(Zeroizing::new(lower_hex_escapes(&upper).into_bytes()));
            forms.push(Zeroizing::new(upper.as_bytes().to_vec()));
        }
        let mut unique: Vec<Zeroizing<Vec<u8>>> = Vec::with_capacity(forms.len());
        for form in forms {
            if !form.is_empty() && !unique.iter().any(|n| **n == *form) {
                unique.push(form);
            }
        }
        Self(unique)
    }
}

/// Texts up to this long (header values, small body chunks) are searched without building a
/// searcher per needle: building one costs more than scanning a short text.
const SHORT_TEXT: usize = 1024;

/// Where `needle` (not empty) starts in `text`: each place its first byte is, compared whole.
/// For short texts (header values, small chunks), where this beats building a searcher.
pub(super) fn find_short<'a>(text: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    memchr::memchr_iter(needle[0], text).filter(move |&at| text[at..].starts_with(needle))
}

/// `%2f` for `%2F`: the same escapes in lowercase hex.
fn lower_hex_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Masks every needle in text handed to the guest.
pub(super) struct Scrubber {
    needles: Needles,
    /// The longest needle's length: a body holds back one byte less than this.
    longest: usize,
    /// Whether some needle starts with each byte: a short text is scanned once, not once per
    /// needle.
    starts: [bool; 256],
}

impl Scrubber {
    pub(super) fn new(needles: Needles) -> Self {
        let mut starts = [false; 256];
        let mut longest = 0;
        for needle in needles.iter() {
            starts[usize::from(needle[0])] = true;
            longest = longest.max(needle.len());
        }
        Self {
            needles,
            longest,
            starts,
        }
    }

    /// Where each needle is in `text` (start, length), overlapping occurrences too; nothing
    /// is allocated when there is none.
    fn found(&self, text: &[u8]) -> Vec<(usize, usize)> {
        let mut found = Vec::new();
        if text.len() <= SHORT_TEXT {
            for (at, byte) in text.iter().enumerate() {
                if !self.starts[usize::from(*byte)] {
                    continue;
                }
                let rest = &text[at..];
                for needle in self.needles.iter() {
                    if rest.starts_with(needle) {
                        found.push((at, needle.len()));
                    }
                }
            }
            return found;
        }
        for needle in self.needles.iter().filter(|n| n.len() <= text.len()) {
            // Each search starts one byte past the last find, so overlapping ones are found.
            let finder = memchr::memmem::Finder::new(needle);
            let mut from = 0;
            while let Some(at) = text.get(from..).and_then(|rest| finder.find(rest)) {
                found.push((from + at, needle.len()));
                from += at + 1;
            }
        }
        found
    }

    /// Masks every occurrence of every needle in `buf`; whether there was any.
    fn mask(&self, buf: &mut [u8]) -> bool {
        let found = self.found(buf);
        for (at, len) in &found {
            buf[*at..at + len].fill(MASK);
        }
        !found.is_empty()
    }

    /// Masks the needles in every header value (copying only a value that holds one).
    pub(super) fn headers(&self, headers: &mut HeaderMap) {
        for value in headers.values_mut() {
            if self.found(value.as_bytes()).is_empty() {
                continue;
            }
            let mut bytes = Zeroizing::new(value.as_bytes().to_vec());
            self.mask(&mut bytes);
            // A mask of `*` keeps a valid value valid; were it not, nothing is left rather
            // than the value.
            *value = http::HeaderValue::from_bytes(&bytes)
                .unwrap_or_else(|_| http::HeaderValue::from_static(""));
        }
    }

    /// `body`, masked as the guest reads it.
    pub(super) fn body(self: &Arc<Self>, body: WasiBody) -> WasiBody {
        use http_body_util::BodyExt;
        Scrubbed {
            inner: body,
            scrubber: self.clone(),
            carry: Zeroizing::new(Vec::new()),
            trailers: None,
            ended: false,
        }
        .boxed_unsync()
    }
}

/// A response body with the needles masked. The last `longest - 1` bytes read are held back
/// until more come (or the body ends), so a value split across chunks is still found.
struct Scrubbed {
    inner: WasiBody,
    scrubber: Arc<Scrubber>,
    carry: Zeroizing<Vec<u8>>,
    /// Trailers that came while bytes were still held back.
    trailers: Option<HeaderMap>,
    ended: bool,
}

impl Scrubbed {
    /// The held-back bytes (masked when they were added), all of them.
    fn flush(&mut self) -> Option<Frame<Bytes>> {
        if self.carry.is_empty() {
            return None;
        }
        let out = Bytes::copy_from_slice(&self.carry);
        self.carry.clear();
        Some(Frame::data(out))
    }
}

impl Body for Scrubbed {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                if let Some(data) = this.flush() {
                    return Poll::Ready(Some(Ok(data)));
                }
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => {
                    this.ended = true;
                    continue;
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => frame,
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    let Ok(mut trailers) = frame.into_trailers() else {
                        continue;
                    };
                    this.scrubber.headers(&mut trailers);
                    this.trailers = Some(trailers);
                    this.ended = true;
                    continue;
                }
            };
            // The last bytes are held back only while more may come.
            let at_end = this.inner.is_end_stream();
            let hold = if at_end {
                0
            } else {
                this.scrubber.longest.saturating_sub(1)
            };
            this.ended = at_end;
            if this.carry.is_empty() && this.scrubber.found(&data).is_empty() {
                // Nothing to mask: the chunk goes on as it came, less what is held back.
                let mut data = data;
                let ready = data.len() - hold.min(data.len());
                this.carry.extend_from_slice(&data[ready..]);
                data.truncate(ready);
                if data.is_empty() {
                    continue;
                }
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            this.carry.extend_from_slice(&data);
            drop(data);
            this.scrubber.mask(&mut this.carry);
            let ready = this.carry.len() - hold.min(this.carry.len());
            if ready == 0 {
                continue;
            }
            let out = Bytes::copy_from_slice(&this.carry[..ready]);
            this.carry.drain(..ready);
            return Poll::Ready(Some(Ok(Frame::data(out))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.carry.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Masks keep the length: what is left is what the upstream has left, plus what is held.
        let inner = self.inner.size_hint();
        let held = self.carry.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + held);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn scrubber(values: &[&str]) -> Arc<Scrubber> {
        let mut needles = Needles::default();
        let cache = FormsCache::default();
        for v in values {
            needles.add(&cache, v.as_bytes());
        }
        Arc::new(Scrubber::new(needles))
    }

    /// The body `chunks` make, scrubbed, as the guest reads it.
    async fn read(s: &Arc<Scrubber>, chunks: Vec<Vec<u8>>) -> Vec<u8> {
        let frames = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, Error>(Frame::data(Bytes::from(c)))),
        );
        let body = StreamBody::new(frames).boxed_unsync();
        s.body(body).collect().await.unwrap().to_bytes().to_vec()
    }

    const VALUE: &str = "sk_live_51H/x+y=z&q";

    #[tokio::test]
    async fn a_value_split_at_every_chunk_boundary_is_masked() {
        let s = scrubber(&[VALUE]);
        let text = format!("before {VALUE} middle {VALUE} after");
        for cut in 0..text.len() {
            for cut2 in cut..text.len() {
                let b = text.as_bytes();
                let got = read(
                    &s,
                    vec![b[..cut].to_vec(), b[cut..cut2].to_vec(), b[cut2..].to_vec()],
                )
                .await;
                let got = String::from_utf8(got).unwrap();
                assert_eq!(got.len(), text.len(), "the length is kept");
                assert!(!got.contains(VALUE), "{cut}/{cut2}: {got}");
                assert!(
                    got.starts_with("before ") && got.ends_with(" after"),
                    "{got}"
                );
            }
        }
    }

    #[tokio::test]
    async fn encodings_at_every_alignment_are_masked() {
        let s = scrubber(&[VALUE]);
        let mut bodies: Vec<String> = Vec::new();
        for prefix in ["", "a", "ab", "abc"] {
            let whole = format!("{prefix}{VALUE}{prefix}");
            bodies.push(STANDARD.encode(&whole));
            bodies.push(URL_SAFE_NO_PAD.encode(&whole));
        }
        bodies.push(utf8_percent_encode(VALUE, NON_ALPHANUMERIC).to_string());
        bodies.push(lower_hex_escapes(
            &utf8_percent_encode(VALUE, UNRESERVED).to_string(),
        ));
        bodies.push(url::form_urlencoded::byte_serialize(VALUE.as_bytes()).collect());
        bodies.push(serde_json::json!({ "echo": VALUE }).to_string());
        for body in bodies {
            let got = read(&s, vec![body.clone().into_bytes()]).await;
            let got = String::from_utf8(got).unwrap();
            // What is left decodes to no copy of the value.
            assert!(got.contains("****"), "{body} -> {got}");
            for decoded in [
                STANDARD.decode(got.trim_end_matches('=')).ok(),
                URL_SAFE_NO_PAD.decode(&got).ok(),
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    !String::from_utf8_lossy(&decoded).contains(VALUE),
                    "{body} -> {got}"
                );
            }
            assert!(
                !got.contains(VALUE) && !got.contains("sk_live_51H"),
                "{body} -> {got}"
            );
        }
    }

    #[test]
    fn header_values_are_masked_and_others_left_alone() {
        let s = scrubber(&[VALUE]);
        let mut h = HeaderMap::new();
        h.insert("x-echo", format!("Bearer {VALUE}").parse().unwrap());
        h.insert("x-other", "fine".parse().unwrap());
        s.headers(&mut h);
        assert_eq!(h["x-echo"], format!("Bearer {}", "*".repeat(VALUE.len())));
        assert_eq!(h["x-other"], "fine");
    }

    #[tokio::test]
    async fn a_body_without_the_value_passes_unchanged() {
        let s = scrubber(&[VALUE]);
        let text = "nothing secret here, just a long body ".repeat(100);
        let chunks = text.as_bytes().chunks(7).map(<[u8]>::to_vec).collect();
        assert_eq!(read(&s, chunks).await, text.as_bytes());
    }

    /// One data frame, then the end as `is_end_stream` says it; polled again, it never
    /// answers: a scrubber that holds back bytes of it waits forever.
    struct Once(Option<Bytes>);

    impl Body for Once {
        type Data = Bytes;
        type Error = Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
            match self.0.take() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => Poll::Pending,
            }
        }

        fn is_end_stream(&self) -> bool {
            self.0.is_none()
        }
    }

    /// A body that says where it ends (`Content-Length`) is handed on without holding its
    /// last bytes back: masked when it holds a value, else the very bytes that came.
    #[test]
    fn a_body_that_knows_its_end_is_masked_without_holding_back() {
        use futures::FutureExt;
        let s = scrubber(&[VALUE]);
        for text in [format!("echo: {VALUE}!"), "short".to_owned()] {
            let mut scrubbed = s.body(Once(Some(Bytes::from(text.clone()))).boxed_unsync());
            let frame = scrubbed
                .frame()
                .now_or_never()
                .expect("nothing held back: the body had ended")
                .unwrap()
                .unwrap();
            assert!(scrubbed.is_end_stream());
            assert_eq!(
                String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap(),
                text.replace(VALUE, &"*".repeat(VALUE.len()))
            );
        }
    }

    /// Short texts are searched by first byte, long ones with a searcher: both find every
    /// occurrence, also where occurrences overlap (`aXaXa` holds `aXa` twice).
    #[test]
    fn short_and_long_texts_are_masked_alike() {
        let s = scrubber(&[VALUE]);
        for filler in [10, SHORT_TEXT, 4 * SHORT_TEXT] {
            let pad = "-".repeat(filler);
            let mut text = format!("{VALUE}{pad}{VALUE}{pad}{VALUE}").into_bytes();
            assert!(s.mask(&mut text), "{filler}");
            let masked = "*".repeat(VALUE.len());
            let want = format!("{masked}{pad}{masked}{pad}{masked}");
            assert!(
                String::from_utf8(text).unwrap() == want,
                "{filler}: not all masked"
            );
        }
        let overlapping = scrubber(&["aXa-secret-aXa"]);
        for filler in [0, 2 * SHORT_TEXT] {
            let pad = ".".repeat(filler);
            let mut text = format!("{pad}aXa-secret-aXa-secret-aXa").into_bytes();
            assert!(overlapping.mask(&mut text));
            let masked = String::from_utf8(text).unwrap();
            assert_eq!(masked.trim_start_matches('.'), "*".repeat(25), "{filler}");
        }
    }
}
