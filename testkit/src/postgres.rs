//! A Postgres server of a test's own, to stop and start (and, in `standby.rs`, copy as a hot
//! standby).

use std::path::PathBuf;
use std::process::Command;

/// A Postgres server of a test's own, for tests that stop and start it. Its data lives in a
/// temporary folder that is removed when the value is dropped. It accepts replication
/// connections from 127.0.0.1 (initdb's `pg_hba.conf` with `--auth=trust`, and PostgreSQL's
/// defaults `wal_level = replica`, `max_wal_senders = 10`), so [`PrivatePostgres::standby`] can
/// copy it.
pub struct PrivatePostgres {
    dir: PathBuf,
    /// The data folder is a child of `dir`, so that the log can sit beside it.
    data: String,
    pub port: u16,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let pg = PrivatePostgres::without_data("pg");
        pg.pg_bin(
            "initdb",
            &[
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "-D",
                pg.data(),
            ],
        );
        pg.resume();
        pg
    }

    /// A free port and an empty temporary folder (that the `postgres` user owns when we are root),
    /// where the data folder is still to be made.
    pub(crate) fn without_data(prefix: &str) -> PrivatePostgres {
        let dir = std::env::temp_dir().join(crate::unique_name(prefix));
        std::fs::create_dir_all(&dir).expect("create the data folder");
        let port = crate::free_port();
        let data = dir.join("data").to_str().expect("a UTF-8 path").to_string();
        let pg = PrivatePostgres { dir, data, port };
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres"]).arg(&pg.dir));
        }
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server the way an operator would (`pg_ctl stop -m fast`): connections are cut.
    pub fn stop(&self) {
        self.pg_bin("pg_ctl", &["-D", self.data(), "-m", "fast", "-w", "stop"]);
    }

    pub fn resume(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log");
        self.pg_bin(
            "pg_ctl",
            &[
                "-D",
                self.data(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    pub(crate) fn data(&self) -> &str {
        &self.data
    }

    /// Postgres refuses to run as root: run its programs as the `postgres` user when we are root.
    pub(crate) fn pg_bin(&self, program: &str, args: &[&str]) {
        run(&mut pg_command(program, args));
    }
}

fn pg_command(program: &str, args: &[&str]) -> Command {
    let bin = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let path = format!("{bin}/{program}");
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    };
    cmd.args(args);
    cmd
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl", &["-D", self.data(), "-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
