"""Longview's encoder against ONNX Runtime and PyTorch (fp32) on identical token ids, in
turn (A B C A B C ...), with the same thread count; prints tokens/s, the ratios and the
quality gate. Run through `bench/compare/run`, which sets up everything this needs.

Each framework is one long-lived process answering the driver over stdin/stdout, so
model loading is never timed and only one framework computes at any moment.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import texts  # noqa: E402

BASELINES = ("onnxruntime", "pytorch")


class Framework:
    """One encoder process speaking the JSON-lines protocol."""

    def __init__(self, name: str, command: list[str], env: dict):
        self.name = name
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        ready = self._read()
        self.version = ready.get("ready", "?")

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} exited (code {self.process.wait()})")
        return json.loads(line)

    def ask(self, command: dict) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def cpu_line() -> str:
    model, flags = "?", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and model == "?":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8"]
    return f"{model}; {' '.join(f for f in wanted if f in flags)}"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def quality(frameworks: dict, out: Path, data: dict) -> dict:
    """Worst cosine of each framework's vectors to PyTorch fp32 over the quality set."""
    vectors = {}
    for name, framework in frameworks.items():
        path = out / f"quality-{name.replace(' ', '-')}.f32"
        answer = framework.ask({"op": "embed", "set": "quality", "out": str(path)})
        vectors[name] = np.fromfile(path, dtype="<f4").reshape(answer["count"], answer["dim"])
    reference = vectors["pytorch"]
    worst = {}
    for name, v in vectors.items():
        c = cosines(v, reference)
        at = int(np.argmin(c))
        worst[name] = {
            "cosine": float(c[at]),
            "mean": float(c.mean()),
            "text": data["quality"]["texts"][at][:60],
            "tokens": len(data["quality"]["ids"][at]),
        }
    return worst


def measure(frameworks: dict, batches: list, rounds: int, seconds: float) -> list:
    rows = []
    names = list(frameworks)
    for round_index in range(rounds):
        load = os.getloadavg()[0]
        for batch in batches:
            # Rotate the order each round so no framework always runs first.
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                time.sleep(0.5)  # let the previous one's spinning threads go idle
                answer = frameworks[name].ask(
                    {"op": "measure", "set": "throughput", "batch": batch, "seconds": seconds}
                )
                rate = answer["tokens"] / answer["seconds"]
                rows.append({"round": round_index, "batch": batch, "framework": name,
                             "tokens_per_second": rate, "load": load})
                print(f"  round {round_index + 1} batch {batch:>3} {name:<16} {rate:>9.0f} tok/s",
                      flush=True)
    return rows


def summarise(rows: list, names: list, batches: list, worst: dict) -> list:
    table = []
    for batch in batches:
        per_round = {}
        for row in rows:
            if row["batch"] == batch:
                per_round.setdefault(row["round"], {})[row["framework"]] = row["tokens_per_second"]
        for name in names:
            rates = [r[name] for r in per_round.values()]
            # The ratio in each round is against the faster baseline of that same round.
            ratios = [r[name] / max(r[b] for b in BASELINES) for r in per_round.values()]
            table.append({
                "framework": name,
                "batch": batch,
                "tokens_per_second": statistics.median(rates),
                "ratio": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "worst_cosine": worst[name]["cosine"],
            })
    return table


def print_table(table: list, rounds: int) -> None:
    print()
    print(f"{'framework':<16} {'batch':>5} {'tokens/s':>9} {'vs best baseline':>17} "
          f"{'(min..max)':>13} {'worst cosine':>13}")
    for row in table:
        print(f"{row['framework']:<16} {row['batch']:>5} {row['tokens_per_second']:>9.0f} "
              f"{row['ratio']:>16.2f}x {row['ratio_min']:>6.2f}..{row['ratio_max']:<5.2f} "
              f"{row['worst_cosine']:>13.6f}")
    print(f"tokens/s and ratios are medians over {rounds} rounds; each ratio is taken within "
          "a round against the faster of onnxruntime and pytorch in that round.")
    print("worst cosine: lowest cosine to PyTorch fp32 over the 1,000-text quality set.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--longview", required=True, help="the release longview binary")
    parser.add_argument("--out", default=str(HERE.parent / "out"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--encoders", default="int8,fast",
                        help="Longview backends to measure (int8, fast, exact)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    batches = [int(b) for b in args.batches.split(",")]

    inputs = out / "texts.json"
    data = texts.build(Path(args.model_dir) / "tokenizer.json", inputs)
    onnx = out / "minilm.onnx"
    if not onnx.exists():
        subprocess.run([sys.executable, str(HERE / "export_onnx.py"), args.model_dir, str(onnx)],
                       check=True)

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               RAYON_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1")
    python = [sys.executable, str(HERE / "baseline.py"), "--model-dir", args.model_dir,
              "--input", str(inputs), "--threads", str(args.threads)]
    commands = {
        f"longview {e}": [args.longview, "bench", "encoder", "--model-dir", args.model_dir,
                          "--input", str(inputs), "--encoder", e]
        for e in args.encoders.split(",")
    }
    commands["onnxruntime"] = python + ["--framework", "ort", "--onnx", str(onnx)]
    commands["pytorch"] = python + ["--framework", "torch"]

    print(f"cpu: {cpu_line()}; {platform.python_version()}")
    print(f"before: {load_line()}")
    frameworks = {name: Framework(name, c, env) for name, c in commands.items()}
    for f in frameworks.values():
        print(f"  {f.name}: {f.version}")
    print(f"inputs: {len(data['throughput']['ids'])} texts x 128 tokens (throughput), "
          f"{len(data['quality']['ids'])} texts of 1..256 tokens (quality), "
          f"{args.threads} threads each")
    worst = quality(frameworks, out, data)
    for name, w in worst.items():
        print(f"  quality {name:<16} worst cosine {w['cosine']:.6f} (mean {w['mean']:.6f}; "
              f"{w['tokens']} tokens: {w['text']!r})")
    rows = measure(frameworks, batches, args.rounds, args.seconds)
    for f in frameworks.values():
        f.close()
    table = summarise(rows, list(frameworks), batches, worst)
    print_table(table, args.rounds)
    print(f"after: {load_line()} (other engineers share this machine)")
    (out / "compare.json").write_text(json.dumps(
        {"cpu": cpu_line(), "rows": rows, "table": table, "quality": worst,
         "versions": {n: f.version for n, f in frameworks.items()}}, indent=1))


if __name__ == "__main__":
    main()
