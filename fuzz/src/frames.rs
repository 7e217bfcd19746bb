//! A tiny framing for structured fuzz inputs: each field is a big-endian `u16`
//! length and that many bytes; integers are 8 (or 1) raw bytes. A short input
//! just yields empty fields and zeros, so every byte string is a valid input.
//! [`Builder`] writes the same framing, for seed inputs.

/// Reads fields off the front of a fuzz input.
pub struct Frames<'a>(&'a [u8]);

impl<'a> Frames<'a> {
    /// Starts reading `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Frames(data)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }

    /// One byte, or 0.
    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    /// Eight big-endian bytes, zero-padded.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let got = self.take(8);
        b[..got.len()].copy_from_slice(got);
        u64::from_be_bytes(b)
    }

    /// A length-prefixed byte field (cut short at the end of the input).
    pub fn bytes(&mut self) -> &'a [u8] {
        let mut len = [0u8; 2];
        let got = self.take(2);
        len[..got.len()].copy_from_slice(got);
        self.take(usize::from(u16::from_be_bytes(len)))
    }

    /// A length-prefixed field as text; invalid UTF-8 is cut at the first bad byte.
    pub fn str(&mut self) -> &'a str {
        let b = self.bytes();
        match std::str::from_utf8(b) {
            Ok(s) => s,
            // `valid_up_to` is a char boundary, so this slice is valid UTF-8.
            Err(e) => std::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or_default(),
        }
    }

    /// Whatever is left.
    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Builds an input that [`Frames`] reads back field by field.
#[derive(Default)]
pub struct Builder(Vec<u8>);

impl Builder {
    /// An empty input.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Appends one byte.
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    /// Appends eight big-endian bytes.
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a length-prefixed field (at most 65535 bytes).
    pub fn bytes(mut self, b: &[u8]) -> Self {
        let len = u16::try_from(b.len()).expect("seed field longer than 65535 bytes");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }

    /// Appends raw bytes with no prefix (the `rest`).
    pub fn rest(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }

    /// The input.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}
