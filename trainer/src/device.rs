//! Where tensors live: `auto` (a GPU when libtorch sees one, else the CPU), `cpu`, `cuda` or
//! `cuda:N`. The same spelling is used by the CLI's `--device` and the extension's `jdsh.device`.

use std::fmt;
use std::str::FromStr;

use tch::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device \"{0}\": use auto, cpu, cuda or cuda:N")]
    Unknown(String),
    #[error("device {requested} requested, but libtorch sees {available} CUDA device(s)")]
    Unavailable { requested: String, available: usize },
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            _ => t
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| DeviceError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => write!(f, "auto"),
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// Resolves the choice against the devices libtorch sees now. `auto` never fails; an explicit
    /// CUDA device that is not there is an error rather than a silent fall-back to the CPU.
    pub fn resolve(self) -> Result<Device, DeviceError> {
        let available = if tch::Cuda::is_available() { tch::Cuda::device_count() as usize } else { 0 };
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto if available > 0 => Ok(Device::Cuda(0)),
            DeviceChoice::Auto => Ok(Device::Cpu),
            DeviceChoice::Cuda(n) if n < available => Ok(Device::Cuda(n)),
            DeviceChoice::Cuda(_) => Err(DeviceError::Unavailable { requested: self.to_string(), available }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn parses_every_spelling() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!(" CPU ".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert_eq!("tpu".parse::<DeviceChoice>(), Err(DeviceError::Unknown("tpu".into())));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn auto_and_cpu_always_resolve_and_compute() {
        for choice in [DeviceChoice::Auto, DeviceChoice::Cpu] {
            let device = choice.resolve().unwrap();
            let x = Tensor::from_slice(&[1.0f32, -2.0, 3.0]).to_device(device);
            let signs: Vec<f32> =
                Vec::try_from(x.sign().to_device(Device::Cpu).to_kind(Kind::Float)).unwrap();
            assert_eq!(signs, vec![1.0, -1.0, 1.0]);
        }
    }

    #[test]
    fn missing_gpu_is_an_error_not_a_fallback() {
        let n = if tch::Cuda::is_available() { tch::Cuda::device_count() as usize } else { 0 };
        let err = DeviceChoice::Cuda(n).resolve().unwrap_err();
        assert_eq!(err, DeviceError::Unavailable { requested: format!("cuda:{n}"), available: n });
    }
}
