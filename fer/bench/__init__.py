"""The results layer: benchmark JSON in, verdicts, tables, charts and reports out.

Nothing in this package imports torch, so ``fer compare`` and ``fer report``
start fast and run where torch is not installed. The layers, each a module
that only reads the ones before it::

    records   EpochRecord, summarize, the extra_info schema (2) and its upgrade
    storage   Run and Bench: read pytest-benchmark JSON, extra_info upgraded once
    stats     verdicts: is a candidate run slower, faster or unchanged
    derived   figures computed from the stored JSON (scaling efficiency, speed-ups)
    render    a Comparison as a terminal table or markdown
    charts    matplotlib charts: one per report section, and run-over-run trends
    report    `fer report`: every section of the registry, charts and report.md

Import the module you need (``from fer.bench.stats import compare``); this
package imports none of them.
"""
