"""`fer data inspect|synth`: output, errors as one line and exit 2."""

import json

import pytest

from fer.cli import main
from unit_tests.helpers import write_fer_csv


def test_synth_then_inspect(tmp_path, capsys):
    out = tmp_path / "syn.csv"
    assert main(["data", "synth", "--out", str(out), "--n", "70", "--seed", "1"]) == 0
    assert "wrote 70 synthetic faces" in capsys.readouterr().out
    assert main(["data", "inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "images   70 of 48x48" in text
    assert "train 56, val 7, test 7" in text
    assert "surprise" in text


def test_inspect_synthetic_json(capsys):
    assert main(["data", "inspect", "synthetic", "--synthetic-size", "50", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 50
    assert sum(summary["class_counts"]["train"].values()) == summary["splits"]["train"]


def test_inspect_uses_the_same_size_as_train(capsys):
    """`fer data inspect synthetic` reports what `fer train` trains on this machine."""
    from fer.config import TrainConfig

    assert main(["data", "inspect", "synthetic", "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == TrainConfig().resolve(device="cpu").synthetic_size


def test_preview_draws_a_grid_per_class(tmp_path, capsys):
    out = tmp_path / "faces.png"
    assert main(["data", "preview", "--synthetic-size", "140", "--per-class", "4",
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "4 faces of each of 7 classes" in capsys.readouterr().out
    assert main(["data", "preview", "--out", str(out / "x.png")]) == 2  # under a file


def test_inspect_reports_skipped_rows(tmp_path, capsys):
    path = tmp_path / "fer2013.csv"
    write_fer_csv(path, n=4)
    lines = path.read_text().split("\n")
    lines[2] = "9" + lines[2][1:]
    path.write_text("\n".join(lines))
    assert main(["data", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:3: emotion '9'" in err
    assert main(["data", "inspect", str(path), "--skip-bad-rows"]) == 0
    assert "line 3: emotion '9'" in capsys.readouterr().out


@pytest.fixture
def under_a_file(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return str(blocker / "x.csv")


@pytest.mark.parametrize("argv", [
    ["data", "inspect", "/no/such/file.csv"],
    ["data", "synth", "--out", "UNDER_A_FILE"],
    ["data", "synth", "--out", "x.csv", "--n", "0"],
    ["data", "synth", "--out", "x.csv", "--n", str(10**12)],  # 8 TB of faces: refused
    ["data", "synth", "--out", "x.csv", "--seed", str(2**64)],
    ["data", "preview", "--out", "/proc/no/x.png"],
    ["data", "inspect"],
    ["nonsense"],
])
def test_user_errors_exit_2_without_traceback(argv, capsys, under_a_file):
    argv = [under_a_file if a == "UNDER_A_FILE" else a for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()


def test_synth_out_under_a_file_is_refused_before_drawing(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["data", "synth", "--out", str(tmp_path / "f" / "x.csv"), "--n", "5"]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and err.count("\n") == 1


def test_skip_bad_rows_applies_to_ferplus_votes(tmp_path, capsys):
    write_fer_csv(tmp_path / "fer2013.csv", n=3)
    header = ("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
              "contempt,unknown,NF\n")
    (tmp_path / "votes.csv").write_text(
        header + "Training,a,0,10,0,0,0,0,0,0,0,0\nPublicTest,b,nan,10,0,0,0,0,0,0,0,0\n"
        "PrivateTest,c,0,10,0,0,0,0,0,0,0,0\n")
    argv = ["data", "inspect", str(tmp_path / "fer2013.csv"), "--ferplus",
            str(tmp_path / "votes.csv"), "--no-cache", "--json"]
    assert main(argv) == 2
    assert "votes.csv:3: vote counts must be finite" in capsys.readouterr().err
    assert main([*argv, "--skip-bad-rows"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 2 and summary["skipped"][0]["line"] == 3


def test_a_label_of_thousands_of_digits_is_a_bad_row(tmp_path, capsys):
    csv = tmp_path / "fer2013.csv"
    pixels = " ".join(["0"] * 2304)
    csv.write_text(f"emotion,pixels,Usage\n{'9' * 5000},{pixels},Training\n0,{pixels},Training\n")
    assert main(["data", "inspect", str(csv)]) == 2
    err = capsys.readouterr().err
    assert "fer2013.csv:2: emotion" in err and "is not a label 0-6" in err and err.count("\n") == 1
