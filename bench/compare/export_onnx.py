"""Exports the model directory's BERT to ONNX (fp32) and fuses it for ONNX Runtime.

    python export_onnx.py MODEL_DIR OUT.onnx

Writes OUT.onnx: the TorchScript export (opset 17, dynamic batch and sequence axes) run
through onnxruntime's transformer optimizer (fused attention, layer norm, GELU, bias),
which is the fastest fp32 form ONNX Runtime offers on CPU. The plain export is kept beside
it as OUT.plain.onnx.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoConfig, AutoModel  # noqa: E402


class LastHidden(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return out.last_hidden_state


def main() -> None:
    model_dir, out = sys.argv[1], Path(sys.argv[2])
    plain = out.with_suffix(".plain.onnx")
    config = AutoConfig.from_pretrained(model_dir)
    # The eager attention exports to plain MatMul/Softmax, which the optimizer fuses.
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        LastHidden(model),
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(plain),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "token_type_ids": axes,
            "last_hidden_state": axes,
        },
        opset_version=17,
        dynamo=False,
    )
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(plain),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    fused.save_model_to_file(str(out))
    print(f"fused operators: {fused.get_fused_operator_statistics()}")


if __name__ == "__main__":
    main()
