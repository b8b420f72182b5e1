//! The bounded on-disk queue of events waiting for the broker.
//!
//! Every event is written here (one SQLite transaction) before anyone tries to send it, and
//! deleted only once the broker has acknowledged it, so a broker outage or a power cut loses
//! nothing; on reconnect the queue is sent oldest first. The queue is bounded: past `limit`
//! messages the oldest are dropped, counted and logged (a door left offline for weeks must not
//! fill its disk). It also keeps the sequence counters of events and access decisions, so their
//! numbers keep increasing across restarts.

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
}

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
}

impl Outbox {
    /// Opens (or creates) the queue at `path`, holding at most `limit` messages.
    pub fn open(path: &Path, limit: usize) -> Result<Self, OutboxError> {
        let err = |source| OutboxError {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS queue (
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

    /// Takes the next sequence number of `counter`; committed before it is returned, so a
    /// crash right after can skip a number but never reuse one.
    pub fn next_of(&mut self, counter: Counter) -> Result<u64, OutboxError> {
        let path = self.path.clone();
        let err = |source| OutboxError {
            path: path.clone(),
            source,
        };
        let name = counter.name();
        let tx = self.conn.transaction().map_err(err)?;
        let last: i64 = tx
            .query_row(
                "SELECT value FROM counters WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?
            .unwrap_or(0);
        tx.execute(
            "INSERT OR REPLACE INTO counters (name, value) VALUES (?1, ?2)",
            params![name, last + 1],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(last as u64 + 1)
    }

    /// Appends a message; returns how many old messages were dropped to stay within the limit.
    pub fn push(&mut self, topic: &str, payload: &[u8]) -> Result<usize, OutboxError> {
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
        assert_eq!(q.next_seq().unwrap(), 3, "the counter survives a restart");
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
        std::fs::remove_dir_all(dir).unwrap();
    }
}
