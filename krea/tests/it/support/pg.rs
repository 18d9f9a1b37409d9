//! A throwaway PostgreSQL cluster for a test: initialized in a scratch directory, listening
//! on a free loopback port, stopped and removed when dropped. The server binaries come from
//! the machine (Debian's `postgresql` package; `pg_config --bindir` or `KREA_TEST_PG_BINDIR`
//! says where). PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` user.
#![allow(dead_code)] // the library's and the CLI's tests each use a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Cluster {
    bindir: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
}

fn bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KREA_TEST_PG_BINDIR") {
        return dir.into();
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .max();
    from_pg_config
        .into_iter()
        .chain(debian)
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .unwrap_or_else(|| {
            panic!(
                "these tests need the PostgreSQL server binaries (initdb, pg_ctl): install \
                 Debian's postgresql package (apt-get install postgresql), or set \
                 KREA_TEST_PG_BINDIR to the directory that holds them"
            )
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Cluster {
    /// Initializes and starts a cluster with one superuser, `krea`, trusted on loopback.
    pub fn start() -> Cluster {
        let bindir = bindir();
        let dir = tempfile::Builder::new()
            .prefix("krea-pg-")
            .tempdir()
            .expect("scratch")
            .keep();
        let as_root = is_root();
        if as_root {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "could not give {} to the postgres user", dir.display());
        }
        let mut cluster = Cluster {
            bindir,
            dir,
            port: 0,
            as_root,
        };
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "krea".as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
            ],
        );
        // A port taken between choosing and binding (another test's cluster) fails the start:
        // choose again.
        for _ in 0..5 {
            cluster.port = free_port();
            if cluster.try_start() {
                return cluster;
            }
        }
        panic!(
            "PostgreSQL did not start; its log: {}",
            std::fs::read_to_string(cluster.dir.join("log")).unwrap_or_default()
        );
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bindir.join(tool);
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) {
        let out = self
            .command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn try_start(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// A new, empty database in this cluster: its address.
    pub fn database(&self, name: &str) -> String {
        self.run(
            "createdb",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                self.port.to_string().as_ref(),
                "-U".as_ref(),
                "krea".as_ref(),
                name.as_ref(),
            ],
        );
        self.url(name)
    }

    /// The address of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://krea@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` with psql in database `name`; its output, unaligned, without headers.
    pub fn psql(&self, name: &str, sql: &str) -> String {
        let out = self
            .command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "krea",
            ])
            .args([
                "-d",
                name,
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Stops the server at once (as a crash would), keeping its data.
    pub fn kill(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        assert!(self.try_start(), "PostgreSQL did not start again");
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
