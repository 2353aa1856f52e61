//! Durable state (`--state-dir`): atomic snapshot files of everything needed to rebuild the
//! dataflow's input after a crash.
//!
//! A checkpoint taken at frontier `F` holds: the current row (or tombstone) and version of every
//! source key as of all changes at times `< F`; for every source partition the position from
//! which re-reading yields every record not yet reflected in that state; the transaction
//! assembler's memory (last commit time, transactions released below `F`); the fingerprints of
//! the schema and of each view's plan. It is taken when the sinks have acknowledged everything
//! below `F`, so the sinks hold exactly the documents of that state.
//!
//! Format: `checkpoint.bin` = magic `CDCFLOW-CKPT\x03` (the last byte the format's version), then a little-endian u64 length, a
//! CRC-32 of the body, and the body (bincode). Written to `checkpoint.bin.tmp`, fsynced, renamed
//! over the old one and the directory fsynced: a crash at any moment leaves either the old or
//! the new checkpoint, never a torn one. One snapshot file was chosen over an embedded store
//! because the state is rewritten whole at each interval and read whole at start; see
//! ARCHITECTURE.md for the measured cost.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::dataflow::tx::TxState;
use crate::event::Row;
use crate::source::{Positions, Resume, Tokens};
use crate::time::{Time, Version};

/// The last byte is the format's version: 2 since decimals carry 65 digits (a version-1 file is
/// refused by name, not misread), 3 since a partition's position can have a token beside it
/// (version 2 is read, with no tokens).
const MAGIC: &[u8; 13] = b"CDCFLOW-CKPT\x03";
/// The version before tokens: read as one without them.
const VERSION_2: u8 = 2;
const FILE: &str = "checkpoint.bin";

/// One source key's state: `(table name, key, version, row or tombstone)`.
pub type KeyState = (String, Row, Version, Option<Row>);

/// What one worker contributes to a checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Part {
    /// The worker's keys.
    pub keys: Vec<KeyState>,
    /// Resume positions of the worker's partitions.
    pub positions: Positions,
    /// What the sources keep beside some of those positions
    /// ([`crate::source::SourceReader::resume_token`]).
    pub tokens: Tokens,
}

/// A whole checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every time below this is reflected.
    pub frontier: Time,
    /// Fingerprint of `schema.sql` (table ids and columns must match to restore).
    pub schema: String,
    /// Fingerprint of each view's plan, by view name.
    pub views: Vec<(String, String)>,
    /// Every worker's keys and positions.
    pub parts: Vec<Part>,
    /// The transaction assembler's memory.
    pub tx: TxState,
}

impl Checkpoint {
    /// All resume positions.
    pub fn positions(&self) -> Positions {
        self.parts
            .iter()
            .flat_map(|p| p.positions.iter().map(|(k, v)| (k.clone(), *v)))
            .collect()
    }

    /// All resume positions and their tokens.
    pub fn resume(&self) -> Resume {
        Resume {
            positions: self.positions(),
            tokens: self
                .parts
                .iter()
                .flat_map(|p| p.tokens.iter().map(|(k, v)| (k.clone(), v.clone())))
                .collect(),
        }
    }

    /// Number of keys.
    pub fn keys(&self) -> usize {
        self.parts.iter().map(|p| p.keys.len()).sum()
    }
}

/// The checkpoint file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Writes `checkpoint` atomically into `dir`; returns its size in bytes.
pub fn write(dir: &Path, checkpoint: &Checkpoint) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create state dir {}", dir.display()))?;
    let body = bincode::serialize(checkpoint).context("cannot encode checkpoint")?;
    replace_atomically(&path(dir), |f| {
        f.write_all(MAGIC)?;
        f.write_all(&(body.len() as u64).to_le_bytes())?;
        f.write_all(&crc32fast::hash(&body).to_le_bytes())?;
        f.write_all(&body)
    })?;
    Ok((MAGIC.len() + 12 + body.len()) as u64)
}

/// Replaces `dest` with what `write` writes, atomically and durably: a `.tmp` file beside it,
/// synced, renamed over it, and the directory synced. A crash leaves the old file or the new one.
pub(crate) fn replace_atomically(
    dest: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        write(&mut f).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, dest).with_context(|| format!("cannot replace {}", dest.display()))?;
    if let Some(dir) = dest.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads the checkpoint in `dir`, if there is one.
pub fn read(dir: &Path) -> anyhow::Result<Option<Checkpoint>> {
    let p = path(dir);
    let mut f = match File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", p.display())),
    };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", p.display()))?;
    let header = MAGIC.len() + 12;
    let mut version = MAGIC[MAGIC.len() - 1];
    if bytes.len() >= header && bytes[..MAGIC.len() - 1] == MAGIC[..MAGIC.len() - 1] {
        let v = bytes[MAGIC.len() - 1];
        if v == VERSION_2 {
            version = v;
        } else if v != MAGIC[MAGIC.len() - 1] {
            bail!(
                "{} is a checkpoint of format version {v} from another cdcflow version (this one \
                 reads version {}); remove the state dir to rebuild from the sources",
                p.display(),
                MAGIC[MAGIC.len() - 1]
            );
        }
    }
    if bytes.len() < header || bytes[..MAGIC.len() - 1] != MAGIC[..MAGIC.len() - 1] {
        bail!("{} is not a cdcflow checkpoint", p.display());
    }
    let len = u64::from_le_bytes(bytes[MAGIC.len()..MAGIC.len() + 8].try_into().expect("8"));
    let crc = u32::from_le_bytes(bytes[MAGIC.len() + 8..header].try_into().expect("4 bytes"));
    let body = &bytes[header..];
    if body.len() as u64 != len || crc32fast::hash(body) != crc {
        bail!(
            "{} is damaged (length or CRC-32 mismatch); remove it to rebuild from the sources",
            p.display()
        );
    }
    let c = if version == VERSION_2 {
        bincode::deserialize::<v2::Checkpoint>(body).map(v2::Checkpoint::upgrade)
    } else {
        bincode::deserialize(body)
    }
    .with_context(|| format!("cannot decode {}", p.display()))?;
    Ok(Some(c))
}

/// Format version 2: no tokens.
mod v2 {
    use super::*;

    #[derive(Deserialize)]
    pub struct Part {
        keys: Vec<KeyState>,
        positions: Positions,
    }

    #[derive(Deserialize)]
    pub struct Checkpoint {
        frontier: Time,
        schema: String,
        views: Vec<(String, String)>,
        parts: Vec<Part>,
        tx: TxState,
    }

    impl Checkpoint {
        pub fn upgrade(self) -> super::Checkpoint {
            super::Checkpoint {
                frontier: self.frontier,
                schema: self.schema,
                views: self.views,
                parts: self
                    .parts
                    .into_iter()
                    .map(|p| super::Part {
                        keys: p.keys,
                        positions: p.positions,
                        tokens: Tokens::new(),
                    })
                    .collect(),
                tx: self.tx,
            }
        }
    }
}

/// A short stable fingerprint of `text`.
pub fn fingerprint(text: &str) -> String {
    format!("{:016x}", crate::source::stable_hash(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn round_trip_and_damage_detected() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        let mut c = Checkpoint {
            frontier: 42,
            schema: "s".into(),
            ..Default::default()
        };
        c.parts.push(Part {
            keys: vec![(
                "shop.orders".into(),
                vec![Value::Int(1)].into(),
                Version {
                    file: 1,
                    pos: 2,
                    row: 0,
                },
                None,
            )],
            positions: [("t[0]".to_string(), 7u64)].into_iter().collect(),
            tokens: [("t[0]".to_string(), "epoch=1".to_string())]
                .into_iter()
                .collect(),
        });
        write(dir.path(), &c).unwrap();
        let back = read(dir.path()).unwrap().unwrap();
        assert_eq!(back.frontier, 42);
        assert_eq!(back.keys(), 1);
        assert_eq!(back.positions()["t[0]"], 7);
        assert_eq!(back.resume().tokens["t[0]"], "epoch=1");
        let p = path(dir.path());
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
        assert!(
            read(dir.path())
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
    }

    #[test]
    fn a_version_2_checkpoint_is_read_without_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let positions: Positions = [("binlog@1".to_string(), 9u64)].into_iter().collect();
        let keys: Vec<KeyState> = Vec::new();
        // Version 2's layout: the same fields, a part without tokens.
        let body = bincode::serialize(&(
            7u64,
            "s".to_string(),
            Vec::<(String, String)>::new(),
            vec![(keys, positions)],
            TxState::default(),
        ))
        .unwrap();
        let mut bytes = b"CDCFLOW-CKPT\x02".to_vec();
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        std::fs::write(path(dir.path()), &bytes).unwrap();
        let c = read(dir.path()).unwrap().unwrap();
        assert_eq!(c.frontier, 7);
        assert_eq!(c.resume().positions["binlog@1"], 9);
        assert!(c.resume().tokens.is_empty());
        bytes[12] = 1;
        std::fs::write(path(dir.path()), &bytes).unwrap();
        assert!(
            read(dir.path())
                .unwrap_err()
                .to_string()
                .contains("format version 1")
        );
    }
}
