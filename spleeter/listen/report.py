"""``spleeter listen report``: post-screening and statistics per BS.1534-3.

Post-screening (BS.1534-3, 5.4), on the rated trials (items) a listener submitted:

- a listener who rates the hidden reference below 90 for more than 15 % of their items is
  excluded;
- a listener who rates the mid anchor (7 kHz) above 90 for more than 15 % of their items is
  excluded, items where more than 25 % of the listeners rate that anchor above 90 not counted.

Then, per stem and condition (and per condition over all stems), over every kept listener and
item: median and inter-quartile range (numpy's linear percentiles, type 7), mean and its 95 %
t interval ``mean +- t(0.975, N-1) s / sqrt(N)`` (``s`` with N - 1), a box plot per stem (PNG)
and a text table.
"""

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import SpleeterError
from . import DATABASE_NAME
from .anchors import MID_ANCHOR
from .manifest import HIDDEN_REFERENCE, Manifest, load_manifest

REFERENCE_FLOOR: float = 90.0
ANCHOR_CEILING: float = 90.0
MAX_FAILED_SHARE: float = 0.15
ANCHOR_ITEM_EXEMPTION: float = 0.25
ALL_STEMS: str = "all"

RATING_FIELDS = (
    "listener",
    "trial",
    "track",
    "stem",
    "condition",
    "kind",
    "name",
    "score",
    "saved",
)


def rating_rows(manifest: Manifest, ratings: list[dict]) -> list[dict]:
    """The database's grades with what each condition is (for export and the report)."""
    rows = []
    for rating in ratings:
        trial = manifest.trial(rating["trial"])
        condition = trial.condition(rating["condition"]) if trial else None
        if condition is None:
            continue  # not of this manifest: never written by the server
        rows.append(
            {
                "listener": rating["listener"],
                "trial": trial.id,
                "track": trial.track,
                "stem": trial.stem,
                "condition": condition.id,
                "kind": condition.kind,
                "name": condition.name,
                "score": rating["score"],
                "saved": rating["saved"],
            }
        )
    return rows


@dataclass(frozen=True)
class Summary:
    """Statistics of one condition's grades."""

    n: int
    median: float
    q1: float
    q3: float
    iqr: float
    mean: float
    sd: float
    ci_low: float
    ci_high: float


def summarise(values) -> Summary:
    """Median, quartiles, mean, sample standard deviation and the 95 % t interval."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    n = len(x)
    q1, median, q3 = (float(v) for v in np.percentile(x, [25, 50, 75]))
    mean = float(np.mean(x))
    sd = float(np.std(x, ddof=1)) if n > 1 else math.nan
    half = float(t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else math.nan
    return Summary(n, median, q1, q3, q3 - q1, mean, sd, mean - half, mean + half)


def screen(rows: list[dict]) -> dict[str, str]:
    """Listeners to exclude and why (BS.1534-3 post-screening; see the module's text)."""
    items: dict[str, set[str]] = {}
    reference: dict[tuple[str, str], float] = {}
    anchor: dict[tuple[str, str], float] = {}
    for row in rows:
        items.setdefault(row["listener"], set()).add(row["trial"])
        key = (row["listener"], row["trial"])
        if row["name"] == HIDDEN_REFERENCE:
            reference[key] = row["score"]
        elif row["name"] == MID_ANCHOR.name:
            anchor[key] = row["score"]
    exempt = set()
    for trial in {t for _, t in anchor}:
        grades = [s for (_, t), s in anchor.items() if t == trial]
        if sum(s > ANCHOR_CEILING for s in grades) / len(grades) > ANCHOR_ITEM_EXEMPTION:
            exempt.add(trial)
    excluded = {}
    for listener, trials in sorted(items.items()):
        n = len(trials)
        low = sorted(t for t in trials if reference.get((listener, t), 100.0) < REFERENCE_FLOOR)
        high = sorted(
            t for t in trials if t not in exempt and anchor.get((listener, t), 0.0) > ANCHOR_CEILING
        )
        reasons = []
        if len(low) / n > MAX_FAILED_SHARE:
            reasons.append(
                f"hidden reference below {REFERENCE_FLOOR:.0f} in {len(low)} of {n} items "
                f"({100 * len(low) / n:.0f} % > {100 * MAX_FAILED_SHARE:.0f} %: {', '.join(low)})"
            )
        if len(high) / n > MAX_FAILED_SHARE:
            reasons.append(
                f"mid anchor above {ANCHOR_CEILING:.0f} in {len(high)} of {n} items "
                f"({100 * len(high) / n:.0f} % > {100 * MAX_FAILED_SHARE:.0f} %: "
                f"{', '.join(high)})"
            )
        if reasons:
            excluded[listener] = "; ".join(reasons)
    return excluded


def condition_order(manifest: Manifest) -> list[str]:
    """Reference, systems (as given), mid anchor, lower anchor."""
    return [HIDDEN_REFERENCE, *manifest.systems, "anchor70", "anchor35"]


def statistics(manifest: Manifest, rows: list[dict]) -> dict[str, dict[str, Summary]]:
    """``{stem or "all": {condition name: Summary}}`` over the given (kept) rows."""
    result: dict[str, dict[str, Summary]] = {}
    for stem in [*manifest.stems, ALL_STEMS]:
        per = {}
        for name in condition_order(manifest):
            values = [
                r["score"]
                for r in rows
                if r["name"] == name and (stem == ALL_STEMS or r["stem"] == stem)
            ]
            if values:
                per[name] = summarise(values)
        if per:
            result[stem] = per
    return result


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def text_table(stats: dict[str, dict[str, Summary]]) -> str:
    lines = [
        f"{'stem':<8} {'condition':<14} {'N':>4} {'median':>7} {'IQR':>6} {'Q1-Q3':>12} "
        f"{'mean':>6} {'95% CI':>13}"
    ]
    for stem, per in stats.items():
        for name, s in per.items():
            lines.append(
                f"{stem:<8} {name:<14} {s.n:>4} {_number(s.median):>7} {_number(s.iqr):>6} "
                f"{_number(s.q1) + '-' + _number(s.q3):>12} {_number(s.mean):>6} "
                f"{_number(s.ci_low) + '-' + _number(s.ci_high):>13}"
            )
    return "\n".join(lines)


def boxplot(stem: str, per: dict[str, list[float]], path: Path) -> Path:
    """Box plot (whiskers 1.5 IQR, the grades as points) of one stem's conditions."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(per)
    figure = Figure(figsize=(1.2 * len(names) + 2, 4.2))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.boxplot([per[n] for n in names], showmeans=True)
    axes.set_xticks(range(1, len(names) + 1), names, rotation=20)
    for k, name in enumerate(names, start=1):
        jitter = np.linspace(-0.12, 0.12, len(per[name])) if len(per[name]) > 1 else [0.0]
        axes.plot(k + np.asarray(jitter), per[name], ".", color="0.35", alpha=0.6)
    axes.set_ylim(-2, 102)
    for edge in (20, 40, 60, 80):
        axes.axhline(edge, color="0.85", lw=0.8, zorder=0)
    axes.set_yticks([0, 20, 40, 60, 80, 100])
    axes.set_ylabel("grade (Bad 0-20 ... Excellent 80-100)")
    axes.set_title(f"MUSHRA: {stem}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    return path


@dataclass(frozen=True)
class Report:
    listeners: list[str]
    excluded: dict[str, str]
    statistics: dict[str, dict[str, Summary]]
    table: str
    files: list[str]


def build_report(folder: str | Path, output: str | Path | None = None) -> Report:
    """Screen, summarise and write ``report.txt``, ``report.json``, ``ratings.csv``,
    ``ratings.json`` and ``boxplot_<stem>.png`` to ``output`` (default ``folder/report``)."""
    from .store import Store

    folder = Path(folder)
    manifest = load_manifest(folder)
    database = folder / DATABASE_NAME
    if not database.is_file():
        raise SpleeterError(f"No ratings yet: {database} not found (run spleeter listen serve)")
    store = Store(database)
    try:
        rows = rating_rows(manifest, store.ratings())
    finally:
        store.close()
    if not rows:
        raise SpleeterError(f"No ratings in {database} yet")
    output = Path(output) if output else folder / "report"
    output.mkdir(parents=True, exist_ok=True)
    listeners = sorted({r["listener"] for r in rows})
    excluded = screen(rows)
    kept = [r for r in rows if r["listener"] not in excluded]
    stats = statistics(manifest, kept)
    table = text_table(stats)
    files = []
    for stem in manifest.stems:
        per = {
            name: [r["score"] for r in kept if r["stem"] == stem and r["name"] == name]
            for name in condition_order(manifest)
        }
        per = {k: v for k, v in per.items() if v}
        if per:
            files.append(str(boxplot(stem, per, output / f"boxplot_{stem}.png")))
    lines = [
        f"MUSHRA report: {folder} ({manifest.attribute})",
        f"listeners: {len(listeners)}, kept {len(listeners) - len(excluded)}, "
        f"excluded {len(excluded)}",
        *(f"  excluded {name}: {why}" for name, why in excluded.items()),
        "",
        table,
    ]
    text = "\n".join(lines) + "\n"
    (output / "report.txt").write_text(text)
    (output / "report.json").write_text(
        json.dumps(_jsonable(listeners, excluded, stats), indent=2) + "\n"
    )
    with open(output / "ratings.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(RATING_FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (output / "ratings.json").write_text(json.dumps(rows, indent=2) + "\n")
    files += [str(output / n) for n in ("report.txt", "report.json", "ratings.csv", "ratings.json")]
    return Report(listeners, excluded, stats, text, files)


def _jsonable(listeners, excluded, stats) -> dict:
    def clean(value):
        return None if isinstance(value, float) and math.isnan(value) else value

    return {
        "listeners": listeners,
        "excluded": excluded,
        "statistics": {
            stem: {name: {k: clean(v) for k, v in asdict(s).items()} for name, s in per.items()}
            for stem, per in stats.items()
        },
    }
