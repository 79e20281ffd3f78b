"""Text rendering of a :class:`~fer.bench.stats.Comparison`: a terminal table and markdown."""

from __future__ import annotations

import math

from fer.bench.changepoints import ChangePoint
from fer.bench.stats import (
    IMPROVED,
    INCONCLUSIVE,
    NOT_GATED,
    REGRESSED,
    UNCHANGED,
    VERDICTS,
    Comparison,
    Judgement,
    Row,
    Shift,
)
from fer.bench.storage import short_name
from fer.errors import printable


def pct(x: float | None, digits: int = 1) -> str:
    """A change as a signed percentage; "-" where there is none (or it is not finite)."""
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:+.{digits}f}%"


def row_names(c: Comparison) -> dict[str, str]:
    """How each row is named: its short name, unless two rows would read the same (the same
    test in two files), then its full name."""
    shorts = [short_name(r.fullname) for r in c.rows]
    return {r.fullname: s if shorts.count(s) == 1 else printable(r.fullname)
            for r, s in zip(c.rows, shorts)}


def md_text(text: str) -> str:
    """Text for a markdown line: no character that starts markup or ends a table cell."""
    return "".join("\\" + ch if ch in "\\`*_[]|<>#" else ch for ch in text)


def md_name(name: str) -> str:
    """A benchmark name inside a markdown code span: backticks and pipes cannot break out."""
    return name.replace("`", "'").replace("|", "\\|")


def interval(j: Judgement) -> str:
    """A judgement's interval of the change ("-" where it has none, or an unbounded one)."""
    if j is None or j.low is None or j.high is None or not (
            math.isfinite(j.low) and math.isfinite(j.high)):
        return "-"
    return f"[{100 * j.low:+.1f}, {100 * j.high:+.1f}]%"


def _other(r: Row, metric: str) -> str:
    j = r.judgements.get(metric)
    if j is None or j.verdict == NOT_GATED:
        return "-"
    if metric == "data_wait":
        text = f"{100 * j.change:+.1f}pt"
    elif metric == "counters" and j.verdict == UNCHANGED:
        text = "same"
    else:
        text = pct(j.change)
    return text + ("!" if j.verdict == REGRESSED else "")


def _by(j: Judgement) -> str:
    """How the time was judged: with the run's shift, or on the benchmark's own change."""
    return "run" if j.judged == "with the run" else "own"


def judged_by(r: Row) -> str:
    """Whose change the row's time verdict is about: the run's shift (the benchmark moved with
    the others; its own change may differ) or the benchmark's own change."""
    t = r.time
    if _by(t) == "run" and t.estimate is not None:
        return f"run {pct(t.estimate)}"
    return "own"


def seconds(x: float | None) -> str:
    """A time as printed in every output: five significant digits, so that the change can be
    recomputed from the two times shown to a hundredth of a percent."""
    return "-" if x is None else f"{x:.5g}"


def unit_line(c: Comparison) -> str:
    """What base s and new s are, for the methods of this comparison."""
    kinds = sorted({r.method for r in c.rows})
    texts = []
    for kind in kinds:
        calibrated, _, sample = kind.partition(", ")
        if sample.startswith("excess"):
            texts.append("the whole epoch over its typical step x steps, a ratio")
            continue
        what = ("the typical step x steps per epoch" if sample.startswith("step")
                else "the epoch wall time")
        texts.append(what + (", relative to the reference workload, in seconds at the baseline "
                             "runs' machine speed" if calibrated == "calibrated" else ", seconds"))
    return ("base s, new s: the samples the verdict judged (geometric mean over the epochs): "
            + "; ".join(texts) + ". change = new s / base s - 1, the benchmark's own; "
            "'judged by' says whose change the verdict is about (the run's shift, or its own)")


def _baseline_label(c: Comparison) -> str:
    return c.baseline[0].label if len(c.baseline) == 1 else f"{len(c.baseline)} earlier runs"


def _tally(c: Comparison) -> str:
    return ", ".join(f"{c.count(v)} {v}" for v in VERDICTS)


def _settings(c: Comparison) -> str:
    o = c.options
    how = ("the run's shift and the benchmarks apart (Holm) at half the alpha each"
           if o.pool == "run" and len(c.rows) > 1 else f"Holm over {len(c.rows)}")
    return (f"threshold {100 * o.threshold:g}%, confidence {o.confidence:g} for the gate: "
            f"{how}; gates: {', '.join(o.gate_on)}")


def _undetectable(c: Comparison) -> list[Row]:
    return [r for r in c.rows if r.time.mde_alone is not None
            and r.time.mde_alone > c.options.threshold]


def pooled_shifts(c: Comparison) -> list[Shift]:
    """The run-level shifts worth a line: those over more than one benchmark."""
    return [s for s in c.shifts if len(s.together) + len(s.apart) > 1]


def format_shift(s: Shift, markdown: bool = False) -> str:
    """One line: how the run as a whole moved, and who moved apart from it."""
    what = "time" if s.metric == "time" else s.metric
    sample = (s.method or "").rpartition(", ")[2]
    if s.metric == "time" and sample.endswith("times"):
        what = "time, " + ("the whole epoch" if sample.startswith("epoch") else
                           "the whole epoch over its typical step" if sample.startswith("excess")
                           else "the typical step")
    verdict = s.verdict.upper() if s.verdict == REGRESSED else s.verdict
    if s.verdict == NOT_GATED:
        verdict = "shown only (--pool none)"
    text = (f"the run as a whole ({what}, {len(s.together)} benchmark(s) together): "
            f"{pct(s.change)} [{100 * s.low:+.1f}, {100 * s.high:+.1f}]%, common noise "
            f"{100 * s.noise:.1f}% ({s.noise_source}), MDE {100 * s.mde:.0f}%: {verdict}")
    if s.apart:
        names = ", ".join(short_name(n) for n in s.apart)
        text += f"; judged apart (moved differently): {names}"
    return f"**{text}**" if markdown else text


def format_table(c: Comparison) -> str:
    lines = [f"baseline: {_baseline_label(c)}   candidate: {c.candidate.label}"]
    if c.cross_machine:
        lines.append("WARNING: CROSS-MACHINE comparison (--allow-cross-machine): runs come from "
                     "different hardware or software")
    names = row_names(c)
    width = max([len(n) for n in names.values()] + [9])
    lines.append(f"{'benchmark':<{width}}  {'base s':>9} {'new s':>9} {'change':>7} "
                 f"{'interval':>17} {'noise':>6} {'MDE':>6} {'img/s':>7} {'wait':>7} {'mem':>7}"
                 f" {'counts':>7}  {'judged by':<10} verdict")
    for r in c.rows:
        t = r.time
        shown = r.verdict.upper() if r.verdict == REGRESSED else r.verdict
        lines.append(
            f"{names[r.fullname]:<{width}}  {seconds(r.base_s):>9} {seconds(r.new_s):>9} "
            f"{pct(r.change):>7} {interval(t):>17} {pct(t.noise).lstrip('+'):>6} "
            f"{pct(t.mde).lstrip('+'):>6} {_other(r, 'throughput'):>7} "
            f"{_other(r, 'data_wait'):>7} {_other(r, 'memory'):>7} {_other(r, 'counters'):>7}  "
            f"{judged_by(r):<10} {shown}")
    explained = [r for r in c.rows if r.explanation]
    if explained:
        lines.append("why:")
        lines += [f"  {names[r.fullname]}: {r.explanation}" for r in explained]
    for name in c.added:
        lines.append(f"added:   {short_name(name)}")
    for name in c.removed:
        lines.append(f"removed: {short_name(name)}")
    methods = sorted({f"{r.method}, noise from {r.time.noise_source}" for r in c.rows
                      if not r.time.noise_source.startswith("a disturbed")})
    lines.append("")
    lines.append(unit_line(c))
    lines += [format_shift(s) for s in pooled_shifts(c)]
    lines.append(f"{_tally(c)}  ({_settings(c)})")
    lines.append("method: " + "; ".join(methods))
    lines += [f"note: {reason}" for reason in c.reasons()]
    blind = _undetectable(c)
    if blind:
        worst = max(blind, key=lambda r: r.time.mde_alone)
        lines.append(f"{len(blind)} benchmark(s) cannot detect a {100 * c.options.threshold:g}% "
                     f"change of their own on this machine (e.g. {short_name(worst.fullname)} "
                     f"alone cannot detect less than {100 * worst.time.mde_alone:.0f}%; a change "
                     "shared by the run is seen from the MDE column): store more runs of this "
                     "hardware class (the noise is then learned, not assumed) or raise --threshold")
    return "\n".join(lines)


_ICON = {REGRESSED: ":x: regressed", IMPROVED: ":white_check_mark: improved",
         UNCHANGED: "unchanged", INCONCLUSIVE: ":grey_question: inconclusive"}


def format_markdown(c: Comparison) -> str:
    names = row_names(c)
    out = [f"### fer compare: {md_text(c.candidate.label)} vs {md_text(_baseline_label(c))}", ""]
    if c.cross_machine:
        out += ["> **Cross-machine comparison**: the runs come from different hardware or "
                "software.", ""]
    out += ["| benchmark | base s | new s | change | interval | noise | MDE | images/s | "
            "data wait | peak mem | counts | judged by | verdict |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in c.rows:
        t = r.time
        out.append(f"| `{md_name(names[r.fullname])}` | {seconds(r.base_s)} | {seconds(r.new_s)} | "
                   f"{pct(r.change)} | {interval(t)} | {pct(t.noise).lstrip('+')} | "
                   f"{pct(t.mde).lstrip('+')} | {_other(r, 'throughput')} | "
                   f"{_other(r, 'data_wait')} | {_other(r, 'memory')} | "
                   f"{_other(r, 'counters')} | {judged_by(r)} | "
                   f"{_ICON[r.verdict]} |")
    explained = [r for r in c.rows if r.explanation]
    if explained:
        out += ["", "**Why:**", ""]
        out += [f"- `{md_name(names[r.fullname])}`: {md_text(r.explanation)}" for r in explained]
    if c.added or c.removed:
        out.append("")
        out += [f"- added: `{md_name(short_name(n))}`" for n in c.added]
        out += [f"- removed: `{md_name(short_name(n))}`" for n in c.removed]
    out += ["", unit_line(c)]
    out += [""] + [format_shift(s, markdown=True) for s in pooled_shifts(c)]
    out += ["", f"**{_tally(c)}** ({_settings(c)})"]
    out += [f"- note: {md_text(reason)}" for reason in c.reasons()]
    blind = _undetectable(c)
    if blind:
        out += ["", f"{len(blind)} benchmark(s) cannot detect a {100 * c.options.threshold:g}% "
                    "change of their own on this machine (a change shared by the run: see MDE)."]
    return "\n".join(out)


def format_change_points(points: list[ChangePoint], markdown: bool = False) -> str:
    if not points:
        return "change points: none found in the history"
    lines = ["#### Change points" if markdown else "change points (E-Divisive means, permutation test):"]
    for p in sorted(points, key=lambda p: (p.index, p.benchmark)):
        when = " ".join(x for x in (p.commit[:8], p.datetime[:19]) if x)
        bullet = "- " if markdown else "  "
        name = f"`{short_name(p.benchmark)}`" if markdown else short_name(p.benchmark)
        lines.append(f"{bullet}{name}: {pct(p.change)} at {p.run}"
                     f"{f' ({when})' if when else ''}, confidence {p.confidence:.3f} "
                     f"({p.before_runs} runs before, {p.after_runs} after)")
    return "\n".join(lines)
