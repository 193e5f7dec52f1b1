//! Where the client finds its server and token: `--url` / `--token`, then `CRONSTACK_URL` /
//! `CRONSTACK_TOKEN` (clap reads both), then the file `cronstack login` wrote:
//! `$XDG_CONFIG_HOME/cronstack/config.json` (or `~/.config/cronstack/config.json`), mode 0600.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub url: String,
    pub token: String,
}

pub fn path() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => bail!("cannot find a config directory: set HOME or XDG_CONFIG_HOME"),
        },
    };
    Ok(dir.join("cronstack").join("config.json"))
}

/// The stored config, if `cronstack login` wrote one.
pub fn load() -> anyhow::Result<Option<Config>> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let config = serde_json::from_str(&text).with_context(|| {
                format!("{} is not a cronstack config; run `cronstack login` again", path.display())
            })?;
            Ok(Some(config))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes the config readable by its owner only (0600, in a 0700 directory), atomically.
pub fn save(config: &Config) -> anyhow::Result<PathBuf> {
    let path = path()?;
    let dir = path.parent().expect("the config path has a directory");
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    // `mode` applies only to a new file; make sure of it either way.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(serde_json::to_string_pretty(config)?.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Removes the stored config; `Ok(false)` when there was none.
pub fn remove() -> anyhow::Result<bool> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// `localhost:7878` → `http://localhost:7878`; no trailing slash.
pub fn normalize_url(raw: &str) -> anyhow::Result<String> {
    let raw = raw.trim().trim_end_matches('/');
    if raw.is_empty() {
        bail!("the server URL is empty");
    }
    let url = if raw.contains("://") { raw.to_string() } else { format!("http://{raw}") };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("the server URL must start with http:// or https://, got {raw:?}");
    }
    Ok(url)
}
