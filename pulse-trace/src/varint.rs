//! LEB128 varints, zigzag, and a bounds-checked cursor over a byte slice.
//!
//! Every integer in a v6 record is an unsigned LEB128 varint: seven value
//! bits per byte, least significant group first, the high bit set on every
//! byte but the last. A `u64` takes 1 to 10 bytes. Signed deltas are zigzag
//! mapped first (0, -1, 1, -2, ... → 0, 1, 2, 3, ...) so small magnitudes of
//! either sign stay short.

/// The longest LEB128 encoding of a `u64`.
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// Appends `value` as an unsigned LEB128 varint.
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `value` as a zigzag varint.
#[inline]
pub(crate) fn put_zigzag(out: &mut Vec<u8>, value: i64) {
    put_varint(out, zigzag(value));
}

/// Appends a string as a varint byte length and its UTF-8 bytes.
pub(crate) fn put_str(out: &mut Vec<u8>, value: &str) {
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

/// Maps a signed value onto the unsigned ones, small magnitudes first.
#[inline]
pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Why a value could not be read from a [`Cursor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The data ended first (inside the value, or before it began).
    Incomplete,
    /// The varint's tenth byte has its continuation bit set.
    VarintTooLong,
    /// The varint encodes a value above `u64::MAX`.
    VarintOverflow,
}

/// A forward-only reader over a byte slice that never panics.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    /// Bytes consumed so far.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, ReadError> {
        let byte = *self.data.get(self.pos).ok_or(ReadError::Incomplete)?;
        self.pos += 1;
        Ok(byte)
    }

    /// Reads `len` bytes.
    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], ReadError> {
        let end = self.pos.checked_add(len).ok_or(ReadError::Incomplete)?;
        let bytes = self.data.get(self.pos..end).ok_or(ReadError::Incomplete)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Reads an unsigned LEB128 varint of at most [`MAX_VARINT_LEN`] bytes.
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, ReadError> {
        // Fast path: one byte, the common case for deltas.
        if let Some(&byte) = self.data.get(self.pos) {
            if byte < 0x80 {
                self.pos += 1;
                return Ok(u64::from(byte));
            }
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64, ReadError> {
        let mut value = 0u64;
        for i in 0..MAX_VARINT_LEN {
            let byte = *self.data.get(self.pos + i).ok_or(ReadError::Incomplete)?;
            if i == MAX_VARINT_LEN - 1 {
                if byte & 0x80 != 0 {
                    return Err(ReadError::VarintTooLong);
                }
                if byte > 1 {
                    return Err(ReadError::VarintOverflow);
                }
            }
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                self.pos += i + 1;
                return Ok(value);
            }
        }
        // Unreachable: the tenth byte always returns above.
        Err(ReadError::VarintTooLong)
    }

    /// Reads a zigzag varint.
    #[inline]
    pub(crate) fn zigzag(&mut self) -> Result<i64, ReadError> {
        self.varint().map(unzigzag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        out
    }

    #[test]
    fn varint_edge_cases_have_known_bytes() {
        assert_eq!(encoded(0), [0x00]);
        assert_eq!(encoded(1), [0x01]);
        assert_eq!(encoded(127), [0x7F]);
        assert_eq!(encoded(128), [0x80, 0x01]);
        assert_eq!(encoded(300), [0xAC, 0x02]);
        assert_eq!(encoded(16_383), [0xFF, 0x7F]);
        assert_eq!(encoded(16_384), [0x80, 0x80, 0x01]);
        assert_eq!(
            encoded(u64::MAX),
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        );
    }

    #[test]
    fn varints_round_trip() {
        let values = [
            0,
            1,
            127,
            128,
            255,
            256,
            16_383,
            16_384,
            u64::from(u32::MAX),
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ];
        for value in values {
            let bytes = encoded(value);
            let mut cursor = Cursor::new(&bytes);
            assert_eq!(cursor.varint(), Ok(value));
            assert_eq!(cursor.remaining(), 0);
        }
    }

    #[test]
    fn bad_varints_are_rejected() {
        assert_eq!(Cursor::new(&[]).varint(), Err(ReadError::Incomplete));
        assert_eq!(Cursor::new(&[0x80]).varint(), Err(ReadError::Incomplete));
        assert_eq!(Cursor::new(&[0xFF; 9]).varint(), Err(ReadError::Incomplete));
        assert_eq!(
            Cursor::new(&[0xFF; 11]).varint(),
            Err(ReadError::VarintTooLong)
        );
        let mut overflow = [0xFF; 10];
        overflow[9] = 0x02;
        assert_eq!(
            Cursor::new(&overflow).varint(),
            Err(ReadError::VarintOverflow)
        );
        // A failed read consumes nothing.
        let mut cursor = Cursor::new(&[0x80]);
        assert!(cursor.varint().is_err());
        assert_eq!(cursor.position(), 0);
    }

    #[test]
    fn zigzag_keeps_small_magnitudes_small() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(-2), 3);
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
        for value in [0, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
    }

    #[test]
    fn cursor_reads_fixed_fields_without_panicking() {
        let mut cursor = Cursor::new(&[1, 2, 3]);
        assert_eq!(cursor.bytes(2), Ok(&[1, 2][..]));
        assert_eq!(cursor.bytes(2), Err(ReadError::Incomplete));
        assert_eq!(cursor.bytes(usize::MAX), Err(ReadError::Incomplete));
        assert_eq!(cursor.u8(), Ok(3));
        assert_eq!(cursor.u8(), Err(ReadError::Incomplete));
    }
}
