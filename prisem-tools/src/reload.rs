//! Stores loaded from a directory that a server can reload while it serves (SIGHUP): the
//! intelligence store of cifbulk and the flow store of rwfind.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// Something loaded from the files of one directory.
pub trait LoadDir: Sized {
    /// Loads `dir`; only an unreadable directory or file is an error (bad lines are the
    /// store's own warnings).
    fn load_dir(dir: &Path) -> Result<Self, String>;

    /// How many entries were loaded.
    fn entries(&self) -> usize;

    /// What loading skipped, one line each (`file:line: why`).
    fn warnings(&self) -> &[String];
}

/// The regular files of `dir`, sorted by name, leaving out names that start with `.` and
/// `README` files.
pub fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            !name.starts_with('.') && !name.starts_with("README")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A store that can be reloaded while it serves: readers get the current one, a reload swaps
/// in a new one only when it loaded.
#[derive(Debug)]
pub struct SharedStore<T> {
    dir: PathBuf,
    current: RwLock<Arc<T>>,
}

impl<T: LoadDir> SharedStore<T> {
    /// Loads `dir`.
    pub fn open(dir: &Path) -> Result<Self, String> {
        Ok(Self {
            dir: dir.to_owned(),
            current: RwLock::new(Arc::new(T::load_dir(dir)?)),
        })
    }

    /// The store as loaded now.
    pub fn get(&self) -> Arc<T> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Loads the directory again; on failure the old store stays and the error is returned.
    pub fn reload(&self) -> Result<Arc<T>, String> {
        let fresh = Arc::new(T::load_dir(&self.dir)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }
}

/// A program file for tests that front a real command: `script` written to a fresh directory,
/// made executable.
#[cfg(test)]
pub(crate) fn fake_program(name: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("fake-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}
