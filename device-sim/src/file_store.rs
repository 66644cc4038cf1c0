//! The simulator's state storage: a small file replaced atomically and fsynced, the way
//! a device writes a flash page before acting. The bytes are `DeviceState::encode`'s,
//! the same the firmware writes, checksum included.
use device::{CounterStore, DeviceState, StateError};
use std::path::PathBuf;

/// The device's state in one file.
pub(crate) struct FileCounterStore {
    path: PathBuf,
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileStoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Corrupt { path: PathBuf, source: StateError },
}

impl FileCounterStore {
    pub(crate) fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn io(&self, source: std::io::Error) -> FileStoreError {
        FileStoreError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl CounterStore for FileCounterStore {
    type Error = FileStoreError;

    fn load(&mut self) -> Result<Option<DeviceState>, FileStoreError> {
        match std::fs::read(&self.path) {
            // The atomic replacement makes a torn file impossible; a corrupt one is
            // refused rather than taken as a first boot (which would re-open every
            // counter).
            Ok(bytes) => {
                DeviceState::decode(&bytes)
                    .map(Some)
                    .map_err(|source| FileStoreError::Corrupt {
                        path: self.path.clone(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }

    fn save(&mut self, state: &DeviceState) -> Result<(), FileStoreError> {
        let mut bytes = [0u8; DeviceState::MAX_ENCODED_LEN];
        let len = state.encode(&mut bytes);
        // The workspace's one atomic replacement: temporary file, fsync, rename, fsync
        // of the directory (the rename is durable only once the directory is).
        api::write_atomically(&self.path, &bytes[..len]).map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use device::{Device, Refusal, Source};
    use protocol::hotp::{DeviceKey, Digits, Token};

    const KEY: [u8; 32] = [0x17; 32];
    const CLIENT: Source = Source([1; 16]);

    fn boot(path: &std::path::Path) -> Device<FileCounterStore> {
        let p = device::Provision::new("lock-1", DeviceKey(KEY));
        Device::boot(p.device_config(), FileCounterStore::new(path)).expect("boot")
    }

    fn present(d: &mut Device<FileCounterStore>, counter: u64) -> Result<u64, String> {
        let echo = d.echo(&CLIENT, 0);
        let text = Token::issue(&DeviceKey(KEY), counter, Digits::EIGHT).to_string();
        d.present(&CLIENT, Some(echo.as_bytes()), text.as_bytes(), 0)
            .map(|g| g.counter)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn tokens_grant_once_across_reboots_from_the_state_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock.state");
        let mut d = boot(&path);
        assert_eq!(present(&mut d, 0), Ok(0));
        assert_eq!(present(&mut d, 2), Ok(2));
        drop(d);
        let mut d = boot(&path);
        assert_eq!((d.next_counter(), d.boots()), (3, 2));
        assert!(present(&mut d, 2).is_err_and(|e| e.contains("already granted")));
        // Skipped, not used: still good once after the reboot.
        assert_eq!(present(&mut d, 1), Ok(1));
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn a_corrupt_state_file_is_refused_not_taken_for_a_first_boot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock.state");
        drop(boot(&path));
        let mut bytes = std::fs::read(&path).expect("state");
        bytes[10] ^= 1;
        std::fs::write(&path, bytes).expect("write");
        let p = device::Provision::new("lock-1", DeviceKey(KEY));
        let booted = Device::boot(p.device_config(), FileCounterStore::new(&path));
        assert!(matches!(
            booted,
            Err(Refusal::Storage(FileStoreError::Corrupt { .. }))
        ));
    }
}
