//! The simulator's state storage: a small file replaced atomically and fsynced, the way
//! a device writes a flash page before acting. The bytes are `DeviceState::encode`'s,
//! the same the firmware writes, checksum included.
use crate::core::{CounterStore, DeviceState, StateError};
use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;

pub struct FileCounterStore {
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum FileStoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Corrupt { path: PathBuf, source: StateError },
}

impl FileCounterStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
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
        match fs::read(&self.path) {
            // The rename below makes a torn file impossible; a corrupt one is refused
            // rather than taken as a first boot (which would re-open every counter).
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
        let tmp = self.path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(|e| self.io(e))?;
        file.write_all(&bytes[..len]).map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))?;
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        // The rename is durable only once the directory is.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io(e))?;
        }
        Ok(())
    }
}
