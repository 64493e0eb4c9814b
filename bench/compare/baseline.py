"""A baseline encoder (PyTorch or ONNX Runtime, fp32) serving the benchmark driver.

Reads one JSON command per line on stdin and answers one JSON line on stdout, the same
protocol `longview bench encoder` speaks:

    {"op": "measure", "set": "throughput", "batch": 32, "seconds": 3}
        -> {"tokens": ..., "seconds": ..., "batches": ...}
    {"op": "embed", "set": "quality", "out": "path.f32"}
        -> {"count": ..., "dim": ...}   (mean-pooled, L2-normalised, raw little-endian f32)

Threads are pinned to --threads for intra-op work and 1 for inter-op work.
"""

import argparse
import json
import os
import sys
import time

import numpy as np


def torch_encoder(model_dir: str, threads: int):
    import torch
    from transformers import AutoModel

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.zeros_like(torch.from_numpy(ids)),
            )
            return out.last_hidden_state.numpy()

    return run, f"torch {torch.__version__}"


def ort_encoder(onnx_path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        return session.run(None, feed)[0]

    return run, f"onnxruntime {ort.__version__}"


def padded(sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    longest = max(len(s) for s in sequences)
    ids = np.zeros((len(sequences), longest), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, s in enumerate(sequences):
        ids[row, : len(s)] = s
        mask[row, : len(s)] = 1
    return ids, mask


def measure(run, sequences: list[list[int]], batch: int, seconds: float) -> dict:
    batches = [sequences[i : i + batch] for i in range(0, len(sequences) - batch + 1, batch)]
    inputs = [padded(b) for b in batches]
    run(*inputs[0])  # warm-up
    tokens, count, at = 0, 0, 0
    started = time.perf_counter()
    while True:
        ids, mask = inputs[at % len(inputs)]
        run(ids, mask)
        tokens += int(mask.sum())
        count += 1
        at += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and count >= 3:
            return {"tokens": tokens, "seconds": elapsed, "batches": count}


def embed(run, sequences: list[list[int]], out: str) -> dict:
    vectors = []
    for s in sequences:  # one at a time: the reference has no padding at all
        ids, mask = padded([s])
        hidden = run(ids, mask)[0]
        mean = hidden.mean(axis=0)
        vectors.append(mean / max(np.linalg.norm(mean), 1e-12))
    array = np.asarray(vectors, dtype="<f4")
    array.tofile(out)
    return {"count": array.shape[0], "dim": array.shape[1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--framework", choices=["torch", "ort"], required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--onnx")
    parser.add_argument("--input", required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.framework == "torch":
        run, version = torch_encoder(args.model_dir, args.threads)
    else:
        run, version = ort_encoder(args.onnx, args.threads)
    with open(args.input) as f:
        sets = json.load(f)
    print(json.dumps({"ready": version}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        sequences = sets[command["set"]]["ids"]
        if command["op"] == "measure":
            answer = measure(run, sequences, command["batch"], command["seconds"])
        else:
            answer = embed(run, sequences, command["out"])
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
