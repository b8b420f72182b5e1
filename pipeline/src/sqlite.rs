//! The device's SQLite files (the gallery, the event queue): private to its user, in WAL mode,
//! and still openable when the disk is full. Not a pipeline stage: *match*'s gallery and
//! *publish*'s queue use it.

use rusqlite::Connection;
use std::path::Path;

/// Whether SQLite failed for want of disk space (a write, or the WAL's shared-memory index).
pub fn is_disk_full(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            f.code == rusqlite::ErrorCode::DiskFull
                || f.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE
                || f.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE
        }
        _ => false,
    }
}

/// Opens (or creates) the database at `path` in WAL mode with full sync, made private (0600).
///
/// WAL mode keeps its index in a `-shm` file that a full disk cannot grow: then the file is
/// opened again in exclusive locking mode, which keeps that index in memory. The device still
/// reads its gallery and queues what fits; other processes (`facegate gallery list`) cannot
/// open the file meanwhile.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    const SETUP: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;";
    let conn = Connection::open(path)?;
    if let Err(e) = crate::secret::private_file(path) {
        tracing::warn!("{}: could not make it private (0600): {e}", path.display());
    }
    match conn.execute_batch(SETUP) {
        Ok(()) => Ok(conn),
        Err(e) if is_disk_full(&e) => {
            drop(conn);
            let conn = Connection::open(path)?;
            conn.execute_batch(&format!("PRAGMA locking_mode = EXCLUSIVE; {SETUP}"))?;
            tracing::error!(
                "{}: {e}; opened in exclusive mode (its index in memory) until there is space",
                path.display()
            );
            Ok(conn)
        }
        Err(e) => Err(e),
    }
}
