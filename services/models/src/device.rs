//! Where the model runs.

use crate::ModelError;
use candle_core::Device;

/// The device a model runs on. CUDA needs the `cuda` cargo feature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda(usize),
}

impl DeviceKind {
    pub(crate) fn open(self) -> Result<Device, ModelError> {
        match self {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda(ordinal) => cuda(ordinal),
        }
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(ordinal)) => Ok(DeviceKind::Cuda(ordinal)),
                _ => Err(format!(
                    "unknown device {other:?} (expected cpu, cuda or cuda:N)"
                )),
            },
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceKind::Cpu => write!(f, "cpu"),
            DeviceKind::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda(ordinal: usize) -> Result<Device, ModelError> {
    Ok(Device::new_cuda(ordinal)?)
}

#[cfg(not(feature = "cuda"))]
fn cuda(_ordinal: usize) -> Result<Device, ModelError> {
    Err(ModelError::Unsupported {
        found: "cuda device".into(),
        supported: "cpu (rebuild with --features cuda for GPUs)",
    })
}
