"""FER2013 CSV and FER+ readers: formats, errors, skip mode, cache."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fer.data import FER2013_CLASSES, FERPLUS_CLASSES, load_dataset, read_fer2013_csv, read_ferplus
from fer.data.cache import cache_path
from fer.data.export import write_fer2013_csv
from fer.data.fer2013 import _parse_csv
from fer.errors import FERDataError
from unit_tests.helpers import fer_csv_text, write_fer_csv


def test_reads_fer2013_csv(tmp_path):
    path = tmp_path / "fer2013.csv"
    images, labels, splits = write_fer_csv(path, n=6)
    data = read_fer2013_csv(path)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_array_equal(data.splits, splits)
    assert data.class_names == FER2013_CLASSES
    assert data.split_sizes() == {"train": 2, "val": 2, "test": 2}


def test_reads_icml_layout_with_leading_spaces(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    rows = ["emotion, Usage, pixels"]
    for i, img in enumerate(images):
        rows.append(f"{i}, PublicTest, {' '.join(map(str, img.reshape(-1)))}")
    path = tmp_path / "icml_face_data.csv"
    path.write_text("\n".join(rows) + "\n")
    data = read_fer2013_csv(path)
    np.testing.assert_array_equal(data.images, images)
    assert data.labels.tolist() == [0, 1, 2]
    assert data.split_sizes()["val"] == 3


def test_reads_kaggle_train_and_unlabeled_test(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (2, 48, 48), dtype=np.uint8)
    px = [" ".join(map(str, im.reshape(-1))) for im in images]
    (tmp_path / "train.csv").write_text("emotion,pixels\n" + f"3,{px[0]}\n5,{px[1]}\n")
    (tmp_path / "test.csv").write_text('pixels\n' + f'"{px[0]}"\r\n"{px[1]}"\r\n')
    train = read_fer2013_csv(tmp_path / "train.csv")
    test = read_fer2013_csv(tmp_path / "test.csv")
    assert train.labels.tolist() == [3, 5] and train.split_sizes()["train"] == 2
    assert test.labels.tolist() == [-1, -1] and not test.has_labels
    assert test.split_sizes()["test"] == 2
    np.testing.assert_array_equal(test.images, images)


def _corrupt(tmp_path, mutate, n=5, line=3):
    path = tmp_path / "fer2013.csv"
    write_fer_csv(path, n=n)
    lines = path.read_text().split("\n")
    lines[line - 1] = mutate(lines[line - 1])
    path.write_text("\n".join(lines))
    return path


BAD_ROWS = {
    "short": (lambda row: row.rsplit(" ", 1)[0] + "," + row.rsplit(",", 1)[1], "2303 pixel values"),
    "non-integer": (lambda row: row.replace(" ", " x", 1), "'x'"),
    "negative": (lambda row: row.replace(" ", " -", 1), "'-'"),
    "above 255": (lambda row: row.split(",")[0] + ",256" + row.split(",")[1][row.split(",")[1].index(" "):]
                  + "," + row.split(",")[2], "above 255"),
    "label": (lambda row: "7" + row[1:], "emotion '7'"),
    "usage": (lambda row: row.rsplit(",", 1)[0] + ",Validation", "Usage 'Validation'"),
    "fields": (lambda row: row + ",extra", "has 4 fields"),
}


@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_bad_row_names_file_and_line(tmp_path, kind):
    mutate, expected = BAD_ROWS[kind]
    path = _corrupt(tmp_path, mutate, line=3)
    with pytest.raises(FERDataError) as err:
        read_fer2013_csv(path)
    message = str(err.value)
    assert f"{path}:3:" in message
    assert expected in message
    assert "--skip-bad-rows" in message


@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_skip_mode_drops_only_the_bad_row(tmp_path, kind):
    mutate, expected = BAD_ROWS[kind]
    path = _corrupt(tmp_path, mutate, n=5, line=4)
    good = _parse_csv(tmp_path.joinpath("fer2013.csv"), "skip")
    assert len(good) == 4
    assert [s.line for s in good.skipped] == [4]
    assert expected in good.skipped[0].reason
    original = read_fer2013_csv(path, on_error="skip", cache=False)
    assert len(original) == 4


def test_missing_pixels_column(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("emotion,Usage\n1,Training\n")
    with pytest.raises(FERDataError, match=r"x\.csv:1: missing column 'pixels'"):
        read_fer2013_csv(path)


def test_ferplus_file_passed_as_data_gets_a_hint(tmp_path):
    path = tmp_path / "fer2013new.csv"
    path.write_text("Usage,Image name,neutral,happiness\nTraining,fer0000000.png,1,9\n")
    with pytest.raises(FERDataError, match="--ferplus"):
        read_fer2013_csv(path)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "fer2013.csv"
    path.write_text(content)
    with pytest.raises(FERDataError, match="empty"):
        read_fer2013_csv(path)


def test_header_only(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n")
    with pytest.raises(FERDataError, match="no usable rows"):
        read_fer2013_csv(path)


def test_truncated_file_says_so(tmp_path):
    path = tmp_path / "fer2013.csv"
    write_fer_csv(path, n=3)
    text = path.read_bytes()
    path.write_bytes(text[: len(text) - 3000])
    with pytest.raises(FERDataError, match=r"fer2013\.csv:4: .*truncated"):
        read_fer2013_csv(path)


def test_missing_file(tmp_path):
    with pytest.raises(FERDataError, match="no such file"):
        read_fer2013_csv(tmp_path / "nope.csv")
    with pytest.raises(FERDataError, match="no such file or folder"):
        load_dataset(tmp_path / "nope.csv")


def test_cache_is_reused_and_invalidated(tmp_path):
    path = tmp_path / "fer2013.csv"
    write_fer_csv(path, n=4)
    first = read_fer2013_csv(path)
    cached = cache_path(path, "csv-v1-raise")
    assert cached.is_file()
    np.testing.assert_array_equal(read_fer2013_csv(path).images, first.images)
    # change the file: same size, new content and mtime -> new cache key
    images, _, _ = write_fer_csv(path, n=4, seed=9)
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    np.testing.assert_array_equal(read_fer2013_csv(path).images, images)


def test_torn_cache_is_ignored(tmp_path):
    path = tmp_path / "fer2013.csv"
    images, _, _ = write_fer_csv(path, n=2)
    read_fer2013_csv(path)
    cache_path(path, "csv-v1-raise").write_bytes(b"not an npz")
    np.testing.assert_array_equal(read_fer2013_csv(path).images, images)


def test_cache_dir_unwritable_still_parses(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("FER_CACHE_DIR", str(blocker / "sub"))
    path = tmp_path / "fer2013.csv"
    images, _, _ = write_fer_csv(path, n=2)
    np.testing.assert_array_equal(read_fer2013_csv(path).images, images)


# ------------------------------------------------------------ properties --

tables = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        arrays(np.uint8, (n, 48, 48), elements=st.integers(0, 255)),
        st.lists(st.integers(0, 6), min_size=n, max_size=n),
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
    )
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables)
def test_any_valid_table_round_trips(tmp_path, table):
    images, labels, splits = table
    path = tmp_path / "fer2013.csv"
    path.write_text(fer_csv_text(images, labels, splits))
    data = _parse_csv(path, "raise")
    np.testing.assert_array_equal(data.images, images)
    assert data.labels.tolist() == labels
    assert data.splits.tolist() == splits


corruptions = st.sampled_from([
    lambda px: px[:-1],                    # one pixel missing
    lambda px: px + ["7"],                 # one pixel too many
    lambda px: px[:5] + ["256"] + px[6:],  # out of range
    lambda px: px[:3] + ["1.5"] + px[4:],  # not an integer
    lambda px: px[:3] + ["abc"] + px[4:],
    lambda px: px[:3] + ["1000"] + px[4:],
])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 8), data=st.data(), corrupt=corruptions)
def test_any_single_corrupted_row_is_reported_with_its_line(tmp_path, n, data, corrupt):
    row = data.draw(st.integers(0, n - 1))
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    lines = fer_csv_text(images, [1] * n, [0] * n).split("\n")
    label, pixels, usage = lines[row + 1].split(",")
    lines[row + 1] = ",".join([label, " ".join(corrupt(pixels.split())), usage])
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(lines))
    with pytest.raises(FERDataError, match=rf"fer2013\.csv:{row + 2}: "):
        _parse_csv(path, "raise")
    kept = _parse_csv(path, "skip")
    assert [s.line for s in kept.skipped] == [row + 2]
    assert len(kept) == n - 1


def test_export_round_trip(tmp_path):
    from fer.data import make_synthetic_faces

    data = make_synthetic_faces(50, seed=3)
    path = tmp_path / "out" / "synthetic.csv"
    write_fer2013_csv(data, path)
    back = read_fer2013_csv(path)
    np.testing.assert_array_equal(back.images, data.images)
    np.testing.assert_array_equal(back.labels, data.labels)
    np.testing.assert_array_equal(back.splits, data.splits)


# ----------------------------------------------------------------- FER+ --

FERPLUS_HEADER = "Usage,Image name," + ",".join(FERPLUS_CLASSES) + ",unknown,NF"


def _ferplus(tmp_path, vote_rows, names=None):
    n = len(vote_rows)
    fer = tmp_path / "fer2013.csv"
    images, _, _ = write_fer_csv(fer, n=n)
    splits = np.arange(n) % 3
    usage = ["Training", "PublicTest", "PrivateTest"]
    lines = [FERPLUS_HEADER]
    for i, votes in enumerate(vote_rows):
        name = f"fer{i:07d}.png" if names is None else names[i]
        lines.append(f"{usage[splits[i]]},{name}," + ",".join(map(str, votes)))
    plus = tmp_path / "fer2013new.csv"
    plus.write_text("\n".join(lines) + "\n")
    return fer, plus, images


def test_ferplus_majority_labels_and_drops(tmp_path):
    votes = [
        [0, 10, 0, 0, 0, 0, 0, 0, 0, 0],  # happiness
        [4, 0, 4, 0, 0, 0, 0, 0, 2, 0],  # no majority (4 of 10)
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # NF: not a face
        [1, 0, 0, 0, 0, 0, 0, 9, 0, 0],  # contempt; the lone neutral vote is noise
        [0, 0, 6, 0, 0, 0, 0, 0, 0, 0],  # surprise, but the image name is empty
    ]
    fer, plus, images = _ferplus(tmp_path, votes, names=["a", "b", "c", "d", ""])
    data = read_ferplus(fer, plus)
    assert data.class_names == FERPLUS_CLASSES
    assert data.labels.tolist() == [1, 7]
    np.testing.assert_array_equal(data.images, images[[0, 3]])
    reasons = {s.line: s.reason for s in data.skipped}
    assert reasons == {3: "no majority emotion", 4: "not a face", 6: "not a face"}


def test_ferplus_soft_targets(tmp_path):
    votes = [[0, 6, 4, 0, 0, 0, 0, 0, 0, 0], [4, 0, 4, 0, 0, 0, 0, 0, 2, 0]]
    fer, plus, _ = _ferplus(tmp_path, votes)
    data = read_ferplus(fer, plus, mode="soft")
    assert data.soft_targets.shape == (2, 8)
    np.testing.assert_allclose(data.soft_targets[0, :3], [0, 0.6, 0.4])
    np.testing.assert_allclose(data.soft_targets.sum(axis=1), 1, rtol=1e-6)
    assert data.labels.tolist() == [1, 0]


def test_ferplus_row_count_mismatch(tmp_path):
    fer, plus, _ = _ferplus(tmp_path, [[0, 10, 0, 0, 0, 0, 0, 0, 0, 0]] * 3)
    write_fer_csv(fer, n=4)
    with pytest.raises(FERDataError, match="has 3 rows but .* has 4"):
        read_ferplus(fer, plus)


def test_ferplus_missing_columns(tmp_path):
    fer = tmp_path / "fer2013.csv"
    write_fer_csv(fer, n=1)
    plus = tmp_path / "fer2013new.csv"
    plus.write_text("Usage,Image name,neutral\nTraining,a.png,10\n")
    with pytest.raises(FERDataError, match=r"fer2013new\.csv:1: missing FER\+ column"):
        read_ferplus(fer, plus)


def test_ferplus_usage_misaligned(tmp_path):
    fer, plus, _ = _ferplus(tmp_path, [[0, 10, 0, 0, 0, 0, 0, 0, 0, 0]] * 2)
    plus.write_text(plus.read_text().replace("PublicTest", "Training"))
    with pytest.raises(FERDataError, match=r"fer2013new\.csv:3: Usage 'Training' differs"):
        read_ferplus(fer, plus)


# ------------------------------------------------- FER+ hostile rows --

HAPPY = [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "NaN"])
@pytest.mark.parametrize("mode", ["majority", "soft"])
def test_ferplus_non_finite_vote_names_file_and_line(tmp_path, bad, mode):
    fer, plus, _ = _ferplus(tmp_path, [HAPPY, HAPPY, [bad, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    with pytest.raises(FERDataError, match=r"fer2013new\.csv:4: vote counts must be finite"):
        read_ferplus(fer, plus, mode=mode)


def test_ferplus_blank_lines_keep_the_real_line_numbers(tmp_path):
    fer, plus, _ = _ferplus(tmp_path, [HAPPY, HAPPY, HAPPY])
    lines = plus.read_text().splitlines()
    lines.insert(2, "")  # a blank line after the first row
    plus.write_text("\n".join(lines).replace("PrivateTest", "Training") + "\n")
    with pytest.raises(FERDataError, match=r"fer2013new\.csv:5: Usage 'Training' differs from "
                       r"image row 3"):
        read_ferplus(fer, plus)
    lines = plus.read_text().replace("Training,fer0000002.png,0,10", "Training,x,-1,10")
    plus.write_text(lines)
    with pytest.raises(FERDataError, match=r"fer2013new\.csv:5: negative vote count"):
        read_ferplus(fer, plus)


def test_ferplus_skip_bad_rows_drops_bad_vote_rows_keeping_alignment(tmp_path):
    fer, plus, images = _ferplus(tmp_path, [HAPPY, ["x"] + HAPPY[1:], HAPPY,
                                            ["nan"] + HAPPY[1:]])
    with pytest.raises(FERDataError, match=r":3: vote counts must be numbers.*--skip-bad-rows"):
        load_dataset(fer, ferplus=plus)
    data = load_dataset(fer, ferplus=plus, on_error="skip")
    np.testing.assert_array_equal(data.images, images[[0, 2]])
    assert {s.line: s.reason.split(",")[0] for s in data.skipped} == {
        3: "vote counts must be numbers", 5: "vote counts must be finite"}


def test_ferplus_bad_image_row_says_it_cannot_be_skipped(tmp_path):
    fer, plus, _ = _ferplus(tmp_path, [HAPPY, HAPPY])
    lines = fer.read_text().splitlines()
    lines[1] = "9," + lines[1].split(",", 1)[1]
    fer.write_text("\n".join(lines) + "\n")
    with pytest.raises(FERDataError, match=r"fer2013\.csv:2: .*with --ferplus a bad image row "
                       r"cannot be skipped") as info:
        load_dataset(fer, ferplus=plus, on_error="skip")
    assert "pass --skip-bad-rows" not in str(info.value)
