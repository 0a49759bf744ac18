//! The database of the database workloads: a URL the user gives, or a throw-away PostgreSQL
//! that `tools/pg.sh` installs (when missing), starts on a free loopback port and fills, and
//! that is stopped when the run ends (also on Ctrl-C).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Clusters to stop on Ctrl-C: `(tools/pg.sh, cluster dir)`.
static CLUSTERS: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

/// Stops every throw-away cluster (the interrupt handler calls this).
pub fn stop_all() {
    if let Ok(clusters) = CLUSTERS.lock() {
        for (script, dir) in clusters.iter() {
            stop(script, dir);
        }
    }
}

fn stop(script: &Path, dir: &Path) {
    let _ = Command::new(script).arg("stop").arg(dir).status();
}

/// The database a run uses.
pub struct Database {
    pub url: String,
    /// The throw-away cluster's directory, when this run started it.
    cluster: Option<(PathBuf, PathBuf)>,
}

impl Database {
    /// `spec` is a URL, `auto` (`$DATABASE_URL` if set, else a throw-away cluster) or `none`.
    /// Nothing is started unless a selected workload `needed` it.
    pub fn resolve(spec: &str, root: &Path, needed: bool) -> Result<Option<Database>, String> {
        if !needed || spec == "none" {
            return Ok(None);
        }
        let script = root.join("tools/pg.sh");
        let url = match spec {
            "auto" => std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()),
            url => Some(url.to_owned()),
        };
        if let Some(url) = url {
            let loaded = Command::new(&script)
                .arg("load")
                .arg(&url)
                .status()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if !loaded.success() {
                return Err(format!("cannot load the tables into {url}"));
            }
            return Ok(Some(Database { url, cluster: None }));
        }
        let dir = std::env::temp_dir().join(format!("spikard-harness-pg-{}", std::process::id()));
        if let Ok(mut clusters) = CLUSTERS.lock() {
            clusters.push((script.clone(), dir.clone()));
        }
        eprintln!(
            "harness: starting a throw-away PostgreSQL in {}",
            dir.display()
        );
        let out = Command::new(&script)
            .arg("start")
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            stop(&script, &dir);
            return Err(format!(
                "cannot start PostgreSQL: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(Some(Database {
            url,
            cluster: Some((script, dir)),
        }))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((script, dir)) = self.cluster.take() {
            stop(&script, &dir);
            if let Ok(mut clusters) = CLUSTERS.lock() {
                clusters.retain(|(_, d)| *d != dir);
            }
        }
    }
}
