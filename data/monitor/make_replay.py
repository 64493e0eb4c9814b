#!/usr/bin/env python3
"""Writes replay.jsonl: eight hours of short, timestamped, news-like documents about five
companies, with one hour of negative news about Veltrane Logistics in the middle.

The monitor's default entity rule (hourly windows, at least 5 documents, raise at 60%
negative and 30 points above the company's own baseline, clear at 35%) should raise one
alert for VLTN in the surge hour and clear it the hour after. Other companies stay calm.

Deterministic (fixed seed); the sentences were written for this file. The default head
reads plainly financial bad news well, but called "Regulators opened an investigation..."
and "...disclosed a data breach and faces lawsuits" neutral, so the negative sentences
here say what happened to the money. Run:
    python3 data/monitor/make_replay.py > data/monitor/replay.jsonl
"""

import json
import random
from datetime import datetime, timedelta, timezone

COMPANIES = {
    "HRBK": "Harbrook Industries",
    "QLMT": "Quillmont Therapeutics",
    "VLTN": "Veltrane Logistics",
    "CRVF": "Corvessa Foods",
    "PLSD": "Pellucid Semiconductor",
}

POSITIVE = [
    "{name} raised its full-year outlook after quarterly profit beat estimates.",
    "{name} won a multi-year contract that analysts said would lift revenue.",
    "Shares of {name} rose after the company announced a larger buyback.",
    "{name} reported record orders and widened its operating margin.",
    "Analysts upgraded {name}, citing strong demand and falling costs.",
]
NEUTRAL = [
    "{name} will present at an industry conference next week.",
    "{name} named a new head of investor relations.",
    "{name} said its annual meeting will take place in May.",
    "{name} opened a regional office, a spokesperson said.",
    "{name} confirmed the date of its next earnings call.",
]
NEGATIVE = [
    "{name} shares plunged after the company slashed its forecast and warned of losses.",
    "{name} was fined heavily by regulators, and its shares sank.",
    "{name} suspended deliveries after a warehouse fire, and customers cancelled orders.",
    "{name} missed earnings badly and cut its dividend, sending the stock sharply lower.",
    "A major client dropped {name}, and analysts downgraded the stock to sell.",
    "{name} defaulted on a bond payment, and its credit rating was cut.",
    "{name} posted a surprise loss as costs surged and sales fell.",
    "{name} announced deep layoffs as revenue collapsed and debt costs soared.",
]

START = datetime(2024, 3, 4, 8, 0, tzinfo=timezone.utc)
HOURS = 8
SURGE_HOUR = 4
SURGE_TICKER = "VLTN"


def pick(rng, ticker, hour):
    if ticker == SURGE_TICKER and hour == SURGE_HOUR:
        weights = (0.05, 0.05, 0.9)
    else:
        weights = (0.45, 0.45, 0.10)
    pool = rng.choices([POSITIVE, NEUTRAL, NEGATIVE], weights)[0]
    return rng.choice(pool)


def main():
    rng = random.Random(7)
    documents = []
    for hour in range(HOURS):
        for ticker, name in COMPANIES.items():
            count = 12 if (ticker == SURGE_TICKER and hour == SURGE_HOUR) else 6
            for _ in range(count):
                at = START + timedelta(hours=hour, seconds=rng.randrange(3600))
                # The cashtag makes the company an entity with no watchlist needed.
                text = pick(rng, ticker, hour).format(name=f"{name} (${ticker})")
                documents.append((at, text))
    documents.sort()
    for number, (at, text) in enumerate(documents):
        print(json.dumps({
            "id": f"replay-{number:04d}",
            "text": text,
            "source": "replay",
            "published_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }))


if __name__ == "__main__":
    main()
