//! Records as stored: each a zstd frame of the encoded meetings.v1.Meeting
//! (migration 0022). A record of the realistic archive is about 0.9 kB
//! encoded and 0.5 kB compressed, and the meetings and pair tables hold it
//! once and up to six times a meeting; PostgreSQL's own compression
//! (TOAST) only applies to rows past 2 kB and, when it does, costs the
//! writes twice what zstd costs the service (docs/performance.md).
//!
//! Reads unpack in the storage layer, so callers only see encoded records.
//! A record stored before compression (an encoded Meeting always starts
//! with its id's tag, 0x0A) never starts with the zstd magic number and is
//! read as it is.

use std::cell::RefCell;

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::{Decode, Postgres, Type, ValueRef};

/// The first bytes of a zstd frame.
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// zstd's level for writes: its fastest standard level compresses these
/// records about as well as the default (1.77 against 1.80 times).
const LEVEL: i32 = 1;
/// Largest record a frame may claim to hold: the largest message the
/// service sends by default, so that a damaged frame cannot make a read
/// allocate without bound (the buffer is reserved before decompressing).
const MAX_RECORD: usize = 64 << 20;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// `record` as it is stored.
pub fn pack(record: &[u8]) -> Vec<u8> {
    COMPRESSOR.with_borrow_mut(|compressor| {
        if compressor.is_none() {
            // With a checksum (4 bytes), so that a damaged record is an
            // error rather than other bytes sent as a meeting.
            *compressor = zstd::bulk::Compressor::new(LEVEL)
                .and_then(|mut c| c.include_checksum(true).map(|()| c))
                .ok();
        }
        compressor
            .as_mut()
            .and_then(|c| c.compress(record).ok())
            // Stored as it is if zstd cannot: reads take either form.
            .unwrap_or_else(|| record.to_vec())
    })
}

/// The encoded record of `stored`.
pub fn unpack(stored: Vec<u8>) -> Result<Vec<u8>, BoxDynError> {
    if !stored.starts_with(&MAGIC) {
        return Ok(stored);
    }
    let size = zstd::zstd_safe::get_frame_content_size(&stored)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok())
        .filter(|size| *size <= MAX_RECORD)
        .ok_or("a stored record's frame has no valid size")?;
    DECOMPRESSOR.with_borrow_mut(|decompressor| {
        if decompressor.is_none() {
            *decompressor = Some(zstd::bulk::Decompressor::new()?);
        }
        let decompressor = decompressor.as_mut().ok_or("no zstd context")?;
        Ok(decompressor.decompress(&stored, size)?)
    })
}

/// A record column, read unpacked: `#[sqlx(try_from = "Stored")]` on a
/// `Vec<u8>` field, or a tuple's element. Decode only: records are packed
/// where they are bound (`pack`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored(pub Vec<u8>);

/// A nullable record column, read unpacked: `#[sqlx(try_from =
/// "MaybeStored")]` on an `Option<Vec<u8>>` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaybeStored(pub Option<Vec<u8>>);

impl Type<Postgres> for Stored {
    fn type_info() -> PgTypeInfo {
        <Vec<u8> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Vec<u8> as Type<Postgres>>::compatible(ty)
    }
}

impl Type<Postgres> for MaybeStored {
    fn type_info() -> PgTypeInfo {
        <Vec<u8> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Vec<u8> as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for Stored {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(unpack(<Vec<u8> as Decode<Postgres>>::decode(value)?)?))
    }
}

impl<'r> Decode<'r, Postgres> for MaybeStored {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Ok(Self(None));
        }
        Ok(Self(Some(unpack(<Vec<u8> as Decode<Postgres>>::decode(
            value,
        )?)?)))
    }
}

impl From<Stored> for Vec<u8> {
    fn from(stored: Stored) -> Self {
        stored.0
    }
}

impl From<MaybeStored> for Option<Vec<u8>> {
    fn from(stored: MaybeStored) -> Self {
        stored.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_records_unpack_and_old_ones_read_as_they_are() {
        let record =
            b"\x0a\x24 an encoded meeting, an encoded meeting, an encoded meeting".to_vec();
        let packed = pack(&record);
        assert!(packed.starts_with(&MAGIC));
        assert!(packed.len() < record.len());
        assert_eq!(unpack(packed).unwrap(), record);
        assert_eq!(unpack(record.clone()).unwrap(), record);
        assert_eq!(unpack(Vec::new()).unwrap(), Vec::<u8>::new());
        // A damaged frame is an error, not a panic or a huge allocation.
        assert!(unpack(MAGIC.to_vec()).is_err());
        let mut truncated = pack(&record);
        truncated.truncate(truncated.len() - 3);
        assert!(unpack(truncated).is_err());
    }
}
