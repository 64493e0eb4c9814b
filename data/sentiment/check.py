#!/usr/bin/env python3
"""Validate the Longview financial sentiment data set.

Usage: python3 data/sentiment/check.py [financial.jsonl] [companies.json]

Checks that every line of the JSONL file is a JSON object with a non-empty
"text", a "label" in {positive, negative, neutral} and an "entities" list of
tickers that exist in companies.json; that each listed entity is actually
mentioned in the text (by name, alias or $cashtag) and that every watchlist
company mentioned in the text is listed; that texts are unique (ignoring case
and whitespace) and between MIN_WORDS and MAX_WORDS words long; and that each
label has at least MIN_PER_LABEL examples. Prints counts per label and exits
non-zero if any check fails. Uses only the Python standard library.
"""
import collections
import json
import os
import re
import sys

LABELS = ("positive", "negative", "neutral")
MIN_WORDS, MAX_WORDS = 8, 35
MIN_PER_LABEL = 150
TICKER_RE = re.compile(r"^[A-Z]{3,5}$")

HERE = os.path.dirname(os.path.abspath(__file__))


def load_companies(path, errors):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        errors.append(f"{path}: cannot load: {e}")
        return {}
    if not isinstance(data, list):
        errors.append(f"{path}: top level must be an array")
        return {}
    companies = {}
    seen_names = {}
    for i, c in enumerate(data):
        where = f"{path}[{i}]"
        if not isinstance(c, dict):
            errors.append(f"{where}: not an object")
            continue
        t, name, aliases = c.get("ticker"), c.get("name"), c.get("aliases", [])
        if not isinstance(t, str) or not TICKER_RE.match(t):
            errors.append(f"{where}: bad ticker {t!r}")
            continue
        if t in companies:
            errors.append(f"{where}: duplicate ticker {t}")
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{where}: missing name")
            continue
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            errors.append(f"{where}: aliases must be a list of non-empty strings")
            aliases = []
        for n in [name] + aliases:
            if n in seen_names and seen_names[n] != t:
                errors.append(f"{where}: name/alias {n!r} also used by {seen_names[n]}")
            seen_names[n] = t
        companies[t] = [name] + aliases
    return companies


def mentioned(text, companies):
    """Tickers of watchlist companies mentioned in text."""
    found = set()
    for m in re.finditer(r"\$([A-Z]{3,5})\b", text):
        found.add(m.group(1))
    for t, names in companies.items():
        for n in names:
            if re.search(r"(?<![\w-])" + re.escape(n) + r"(?![\w-])", text):
                found.add(t)
                break
    return found


def main(argv):
    data_path = argv[1] if len(argv) > 1 else os.path.join(HERE, "financial.jsonl")
    comp_path = argv[2] if len(argv) > 2 else os.path.join(HERE, "companies.json")
    errors = []
    companies = load_companies(comp_path, errors)

    counts = collections.Counter()
    seen = {}
    used = collections.Counter()
    n_lines = 0
    try:
        f = open(data_path, encoding="utf-8")
    except OSError as e:
        print(f"FAIL: cannot open {data_path}: {e}")
        return 1
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                errors.append(f"line {lineno}: blank line")
                continue
            n_lines += 1
            try:
                row = json.loads(line)
            except ValueError as e:
                errors.append(f"line {lineno}: invalid JSON: {e}")
                continue
            if not isinstance(row, dict):
                errors.append(f"line {lineno}: not a JSON object")
                continue
            extra = set(row) - {"text", "label", "entities"}
            if extra:
                errors.append(f"line {lineno}: unexpected keys {sorted(extra)}")
            text, label, ents = row.get("text"), row.get("label"), row.get("entities")
            if not isinstance(text, str) or not text.strip():
                errors.append(f"line {lineno}: missing text")
                continue
            if label not in LABELS:
                errors.append(f"line {lineno}: bad label {label!r}")
            else:
                counts[label] += 1
            words = len(text.split())
            if not MIN_WORDS <= words <= MAX_WORDS:
                errors.append(f"line {lineno}: {words} words (allowed {MIN_WORDS}-{MAX_WORDS})")
            key = " ".join(text.lower().split())
            if key in seen:
                errors.append(f"line {lineno}: duplicate of line {seen[key]}")
            else:
                seen[key] = lineno
            if not isinstance(ents, list) or not ents or not all(isinstance(e, str) for e in ents):
                errors.append(f"line {lineno}: entities must be a non-empty list of tickers")
                continue
            if len(set(ents)) != len(ents):
                errors.append(f"line {lineno}: repeated entity in {ents}")
            for e in ents:
                if e not in companies:
                    errors.append(f"line {lineno}: entity {e!r} not in {os.path.basename(comp_path)}")
                used[e] += 1
            if companies:
                found = mentioned(text, companies)
                unknown_tags = {m for m in re.findall(r"\$([A-Z]{3,5})\b", text)} - set(companies)
                for u in sorted(unknown_tags):
                    errors.append(f"line {lineno}: cashtag ${u} not in watchlist")
                missing = set(ents) - found
                unlisted = (found - set(ents)) - unknown_tags
                if missing:
                    errors.append(f"line {lineno}: entities not mentioned in text: {sorted(missing)}")
                if unlisted:
                    errors.append(f"line {lineno}: companies mentioned but not listed: {sorted(unlisted)}")

    for lab in LABELS:
        if counts[lab] < MIN_PER_LABEL:
            errors.append(f"label {lab}: only {counts[lab]} examples (need {MIN_PER_LABEL})")
    unused = sorted(set(companies) - set(used))

    print(f"{data_path}: {n_lines} examples")
    for lab in LABELS:
        print(f"  {lab:9s} {counts[lab]}")
    print(f"companies: {len(companies)} in watchlist, {len(used)} used"
          + (f" (unused: {', '.join(unused)})" if unused else ""))
    if errors:
        for e in errors[:50]:
            print("ERROR:", e)
        if len(errors) > 50:
            print(f"... and {len(errors) - 50} more errors")
        print(f"FAIL: {len(errors)} error(s)")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
