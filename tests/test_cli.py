import subprocess
import sys

from hfmtl.cli import main


def test_data_command_prints_counts_and_padding(capsys):
    assert main(["data", "configs/tiny.yaml"]) == 0
    out = capsys.readouterr().out
    assert "| sentiment | train | 240 |" in out
    assert "| ner | validation | 60 |" in out


def test_user_errors_print_one_line_without_traceback(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("encoder: {name_or_path: x}\ntasks: []\ntraining: {max_stepz: 3}\n")
    result = subprocess.run(
        [sys.executable, "-m", "hfmtl", "data", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"hfmtl: error: {config}: unknown key 'training.max_stepz'; did you mean 'training.max_steps'?"
    )
    assert "Traceback" not in result.stderr


def test_set_overrides_reach_the_config(capsys):
    assert main(["data", "configs/tiny.yaml", "--set", "tasks.sentiment.data.max_train_rows=10"]) == 0
    assert "| sentiment | train | 10 |" in capsys.readouterr().out
