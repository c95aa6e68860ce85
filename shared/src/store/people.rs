//! The org's people snapshot: the joined people list (`ops/queries/people.rs` builds it
//! and owns its encoding) stored under the org's partition, so a Lambda instance that has
//! not built the list itself reads one snapshot instead of every app's seat list.
//!
//! Laid out like the seat-list snapshot: the bytes gzipped, as base64 text cut into
//! parts of at most [`PART_CHARS`] characters (`PEOPLE#<part>`, DynamoDB's item limit
//! is 400 KB), and a small head item (`PEOPLE`) naming the version the list was built
//! from (opaque here: ops compares it), how many parts it has and the write's stamp.
//! Every part carries the stamp too, so a reader takes one write's parts or nothing.
//! The parts are written first, then the head, then the parts an earlier, longer
//! snapshot had beyond these are deleted.

use std::io::{Read as _, Write as _};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::{keys, DynamoDbStore};
use crate::domain::org::OrgId;
use crate::error::{Error, Result};

/// Base64 characters per part: the item stays well under DynamoDB's 400 KB.
pub(super) const PART_CHARS: usize = 350 * 1000;

/// A people snapshot: what it was built from and the list's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct PeopleSnapshot {
    /// What the list was built from, as ops writes it (compared, never parsed here).
    pub version: String,
    /// When it was built (RFC 3339).
    pub built_at: String,
    /// The list, as ops encodes it.
    pub bytes: Vec<u8>,
}

/// What a read found: the head's version and parts, then the list.
pub struct StoredPeople {
    pub version: String,
    pub built_at: String,
    /// How many parts it has (a reader asks for that many next time).
    pub parts: u32,
    /// The parts' text; None when one is missing or of another write.
    text: Option<String>,
}

impl StoredPeople {
    /// The list's bytes (the parts' text decoded and gunzipped); an error when its
    /// parts are not all there from one write.
    pub fn bytes(&self) -> Result<Vec<u8>> {
        let text = self.text.as_ref().ok_or_else(|| Error::Internal {
            context: "the people snapshot's parts are not all of one write".into(),
            source: None,
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| Error::internal("reading the people snapshot", e))?;
        let mut out = Vec::with_capacity(bytes.len() * 4);
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::internal("reading the people snapshot", e))?;
        Ok(out)
    }
}

/// The head item: the version, the parts and the write's stamp.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PeopleHead {
    version: String,
    built_at: String,
    parts: u32,
    stamp: String,
}

/// One part: a piece of the base64 text, with its write's stamp.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PeoplePart {
    /// The part's number: its sort key's suffix, not an attribute.
    #[serde(skip)]
    part: u32,
    stamp: String,
    text: String,
}

/// The parts of `snapshot` (gzipped, base64, cut) and the stamp they share.
fn encode(snapshot: &PeopleSnapshot) -> Result<(PeopleHead, Vec<PeoplePart>)> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&snapshot.bytes)
        .map_err(|e| Error::internal("compressing the people snapshot", e))?;
    let bytes = gz
        .finish()
        .map_err(|e| Error::internal("compressing the people snapshot", e))?;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    // Of the content only: two writes of one list (two refreshes at once) share their
    // stamp, so a reader may take parts of either.
    let digest = sha2::Sha256::new()
        .chain_update(snapshot.version.as_bytes())
        .chain_update(text.as_bytes())
        .finalize();
    let stamp: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    // Base64 is ASCII: any byte offset is a character boundary.
    let parts: Vec<PeoplePart> = text
        .as_bytes()
        .chunks(PART_CHARS)
        .enumerate()
        .map(|(n, c)| PeoplePart {
            part: n as u32,
            stamp: stamp.clone(),
            text: String::from_utf8_lossy(c).into_owned(),
        })
        .collect();
    let head = PeopleHead {
        version: snapshot.version.clone(),
        built_at: snapshot.built_at.clone(),
        parts: parts.len() as u32,
        stamp,
    };
    Ok((head, parts))
}

/// The snapshot `head` names, from `parts` (by part number; others ignored); without
/// its text when one is missing or from another write.
fn decode(head: PeopleHead, mut parts: Vec<PeoplePart>) -> StoredPeople {
    parts.retain(|p| p.part < head.parts && p.stamp == head.stamp);
    parts.sort_by_key(|p| p.part);
    parts.dedup_by_key(|p| p.part);
    let text =
        (parts.len() == head.parts as usize).then(|| parts.into_iter().map(|p| p.text).collect());
    StoredPeople {
        version: head.version,
        built_at: head.built_at,
        parts: head.parts,
        text,
    }
}

fn part_of(sk: &str) -> u32 {
    sk.strip_prefix(keys::PEOPLE_SNAPSHOT_PREFIX)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The head or a part, as read in one BatchGetItem.
#[derive(Debug, Deserialize)]
struct PeopleItem {
    stamp: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    built_at: Option<String>,
    #[serde(default)]
    parts: Option<u32>,
    #[serde(default)]
    text: Option<String>,
}

impl DynamoDbStore {
    /// The org's people snapshot: its head and the first `guess` parts in one
    /// BatchGetItem, then any parts the head names beyond those; None when there is
    /// none (see [`StoredPeople::bytes`] for parts not all of one write).
    pub async fn people_snapshot(&self, org: &OrgId, guess: u32) -> Result<Option<StoredPeople>> {
        let pk = keys::org(org);
        let mut wanted: Vec<(String, String)> = vec![(pk.clone(), keys::PEOPLE_SNAPSHOT_SK.into())];
        wanted.extend((0..guess.max(1)).map(|n| (pk.clone(), keys::people_snapshot_part_sk(n))));
        let found = self.get_many_keyed::<PeopleItem>(&wanted).await?;
        let mut head: Option<PeopleHead> = None;
        let mut parts: Vec<PeoplePart> = Vec::new();
        for (_, sk, item) in found {
            if sk == keys::PEOPLE_SNAPSHOT_SK {
                head = Some(PeopleHead {
                    version: item.version.unwrap_or_default(),
                    built_at: item.built_at.unwrap_or_default(),
                    parts: item.parts.unwrap_or(0),
                    stamp: item.stamp,
                });
            } else {
                parts.push(PeoplePart {
                    part: part_of(&sk),
                    stamp: item.stamp,
                    text: item.text.unwrap_or_default(),
                });
            }
        }
        let Some(head) = head else {
            return Ok(None);
        };
        let missing: Vec<(String, String)> = (0..head.parts)
            .filter(|n| !parts.iter().any(|p| p.part == *n))
            .map(|n| (pk.clone(), keys::people_snapshot_part_sk(n)))
            .collect();
        if !missing.is_empty() {
            for (_, sk, mut part) in self.get_many_keyed::<PeoplePart>(&missing).await? {
                part.part = part_of(&sk);
                parts.push(part);
            }
        }
        Ok(Some(decode(head, parts)))
    }

    /// The version of the org's stored people snapshot (its head only); None without one.
    pub async fn people_snapshot_version(&self, org: &OrgId) -> Result<Option<String>> {
        let head: Option<PeopleHead> = self.get(&keys::org(org), keys::PEOPLE_SNAPSHOT_SK).await?;
        Ok(head.map(|h| h.version))
    }

    /// Stores `snapshot` as the org's people snapshot (see the module's comment).
    pub async fn put_people_snapshot(&self, org: &OrgId, snapshot: &PeopleSnapshot) -> Result<()> {
        let pk = keys::org(org);
        let (head, parts) = encode(snapshot)?;
        let before: Option<PeopleHead> = self.get(&pk, keys::PEOPLE_SNAPSHOT_SK).await?;
        self.put_all_keyed(&pk, &parts, |p| keys::people_snapshot_part_sk(p.part))
            .await?;
        self.put_keyed(&pk, keys::PEOPLE_SNAPSHOT_SK, &head).await?;
        for n in head.parts..before.map_or(0, |b| b.parts) {
            self.delete(&pk, &keys::people_snapshot_part_sk(n)).await?;
        }
        Ok(())
    }

    /// Deletes the org's people snapshot (the bench's rebuilt runs; a purge).
    /// Every item of it goes, the parts an earlier, longer write left included (a Query
    /// of the org partition's `PEOPLE` sort keys).
    pub async fn delete_people_snapshot(&self, org: &OrgId) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct SortKey {
            sk: String,
        }
        let pk = keys::org(org);
        let items: Vec<SortKey> = self.query_prefix(&pk, keys::PEOPLE_SNAPSHOT_SK).await?;
        for item in items {
            self.delete(&pk, &item.sk).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(bytes: Vec<u8>) -> PeopleSnapshot {
        PeopleSnapshot {
            version: "v1".into(),
            built_at: "2026-11-23T12:00:00Z".into(),
            bytes,
        }
    }

    #[test]
    fn a_snapshot_cuts_into_parts_under_the_limit_and_reads_back_from_one_write_only() {
        // Incompressible bytes: about 2 MB of base64, so several parts.
        let mut x = 0x2545_f491_u32;
        let data: Vec<u8> = (0..1_500_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let (head, parts) = encode(&snapshot(data.clone())).unwrap();
        assert!(parts.len() >= 5, "{} parts", parts.len());
        assert_eq!(head.parts as usize, parts.len());
        assert!(parts.iter().all(|p| p.text.len() <= PART_CHARS));
        let mut shuffled = parts.clone();
        shuffled.reverse();
        let back = decode(head.clone(), shuffled);
        assert_eq!((back.version.as_str(), back.parts), ("v1", head.parts));
        assert_eq!(back.bytes().unwrap(), data);

        // A part missing, or one from another write: nothing.
        let mut short = parts.clone();
        short.pop();
        assert!(decode(head.clone(), short).bytes().is_err());
        let (_, other) = encode(&snapshot(b"[]".to_vec())).unwrap();
        let mut mixed = parts.clone();
        mixed[0] = other[0].clone();
        assert!(decode(head.clone(), mixed).bytes().is_err());
        // Parts beyond the head's (a longer, older snapshot) are ignored.
        let (small_head, small) = encode(&snapshot(b"{\"a\":1}".to_vec())).unwrap();
        let mut extra = small;
        extra.extend(parts.iter().skip(1).cloned());
        assert_eq!(decode(small_head, extra).bytes().unwrap(), b"{\"a\":1}");
        assert_eq!(part_of(&keys::people_snapshot_part_sk(12)), 12);
        // Two writes of one list (two refreshes at once) share their stamp and parts.
        let mut later = snapshot(data);
        later.built_at = "2026-11-23T12:00:01Z".into();
        let (later_head, later_parts) = encode(&later).unwrap();
        assert_eq!(later_head.stamp, head.stamp);
        assert!(later_parts
            .iter()
            .zip(&parts)
            .all(|(a, b)| a.text == b.text));
    }
}
