"""Readers for FER2013 CSV files and FER+ vote files.

Supported layouts (columns are found by name, in any order, spaces ignored):

* ``fer2013.csv``          ``emotion,pixels,Usage``
* ``icml_face_data.csv``   ``emotion, Usage, pixels`` (Kaggle; leading spaces)
* ``train.csv``            ``emotion,pixels`` (all rows are the train split)
* ``test.csv``             ``pixels`` (no labels; all rows are the test split)

The parse is vectorised: rows are split into fields in Python (cheap, 35k
lines), then every pixel field of a chunk of rows is parsed at once with numpy
from the raw bytes. The result is cached (see :mod:`fer.data.cache`).
"""

from __future__ import annotations

import csv
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fer.data.cache import cached_load
from fer.data.dataset import (
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    IMAGE_SIZE,
    SPLITS,
    UNLABELED,
    USAGE_TO_SPLIT,
    FERData,
    SkippedRow,
)
from fer.errors import FERDataError

log = logging.getLogger(__name__)

PIXELS_PER_IMAGE = IMAGE_SIZE * IMAGE_SIZE
ON_ERROR_CHOICES = ("raise", "skip")
#: Bumped whenever the parse changes what it returns, so old caches are ignored.
PARSER_VERSION = 1
_ROWS_PER_CHUNK = 4096
_DIGIT0, _DIGIT9, _SPACE, _TAB = ord("0"), ord("9"), ord(" "), ord("\t")


def read_fer2013_csv(path: str | Path, *, on_error: str = "raise", cache: bool = True) -> FERData:
    """Read a FER2013-format CSV file into :class:`FERData`.

    ``on_error="raise"`` (the default) stops at the first bad row with a
    :class:`FERDataError` naming the file, line and fix; ``"skip"`` drops bad
    rows and lists them in ``FERData.skipped``. The parsed arrays are cached
    and reused until the file changes (``cache=False`` turns that off).
    """
    path = Path(path)
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    if not path.is_file():
        kind = "not a regular file (a pipe or a device)" if path.exists() else "no such file"
        raise FERDataError(f"{path}: {kind}; pass the path of fer2013.csv (or 'synthetic')")
    if not cache:
        return _parse_csv(path, on_error)
    return cached_load(path, f"csv-v{PARSER_VERSION}-{on_error}", lambda: _parse_csv(path, on_error))


def _header_columns(path: Path, header: bytes) -> dict[str, int]:
    try:
        names = [c.strip().strip('"').strip().lower() for c in header.decode("utf-8-sig").split(",")]
    except UnicodeDecodeError:
        raise FERDataError(f"{path}:1: the header is not text; is this a FER2013 CSV file?") from None
    if "pixels" not in names:
        hint = ""
        if "image name" in names:
            hint = " This looks like a FER+ vote file: pass it with --ferplus beside fer2013.csv."
        raise FERDataError(
            f"{path}:1: missing column 'pixels' (found {', '.join(repr(n) for n in names)}); "
            f"a FER2013 CSV needs 'pixels' and usually 'emotion' and 'Usage'.{hint}"
        )
    return {name: i for i, name in enumerate(names)}


def _parse_csv(path: Path, on_error: str) -> FERData:
    raw = path.read_bytes()
    if not raw.strip():
        raise FERDataError(f"{path}: the file is empty; re-download fer2013.csv or use 'synthetic'")
    lines = raw.split(b"\n")
    truncated = not raw.endswith(b"\n")
    columns = _header_columns(path, lines[0].rstrip(b"\r"))
    n_fields = len(columns)
    pixel_col = columns["pixels"]
    emotion_col = columns.get("emotion")
    usage_col = columns.get("usage")
    default_split = SPLITS.index("test" if path.name.lower() == "test.csv" else "train")
    usage_codes = {k.encode(): SPLITS.index(v) for k, v in USAGE_TO_SPLIT.items()}

    pixel_fields: list[bytes] = []
    line_numbers: list[int] = []
    labels: list[int] = []
    splits: list[int] = []
    skipped: list[SkippedRow] = []

    last_line_no = len(lines) if truncated else -1

    def bad(line_no: int, reason: str) -> None:
        if line_no == last_line_no:
            reason += " (the file ends mid-row: it looks truncated; re-download it)"
        if on_error == "raise":
            raise FERDataError(f"{path}:{line_no}: {reason}")
        skipped.append(SkippedRow(line_no, reason))

    for line_no, line in enumerate(lines[1:], start=2):
        line = line.rstrip(b"\r")
        if len(line) < 8 and not line.strip():  # a blank line (a real row is longer)
            continue
        fields = line.split(b",")
        if len(fields) != n_fields:
            bad(line_no, f"has {len(fields)} fields, the header has {n_fields}; "
                         "fix or remove the row (or pass --skip-bad-rows)")
            continue
        label = UNLABELED
        if emotion_col is not None:
            text = fields[emotion_col].strip().strip(b'"')
            if not text.isdigit() or len(text) > 3 or int(text) >= len(FER2013_CLASSES):
                bad(line_no, f"emotion {text.decode(errors='replace')!r} is not a label 0-6 "
                             f"({', '.join(FER2013_CLASSES)}); fix the row or pass --skip-bad-rows")
                continue
            label = int(text)
        split = default_split
        if usage_col is not None:
            usage = fields[usage_col].strip().strip(b'"')
            if usage not in usage_codes:
                bad(line_no, f"Usage {usage.decode(errors='replace')!r} is not one of "
                             f"{', '.join(USAGE_TO_SPLIT)}; fix the row or pass --skip-bad-rows")
                continue
            split = usage_codes[usage]
        pixel_fields.append(fields[pixel_col].strip(b'" \t'))
        line_numbers.append(line_no)
        labels.append(label)
        splits.append(split)

    images, bad_rows = _parse_pixel_fields(pixel_fields)
    if bad_rows:
        for row, reason in sorted(bad_rows.items()):
            bad(line_numbers[row], reason + "; fix the row or pass --skip-bad-rows")
        keep = np.ones(len(pixel_fields), dtype=bool)
        keep[list(bad_rows)] = False
        labels = list(np.asarray(labels, dtype=np.int64)[keep])
        splits = list(np.asarray(splits, dtype=np.int8)[keep])
    if not len(images):
        raise FERDataError(f"{path}: no usable rows (only a header, or every row was bad)")
    skipped.sort(key=lambda s: s.line)
    if skipped:
        log.warning("%s: skipped %d bad rows (first at line %d)", path, len(skipped), skipped[0].line)
    return FERData(
        images=images,
        labels=np.asarray(labels, dtype=np.int64),
        splits=np.asarray(splits, dtype=np.int8),
        class_names=FER2013_CLASSES,
        source=str(path),
        skipped=skipped,
    )


def _parse_pixel_fields(fields: list[bytes]) -> tuple[np.ndarray, dict[int, str]]:
    """Parse space-separated 0-255 pixel strings, one per row, all at once.

    Returns ``(images [n_good, 48, 48] uint8, {row_index: reason})``.
    """
    starts = range(0, len(fields), _ROWS_PER_CHUNK)
    # numpy releases the GIL in its loops: chunks parse in parallel threads.
    with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1) or 1) as pool:
        results = list(pool.map(lambda s: _parse_chunk(fields[s:s + _ROWS_PER_CHUNK]), starts))
    out = [values for values, _ in results]
    bad: dict[int, str] = {}
    for first, (_, chunk_bad) in zip(starts, results):
        bad.update({first + r: why for r, why in chunk_bad.items()})
    images = np.concatenate(out) if out else np.zeros((0, PIXELS_PER_IMAGE), np.uint8)
    return images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), bad


def _parse_chunk(fields: list[bytes]) -> tuple[np.ndarray, dict[int, str]]:
    # Rows joined by one space; row r's bytes are buf[row_start[r]:row_start[r + 1] - 1].
    buf = np.frombuffer(b" ".join(fields) + b" ", dtype=np.uint8)
    lengths = np.fromiter((len(f) for f in fields), dtype=np.int64, count=len(fields))
    row_start = np.concatenate(([0], np.cumsum(lengths + 1)))
    bad: dict[int, str] = {}

    digit = buf - np.uint8(_DIGIT0)  # wraps around below '0': one compare finds digits
    is_digit = digit < 10
    n_separators = len(buf) - np.count_nonzero(is_digit)
    if n_separators != np.count_nonzero(buf == _SPACE) + np.count_nonzero(buf == _TAB):
        foreign = np.flatnonzero(~is_digit & (buf != _SPACE) & (buf != _TAB))
        rows = np.searchsorted(row_start, foreign, side="right") - 1
        for row, pos in zip(*np.unique(rows, return_index=True)):
            char = chr(buf[foreign[pos]])
            bad[int(row)] = f"pixel text has {char!r}: pixels must be integers 0-255 separated by spaces"
        is_digit[foreign] = False  # parse the rest; those rows are dropped anyway

    # A token ends where a digit is followed by a separator (buf ends with a
    # space, so every token ends). Its value is read back from the 3 bytes
    # before its end; a 4th digit there means it is too long for 0-255.
    ends = np.flatnonzero(is_digit[:-1] > is_digit[1:]) + 1
    per_row = np.diff(np.searchsorted(ends, row_start))
    padded_digit = np.concatenate((np.zeros(4, np.uint8), digit))  # so ends - 4 >= 0
    padded_is = np.concatenate((np.zeros(4, bool), is_digit))
    ends += 4
    value = padded_digit[ends - 1].astype(np.int16)
    has_tens = padded_is[ends - 2]
    value += has_tens * padded_digit[ends - 2].astype(np.int16) * 10
    has_hundreds = has_tens & padded_is[ends - 3]
    value += has_hundreds * padded_digit[ends - 3].astype(np.int16) * 100
    too_big = (value > 255) | (has_hundreds & padded_is[ends - 4])
    if too_big.any():
        rows = np.searchsorted(row_start, ends[too_big] - 4, side="right") - 1
        for row in np.unique(rows):
            bad.setdefault(int(row), "has a pixel value above 255: pixels must be 0-255")
    for row in np.flatnonzero(per_row != PIXELS_PER_IMAGE):
        bad.setdefault(int(row), f"has {per_row[row]} pixel values, a 48x48 image needs "
                                 f"{PIXELS_PER_IMAGE}")

    if bad:
        good_rows = np.ones(len(fields), dtype=bool)
        good_rows[list(bad)] = False
        value = value[np.repeat(good_rows, per_row)]
    return value.astype(np.uint8).reshape(-1, PIXELS_PER_IMAGE), bad


# --------------------------------------------------------------------- FER+ --

FERPLUS_COLUMNS = ("usage", "image name", *FERPLUS_CLASSES, "unknown", "nf")
FERPLUS_MODES = ("majority", "soft")


def read_ferplus(fer_csv: str | Path, ferplus_csv: str | Path, *, mode: str = "majority",
                 cache: bool = True, on_error: str = "raise") -> FERData:
    """Join FER+ votes (``fer2013new.csv``) with ``fer2013.csv`` row by row.

    Follows the FER+ reference rules: single votes are discarded as noise; a
    row whose image name is empty, or whose top vote is "not a face" (NF), is
    dropped as *not a face*; in ``majority`` mode a row is kept only when one
    emotion holds more than half the remaining votes, in ``soft`` mode the vote
    distribution over the 8 emotions becomes ``FERData.soft_targets`` (labels
    are its argmax). Dropped rows are listed in ``FERData.skipped``.

    Vote counts must be finite numbers >= 0: a ``nan``/``inf`` vote is an error
    naming the file and line. ``on_error="skip"`` (``--skip-bad-rows``) drops bad
    *vote* rows (listed, the row alignment kept); a bad row of ``fer2013.csv``
    still stops the join, because dropping an image would shift every label
    after it. Line numbers are the file's own (blank lines counted).
    """
    if mode not in FERPLUS_MODES:
        raise FERDataError(f"FER+ mode {mode!r} is not one of {', '.join(FERPLUS_MODES)}")
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    try:
        base = read_fer2013_csv(fer_csv, cache=cache)
    except FERDataError as exc:
        text = str(exc).replace(" (or pass --skip-bad-rows)", "").replace(
            " or pass --skip-bad-rows", "")
        raise FERDataError(f"{text} (with --ferplus a bad image row cannot be skipped: the "
                           "votes are joined row by row)") from None
    ferplus_csv = Path(ferplus_csv)
    votes, names, usages, line_nos, bad_rows = _read_ferplus_votes(ferplus_csv, on_error)
    if len(votes) != len(base):
        raise FERDataError(
            f"{ferplus_csv}: has {len(votes)} rows but {fer_csv} has {len(base)}; FER+ labels are "
            "joined row by row, so pass the fer2013.csv the FER+ file was made for"
        )
    for i, usage in enumerate(usages):
        if i not in bad_rows and USAGE_TO_SPLIT.get(usage) != SPLITS[base.splits[i]]:
            raise FERDataError(
                f"{ferplus_csv}:{line_nos[i]}: Usage {usage!r} differs from image row {i + 1} of "
                f"{fer_csv}; the two files are not row-aligned"
            )
    votes = np.where(votes < 1.1, 0.0, votes)  # reference rule: a lone vote is an outlier
    total = votes.sum(axis=1)
    top = votes.argmax(axis=1)
    n_emotions = len(FERPLUS_CLASSES)
    broken = np.zeros(len(votes), dtype=bool)
    broken[list(bad_rows)] = True
    not_face = ~broken & ((names == "") | (top == n_emotions + 1) | (total == 0))
    if mode == "majority":
        no_label = ~broken & ~not_face & ((top >= n_emotions) | (votes.max(axis=1) <= 0.5 * total))
    else:
        no_label = ~broken & ~not_face & ((top >= n_emotions) |
                                          (votes[:, :n_emotions].sum(axis=1) == 0))
    keep = ~(not_face | no_label | broken)
    skipped = [SkippedRow(line_nos[i], "not a face") for i in np.flatnonzero(not_face)]
    skipped += [SkippedRow(line_nos[i], f"no {mode} emotion") for i in np.flatnonzero(no_label)]
    skipped += [SkippedRow(line_nos[i], why) for i, why in bad_rows.items()]
    skipped.sort(key=lambda s: s.line)
    emotion_votes = votes[keep, :n_emotions]
    soft = None
    if mode == "soft":
        soft = (emotion_votes / emotion_votes.sum(axis=1, keepdims=True)).astype(np.float32)
    log.info("%s: kept %d of %d rows (%d not faces, %d without a %s label, %d bad rows)",
             ferplus_csv, int(keep.sum()), len(keep), int(not_face.sum()), int(no_label.sum()),
             mode, len(bad_rows))
    return FERData(
        images=base.images[keep],
        labels=emotion_votes.argmax(axis=1).astype(np.int64),
        splits=base.splits[keep],
        class_names=FERPLUS_CLASSES,
        source=f"{base.source}+{ferplus_csv}",
        soft_targets=soft,
        skipped=skipped,
    )


def _read_ferplus_votes(path: Path, on_error: str = "raise"
                        ) -> tuple[np.ndarray, np.ndarray, list[str], list[int], dict[int, str]]:
    """(votes, image names, usages, the line of each row, {row: why} of bad rows skipped)."""
    if not path.is_file():
        raise FERDataError(f"{path}: no such file; pass the path of FER+'s fer2013new.csv")
    n_votes = len(FERPLUS_COLUMNS) - 2
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return _parse_ferplus(path, csv.reader(f), n_votes, on_error)
    except UnicodeDecodeError:
        raise FERDataError(f"{path}: not UTF-8 text; is this FER+'s fer2013new.csv?") from None
    except csv.Error as exc:
        raise FERDataError(f"{path}: not a readable CSV file ({exc}); re-download "
                           "fer2013new.csv") from None


def _parse_ferplus(path: Path, reader, n_votes: int, on_error: str):
    header = next(reader, None)
    if header is None:
        raise FERDataError(f"{path}: the file is empty; re-download FER+'s fer2013new.csv")
    names = [h.strip().lower() for h in header]
    missing = [c for c in FERPLUS_COLUMNS if c not in names]
    if missing:
        raise FERDataError(f"{path}:1: missing FER+ column(s) {', '.join(missing)}; expected "
                           f"the header of fer2013new.csv: {','.join(FERPLUS_COLUMNS)}")
    index = [names.index(c) for c in FERPLUS_COLUMNS]
    votes, image_names, usages, line_nos = [], [], [], []
    bad: dict[int, str] = {}

    def problem(line_no: int, reason: str) -> None:
        if on_error == "raise":
            raise FERDataError(f"{path}:{line_no}: {reason}; fix the row (or pass --skip-bad-rows)")
        bad[len(votes)] = reason
        votes.append([0.0] * n_votes)
        image_names.append("")
        usages.append("")
        line_nos.append(line_no)

    for row in reader:
        line_no = reader.line_num  # the file's own line: blank lines are counted
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(names):
            problem(line_no, f"has {len(row)} fields, the header has {len(names)} (the file "
                             "may be truncated)")
            continue
        fields = [row[i].strip() for i in index]
        try:
            counts = [float(v) for v in fields[2:]]
        except ValueError:
            problem(line_no, f"vote counts must be numbers, got {fields[2:]}")
            continue
        if not all(np.isfinite(counts)):
            problem(line_no, f"vote counts must be finite, got {fields[2:]}")
            continue
        if min(counts) < 0:
            problem(line_no, "negative vote count")
            continue
        votes.append(counts)
        usages.append(fields[0])
        image_names.append(fields[1])
        line_nos.append(line_no)
    return (np.asarray(votes, dtype=np.float64).reshape(-1, n_votes),
            np.asarray(image_names, dtype=object), usages, line_nos, bad)
