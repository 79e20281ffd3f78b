"""Text rendering of a :class:`~fer.bench.stats.Comparison`: a terminal table and markdown."""

from __future__ import annotations

from fer.bench.stats import IMPROVED, REGRESSED, UNCHANGED, Comparison


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def short_name(name: str) -> str:
    """``test_x.py::test_epoch[adam]`` -> ``test_epoch[adam]``."""
    return name.split("::")[-1]


def format_table(c: Comparison) -> str:
    lines = []
    base = c.baseline[0].label if len(c.baseline) == 1 else f"{len(c.baseline)} earlier runs"
    lines.append(f"baseline: {base}   candidate: {c.candidate.label}")
    if c.cross_machine:
        lines.append("WARNING: CROSS-MACHINE comparison (--allow-cross-machine): runs come from "
                     "different hardware or software")
    width = max([len(short_name(r.fullname)) for r in c.rows] + [9])
    lines.append(f"{'benchmark':<{width}}  {'base s':>9} {'new s':>9} {'change':>8} {'p':>7} "
                 f"{'img/s':>8} {'wait':>7} {'mem':>7}  verdict")
    for r in c.rows:
        p = "-" if r.p_value is None else f"{r.p_value:.3f}"
        m = r.metrics
        shown = r.verdict.upper() if r.verdict == REGRESSED else r.verdict
        lines.append(
            f"{short_name(r.fullname):<{width}}  {r.base_median:>9.4f} {r.new_median:>9.4f} "
            f"{_pct(r.change):>8} {p:>7} "
            f"{_pct(m.get('median_images_per_s', {}).get('change')):>8} "
            f"{_pct(m.get('median_data_wait_share', {}).get('change')):>7} "
            f"{_pct(m.get('peak_mem_bytes', {}).get('change')):>7}  {shown}")
    for name in c.added:
        lines.append(f"added:   {short_name(name)}")
    for name in c.removed:
        lines.append(f"removed: {short_name(name)}")
    n = len(c.regressions)
    lines.append(f"\n{n} regressed, {sum(r.verdict == IMPROVED for r in c.rows)} improved, "
                 f"{sum(r.verdict == UNCHANGED for r in c.rows)} unchanged "
                 f"(threshold {100 * c.threshold:g}%, alpha {c.alpha:g})")
    return "\n".join(lines)


def format_markdown(c: Comparison) -> str:
    base = c.baseline[0].label if len(c.baseline) == 1 else f"{len(c.baseline)} earlier runs"
    out = [f"### fer compare: {c.candidate.label} vs {base}", ""]
    if c.cross_machine:
        out += ["> **Cross-machine comparison**: the runs come from different hardware or "
                "software.", ""]
    out += ["| benchmark | base median s | new median s | change | p | images/s | data wait "
            "| peak mem | verdict |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    icon = {REGRESSED: ":x: regressed", IMPROVED: ":white_check_mark: improved",
            UNCHANGED: "unchanged"}
    for r in c.rows:
        m = r.metrics
        p = "-" if r.p_value is None else f"{r.p_value:.3f}"
        out.append(f"| `{short_name(r.fullname)}` | {r.base_median:.4f} | {r.new_median:.4f} | "
                   f"{_pct(r.change)} | {p} | "
                   f"{_pct(m.get('median_images_per_s', {}).get('change'))} | "
                   f"{_pct(m.get('median_data_wait_share', {}).get('change'))} | "
                   f"{_pct(m.get('peak_mem_bytes', {}).get('change'))} | {icon[r.verdict]} |")
    if c.added or c.removed:
        out.append("")
        out += [f"- added: `{short_name(n)}`" for n in c.added]
        out += [f"- removed: `{short_name(n)}`" for n in c.removed]
    out += ["", f"**{len(c.regressions)} regressed** (threshold {100 * c.threshold:g}%, "
                f"alpha {c.alpha:g})"]
    return "\n".join(out)
