"""PG404 and data-preparation scripts a README launches beside the training script (R3 trap: a download in a
data-prep script is allowed; the scored run must be self-contained)."""

from __future__ import annotations

from pathlib import Path

from pgaudit.engine import AuditOptions, audit

README = """# record

```bash
python3 fetch_data.py --variant sp1024
torchrun --standalone --nproc_per_node=8 train_gpt.py
```
"""

FETCH = """import huggingface_hub

def main():
    huggingface_hub.hf_hub_download(repo_id="someone/fineweb-shards", filename="fineweb_val_000000.bin", local_dir="data")

if __name__ == "__main__":
    main()
"""

TRAIN = """import glob
import numpy as np
import torch
import torch.nn.functional as F
{download}

def load(pattern):
    return torch.from_numpy(np.concatenate([np.fromfile(f, dtype=np.uint16) for f in sorted(glob.glob(pattern))]))

@torch.no_grad()
def eval_val(model, val_tokens):
    return F.cross_entropy(model(val_tokens[:-1].long()), val_tokens[1:].long()).item()

def main():
{fetch}    model = torch.nn.Embedding(1024, 1024)
    print(f"val_loss:{{eval_val(model, load('./data/fineweb_val_*.bin')):.4f}}")

if __name__ == "__main__":
    main()
"""


def _pg404(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, str]]:
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-01-01_Example"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    report = audit(folder, AuditOptions())
    return sorted((Path(f.location.path).name, f.severity.label) for f in report.findings if f.code == "PG404")


def test_download_in_a_launched_data_prep_script_is_info(tmp_path: Path) -> None:
    found = _pg404(tmp_path, {"README.md": README, "fetch_data.py": FETCH, "train_gpt.py": TRAIN.format(download="", fetch="")})
    assert found == [("fetch_data.py", "info")]


def test_the_same_download_inside_the_training_script_is_an_error(tmp_path: Path) -> None:
    train = TRAIN.format(
        download="import huggingface_hub",
        fetch='    huggingface_hub.hf_hub_download(repo_id="someone/fineweb-shards", filename="x.bin", local_dir="data")\n',
    )
    found = _pg404(tmp_path, {"README.md": README.replace("python3 fetch_data.py --variant sp1024\n", ""), "train_gpt.py": train})
    assert found == [("train_gpt.py", "error")]


def test_a_launched_script_that_downloads_and_scores_is_an_error(tmp_path: Path) -> None:
    scorer = TRAIN.format(
        download="import huggingface_hub",
        fetch='    huggingface_hub.hf_hub_download(repo_id="someone/weights", filename="model.pt", local_dir=".")\n',
    )
    found = _pg404(tmp_path, {"README.md": README, "fetch_data.py": scorer, "train_gpt.py": TRAIN.format(download="", fetch="")})
    assert found == [("fetch_data.py", "error")]
