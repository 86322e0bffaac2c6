use std::path::PathBuf;
use std::process::Command;

/// A Postgres server of a test's own, for tests that stop and start it. Its data lives in a
/// temporary folder that is removed when the value is dropped.
pub struct PrivatePostgres {
    dir: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let dir = std::env::temp_dir().join(crate::unique_name("pg"));
        std::fs::create_dir_all(&dir).expect("create the data folder");
        let port = free_port();
        let pg = PrivatePostgres { dir, port };
        pg.as_postgres(&["chown", "-R", "postgres", pg.dir.to_str().unwrap()], true);
        pg.pg_bin(
            "initdb",
            &["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "-D", pg.data()],
        );
        pg.resume();
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
            &["-D", self.data(), "-o", &options, "-l", log.to_str().unwrap(), "-w", "start"],
        );
    }

    fn data(&self) -> &str {
        // The data folder is a child so that the log can sit beside it.
        Box::leak(self.dir.join("data").into_os_string().into_string().unwrap().into_boxed_str())
    }

    fn pg_bin(&self, program: &str, args: &[&str]) {
        let bin = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
        let path = format!("{bin}/{program}");
        let mut all = vec![path.as_str()];
        all.extend_from_slice(args);
        self.as_postgres(&all, false);
    }

    /// Postgres refuses to run as root: run its programs as the `postgres` user when we are root.
    fn as_postgres(&self, args: &[&str], only_as_root: bool) {
        let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]);
            c.args(args);
            c
        } else if only_as_root {
            return;
        } else {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        };
        let out = cmd.output().unwrap_or_else(|e| panic!("run {args:?}: {e}"));
        assert!(
            out.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!(
                "{}/pg_ctl",
                std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())
            ))
            .args(["-D", self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
