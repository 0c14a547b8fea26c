import json

import numpy as np
import pytest
from PIL import Image

from convladder.cli import main
from convladder.core.predict import MIN_SIDE, fit_to_model, load_image, predict_file


@pytest.fixture
def gap_run(tiny_cifar, tmp_path):
    assert main(["train", "GAP", "--profile", "smoke", "--epochs", "1", "--train-size", "40", "--val-size", "8",
                 "--test-size", "10", "--data-dir", str(tiny_cifar), "--seed-dir", str(tmp_path / "GAP")]) == 0
    return tmp_path / "GAP"


def _save(tmp_path, name, image):
    path = tmp_path / name
    image.save(path)
    return path


@pytest.mark.parametrize(
    "mode, size",
    [("L", (40, 30)), ("RGBA", (32, 32)), ("P", (32, 20)), ("I;16", (32, 18)), ("RGB", (3, 5)), ("RGB", (1600, 1200))],
)
def test_image_modes_and_sizes_are_converted(tmp_path, gap_run, mode, size):
    rng = np.random.default_rng(0)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).convert(mode)
    path = _save(tmp_path, f"img_{mode.replace(';', '')}.png", image)
    x = load_image(path)
    assert x.shape[0] == 3 and 0 <= x.min() and x.max() <= 1
    result = predict_file(gap_run, path)
    assert abs(sum(result["proba"].values()) - 1) < 1e-4
    h, w = result["size"]
    assert min(h, w) >= MIN_SIDE and max(h, w) <= 256


def test_fixed_size_models_get_32x32():
    import torch

    assert fit_to_model(torch.rand(3, 50, 70), "G").shape == (3, 32, 32)
    assert fit_to_model(torch.rand(3, 20, 32), "GAP").shape == (3, 20, 32)


def test_non_image_and_missing_files_give_clear_errors(tmp_path, gap_run, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        load_image(text)
    assert main(["predict", str(gap_run), str(text)]) == 2
    assert "not an image" in capsys.readouterr().err
    assert main(["predict", str(gap_run), str(tmp_path / "missing.png")]) == 2
    assert "no image file" in capsys.readouterr().err


def test_cli_predict_prints_ranked_classes(tmp_path, gap_run, capsys):
    path = _save(tmp_path, "cat.png", Image.new("RGB", (32, 20), (200, 120, 40)))
    capsys.readouterr()
    assert main(["predict", str(gap_run), str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["size"] == [20, 32] and len(result["proba"]) == 10


def test_cli_reports_bad_input_before_training(tmp_path, tiny_cifar, capsys):
    assert main(["train", "A", "--profile", "smoke", "--epochs", "0", "--data-dir", str(tiny_cifar),
                 "--seed-dir", str(tmp_path / "A")]) == 2
    assert "epochs must be a positive integer" in capsys.readouterr().err
    assert main(["train", "A", "--profile", "smoke", "--data-dir", str(tmp_path / "none"),
                 "--seed-dir", str(tmp_path / "A")]) == 2
    assert "CIFAR-10 not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "A", "--profile", "fast"])


def test_cli_data_prints_facts(tiny_cifar, capsys):
    assert main(["data", "--data-dir", str(tiny_cifar)]) == 0
    out = capsys.readouterr().out
    assert "100 train / 20 test" in out and "sha256" in out


def test_cli_fast_recipe_trains_and_options_override_it(tmp_path, tiny_cifar):
    run = tmp_path / "fast"
    assert main(["train", "GAP", "--recipe", "gap-fast", "--lr", "0.05", "--profile", "smoke", "--train-size", "40",
                 "--val-size", "8", "--test-size", "10", "--data-dir", str(tiny_cifar), "--seed-dir", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    config = results["config"]
    assert config["optimizer"] == "sgd" and config["augment"] and config["schedule"] == "onecycle"
    assert config["lr"] == 0.05 and config["batch_size"] == 256  # the option given, the recipe's otherwise
    assert results["recipe"] == {"name": "gap-fast", "changes": {"lr": 0.05}}  # the run records both
