//! Atomic file output: results are written under a temporary name beside the target and
//! renamed over it, so an interrupted run never leaves half a result.
//!
//! Temporary files are named `.NAME.PID.tmp` (or `.NAME.PID.tmp.EXT` where the writer picks the
//! format from the extension, as plotters does). They are removed on every exit path the process
//! controls: an error or a panic (the guard's `Drop`), and Ctrl-C or `SIGTERM` once
//! [`install_interrupt_cleanup`] has run. Those of a process killed outright (`kill -9`) are
//! removed by the next write to the same target ([`TempPath::beside`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Temporary files not yet renamed into place, for the interrupt handler.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while the list was held leaves it consistent (pushes and removals are whole).
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temporary file beside a target: removed when dropped unless [`TempPath::persist`]
/// renamed it over the target.
#[derive(Debug)]
pub struct TempPath {
    tmp: PathBuf,
    target: PathBuf,
}

impl TempPath {
    /// The temporary path for `target` (`.NAME.PID.tmp`, ending in `.EXT` as well when
    /// `keep_extension`), registered for removal on interrupt. Leftovers of killed runs for the
    /// same target are removed first.
    pub fn beside(target: &Path, keep_extension: bool) -> std::io::Result<Self> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{} is not a file path", target.display()),
                )
            })?
            .to_string_lossy()
            .to_string();
        remove_stale_temporaries(&dir, &name);
        let mut file = format!(".{name}.{}.tmp", std::process::id());
        if keep_extension {
            if let Some(ext) = target.extension() {
                file.push('.');
                file.push_str(&ext.to_string_lossy());
            }
        }
        let tmp = dir.join(file);
        pending().push(tmp.clone());
        Ok(Self {
            tmp,
            target: target.to_path_buf(),
        })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Renames the temporary file over the target.
    pub fn persist(self) -> std::io::Result<()> {
        std::fs::rename(&self.tmp, &self.target)
        // `Drop` unregisters it; the removal it attempts finds nothing after a rename.
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
        let mut list = pending();
        if let Some(i) = list.iter().position(|p| *p == self.tmp) {
            list.swap_remove(i);
        }
    }
}

/// Installs a Ctrl-C / `SIGTERM` handler that removes the pending temporary files and exits
/// with status 130 (as a shell reports an interrupted command). Without it the default action
/// kills the process and leaves them for the next run to remove. Calling it again is harmless.
///
/// While a [`GracefulInterrupt`] is held, the first interrupt only raises its flag (the
/// command stops starting work and keeps what finished); a second one ends the process as
/// above.
pub fn install_interrupt_cleanup() {
    let _ = ctrlc::set_handler(|| {
        if let Some(flag) = graceful().as_ref() {
            if !flag.swap(true, Ordering::SeqCst) {
                eprintln!("interrupted: keeping what finished (interrupt again to stop at once)");
                return;
            }
        }
        remove_pending();
        eprintln!("interrupted");
        std::process::exit(130);
    });
}

/// The flag the first interrupt raises instead of ending the process, while registered.
static GRACEFUL: Mutex<Option<Arc<AtomicBool>>> = Mutex::new(None);

fn graceful() -> std::sync::MutexGuard<'static, Option<Arc<AtomicBool>>> {
    GRACEFUL.lock().unwrap_or_else(|e| e.into_inner())
}

/// While alive, the first Ctrl-C or `SIGTERM` raises [`GracefulInterrupt::flag`] instead of
/// ending the process: for commands that write as they go (sweeps) and can stop cleanly.
#[derive(Debug)]
pub struct GracefulInterrupt {
    flag: Arc<AtomicBool>,
}

impl GracefulInterrupt {
    /// Registers a fresh flag (replacing any other).
    pub fn register() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        *graceful() = Some(flag.clone());
        Self { flag }
    }

    /// The flag an interrupt raises (give it to [`lossnav_solvers::Budget::cancellable`]).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// Whether an interrupt arrived.
    pub fn interrupted(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

impl Drop for GracefulInterrupt {
    fn drop(&mut self) {
        *graceful() = None;
    }
}

/// Removes every temporary file not yet renamed into place: for a handler about to end the
/// process (an interrupt, a budget's watchdog).
pub fn remove_pending() {
    for p in pending().iter() {
        let _ = std::fs::remove_file(p);
    }
}

/// Removes temporaries for `name` in `dir` left by an earlier run that was killed mid-write
/// (`kill -9`): those whose process no longer exists (Linux: `/proc/PID`).
fn remove_stale_temporaries(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        // `PID.tmp` or `PID.tmp.EXT`.
        let Some((pid, tail)) = rest.split_once(".tmp") else {
            continue;
        };
        if !(tail.is_empty() || (tail.starts_with('.') && !tail[1..].contains('.'))) {
            continue;
        }
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_is_removed_unless_persisted_and_unregistered_either_way() {
        let dir = std::env::temp_dir().join(format!("lossnav-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("out.png");
        let tmp = TempPath::beside(&target, true).unwrap();
        assert!(tmp.path().to_string_lossy().ends_with(".tmp.png"));
        std::fs::write(tmp.path(), "x").unwrap();
        assert!(pending().contains(&tmp.path().to_path_buf()));
        let path = tmp.path().to_path_buf();
        drop(tmp);
        assert!(!path.exists() && !pending().contains(&path));
        assert!(!target.exists());

        let tmp = TempPath::beside(&target, false).unwrap();
        std::fs::write(tmp.path(), "y").unwrap();
        let path = tmp.path().to_path_buf();
        tmp.persist().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "y");
        assert!(!path.exists() && !pending().contains(&path));

        // A leftover of a process that no longer exists (PID above the kernel's maximum) is
        // removed by the next write to the same target; another target's is not.
        let stale = dir.join(".out.png.4294967295.tmp.png");
        let other = dir.join(".other.png.4294967295.tmp");
        std::fs::write(&stale, "").unwrap();
        std::fs::write(&other, "").unwrap();
        drop(TempPath::beside(&target, true).unwrap());
        assert!(!stale.exists() && other.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
