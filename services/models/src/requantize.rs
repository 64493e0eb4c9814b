//! Requantizing at load the GGUF tensor types that candle multiplies with plain loops
//! (Q4_1, Q5_0, Q5_1: no AVX/NEON kernel) to Q8_0, which has one. Q8_0 holds every
//! value of those 4- and 5-bit blocks to within its own rounding, costs 8.5 bits per
//! weight instead of 5-6, and makes each generated token several times faster.

use crate::ModelError;
use candle_core::Device;
use candle_core::quantized::gguf_file::{self, Content};
use candle_core::quantized::{GgmlDType, QTensor};
use std::io::{Cursor, Read, Seek};

fn without_simd(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Tensors of `content` that would run without SIMD.
pub(crate) fn slow_tensors(content: &Content) -> usize {
    let infos = content.tensor_infos.values();
    infos.filter(|info| without_simd(info.ggml_dtype)).count()
}

/// The same GGUF in memory with every slow tensor requantized to Q8_0.
pub(crate) fn to_q8_0<R: Read + Seek>(
    content: &Content,
    reader: &mut R,
) -> Result<Cursor<Vec<u8>>, ModelError> {
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let tensor = content.tensor(reader, name, &Device::Cpu)?;
        let tensor = if without_simd(tensor.dtype()) {
            QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(key, value)| (key.as_str(), value))
        .collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut memory = Cursor::new(Vec::new());
    gguf_file::write(&mut memory, &metadata, &tensors)?;
    memory.set_position(0);
    Ok(memory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    #[test]
    fn q4_1_weights_survive_requantization_to_q8_0() {
        let values: Vec<f32> = (0..256)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let tensor = Tensor::from_vec(values, (4, 64), &Device::Cpu).unwrap();
        let q4 = QTensor::quantize(&tensor, GgmlDType::Q4_1).unwrap();
        let mut file = Cursor::new(Vec::new());
        let meta = gguf_file::Value::String("llama".into());
        gguf_file::write(&mut file, &[("general.architecture", &meta)], &[("w", &q4)]).unwrap();
        file.set_position(0);

        let content = Content::read(&mut file).unwrap();
        assert_eq!(slow_tensors(&content), 1);
        let mut memory = to_q8_0(&content, &mut file).unwrap();
        let requantized = Content::read(&mut memory).unwrap();
        assert_eq!(slow_tensors(&requantized), 0);
        let q8 = requantized.tensor(&mut memory, "w", &Device::Cpu).unwrap();
        assert_eq!(q8.dtype(), GgmlDType::Q8_0);

        let before = q4.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
        let after = q8.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
        let worst = (before - after).unwrap().abs().unwrap().max(0).unwrap();
        assert!(worst.to_scalar::<f32>().unwrap() < 0.01);
    }
}
