//! The shared journal's layout in S3, written in proportion to what is new.
//!
//! A long canary appends a few KB to its journal every interval; uploading the whole journal
//! each time sent its square (a 10 000-window canary, gigabytes). So the copy is:
//!
//! - `launch/runs/<id>/journal.jsonl`, the **base**: the journal as first uploaded, and the
//!   whole journal once the run is over. Its metadata `segments-from` says which segment
//!   continues it.
//! - `launch/journal-segments/<id>/L0/<seq>`: segment `seq`, the bytes one upload added.
//!   Each is created `If-None-Match: *`, and a runner's next upload is always the segment
//!   after the last one it read or wrote, so two runners that continue the same journal (a
//!   takeover and the runner it took over from) race for the same key and exactly one wins:
//!   the loser uploads nothing more. This is the fence the whole-journal `If-Match` was.
//! - `L<k>/<seq>` for k ≥ 1: segments `seq .. seq + 16^k` in one object, written by the runner
//!   that created all of them (so its bytes are the ones that won), once the last is written.
//!   A reader takes the largest that starts where it is: reading a 10 000-upload journal
//!   takes a few dozen requests, and every byte is uploaded once per level (4 at 65 536
//!   uploads) instead of once per later upload.
//!
//! Segments live outside the run's folder so that copying a run's files never copies them.

use std::ops::Range;

use anyhow::Context as _;

use launch_targets::s3::S3Location;

/// Segments merged into one object at the next level.
const FANOUT: u64 = 16;
/// The highest level written: 16^4 uploads in one object; beyond, several of them.
const TOP: u32 = 4;
/// The base's metadata naming the first segment after it.
const FROM: &str = "segments-from";
/// More segments than this in one journal is not a journal this host wrote.
const MAX_SEGMENTS: u64 = 1 << 24;

/// The journal as the shared copy holds it.
pub struct Shared {
    pub bytes: Vec<u8>,
    /// The base's ETag, what its last rewrite is conditional on.
    pub base_etag: Option<String>,
    /// The segment that would continue it: the next upload's key.
    pub next: u64,
}

pub fn base_key(loc: &S3Location, run_id: &str) -> String {
    format!("{}journal.jsonl", super::run_prefix(loc, run_id))
}

fn segment_key(loc: &S3Location, run_id: &str, level: u32, seq: u64) -> String {
    loc.key(&format!(
        "launch/journal-segments/{run_id}/L{level}/{seq:010}"
    ))
}

fn span(level: u32) -> u64 {
    FANOUT.pow(level)
}

/// Reads run `run_id`'s shared journal: the base, then every segment after it. `None`: the
/// run has no journal there.
pub async fn read(loc: &S3Location, run_id: &str) -> anyhow::Result<Option<Shared>> {
    let key = base_key(loc, run_id);
    let Some(base) = loc.get_object(&key).await? else {
        return Ok(None);
    };
    let mut next = match base.metadata.get(FROM) {
        Some(v) => v
            .parse::<u64>()
            .with_context(|| format!("{}: its {FROM} is not a number", loc.url(&key)))?,
        // A copy written before segments (the base was the whole journal), which a runner of
        // today may have continued from segment 0.
        None => 0,
    };
    let mut bytes = base.bytes;
    'segments: while next < MAX_SEGMENTS {
        // The largest object that starts here; a level is only written whole, so when one
        // is missing the levels above it are too.
        for level in (0..=TOP).rev() {
            if !next.is_multiple_of(span(level)) {
                continue;
            }
            let Some(segment) = loc.get(&segment_key(loc, run_id, level, next)).await? else {
                if level == 0 {
                    break 'segments;
                }
                continue;
            };
            anyhow::ensure!(
                (bytes.len() + segment.0.len()) as u64 <= crate::journal::MAX_BYTES,
                "{}: the journal is larger than {} bytes",
                loc.url(&key),
                crate::journal::MAX_BYTES
            );
            bytes.extend_from_slice(&segment.0);
            next += span(level);
            continue 'segments;
        }
    }
    Ok(Some(Shared {
        bytes,
        base_etag: base.etag,
        next,
    }))
}

/// What one runner has written of the journal's copy.
pub struct Writer {
    run_id: String,
    base_etag: Option<String>,
    /// The segment this runner's next upload creates.
    next: u64,
    /// Bytes of the journal in the copy.
    uploaded: usize,
    /// The first segment this process created: only segments it created are merged, so the
    /// bytes of a merged object are the ones that won their keys.
    own: Option<u64>,
    /// Per level, where in the journal its group in progress starts (the last segment this
    /// process created whose number is a multiple of the level's span).
    group_start: [usize; TOP as usize + 1],
}

/// An upload was refused: another runner continues the journal.
pub struct Refused(pub String);

impl Writer {
    /// A writer continuing `shared` (or a new run's copy when there is none).
    pub fn new(run_id: &str, shared: Option<&Shared>) -> Writer {
        Writer {
            run_id: run_id.to_string(),
            base_etag: shared.and_then(|s| s.base_etag.clone()),
            next: shared.map_or(0, |s| s.next),
            uploaded: shared.map_or(0, |s| s.bytes.len()),
            own: None,
            group_start: [0; TOP as usize + 1],
        }
    }

    /// Uploads what `journal` (the whole local journal) has beyond the copy: the base for a
    /// new run, else the next segment, then any level it completes.
    pub async fn append(
        &mut self,
        loc: &S3Location,
        journal: &[u8],
    ) -> anyhow::Result<Result<(), Refused>> {
        let base = base_key(loc, &self.run_id);
        if self.base_etag.is_none() {
            let meta = [(FROM, "0".to_string())];
            let written = loc
                .put_with(
                    &base,
                    journal.to_vec(),
                    "application/x-ndjson",
                    Some(None),
                    &meta,
                )
                .await?;
            return Ok(match written {
                Some(etag) => {
                    self.base_etag = Some(etag);
                    self.uploaded = journal.len();
                    Ok(())
                }
                None => Err(Refused(loc.url(&base))),
            });
        }
        if journal.len() <= self.uploaded {
            return self.still_ours(loc).await;
        }
        let seq = self.next;
        let key = segment_key(loc, &self.run_id, 0, seq);
        let new = journal[self.uploaded..].to_vec();
        if loc
            .put_with(&key, new, "application/x-ndjson", Some(None), &[])
            .await?
            .is_none()
        {
            return Ok(Err(Refused(loc.url(&key))));
        }
        let own = *self.own.get_or_insert(seq);
        for level in 1..=TOP {
            if seq.is_multiple_of(span(level)) {
                self.group_start[level as usize] = self.uploaded;
            }
        }
        self.uploaded = journal.len();
        self.next = seq + 1;
        // Every level this segment completes, lowest first, from bytes that won their keys.
        for level in 1..=TOP {
            let first = match (seq + 1).checked_sub(span(level)) {
                Some(first) if (seq + 1).is_multiple_of(span(level)) && first >= own => first,
                _ => break,
            };
            let from = self.group_start[level as usize];
            // The segment is durable already; a merged object only saves readers requests, so
            // one that failed is not a failed upload (readers take the smaller ones).
            if self
                .merge(loc, level, first, from..self.uploaded, journal)
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(Ok(()))
    }

    async fn merge(
        &self,
        loc: &S3Location,
        level: u32,
        first: u64,
        bytes: Range<usize>,
        journal: &[u8],
    ) -> anyhow::Result<()> {
        let key = segment_key(loc, &self.run_id, level, first);
        loc.put_with(
            &key,
            journal[bytes].to_vec(),
            "application/x-ndjson",
            None,
            &[],
        )
        .await?;
        Ok(())
    }

    /// Whether this runner still continues the copy: nobody wrote the segment it would write
    /// next, and the base is the one it read or wrote.
    pub async fn still_ours(&self, loc: &S3Location) -> anyhow::Result<Result<(), Refused>> {
        let next = segment_key(loc, &self.run_id, 0, self.next);
        if loc.head(&next).await?.is_some() {
            return Ok(Err(Refused(loc.url(&next))));
        }
        let base = base_key(loc, &self.run_id);
        if loc.head(&base).await? != self.base_etag {
            return Ok(Err(Refused(loc.url(&base))));
        }
        Ok(Ok(()))
    }

    /// At the end of the run: the base becomes the whole journal, so it is read in one
    /// request. Written only after the last segment won its key (the journal is this
    /// runner's), and only over the base it knows.
    pub async fn seal(
        &mut self,
        loc: &S3Location,
        journal: &[u8],
    ) -> anyhow::Result<Result<(), Refused>> {
        if let Err(refused) = self.append(loc, journal).await? {
            return Ok(Err(refused));
        }
        let base = base_key(loc, &self.run_id);
        let meta = [(FROM, self.next.to_string())];
        let only_if = Some(self.base_etag.as_deref());
        match loc
            .put_with(
                &base,
                journal.to_vec(),
                "application/x-ndjson",
                only_if,
                &meta,
            )
            .await?
        {
            Some(etag) => {
                self.base_etag = Some(etag);
                Ok(Ok(()))
            }
            None => Ok(Err(Refused(loc.url(&base)))),
        }
    }
}
