//! The simulator's counter storage: a small file replaced atomically and fsynced, the
//! way a device would write a flash page before acting.
use crate::core::{CounterStore, DeviceState};
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
    #[error("{path}: not a counter file")]
    Corrupt { path: PathBuf },
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
        match fs::read_to_string(&self.path) {
            Ok(text) => {
                let corrupt = || FileStoreError::Corrupt {
                    path: self.path.clone(),
                };
                let mut lines = text.lines();
                let mut field = |name: &str| {
                    lines
                        .next()
                        .and_then(|l| l.strip_prefix(name))
                        .and_then(|n| n.parse::<u64>().ok())
                };
                let next_counter = field("next_counter=").ok_or_else(corrupt)?;
                let used_below = field("used_below=").ok_or_else(corrupt)?;
                Ok(Some(DeviceState {
                    next_counter,
                    used_below,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }

    fn save(&mut self, state: &DeviceState) -> Result<(), FileStoreError> {
        let tmp = self.path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(|e| self.io(e))?;
        write!(
            file,
            "next_counter={}\nused_below={}\n",
            state.next_counter, state.used_below
        )
        .map_err(|e| self.io(e))?;
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
