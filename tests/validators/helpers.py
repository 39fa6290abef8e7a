"""Build small record folders and run the validators on them."""

from __future__ import annotations

import json
from pathlib import Path

from pgaudit.errors import InputError
from pgaudit.findings import Finding
from pgaudit.policy import Policy
from pgaudit.significance import Sample
from pgaudit.source.program import Program, load_program
from pgaudit.submission import RecordFolder, load_record_folder
from pgaudit.validators import validate_folder

README = "# Example\nA submission used by the tests.\n"
SCRIPT = "import os\n\n\ndef main():\n    print(os.environ.get('SEED', '1337'))\n\n\nif __name__ == '__main__':\n    main()\n"


def make_folder(root: Path, files: dict[str, str | bytes | dict], track: str = "track_10min_16mb",
                name: str = "2026-05-01_Example") -> Path:
    folder = root / "records" / track / name
    folder.mkdir(parents=True)
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            path.write_text(json.dumps(content, indent=2))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


def programs_of(folder: RecordFolder) -> list[Program]:
    out = []
    for entry in folder.scripts:
        try:
            out.append(load_program(folder.root / entry, folder.root))
        except InputError:
            continue
    return out


def validate(path: Path, policy: Policy | None = None, against: Sample | None = None) -> list[Finding]:
    folder = load_record_folder(path, path.name)
    return validate_folder(folder, programs_of(folder), policy or Policy(), against=against)


def codes(findings: list[Finding], severity: str | None = None) -> list[str]:
    return [f.code for f in findings if severity is None or f.severity.label == severity]


def only(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def log_text(*lines: str, seed: int = 42, world_size: int = 8, extra_hp: str = "") -> str:
    """A small log in the late `key: value` format."""
    header = ["Hyperparameters:", f"  seed: {seed}", f"  world_size: {world_size}", "  max_wallclock_seconds: 600.0",
              "  train_seq_len: 2048", "  tokenizer_path: ./data/tokenizers/fineweb_8192_bpe.model"]
    if extra_hp:
        header.append(extra_hp)
    return "\n".join([*header, "val_tokens: 40540160", "1000/20000 train_loss: 2.5 train_time: 2.0m tok/s: 1",
                      *lines]) + "\n"
