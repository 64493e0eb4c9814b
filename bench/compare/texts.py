"""The benchmark's inputs, made deterministically (no downloads, same bytes every run).

- throughput: 1,000 texts of news-like English, each long enough to fill 128 tokens;
  the token ids are cut to exactly 128 ([CLS] 126 content tokens [SEP]).
- quality: 1,000 texts from one word to the model's 256-token limit, mixing domains,
  numbers, punctuation, accents, CJK and emoji; ids truncated at 256 tokens as
  sentence-transformers does for this model.

Every framework gets these exact token ids, so the comparison measures encoders, not
tokenizers.
"""

import json
import random
from pathlib import Path

SUBJECTS = [
    "The central bank", "A regional lender", "The home side", "Researchers", "The city council",
    "Shareholders", "The ministry", "A chip maker", "The union", "Local farmers", "The airline",
    "Investors", "The coach", "Doctors", "The court", "Engineers", "The hospital", "Voters",
]
VERBS = [
    "reported", "warned about", "celebrated", "questioned", "announced", "delayed", "approved",
    "rejected", "measured", "expected", "criticised", "welcomed", "postponed", "confirmed",
]
OBJECTS = [
    "higher deposit costs", "a surprise win in extra time", "a new battery chemistry",
    "tighter reporting rules", "flooding in several districts", "four hundred job cuts",
    "weaker quarterly earnings", "a recovery in technology shares", "rising energy prices",
    "a shortage of nurses", "record ticket sales", "an unexpected drop in inflation",
    "the merger of two rival firms", "delays at the border", "a drought across the south",
]
TAILS = [
    "after a long debate", "despite strong objections", "for the third year running",
    "on Tuesday", "according to people familiar with the matter", "in a statement",
    "as markets closed", "before the summer break", "amid growing uncertainty",
]
EXTRAS = [
    "Prices rose 3.7% year on year, to €1,250.",
    "Café owners in Zürich and São Paulo said little changed.",
    "東京の株式市場は小幅に上昇した。",
    "The striker 🎉 scored twice!",
    "See section 4.2(b) — \"exemptions\" — for details.",
    "Q3 revenue: $4.1bn (+12%); EBITDA margin 18.5%.",
    "naïve résumé façade coöperate",
    "Ein Sprecher sagte, die Gespräche würden fortgesetzt.",
    "def add(a, b): return a + b",
    "¿Qué pasará con las tasas de interés?",
]


def sentence(rng: random.Random) -> str:
    text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
    if rng.random() < 0.6:
        text += f" {rng.choice(TAILS)}"
    return text + "."


def throughput_texts(count: int, rng: random.Random) -> list[str]:
    # Each text has far more than 128 tokens of material; the ids are cut afterwards.
    return [" ".join(sentence(rng) for _ in range(20)) for _ in range(count)]


def quality_texts(count: int, rng: random.Random) -> list[str]:
    texts = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            texts.append(rng.choice(OBJECTS).split()[-1])  # one word
        elif kind == 1:
            texts.append(sentence(rng))
        elif kind == 2:
            texts.append(" ".join([sentence(rng), rng.choice(EXTRAS), sentence(rng)]))
        elif kind == 3:
            parts = [sentence(rng) if rng.random() < 0.7 else rng.choice(EXTRAS)
                     for _ in range(rng.randint(4, 12))]
            texts.append(" ".join(parts))
        else:
            texts.append(" ".join(sentence(rng) for _ in range(30)))  # over 256 tokens
    return texts


def build(tokenizer_file: Path, out: Path, count: int = 1000) -> dict:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    rng = random.Random(20240610)

    def ids(texts: list[str], limit: int) -> list[list[int]]:
        encoded = tokenizer.encode_batch(texts)
        result = []
        for e in encoded:
            full = e.ids
            if len(full) > limit:  # keep [CLS] ... [SEP]
                full = full[: limit - 1] + full[-1:]
            result.append(full)
        return result

    throughput = throughput_texts(count, rng)
    quality = quality_texts(count, rng)
    data = {
        "throughput": {"texts": throughput, "ids": ids(throughput, 128)},
        "quality": {"texts": quality, "ids": ids(quality, 256)},
    }
    assert all(len(i) == 128 for i in data["throughput"]["ids"])
    out.write_text(json.dumps(data))
    return data
