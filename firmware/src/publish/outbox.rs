//! The bounded on-disk queue of events waiting for the broker.
//!
//! Every event is written here (one SQLite transaction) before anyone tries to send it, and
//! deleted only once the broker has acknowledged it, so a broker outage or a power cut loses
//! nothing; on reconnect the queue is sent oldest first. The queue is bounded: past `limit`
//! messages the oldest are dropped, counted and logged (a door left offline for weeks must not
//! fill its disk). It also keeps the sequence counters of events and access decisions, so their
//! numbers keep increasing across restarts.
//!
//! A full disk must not stop the door: sequence numbers are reserved on disk a block at a time
//! ([`SEQ_BLOCK`]) and handed out from memory (a crash skips the rest of a block, never reuses a
//! number; a clean close writes back the exact count), and a message that does not fit makes
//! room by dropping the oldest queued ones, which are counted.

use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// Why the queue could not be used.
#[derive(Debug, thiserror::Error)]
#[error("event queue {path}: {source}")]
pub struct OutboxError {
    /// The database file.
    pub path: PathBuf,
    /// SQLite's error.
    pub source: rusqlite::Error,
}

/// Sequence numbers reserved on disk at once.
pub const SEQ_BLOCK: u64 = 1000;

/// The persistent sequence counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Events on `.../events`.
    Event,
    /// Signed decisions on `.../access`.
    Access,
}

impl Counter {
    fn name(self) -> &'static str {
        match self {
            Self::Event => "event_seq",
            Self::Access => "access_seq",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Event => 0,
            Self::Access => 1,
        }
    }

    const ALL: [Self; 2] = [Self::Event, Self::Access];
}

/// Numbers of one counter handed out from memory: `next..end`; `end - 1` is on disk.
#[derive(Debug, Clone, Copy, Default)]
struct Reserved {
    next: u64,
    end: u64,
}

use facegate_pipeline::sqlite::is_disk_full;

/// One queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Queue position (increasing).
    pub id: i64,
    /// Topic to publish on.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
}

/// The queue, open.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
    limit: usize,
    /// Per counter, once loaded.
    reserved: [Option<Reserved>; 2],
}

impl Outbox {
    /// Opens (or creates) the queue at `path`, holding at most `limit` messages.
    pub fn open(path: &Path, limit: usize) -> Result<Self, OutboxError> {
        let err = |source| OutboxError {
            path: path.to_owned(),
            source,
        };
        let conn = facegate_pipeline::sqlite::open(path).map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS queue (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 topic TEXT NOT NULL,
                 payload BLOB NOT NULL
             );
             CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )
        .map_err(err)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
            limit: limit.max(1),
            reserved: [None; 2],
        })
    }

    fn err(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError {
            path: self.path.clone(),
            source,
        }
    }

    /// Takes the next event sequence number (1, 2, ...; never repeats, survives restarts).
    pub fn next_seq(&mut self) -> Result<u64, OutboxError> {
        self.next_of(Counter::Event)
    }

    /// Takes the next sequence number of `counter`. Numbers come from a block reserved on disk
    /// before any of them is handed out, so a crash can skip numbers but never reuse one. When
    /// the disk is full the numbering goes on in memory (logged): a door decision without a
    /// number would be worse than a number a crash on a full disk might repeat.
    pub fn next_of(&mut self, counter: Counter) -> Result<u64, OutboxError> {
        let i = counter.index();
        let mut r = match self.reserved[i] {
            Some(r) => r,
            None => {
                let last = self.stored(counter)?;
                Reserved {
                    next: last + 1,
                    end: last + 1,
                }
            }
        };
        if r.next >= r.end {
            let end = r.next + SEQ_BLOCK;
            if let Err(e) = self.store(counter, end - 1) {
                if !is_disk_full(&e.source) {
                    return Err(e);
                }
                tracing::error!(
                    "{e}: {} numbers go on in memory until there is space again",
                    counter.name()
                );
            }
            r.end = end;
        }
        let n = r.next;
        r.next += 1;
        self.reserved[i] = Some(r);
        Ok(n)
    }

    fn stored(&self, counter: Counter) -> Result<u64, OutboxError> {
        self.conn
            .query_row(
                "SELECT value FROM counters WHERE name = ?1",
                params![counter.name()],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0).max(0) as u64)
            .map_err(|e| self.err(e))
    }

    fn store(&self, counter: Counter, value: u64) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO counters (name, value) VALUES (?1, ?2)",
                params![counter.name(), value as i64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Appends a message; returns how many old messages were dropped to stay within the limit
    /// or, when the disk is full, to make room for it (a tenth of the queue at a time). Fails
    /// only when even that does not make room.
    pub fn push(&mut self, topic: &str, payload: &[u8]) -> Result<usize, OutboxError> {
        match self.push_once(topic, payload) {
            Err(e) if is_disk_full(&e.source) => {
                let waiting = self.len()?;
                let room = (waiting / 10).max(1);
                let made = self
                    .conn
                    .execute(
                        "DELETE FROM queue WHERE id IN (SELECT id FROM queue ORDER BY id LIMIT ?1)",
                        params![room as i64],
                    )
                    .map_err(|e| self.err(e))?;
                tracing::error!("{e}: dropped the {made} oldest queued message(s) to make room");
                Ok(made + self.push_once(topic, payload)?)
            }
            other => other,
        }
    }

    fn push_once(&mut self, topic: &str, payload: &[u8]) -> Result<usize, OutboxError> {
        let path = self.path.clone();
        let err = |source| OutboxError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO queue (topic, payload) VALUES (?1, ?2)",
            params![topic, payload],
        )
        .map_err(err)?;
        let dropped = tx
            .execute(
                "DELETE FROM queue WHERE id NOT IN (SELECT id FROM queue ORDER BY id DESC LIMIT ?1)",
                params![self.limit as i64],
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        if dropped > 0 {
            tracing::warn!(
                "event queue full ({} messages): dropped the {dropped} oldest",
                self.limit
            );
        }
        Ok(dropped)
    }

    /// The oldest message, if any.
    pub fn peek(&self) -> Result<Option<Queued>, OutboxError> {
        self.conn
            .query_row(
                "SELECT id, topic, payload FROM queue ORDER BY id LIMIT 1",
                [],
                |r| {
                    Ok(Queued {
                        id: r.get(0)?,
                        topic: r.get(1)?,
                        payload: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Removes a message the broker acknowledged.
    pub fn remove(&mut self, id: i64) -> Result<(), OutboxError> {
        self.conn
            .execute("DELETE FROM queue WHERE id = ?1", params![id])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Messages waiting.
    pub fn len(&self) -> Result<usize, OutboxError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM queue", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(|e| self.err(e))
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> Result<bool, OutboxError> {
        Ok(self.len()? == 0)
    }
}

impl Drop for Outbox {
    /// Writes back the exact counts, so a clean stop skips no number.
    fn drop(&mut self) {
        for counter in Counter::ALL {
            if let Some(r) = self.reserved[counter.index()] {
                let _ = self.store(counter, r.next.saturating_sub(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_come_out_in_order_survive_reopening_and_stay_bounded() {
        let dir = std::env::temp_dir().join(format!("facegate-outbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("queue.sqlite");
        {
            let mut q = Outbox::open(&path, 3).unwrap();
            assert_eq!(q.next_seq().unwrap(), 1);
            assert_eq!(q.next_seq().unwrap(), 2);
            for i in 0..4 {
                let dropped = q.push("t", format!("m{i}").as_bytes()).unwrap();
                assert_eq!(dropped, usize::from(i == 3));
            }
        }
        let mut q = Outbox::open(&path, 3).unwrap();
        assert_eq!(
            q.next_seq().unwrap(),
            3,
            "the counter survives a clean restart"
        );
        assert_eq!(
            q.next_of(Counter::Access).unwrap(),
            1,
            "counters are separate"
        );
        let mut got = Vec::new();
        while let Some(m) = q.peek().unwrap() {
            got.push(String::from_utf8(m.payload.clone()).unwrap());
            q.remove(m.id).unwrap();
        }
        assert_eq!(got, ["m1", "m2", "m3"], "oldest dropped, order kept");
        assert!(q.is_empty().unwrap());
        // A crash (no clean close): the rest of the reserved block is skipped, no number reused.
        std::mem::forget(q);
        let mut q = Outbox::open(&path, 3).unwrap();
        assert_eq!(q.next_seq().unwrap(), 3 + SEQ_BLOCK);
        drop(q);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
