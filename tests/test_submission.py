"""Record-folder loading: nonstandard names, claims with line numbers, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pgaudit.errors import InputError
from pgaudit.evidence import seed_runs
from pgaudit.jsonpos import key_lines
from pgaudit.submission import NON_RECORD_TRACK, RECORD_TRACK, load_record_folder, read_claims
from tests.fixture_paths import NON_RECORD, PR1855, RECORD, TERNARY


def test_nonstandard_names_are_found() -> None:
    folder = load_record_folder(TERNARY)
    assert folder.claims.path == "submission_ternary.json"
    assert sorted(log.name for log in folder.logs) == ["ternary_log_1337.txt", "ternary_log_42.txt", "ternary_log_7.txt"]
    assert folder.track == RECORD_TRACK and folder.is_record_track
    assert folder.data_only  # the fixture tree copied data files only


def test_logs_in_a_subfolder_and_json_without_top_level_seeds() -> None:
    folder = load_record_folder(RECORD / "2026-04-10_VarLenAttn")
    assert sorted(log.name for log in folder.logs) == ["logs/train0.txt", "logs/train1.txt", "logs/train2.txt"]


def test_claims_keep_their_json_lines() -> None:
    claims = load_record_folder(PR1855).claims
    assert claims.val_bpb.value == 1.06107587 and claims.val_bpb.line == 9
    assert claims.seeds == [42, 0, 1234]
    seed0 = claims.per_seed[0]
    assert seed0.val_bpb.value == 1.06124613 and seed0.total_bytes.value == 15900947
    assert '"val_bpb": 1.06124613' in seed0.val_bpb.text
    assert claims.author.value == "Benjamin Hadad" and claims.track == RECORD_TRACK


def test_seeds_as_a_table_keyed_by_seed() -> None:
    claims = load_record_folder(RECORD / "2026-04-09_A2_Muon097_3Seed").claims
    assert sorted(claims.seeds) == [0, 42, 1234]
    assert claims.method.value == "legal_ttt_exact_sliding_window_stride64"


def test_non_record_track_from_the_path() -> None:
    assert load_record_folder(NON_RECORD / "2026-03-31_LegendreGPT").track == NON_RECORD_TRACK


def test_seed_runs_pick_the_claimed_rerun() -> None:
    folder = load_record_folder(RECORD / "2026-04-29_SmearGateBOSFix_3Seed_1.06141")
    chosen = {r.seed: r.run.name for r in seed_runs(folder)}
    assert chosen == {42: "train_seed42_pr1851_original.log", 314: "train_seed314_original.log",
                      1234: "train_seed1234_original.log"}


def test_duplicate_logs_count_once() -> None:
    folder = load_record_folder(RECORD / "2026-03-20_11L_XSA4_EMA_Int6_MLP3x_WD04_1.1271")
    assert sorted(r.seed for r in seed_runs(folder)) == [42, 1337, 2025]  # train.log repeats seed 1337


def test_missing_folder_and_file_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        load_record_folder(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        load_record_folder(tmp_path / "f.txt")


@pytest.mark.parametrize(
    ("content", "error"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "expected a JSON object"), (b"\xff\xfe{}", "not UTF-8")],
)
def test_bad_submission_json_is_kept_as_an_error(tmp_path: Path, content: bytes, error: str) -> None:
    path = tmp_path / "submission.json"
    path.write_bytes(content)
    claims = read_claims(path, "submission.json")
    assert error in claims.error and claims.val_bpb is None


def test_unreadable_log_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    folder_path = tmp_path / "records" / "track_10min_16mb" / "2026-05-01_x"
    folder_path.mkdir(parents=True)
    shutil.copy(PR1855 / "train_seed42.log", folder_path / "train_seed42.log")
    (folder_path / "train_seed0.log").write_bytes(b"\x00\x01binary")
    (folder_path / "notes.txt").write_text("just prose, no results\n")
    folder = load_record_folder(folder_path)
    assert [log.name for log in folder.logs] == ["train_seed42.log"]
    assert [(p.path, "binary" in p.message) for p in folder.problems] == [("train_seed0.log", True)]
    assert not folder.data_only and folder.track == RECORD_TRACK


def test_key_lines_follow_nesting() -> None:
    text = json.dumps({"a": [1, {"b": 2}], "c": {"d": {"e": "x:,{"}}}, indent=1)
    lines = key_lines(text)
    assert lines[("a",)] == 2 and lines[("a", 1, "b")] == 5 and lines[("c", "d", "e")] == 10


def test_links_out_of_the_folder_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.log"
    outside.write_text("seed:1\nfinal_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2\n")
    folder_path = tmp_path / "records" / "track_10min_16mb" / "2026-05-01_x"
    folder_path.mkdir(parents=True)
    (folder_path / "train.log").symlink_to(outside)
    (folder_path / "logs").symlink_to(tmp_path, target_is_directory=True)
    folder = load_record_folder(folder_path)
    assert folder.logs == [] and "train.log" not in folder.files
    assert [p.path for p in folder.problems] == ["logs", "train.log"]


def test_empty_folder_loads(tmp_path: Path) -> None:
    folder = load_record_folder(tmp_path)
    assert (folder.files, folder.logs, folder.claims, folder.scripts) == ([], [], None, [])


def test_minified_json_claims_quote_the_key_not_the_whole_line() -> None:
    claims = load_record_folder(RECORD / "2026-04-08_SP8192_ParallelResid_ScoreFirstTTT").claims
    quote = claims.per_seed[314].val_bpb.quote(claims.path)
    assert quote == 'submission.json:1: "seed_results.314.val_bpb": 1.082226'


def test_claim_decimals_as_written() -> None:
    from pgaudit.evidence import claim_decimals

    claims = load_record_folder(RECORD / "2026-03-17_NaiveBaseline").claims
    assert claim_decimals(claims.val_bpb) == 7  # "val_bpb": 1.2243657
