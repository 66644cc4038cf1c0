//! What commands print: JSON with `--json`, text otherwise; and a progress line while
//! waiting for the chain.
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How a command prints its result (on stdout; progress goes to stderr).
pub struct Output {
    /// One JSON value per command (`--json`, for scripts and tests) instead of text.
    pub json: bool,
}

impl Output {
    /// Prints `value` (one line of JSON) or `text` on stdout, as [`Self::json`] says.
    pub fn print(&self, value: serde_json::Value, text: String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }
}

/// Runs `work` while showing what it waits for (a ticking line on a terminal, one line
/// otherwise), then how long it took.
pub async fn with_progress<T, F: std::future::Future<Output = T>>(what: &str, work: F) -> T {
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    if !tty {
        eprintln!("{what} ...");
    }
    let ticker = async {
        let frames = ['|', '/', '-', '\\'];
        let mut i = 0usize;
        loop {
            if tty {
                eprint!(
                    "\r{} {what} ({:.1} s)",
                    frames[i % 4],
                    start.elapsed().as_secs_f64()
                );
                let _ = std::io::stderr().flush();
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let result = tokio::select! {
        r = work => r,
        _ = ticker => unreachable!("the ticker never ends"),
    };
    if tty {
        eprintln!(
            "\r  {what}: {:.1} s          ",
            start.elapsed().as_secs_f64()
        );
    }
    result
}
