"""Generate ``plans/data/quickstart.ndjson``, the small dataset the quickstart plan backfills.

Owns only that file. Pure standard library with a fixed seed, so the committed
file is reproducible byte for byte (``python scripts/make_quickstart_data.py``
and ``git diff`` shows nothing). It must not grow past the size budget below:
the dataset is committed to the repository.

Vectors are clustered the way real embeddings are (one centre per category,
one per product noun, plus noise), so an IVF index partitions them sensibly
and the quickstart's recall gate measures something real.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

SEED = 20261125
ROWS = 2000
DIMS = 64
DECIMALS = 4
MAX_BYTES = 3 * 1024 * 1024
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "plans" / "data" / "quickstart.ndjson"

CATALOGUE: dict[str, list[str]] = {
    "outerwear": ["jacket", "parka", "vest", "hoodie", "raincoat"],
    "footwear": ["boots", "sneakers", "sandals", "trail runners", "slippers"],
    "bags": ["backpack", "duffel", "tote", "sling", "daypack"],
    "camping": ["tent", "sleeping bag", "stove", "lantern", "hammock"],
    "climbing": ["harness", "rope", "carabiner", "chalk bag", "helmet"],
    "accessories": ["gloves", "beanie", "sunglasses", "scarf", "socks"],
    "electronics": ["headlamp", "power bank", "gps watch", "radio", "solar panel"],
    "nutrition": ["energy bar", "trail mix", "electrolyte drink", "freeze-dried meal", "gel"],
}
ADJECTIVES = [
    "ultralight",
    "waterproof",
    "insulated",
    "packable",
    "rugged",
    "breathable",
    "compact",
    "recycled",
    "classic",
    "alpine",
]
MATERIALS = ["nylon", "merino", "down", "canvas", "leather", "fleece", "titanium", "cotton"]


def _unit(rng: random.Random) -> list[float]:
    values = [rng.gauss(0.0, 1.0) for _ in range(DIMS)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def make_rows(seed: int = SEED, rows: int = ROWS) -> list[dict[str, object]]:
    """Return the dataset rows; the same seed always gives the same rows."""
    rng = random.Random(seed)
    category_centres = {category: _unit(rng) for category in CATALOGUE}
    noun_centres = {
        (category, noun): _unit(rng) for category, nouns in CATALOGUE.items() for noun in nouns
    }
    categories = sorted(CATALOGUE)
    out: list[dict[str, object]] = []
    for row_id in range(1, rows + 1):
        if row_id == 1:
            # The quickstart's BM25 smoke query searches for "ultralight jacket";
            # this row guarantees a hit whatever the random draw below produces.
            category, noun, adjective, material = "outerwear", "jacket", "ultralight", "down"
        else:
            category = rng.choice(categories)
            noun = rng.choice(CATALOGUE[category])
            adjective = rng.choice(ADJECTIVES)
            material = rng.choice(MATERIALS)
        c, n = category_centres[category], noun_centres[(category, noun)]
        raw = [0.5 * c[i] + 0.7 * n[i] + rng.gauss(0.0, 0.12) for i in range(DIMS)]
        norm = math.sqrt(sum(v * v for v in raw))
        vector = [round(v / norm, DECIMALS) for v in raw]
        out.append(
            {
                "id": row_id,
                "vector": vector,
                "title": f"{adjective.capitalize()} {material} {noun}",
                "category": category,
                "price": round(rng.uniform(4.0, 450.0), 2),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the NDJSON")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args()
    lines = [
        json.dumps(row, separators=(",", ":"), ensure_ascii=False)
        for row in make_rows(args.seed, args.rows)
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if len(data) > MAX_BYTES:
        raise SystemExit(f"dataset is {len(data):,} bytes, over the {MAX_BYTES:,}-byte budget")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {len(lines):,} rows, {len(data):,} bytes to {args.out}")


if __name__ == "__main__":
    main()
