//! Opening the store: the checks made before anything is written (missing,
//! unreadable, locked by another daemon, damaged), and reopening after a
//! write error so a full disk does not poison the daemon until a restart.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use redb::Database;

use super::{storage, Store, DB_FILE};
use crate::error::{Error, Result};

/// Opens the database again (the file, or a test's backend).
pub(super) type Opener = Box<dyn Fn() -> Result<Database> + Send + Sync>;

/// Who this process runs as, for permission errors: the user name from
/// `/etc/passwd` where it is there, and the uid.
fn whoami() -> String {
    #[cfg(target_os = "linux")]
    {
        let uid = rustix::process::getuid().as_raw();
        let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
            t.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id = f.nth(1)?;
                (id == uid.to_string()).then(|| name.to_string())
            })
        });
        return match name {
            Some(n) => format!("user `{n}` (uid {uid})"),
            None => format!("uid {uid}"),
        };
    }
    #[allow(unreachable_code)]
    "this user".to_string()
}

pub(super) fn unreadable(path: &Path) -> Error {
    Error::StateUnreadable {
        path: path.to_path_buf(),
        user: whoami(),
    }
}

/// ", PID n" of the process holding the store's lock, found in `/proc/locks`
/// by the file's device and inode (redb takes an `flock`); empty if unknown.
fn lock_holder(path: &Path) -> String {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return String::new();
        };
        let dev = meta.dev();
        // Linux's dev_t encoding, as /proc/locks prints it (major:minor in hex).
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
        let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
        let want = format!("{major:02x}:{minor:02x}:{}", meta.ino());
        let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
            return String::new();
        };
        let me = std::process::id().to_string();
        for line in locks.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            // "1: FLOCK  ADVISORY  WRITE 1234 00:2e:5678 0 EOF"
            if f.len() >= 6 && f[1] == "FLOCK" && f[5] == want && f[4] != me {
                return format!(", PID {}", f[4]);
            }
        }
        return String::new();
    }
    #[allow(unreachable_code)]
    String::new()
}

impl Store {
    /// Checks that `state_dir` holds an initialised daemon, without opening
    /// or writing anything (run before anything else at start).
    pub fn require(state_dir: &Path) -> Result<()> {
        let missing = |why: &str| Error::StateMissing {
            path: state_dir.to_path_buf(),
            why: why.to_string(),
        };
        let db = state_dir.join(DB_FILE);
        for (path, what) in [(state_dir, "the directory does not exist"), (&db, "")] {
            match std::fs::metadata(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Err(unreadable(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(missing(if what.is_empty() {
                        "state.redb is missing"
                    } else {
                        what
                    }));
                }
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        // Metadata can be read where contents cannot: try the file itself.
        if let Err(e) = std::fs::File::open(&db) {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                return Err(unreadable(&db));
            }
            return Err(Error::io(&db, e));
        }
        Ok(())
    }

    /// Opens an initialised state directory.
    pub fn open(state_dir: &Path) -> Result<Store> {
        Store::require(state_dir)?;
        let path = state_dir.join(DB_FILE);
        let corrupt = |why: String| Error::StateCorrupt {
            path: path.clone(),
            why,
        };
        // redb can panic on a truncated or overwritten file; that is damage to
        // report, not a crash (the default hook is silenced for this one call).
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let opened = std::panic::catch_unwind(|| Database::open(&path));
        std::panic::set_hook(hook);
        let db = match opened {
            Err(_) => {
                return Err(corrupt(
                    "the store file is truncated or overwritten (redb cannot read its header)"
                        .into(),
                ))
            }
            Ok(Ok(db)) => db,
            Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
                return Err(Error::StateLocked {
                    path: path.clone(),
                    holder: lock_holder(&path),
                })
            }
            Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))))
                if e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                return Err(Error::StateLocked {
                    path: path.clone(),
                    holder: lock_holder(&path),
                })
            }
            Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))))
                if e.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                return Err(unreadable(&path))
            }
            Ok(Err(other)) => return Err(corrupt(format!("{other}"))),
        };
        Store::from_db(db, Store::file_opener(&path), path)
    }

    pub(super) fn file_opener(path: &Path) -> Opener {
        let path = path.to_path_buf();
        Box::new(move || Database::open(&path).map_err(storage))
    }

    pub(super) fn with(db: Database, opener: Opener, path: PathBuf) -> Store {
        Store {
            db: RwLock::new(Some(Arc::new(db))),
            opener,
            broken: AtomicBool::new(false),
            path,
            checkpointer: None,
            routes: Vec::new(),
        }
    }

    /// The database, reopened first if a write failed since the last call.
    pub(super) fn db(&self) -> Result<Arc<Database>> {
        if self.broken.load(Ordering::SeqCst) {
            self.reopen()?;
        }
        self.db
            .read()
            .map_err(|_| Error::Internal("store lock poisoned".into()))?
            .clone()
            .ok_or_else(|| Error::Storage("the store is being reopened after a write error".into()))
    }

    /// Closes and reopens the database after a write error, so writes resume
    /// once the cause (a full disk) is gone; on failure it stays marked and the
    /// next call tries again.
    fn reopen(&self) -> Result<()> {
        let mut slot = self
            .db
            .write()
            .map_err(|_| Error::Internal("store lock poisoned".into()))?;
        if !self.broken.load(Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(mut old) = slot.take() {
            // Readers finish with the old handle first (reads are short).
            let mut tries = 0;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(shared) if tries < 2000 => {
                        old = shared;
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Err(shared) => {
                        *slot = Some(shared);
                        return Err(Error::Storage(
                            "the store could not be reopened: it is still in use".into(),
                        ));
                    }
                }
            }
        }
        let db = (self.opener)()?;
        *slot = Some(Arc::new(db));
        self.broken.store(false, Ordering::SeqCst);
        tracing::warn!(path = %self.path.display(), "the store was reopened after a write error");
        Ok(())
    }

    /// Runs `f` in one write transaction and commits it durably; any failure
    /// marks the store for reopening (redb refuses every later write after an
    /// I/O error until the database is reopened).
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T>,
    ) -> Result<T> {
        let r = (|| {
            let tx = self.db()?.begin_write().map_err(storage)?;
            let out = f(&tx)?;
            tx.commit().map_err(storage)?;
            Ok(out)
        })();
        if r.is_err() {
            self.broken.store(true, Ordering::SeqCst);
        }
        r
    }

    /// Opens an initialised store on custom redb backends (tests use one that can
    /// fail writes); `backend` makes a fresh one each time the store is (re)opened.
    pub fn open_with_backend<B: redb::StorageBackend>(
        path: &Path,
        backend: impl Fn() -> std::io::Result<B> + Send + Sync + 'static,
    ) -> Result<Store> {
        let opener: Opener = Box::new(move || {
            redb::Builder::new()
                .create_with_backend(backend().map_err(storage)?)
                .map_err(storage)
        });
        let db = opener().map_err(|e| Error::StateCorrupt {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        Store::from_db(db, opener, path.to_path_buf())
    }

    fn from_db(db: Database, opener: Opener, path: PathBuf) -> Result<Store> {
        let corrupt = |why: String| Error::StateCorrupt {
            path: path.clone(),
            why,
        };
        let store = Store::with(db, opener, path.clone());
        store.meta().map_err(|e| match e {
            Error::Storage(why) => corrupt(why),
            other => other,
        })?;
        store.ensure_indexes()?;
        Ok(store)
    }
}
