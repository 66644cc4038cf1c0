//! CoAP messages (RFC 7252 section 3), read in place and written into a caller's buffer:
//! no allocation, no `core::fmt`, so the device's side fits a microcontroller.

/// Confirmable, non-confirmable, acknowledgement, reset (RFC 7252 section 4.1).
pub(crate) const CON: u8 = 0;
pub(crate) const NON: u8 = 1;
pub(crate) const ACK: u8 = 2;

/// Option numbers used here (RFC 7252 section 5.10, RFC 9175 for Echo).
pub(crate) const URI_PATH: u16 = 11;
pub(crate) const CONTENT_FORMAT: u16 = 12;
pub(crate) const MAX_AGE: u16 = 14;
/// CoAP option number of Echo (RFC 9175).
pub const ECHO_OPTION: u16 = 252;

/// Codes, `class << 5 | detail`.
pub(crate) mod code {
    pub(crate) const GET: u8 = 0x01;
    pub(crate) const POST: u8 = 0x02;
    pub(crate) const CHANGED: u8 = 0x44;
    pub(crate) const CONTENT: u8 = 0x45;
    pub(crate) const BAD_REQUEST: u8 = 0x80;
    pub(crate) const UNAUTHORIZED: u8 = 0x81;
    pub(crate) const FORBIDDEN: u8 = 0x83;
    pub(crate) const NOT_FOUND: u8 = 0x84;
    pub(crate) const METHOD_NOT_ALLOWED: u8 = 0x85;
    pub(crate) const TOO_MANY_REQUESTS: u8 = 0x9d;
    pub(crate) const SERVICE_UNAVAILABLE: u8 = 0xa3;
}

/// One parsed message, borrowing the datagram. Only well-formed messages exist: the
/// version is 1, the token at most 8 bytes, every option is complete and a payload
/// marker is followed by a payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'a> {
    /// CON, NON, ACK or RST.
    pub kind: u8,
    pub code: u8,
    pub id: u16,
    pub token: &'a [u8],
    options: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// Reads `bytes`; `None` unless it is a well-formed CoAP message.
    pub(super) fn parse(bytes: &'a [u8]) -> Option<Self> {
        let (&first, rest) = bytes.split_first()?;
        let tkl = usize::from(first & 0x0f);
        if first >> 6 != 1 || tkl > 8 || rest.len() < 3 + tkl {
            return None;
        }
        let code = rest[0];
        let id = u16::from_be_bytes([rest[1], rest[2]]);
        let (token, after) = rest[3..].split_at(tkl);
        // Walk the options once to find where they end and check them all.
        let mut options = Options {
            rest: after,
            number: 0,
        };
        for option in &mut options {
            option?;
        }
        let payload = options.rest;
        let options = &after[..after.len() - payload.len()];
        let payload = match payload.split_first() {
            None => payload,
            // RFC 7252 section 3: a marker followed by nothing is a format error.
            Some((_, [])) => return None,
            Some((_, payload)) => payload,
        };
        Some(Message {
            kind: (first >> 4) & 3,
            code,
            id,
            token,
            options,
            payload,
        })
    }

    /// The options in order: (number, value).
    pub(super) fn options(&self) -> impl Iterator<Item = (u16, &'a [u8])> {
        Options {
            rest: self.options,
            number: 0,
        }
        // Parsing checked every option already.
        .map_while(|o| o)
    }

    /// The first value of option `number`.
    pub(super) fn option(&self, number: u16) -> Option<&'a [u8]> {
        self.options().find(|(n, _)| *n == number).map(|(_, v)| v)
    }
}

/// The options of a message: each item is `Some((number, value))`, or `None` once for
/// a malformed option (then the iteration ends). Stops at the payload marker, leaving
/// `rest` at it.
struct Options<'a> {
    rest: &'a [u8],
    number: u16,
}

impl<'a> Iterator for Options<'a> {
    type Item = Option<(u16, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&head, mut rest) = self.rest.split_first()?;
        if head == 0xff {
            return None;
        }
        let parsed = extended(head >> 4, &mut rest).and_then(|delta| {
            let len = usize::from(extended(head & 0x0f, &mut rest)?);
            let number = self.number.checked_add(delta)?;
            (rest.len() >= len).then_some((number, len))
        });
        let Some((number, len)) = parsed else {
            // Malformed: report it once and stop.
            self.rest = &[];
            return Some(None);
        };
        let (value, after) = rest.split_at(len);
        self.number = number;
        self.rest = after;
        Some(Some((number, value)))
    }
}

/// An option's delta or length from its 4-bit nibble and the extended bytes after it.
fn extended(nibble: u8, rest: &mut &[u8]) -> Option<u16> {
    match nibble {
        0..=12 => Some(u16::from(nibble)),
        13 => {
            let (&b, r) = rest.split_first()?;
            *rest = r;
            Some(u16::from(b) + 13)
        }
        14 => {
            let (b, r) = rest.split_first_chunk::<2>()?;
            *rest = r;
            u16::from_be_bytes(*b).checked_add(269)
        }
        _ => None,
    }
}

/// Writes one message into a buffer: the header, options in ascending order, then the
/// payload, each piece checked against the buffer's end. [`Writer::finish`] says how
/// many bytes were written, or `None` if they did not fit (or a token was too long).
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    number: u16,
    payload: bool,
    ok: bool,
}

impl<'a> Writer<'a> {
    /// Starts a message of `kind`, `code` and message ID `id` with `token`.
    pub(super) fn new(buf: &'a mut [u8], kind: u8, code: u8, id: u16, token: &[u8]) -> Self {
        let mut w = Writer {
            buf,
            len: 0,
            number: 0,
            payload: false,
            ok: token.len() <= 8,
        };
        // TKL is 4 bits; a longer token fails `ok` above, so the cast keeps what fits.
        w.put(&[0x40 | ((kind & 3) << 4) | (token.len() & 0x0f) as u8, code]);
        w.put(&id.to_be_bytes());
        w.put(token);
        w
    }

    // The Writer's pieces are not inlined: each answer calls them a dozen times, and
    // inlined they made the answer writer 2.3 KB of a Cortex-M0's flash.
    #[inline(never)]
    fn put(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) if self.ok => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            _ => self.ok = false,
        }
    }

    /// Option `number` (not below the previous one) with `value`.
    #[inline(never)]
    pub(super) fn option(&mut self, number: u16, value: &[u8]) -> &mut Self {
        if number < self.number || self.payload || value.len() > usize::from(u16::MAX) - 269 {
            self.ok = false;
            return self;
        }
        let delta = number - self.number;
        // value.len() is checked above to fit an extended length.
        let len = value.len() as u16;
        let nibble = |v: u16| match v {
            0..=12 => v as u8,
            13..=268 => 13,
            _ => 14,
        };
        self.put(&[(nibble(delta) << 4) | nibble(len)]);
        for v in [delta, len] {
            match v {
                0..=12 => {}
                13..=268 => self.put(&[(v - 13) as u8]),
                _ => self.put(&(v - 269).to_be_bytes()),
            }
        }
        self.put(value);
        self.number = number;
        self
    }

    /// Appends `bytes` to the payload (the first call writes the payload marker).
    #[inline(never)]
    pub(super) fn text(&mut self, bytes: &[u8]) -> &mut Self {
        if !bytes.is_empty() {
            if !self.payload {
                self.put(&[0xff]);
                self.payload = true;
            }
            self.put(bytes);
        }
        self
    }

    /// Appends `value` in decimal, without `core::fmt`.
    #[inline(never)]
    pub(super) fn number(&mut self, value: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let at = crate::core::decimal(value, &mut digits);
        self.text(&digits[at..])
    }

    /// The message's length, if everything fitted.
    pub(super) fn finish(&self) -> Option<usize> {
        self.ok.then_some(self.len)
    }
}

/// A CoAP uint option value: big-endian, no leading zero bytes (RFC 7252 section 3.2).
pub(crate) fn uint(value: u64, out: &mut [u8; 8]) -> &[u8] {
    *out = value.to_be_bytes();
    let first = out.iter().position(|&b| b != 0).unwrap_or(out.len());
    &out[first..]
}
