//! TensorBoard event files: scalars a run writes beside `metrics.jsonl` when
//! `trainer.tensorboard` is on (`tensorboard --logdir runs/`).
//!
//! An event file is a sequence of TFRecords, each `len: u64 LE`, `masked_crc32c(len): u32 LE`,
//! `data`, `masked_crc32c(data): u32 LE`, with `masked_crc32c(x) = rotr(crc32c(x), 15) +
//! 0xa282ead8`; `data` is a serialised `tensorflow.Event` protobuf. The first event carries
//! `file_version: "brain.Event:2"`; every other one a `Summary` of scalar values
//! (`Summary.Value { tag, simple_value }`). No maintained Rust crate writes these (tensorboard-rs
//! stopped in 2022 and pulls protobuf 2 and image 0.23), so the three messages are encoded here
//! by hand and the checksum comes from the `crc32c` crate. [`read_scalars`] reads them back.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{io, Result, TrainError};

/// The directory of a run's event files, inside the run directory.
pub const TENSORBOARD_DIR: &str = "tensorboard";

/// Appends scalar events to one new event file in a directory.
pub struct EventWriter {
    path: PathBuf,
}

impl EventWriter {
    /// Creates `dir` and a new event file in it (`events.out.tfevents.<seconds>.seethink`,
    /// TensorBoard's naming; a resumed run writes a new file beside the earlier ones, and
    /// TensorBoard drops the earlier file's events from the resumed step on).
    pub fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let seconds = wall_time() as u64;
        let mut path = dir.join(format!("events.out.tfevents.{seconds}.seethink"));
        for n in 1.. {
            if !path.exists() {
                break;
            }
            path = dir.join(format!("events.out.tfevents.{seconds}.seethink.{n}"));
        }
        let writer = Self { path };
        writer.append(&event(0, Payload::FileVersion("brain.Event:2")))?;
        Ok(writer)
    }

    /// Appends one event at `step` holding every `(tag, value)` as a scalar.
    pub fn scalars(&self, step: usize, values: &[(String, f32)]) -> Result<()> {
        self.append(&event(step as i64, Payload::Scalars(values)))
    }

    fn append(&self, data: &[u8]) -> Result<()> {
        let mut file =
            fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io(&self.path))?;
        file.write_all(&record(data)).map_err(io(&self.path))
    }
}

/// The scalars of the event files in `dir` (in file-name order): `(tag, step, value)`, checking
/// every record's checksums.
pub fn read_scalars(dir: &Path) -> Result<Vec<(String, i64, f32)>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("events.out.tfevents.")))
        .collect();
    files.sort();
    let mut scalars = Vec::new();
    for path in files {
        let bytes = fs::read(&path).map_err(io(&path))?;
        let corrupt = |what: &str| TrainError::Config {
            path: path.clone(),
            message: format!("corrupt event file: {what}"),
        };
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (header, tail) = rest.split_at_checked(12).ok_or_else(|| corrupt("truncated header"))?;
            let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes")) as usize;
            if u32::from_le_bytes(header[8..].try_into().expect("4 bytes")) != masked_crc(&header[..8]) {
                return Err(corrupt("length checksum"));
            }
            let (data, tail) = tail.split_at_checked(len).ok_or_else(|| corrupt("truncated record"))?;
            let (crc, tail) = tail.split_at_checked(4).ok_or_else(|| corrupt("truncated checksum"))?;
            if u32::from_le_bytes(crc.try_into().expect("4 bytes")) != masked_crc(data) {
                return Err(corrupt("data checksum"));
            }
            scalars.extend(decode_scalars(data).ok_or_else(|| corrupt("bad event"))?);
            rest = tail;
        }
    }
    Ok(scalars)
}

enum Payload<'a> {
    FileVersion(&'a str),
    Scalars(&'a [(String, f32)]),
}

/// `Event { wall_time = 1 (double), step = 2 (int64), file_version = 3 | summary = 5 }`,
/// `Summary { value = 1 (repeated) }`, `Value { tag = 1 (string), simple_value = 2 (float) }`.
fn event(step: i64, payload: Payload) -> Vec<u8> {
    let mut out = vec![0x09];
    out.extend(wall_time().to_le_bytes());
    out.push(0x10);
    varint(&mut out, step as u64);
    match payload {
        Payload::FileVersion(version) => length_delimited(&mut out, 0x1a, version.as_bytes()),
        Payload::Scalars(values) => {
            let mut summary = Vec::new();
            for (tag, value) in values {
                let mut v = Vec::new();
                length_delimited(&mut v, 0x0a, tag.as_bytes());
                v.push(0x15);
                v.extend(value.to_le_bytes());
                length_delimited(&mut summary, 0x0a, &v);
            }
            length_delimited(&mut out, 0x2a, &summary);
        }
    }
    out
}

/// The `(tag, step, simple_value)`s of an encoded event (none for the file-version event);
/// `None` when it is not one [`event`] writes.
fn decode_scalars(data: &[u8]) -> Option<Vec<(String, i64, f32)>> {
    let mut step = 0i64;
    let mut values = Vec::new();
    let mut fields = Fields(data);
    while let Some((key, value)) = fields.next_field()? {
        match (key, value) {
            (0x10, Field::Varint(s)) => step = s as i64,
            (0x2a, Field::Bytes(summary)) => {
                let mut summary = Fields(summary);
                while let Some((_, Field::Bytes(v))) = summary.next_field()? {
                    let (mut tag, mut simple) = (None, None);
                    let mut v = Fields(v);
                    while let Some(field) = v.next_field()? {
                        match field {
                            (0x0a, Field::Bytes(t)) => tag = Some(String::from_utf8(t.to_vec()).ok()?),
                            (0x15, Field::Fixed32(x)) => simple = Some(f32::from_le_bytes(x)),
                            _ => {}
                        }
                    }
                    values.push((tag?, simple?));
                }
            }
            _ => {}
        }
    }
    Some(values.into_iter().map(|(tag, v)| (tag, step, v)).collect())
}

enum Field<'a> {
    Varint(u64),
    Fixed64,
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

/// A protobuf message's fields in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    /// The next `(key, value)`, `Some(None)` at the end, `None` when malformed.
    fn next_field(&mut self) -> Option<Option<(u8, Field<'a>)>> {
        if self.0.is_empty() {
            return Some(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let len = self.varint()? as usize;
                Field::Bytes(self.take(len)?)
            }
            5 => Field::Fixed32(self.take(4)?.try_into().ok()?),
            _ => return None,
        };
        Some(Some((u8::try_from(key).ok()?, field)))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
}

fn length_delimited(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    out.push(key);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One TFRecord holding `data` (framing in the module docs).
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend(len);
    out.extend(masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend(masked_crc(data).to_le_bytes());
    out
}

/// TFRecord's masked CRC-32C: `((crc >> 15) | (crc << 17)) + 0xa282ead8`.
fn masked_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

fn wall_time() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_crc_of_tensorflows_own_test_vector() {
        // CRC-32C("123456789") = 0xe3069283 (RFC 3720), masked as TFRecord does
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xe306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8));
    }

    #[test]
    fn scalars_round_trip_and_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let writer = EventWriter::create(dir.path()).unwrap();
        writer.scalars(1, &[("train/reward".into(), 0.5), ("train/kl".into(), 1e-3)]).unwrap();
        writer.scalars(300, &[("train/reward".into(), 0.75)]).unwrap();
        let read = read_scalars(dir.path()).unwrap();
        assert_eq!(
            read,
            [
                ("train/reward".into(), 1, 0.5),
                ("train/kl".into(), 1, 1e-3),
                ("train/reward".into(), 300, 0.75)
            ]
        );
        // a second writer (a resumed run) adds a file; both are read
        EventWriter::create(dir.path()).unwrap().scalars(301, &[("train/reward".into(), 1.0)]).unwrap();
        assert_eq!(read_scalars(dir.path()).unwrap().len(), 4);
        let file = fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
        let mut bytes = fs::read(&file).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        fs::write(&file, bytes).unwrap();
        let err = read_scalars(dir.path()).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }
}
