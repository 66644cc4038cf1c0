//! Servers the tests start and stop themselves: PostgreSQL clusters (a primary, a
//! synchronous standby streaming from it, promotion, a `kill -9` of the whole primary)
//! and HAProxy in front of several AS instances. Standard library only, so the AS's own
//! tests include this file too (`offchain-as/tests/support`).
//!
//! Every server runs under a watchdog shell that is the leader of its own process group
//! and holds a pipe from the test process: when the test drops the handle, or dies in any
//! way (its end of the pipe closes), the watchdog stops the server (by its pid) and
//! deletes its files. PostgreSQL refuses to run as root: under root the tests run
//! `initdb`, `postgres` and `pg_basebackup` as the `postgres` user (`setpriv`), in
//! directories owned by it; every server listens on loopback only, on a free port.
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (bound and released: free unless taken in between).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Where PostgreSQL's server programs are: `SLOTPAY_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout), else `PATH`.
pub fn pg_bin(program: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("SLOTPAY_PG_BIN") {
        return Path::new(&dir).join(program);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, dir)) => dir.join(program),
        None => PathBuf::from(program),
    }
}

/// Whether PostgreSQL's server programs are installed (`scripts/setup.sh` installs them).
pub fn postgres_available() -> bool {
    Command::new(pg_bin("postgres"))
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `program` as the user that owns PostgreSQL's files: `postgres` under root, else
/// whoever runs the tests.
fn as_owner(program: impl AsRef<std::ffi::OsStr>) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A new directory for a server's files, owned by the user that runs it.
fn server_dir(kind: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "slotpay-{kind}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("server dir");
    if running_as_root() {
        run_ok(
            Command::new("chown").arg("postgres:postgres").arg(&dir),
            "chown the server dir",
        );
    }
    dir
}

/// A server under its watchdog (see the module's documentation).
struct Watched {
    child: Child,
    /// The watchdog's end of the pipe: closing it stops the server.
    stdin: Option<ChildStdin>,
}

impl Watched {
    /// Starts `server` (its program and arguments) under a watchdog that stops it with
    /// `stop_signal` and then removes `remove` (if any); output to `log`.
    fn start(server: &Command, stop_signal: &str, remove: Option<&Path>, log: &Path) -> Self {
        let mut words = vec![server.get_program().to_owned()];
        words.extend(server.get_args().map(ToOwned::to_owned));
        let log = std::fs::File::create(log).expect("server log");
        // $1..: the server's command; the watchdog waits for EOF on its stdin.
        let script = format!(
            r#""$@" </dev/null & server=$!
read _ignored
kill -{stop_signal} "$server" 2>/dev/null
wait "$server"
{}"#,
            remove.map_or(String::new(), |dir| format!(
                "rm -rf '{}'",
                dir.display().to_string().replace('\'', "'\\''")
            ))
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).arg("watchdog").args(&words);
        for (key, value) in server.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        let mut child = {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0)
                .stdin(Stdio::piped())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {words:?}: {e}"))
        };
        let stdin = child.stdin.take();
        Self { child, stdin }
    }

    /// The watchdog's process group (its pid).
    fn group(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server the orderly way and waits for the watchdog (at most `timeout`,
    /// then the whole group is killed).
    fn stop(&mut self, timeout: Duration) {
        drop(self.stdin.take());
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
    }

    /// `kill -9` of the watchdog's whole process group (the server and its children at
    /// once, as when its machine is lost); nothing is cleaned up.
    fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.group())])
            .status();
        drop(self.stdin.take());
        let _ = self.child.wait();
    }

    /// Whether the watchdog (and so the server) has ended.
    fn ended(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

/// A PostgreSQL cluster the test started (a primary, or a standby of one), stopped and
/// deleted when dropped.
pub struct Postgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    root: PathBuf,
    data: PathBuf,
    server: Option<Watched>,
}

/// What a cluster is started with, beside its port and directories.
fn server_command(data: &Path, port: u16, socket_dir: &Path) -> Command {
    let mut cmd = as_owner(pg_bin("postgres"));
    cmd.arg("-D").arg(data).arg("-p").arg(port.to_string());
    for setting in [
        "listen_addresses=127.0.0.1".to_owned(),
        format!("unix_socket_directories={}", socket_dir.display()),
        "max_connections=300".into(),
        "shared_buffers=32MB".into(),
        "wal_level=replica".into(),
        "max_wal_senders=8".into(),
        "hot_standby=on".into(),
        // Durable commits, as production: the tests measure and break the real thing.
        "fsync=on".into(),
        "synchronous_commit=on".into(),
        "log_min_messages=warning".into(),
        "log_min_error_statement=panic".into(),
    ] {
        cmd.arg("-c").arg(setting);
    }
    cmd
}

impl Postgres {
    /// `initdb` of a new cluster (trust authentication on loopback: a throwaway test
    /// server), started on a free port; returns once it accepts connections.
    pub fn start() -> Self {
        let root = server_dir("pg");
        let data = root.join("data");
        run_ok(
            as_owner(pg_bin("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["--auth=trust", "--username=postgres", "--no-sync"])
                .args(["--encoding=UTF8", "--locale=C"]),
            "initdb",
        );
        let mut pg = Self {
            port: 0,
            root,
            data,
            server: None,
        };
        pg.launch(free_port());
        pg
    }

    /// A standby of `primary` named `name`, streaming from it (`pg_basebackup -R`), on
    /// a free port; returns once it accepts connections. Make it synchronous with
    /// [`Postgres::require_synchronous`] on the primary.
    pub fn standby_of(primary: &Postgres, name: &str) -> Self {
        let root = server_dir("pg-standby");
        let data = root.join("data");
        run_ok(
            as_owner(pg_bin("pg_basebackup"))
                .args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
                .args(["-U", "postgres", "-X", "stream", "-c", "fast", "-R"])
                .arg("-D")
                .arg(&data),
            "pg_basebackup",
        );
        // The primary knows it by its application name (synchronous_standby_names).
        let conninfo = format!(
            "\nprimary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name={name}'\n",
            primary.port
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.auto.conf"))
            .and_then(|mut f| f.write_all(conninfo.as_bytes()))
            .expect("standby conninfo");
        let mut pg = Self {
            port: 0,
            root,
            data,
            server: None,
        };
        pg.launch(free_port());
        pg
    }

    fn launch(&mut self, port: u16) {
        self.port = port;
        let socket_dir = self.root.join("sock");
        if !socket_dir.exists() {
            std::fs::create_dir_all(&socket_dir).expect("socket dir");
            if running_as_root() {
                run_ok(
                    Command::new("chown")
                        .arg("postgres:postgres")
                        .arg(&socket_dir),
                    "chown the socket dir",
                );
            }
        }
        let log = self.root.join(format!("postgres-{port}.log"));
        self.server = Some(Watched::start(
            &server_command(&self.data, port, &socket_dir),
            // SIGINT: PostgreSQL's fast shutdown.
            "INT",
            Some(&self.root),
            &log,
        ));
        let start = Instant::now();
        while self.sql("postgres", "SELECT 1").is_err() {
            assert!(
                !self.server.as_mut().is_some_and(Watched::ended),
                "postgres exited at start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "postgres did not accept connections within 60 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join(format!("postgres-{}.log", self.port)))
            .unwrap_or_default()
    }

    /// A libpq URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` in `db` with `psql`; its unaligned, tuples-only output, or the error.
    pub fn sql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(pg_bin("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args([
                "-d",
                db,
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// [`Self::sql`], panicking on an error.
    pub fn sql_ok(&self, db: &str, sql: &str) -> String {
        self.sql(db, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}\n{}", self.log()))
    }

    /// A new, empty database named `name`; returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.sql_ok("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    /// Makes `standby` synchronous: a commit returns only once the standby has it on
    /// disk (`synchronous_commit = on`, `synchronous_standby_names`); waits until the
    /// primary reports it so.
    pub fn require_synchronous(&self, standby: &str) {
        self.sql_ok(
            "postgres",
            &format!("ALTER SYSTEM SET synchronous_standby_names = '{standby}'"),
        );
        self.sql_ok("postgres", "SELECT pg_reload_conf()");
        let start = Instant::now();
        loop {
            let state = self.sql_ok(
                "postgres",
                &format!(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = '{standby}'"
                ),
            );
            if state == "sync" {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "standby {standby} is not synchronous (state {state:?}):\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether this cluster is a standby (in recovery).
    pub fn in_recovery(&self) -> bool {
        self.sql_ok("postgres", "SELECT pg_is_in_recovery()") == "t"
    }

    /// Promotes this standby to primary (`pg_ctl promote`, waiting until it accepts
    /// writes).
    pub fn promote(&self) {
        run_ok(
            as_owner(pg_bin("pg_ctl"))
                .arg("promote")
                .arg("-w")
                .arg("-D")
                .arg(&self.data),
            "pg_ctl promote",
        );
        let start = Instant::now();
        while self.in_recovery() {
            assert!(start.elapsed() < Duration::from_secs(60), "not promoted");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9` of the server and every backend at once: the primary's machine lost.
    pub fn kill9(&mut self) {
        if let Some(server) = self.server.as_mut() {
            server.kill9();
        }
    }

    /// The postmaster's pid (from its pid file).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop(Duration::from_secs(30));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// HAProxy on a loopback port, balancing HTTP over `backends` (round robin, health
/// checked with `GET /v1/terms`); stopped when dropped.
pub struct Haproxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    root: PathBuf,
    server: Option<Watched>,
}

impl Haproxy {
    /// Starts HAProxy in front of `backends` (ports on 127.0.0.1); returns once it
    /// answers through at least one of them.
    pub fn start(backends: &[u16]) -> Self {
        let root = {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "slotpay-haproxy-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&dir).expect("haproxy dir");
            dir
        };
        let port = free_port();
        let mut servers = String::new();
        for (i, p) in backends.iter().enumerate() {
            servers.push_str(&format!(
                "    server as{i} 127.0.0.1:{p} check inter 200ms fall 2 rise 1\n"
            ));
        }
        // A purchase is idempotent (the same receipt gets the same tokens), so a request
        // whose instance died before answering may be sent to another one.
        let config = format!(
            "global
    maxconn 8192
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    # An instance stopped (SIGSTOP) under a request: another one answers it.
    timeout server 5s
    retries 3
    option redispatch
    option http-buffer-request
    retry-on conn-failure empty-response response-timeout
frontend as
    bind 127.0.0.1:{port}
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /v1/terms
    http-check expect status 200
{servers}"
        );
        let path = root.join("haproxy.cfg");
        std::fs::write(&path, config).expect("haproxy.cfg");
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db").arg("-f").arg(&path);
        let server = Watched::start(&cmd, "TERM", Some(&root), &root.join("haproxy.log"));
        let mut proxy = Self {
            port,
            root,
            server: Some(server),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                !proxy.server.as_mut().is_some_and(Watched::ended),
                "haproxy exited at start:\n{}",
                proxy.log()
            );
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "haproxy did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The pid of its watchdog, whose only child is HAProxy.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(|s| s.child.id())
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop(Duration::from_secs(10));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
