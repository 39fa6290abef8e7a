"""The adversarial cases: one illegal submission folder per case and its legal twin, assembled from pieces.

A case names a family (cheats.py), the bullet of issue 15's "What to build" it stresses, and the evasions
(evasions.py) applied to both the illegal folder and its twin, so the two differ only where the case says.
`build(case, legal)` returns {relative path: content}; `write(case, legal, folder)` writes a complete
record folder (train_gpt.py, any sibling, README.md, submission.json, three seed logs).

`python -m tests.adversarial.cases OUT` writes every folder under OUT/<case>/{illegal,legal}.
"""

from __future__ import annotations

import ast
import json
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.adversarial import cheats, evasions2
from tests.adversarial.base import render
from tests.adversarial.cheats import Piece
from tests.adversarial.evasions import EVAL_SCRIPT, LAUNCH, SIBLING_HEADER, guard
from tests.adversarial.evasions import loader as _loader
from tests.adversarial.evasions import wrap as _wrap
from tests.metamorphic.rewrite import rename


@dataclass(frozen=True)
class Case:
    name: str
    bullet: str  # "1".."8" (issue 15, What to build) or "native"
    family: str  # the cheat family (CATALOGUE.md)
    piece: Callable[[bool], Piece]  # legal -> the evaluation piece
    loader: str | None = None  # evasions.LOADERS
    wrap: str | None = None  # evasions.WRAPPERS
    wrap_sibling: bool = False  # wrap the sibling module instead of the entry script
    guard: str | None = None  # evasions.GUARDS for the illegal folder
    rename: bool = False  # consistent renaming of every identifier the scripts bind
    twin: str = "legal"  # "legal": the family's legal form; "dead": the same code behind an env default that is off
    names: tuple[tuple[str, str], ...] = ()  # with rename: chosen (misleading) new names for some identifiers

    @property
    def native(self) -> bool:
        return self.bullet == "native"


def _c(name: str, bullet: str, family: str, piece: Callable[[bool], Piece], **kw: object) -> Case:
    return Case(name, bullet, family, piece, **kw)  # type: ignore[arg-type]


T = cheats
E = evasions2
CASES: list[Case] = [
    # 1. validation and training data from their sources
    _c("b1_val_shard_in_file_list", "1", "val_in_training", lambda legal: T.heldout_in_training("files", legal=legal), rename=True),
    _c("b1_val_aux_steps_pool", "1", "val_in_training", lambda legal: T.heldout_in_training("aux", legal=legal)),
    _c("b1_refresh_memmap_heldout", "1", "prequant_ttt", lambda legal: T.refresh_before_export("memmap", legal=legal)),
    _c("b1_curvature_pool_env", "1", "gptq_val_calib", lambda legal: T.curvature_source("pool", legal=legal)),
    _c("b1_curvature_memmap", "1", "gptq_val_calib", lambda legal: T.curvature_source("memmap", legal=legal), rename=True),
    # 2. targets from their use
    _c("b2_table_offset_alias", "2", "ngram_target_key", lambda legal: T.table_cache("xor", "offset", legal=legal), rename=True),
    _c("b2_table_index_array", "2", "ngram_target_key", lambda legal: T.table_cache("xor", "index", legal=legal)),
    _c("b2_rolled_torch_key", "2", "ngram_target_key", T.torch_cache),
    _c("b2_shift_gather_nll", "2", "slot", lambda legal: T.window_shift("gather", legal=legal), twin="dead"),
    _c("b2_follow_boost", "2", "unnormalized_mixture", T.target_only_mix),
    # 3. effects
    _c("b3_key_reduce_xor", "3", "ngram_target_key", lambda legal: T.table_cache("reduce", "slice", legal=legal)),
    _c("b3_key_getattr_xor", "3", "ngram_target_key", lambda legal: T.table_cache("getattr", "slice", legal=legal)),
    _c("b3_key_lambda", "3", "ngram_target_key", lambda legal: T.table_cache("lambda", "slice", legal=legal)),
    _c("b3_key_partial", "3", "ngram_target_key", lambda legal: T.table_cache("partial", "slice", legal=legal)),
    _c("b3_key_augmented_xor", "3", "ngram_target_key", lambda legal: T.table_cache("augxor", "slice", legal=legal), rename=True),
    _c("b3_counter_fstring_key", "3", "ngram_target_key", T.counter_cache),
    # 4. context-sensitive calls
    _c("b4_key_helper_two_sites", "4", "ngram_target_key", T.helper_sites),
    _c("b4_shared_inner_step", "4", "prequant_ttt", T.shared_step),
    _c("b4_gate_helper_dead_caller", "4", "target_dependent_mixing", T.dead_caller_gate),
    # 5. control dependence
    _c("b5_gate_where_target", "5", "target_dependent_mixing", lambda legal: T.expert_gate("where", legal=legal)),
    _c("b5_gate_if_per_position", "5", "target_dependent_mixing", lambda legal: T.expert_gate("loop", legal=legal)),
    _c("b5_gate_own_loss", "5", "target_dependent_mixing", lambda legal: T.expert_gate("own_loss", legal=legal)),
    _c("b5_stream_update_before_score", "5", "target_dependent_mixing", T.stream_state),
    # 6. scores from the reported metric
    _c("b6_epochs_last_epoch_guard", "6", "ttt_multiepoch_rescore", lambda legal: T.epoch_rescore("guard", legal=legal)),
    _c("b6_epochs_history_list", "6", "ttt_multiepoch_rescore", lambda legal: T.epoch_rescore("list", legal=legal), rename=True),
    _c("b6_second_look_reported", "6", "two_pass_rescore", T.second_look),
    _c("b6_norm_calibration_heldout", "6", "prequant_ttt", T.norm_recalibration),
    _c("b6_shift_window_targets", "6", "slot", lambda legal: T.window_shift("ce", legal=legal), rename=True,
       twin="dead"),
    _c("b6_late_curvature_no_reserve", "6", "gptq_after_cap", T.late_curvature),
    # 7. the whole program
    _c("b7_spec_from_file_table", "7", "ngram_target_key", T.table_cache, loader="spec"),
    _c("b7_dunder_import_refresh", "7", "prequant_ttt", T.refresh_before_export, loader="dunder"),
    _c("b7_runpy_epochs", "7", "ttt_multiepoch_rescore", T.epoch_rescore, loader="runpy"),
    _c("b7_exec_with_name_gate", "7", "target_dependent_mixing", T.expert_gate, loader="exec"),
    _c("b7_syspath_import_curvature", "7", "gptq_val_calib", T.curvature_source, loader="importlib"),
    _c("b7_wrap_lzma_b85_renamed", "7", "ngram_target_key", T.table_cache, wrap="lzma-b85", rename=True),
    _c("b7_wrap_zlib_b64_lines", "7", "val_in_training", T.heldout_in_training, wrap="zlib-b64-lines"),
    _c("b7_wrap_bz2_hex_parts", "7", "slot", T.window_shift, wrap="bz2-hex-parts", twin="dead"),
    _c("b7_wrap_gzip_b85_join", "7", "unnormalized_mixture", T.target_only_mix, wrap="gzip-b85-join"),
    _c("b7_wrap_codecs_hex_zlib", "7", "two_pass_rescore", T.second_look, wrap="codecs-hex-zlib"),
    _c("b7_wrap_compile_dunder", "7", "network_at_eval", T.remote_prior, wrap="compile-dunder"),
    _c("b7_wrap_blob_file", "7", "prequant_ttt", T.refresh_before_export, wrap="blob-file"),
    _c("b7_wrap_nested3", "7", "ngram_target_key", T.counter_cache, wrap="nested3"),
    _c("b7_wrapped_sibling_exec", "7", "ttt_multiepoch_rescore", T.epoch_rescore, loader="exec", wrap="lzma-b85",
       wrap_sibling=True),
    _c("b7_subprocess_eval_script", "7", "ngram_target_key", T.table_cache, loader="subprocess"),
    _c("b7_subprocess_wrapped_script", "7", "unnormalized_mixture", T.target_only_mix, loader="subprocess",
       wrap="zlib-b64-lines", wrap_sibling=True),
    _c("b7_helper_path_runpy", "7", "prequant_ttt", T.refresh_before_export, loader="helper-path"),
    _c("b7_env_module_import", "7", "ttt_multiepoch_rescore", T.epoch_rescore, loader="env-module"),
    _c("b7_wrapped_sibling_spec", "7", "ngram_target_key", T.table_cache, loader="spec", wrap="gzip-b85-join",
       wrap_sibling=True),
    _c("b7_wrap_append_parts", "7", "unnormalized_mixture", T.target_only_mix, wrap="append-parts"),
    _c("b7_wrap_getattr_codec", "7", "prequant_ttt", T.refresh_before_export, wrap="getattr-codec"),
    _c("b7_wrap_self_comment", "7", "gptq_val_calib", T.curvature_source, wrap="self-comment"),
    _c("b7_wrap_reversed_b64", "7", "ngram_target_key", T.table_cache, wrap="reversed-b64"),
    _c("b7_wrap_import_module_codec", "7", "network_at_eval", T.remote_prior, wrap="import-module-codec"),
    _c("b7_spec_keyword_location", "7", "gptq_val_calib", T.curvature_source, loader="spec-kw"),
    _c("b7_zipimport_bundle", "7", "ngram_target_key", T.table_cache, loader="zip"),
    _c("b7_wrap_getattr_builtins_exec", "7", "ttt_multiepoch_rescore", T.epoch_rescore, wrap="builtins-exec"),
    _c("b7_wrap_exec_alias", "7", "slot", T.window_shift, wrap="exec-alias", twin="dead"),
    _c("b7_wrap_decompressobj", "7", "prequant_ttt", T.refresh_before_export, wrap="decompressobj"),
    _c("b7_wrap_json_asset", "7", "unnormalized_mixture", T.target_only_mix, wrap="json-asset"),
    _c("b7_helper_function_loader", "7", "ttt_multiepoch_rescore", T.epoch_rescore, loader="helper-loader"),
    _c("b7_exec_text_file_helper", "7", "ngram_target_key", T.table_cache, loader="exec-helper-txt"),
    _c("b7_wrap_write_then_import", "7", "prequant_ttt", lambda legal: T.refresh_before_export("state", legal=legal),
       wrap="write-import"),
    _c("b7_exec_markdown_block", "7", "ngram_target_key", T.table_cache, wrap="readme-block"),
    _c("b7_wrap_namespace_main_call", "7", "ttt_multiepoch_rescore", T.epoch_rescore, wrap="namespace-call"),
    _c("b7_wrap_int_list", "7", "gptq_val_calib", T.curvature_source, wrap="int-list"),
    _c("b7_wrap_split_data_files", "7", "ngram_target_key", T.table_cache, wrap="split-files"),
    _c("b7_glob_loop_exec", "7", "slot", T.window_shift, loader="glob-exec", twin="dead"),
    _c("b7_wrap_xor_decoder_helper", "7", "prequant_ttt", T.norm_recalibration, wrap="xor-helper"),
    _c("b7_wrap_xor_key_cycle", "7", "unnormalized_mixture", T.target_only_mix, wrap="xor-key-cycle"),
    _c("b7_env_default_on", "7", "ngram_target_key", T.table_cache, guard="env-on", twin="dead"),
    _c("b7_undecidable_guard", "7", "prequant_ttt", T.refresh_before_export, guard="undecidable"),
    _c("b7_network_getattr_import", "7", "network_at_eval", lambda legal: T.remote_prior("getattr", legal=legal), rename=True),
    _c("b7_refresh_state_dict", "7", "prequant_ttt", lambda legal: T.refresh_before_export("state", legal=legal)),
    # 8. one vocabulary: nothing named after its role (renamed) and the stage is in a sibling
    _c("b8_renamed_sibling_gate", "8", "target_dependent_mixing", T.expert_gate, loader="spec", rename=True),
    _c("b8_renamed_shift_dead_twin", "8", "slot", T.window_shift, rename=True, guard="env-on", twin="dead"),
    _c("b8_misleading_names_refresh", "8", "prequant_ttt", T.refresh_before_export, rename=True,
       names=(("val_tokens", "train_tail"), ("refresh", "eval_warmup"), ("eval_val", "train_probe"))),
    _c("b8_misleading_names_table", "8", "ngram_target_key", T.table_cache, rename=True,
       names=(("nxt", "prev_tok"), ("h", "target_hash"), ("full", "ctx_only_key"), ("blended_pass", "train_side_stats"))),
    # second round (evasions2.py): written after reading pgaudit's docs, two or more per bullet
    _c("b1_stream_files_swapped", "1", "val_in_training", lambda legal: E.late_shards("swap", legal=legal)),
    _c("b1_listdir_prefix_default", "1", "val_in_training", lambda legal: E.late_shards("listdir", legal=legal)),
    _c("b1_stream_files_swapped_renamed", "1", "val_in_training", lambda legal: E.late_shards("swap", legal=legal),
       rename=True),
    _c("b2_unfold_window_key", "2", "ngram_target_key", E.unfold_key),
    _c("b2_narrow_logsumexp_key", "2", "ngram_target_key", E.narrow_logsumexp_key),
    _c("b3_ravel_multi_index_key", "3", "ngram_target_key", E.ravel_key),
    _c("b3_digest_struct_key", "3", "ngram_target_key", E.digest_key),
    _c("b4_kwargs_dict_site", "4", "ngram_target_key", E.kwargs_site),
    _c("b4_getattr_method_site", "4", "ngram_target_key", E.getattr_method_site),
    _c("b5_argmax_hit_gate", "5", "target_dependent_mixing", E.argmax_gate),
    _c("b5_gate_dict_of_functions", "5", "target_dependent_mixing", E.gate_table),
    _c("b6_better_of_two_passes", "6", "two_pass_rescore", E.better_of_two),
    _c("b6_refresh_through_map", "6", "prequant_ttt", E.mapped_refresh, twin="dead"),
    _c("b7_wrap_rot13_file", "7", "ngram_target_key", E.unfold_key, wrap="rot13-file"),
    _c("b7_wrap_fromhex_listcomp", "7", "target_dependent_mixing", E.argmax_gate, wrap="fromhex-listcomp"),
    _c("b7_wrap_map_chr", "7", "prequant_ttt", E.mapped_refresh, wrap="map-chr", twin="dead"),
    _c("b7_exec_parent_compile", "7", "ngram_target_key", E.digest_key, loader="parent-compile"),
    _c("b7_exec_read_text_helper", "7", "two_pass_rescore", E.better_of_two, loader="read-text-exec"),
    _c("b1_from_file_dict_split", "1", "val_in_training", E.from_file_mix),
    _c("b2_sliding_view_reduce_key", "2", "ngram_target_key", E.sliding_view_key),
    _c("b3_class_table_setitem", "3", "ngram_target_key", E.class_table),
    _c("b4_lambda_in_dict_site", "4", "ngram_target_key", E.lambda_table_site),
    _c("b5_max_key_expert", "5", "target_dependent_mixing", E.max_key_expert),
    _c("b6_json_second_pass", "6", "two_pass_rescore", E.json_second_pass),
    _c("b7_wrap_docstring", "7", "ngram_target_key", E.class_table, wrap="docstring"),
    _c("b7_module_type_exec", "7", "target_dependent_mixing", E.max_key_expert, loader="module-type"),
    _c("b5_lookahead_stream_update", "5", "target_dependent_mixing", E.lookahead_update),
    _c("b6_adapt_on_next_chunk", "6", "prequant_ttt", E.next_chunk_adapt),
    # native code on the scoring path: a warning that names the file (counted separately)
    _c("native_ctypes_compiled", "native", "native", lambda legal: T.native_blend("ctypes")),
    _c("native_cpp_extension", "native", "native", lambda legal: T.native_blend("extension")),
    _c("native_prebuilt_so", "native", "native", lambda legal: T.native_blend("prebuilt")),
    _c("native_extension_module_import", "native", "native", lambda legal: T.native_blend("ext-module")),
    _c("native_bytecode_only_module", "native", "native", lambda legal: T.native_blend("pyc")),
]
BY_NAME = {case.name: case for case in CASES}


def loader(how: str, exports: tuple[str, ...]) -> tuple[str, str, str]:
    return evasions2.loader(how, exports) if how in evasions2.LOADERS else _loader(how, exports)


def wrap(text: str, how: str) -> tuple[str, dict[str, bytes]]:
    return evasions2.wrap(text, how) if how in evasions2.WRAPPERS else _wrap(text, how)


def build(case: Case, legal: bool) -> dict[str, str | bytes]:
    """The folder's files, {relative path: text or bytes}."""
    dead = legal and case.twin == "dead"
    piece = case.piece(legal=legal and not dead)
    guard_kind = "env-off" if dead else case.guard
    slots = {k: getattr(piece, k) for k in ("hparams", "setup", "train_hook", "post_train", "final")}
    if guard_kind:
        line, cond = guard(guard_kind)
        slots["hparams"] = slots["hparams"].rstrip("\n") + ("\n" + line if line else "")
        body = textwrap.dedent(slots[piece.slot]).strip("\n")
        slots[piece.slot] = f"if {cond}:\n" + textwrap.indent(body, "    ")
    files: dict[str, str | bytes] = dict(piece.extra_files)
    defs, imports, load = piece.defs, piece.imports, ""
    sibling_path = None
    if case.loader == "subprocess":  # the stage runs in evaluate.py, launched after export
        sibling_path = "evaluate.py"
        files[sibling_path] = EVAL_SCRIPT.format(
            imports=SIBLING_HEADER + piece.imports, defs=textwrap.dedent(defs).strip("\n") + "\n",
            final=textwrap.indent(textwrap.dedent(slots["final"]).strip("\n"), "    "),
        )
        imports = "\n".join(x for x in (piece.imports, "import subprocess\nimport sys") if x)
        defs = ""
        slots["final"] = LAUNCH
    elif case.loader:
        extra_imports, load, sibling_path = loader(case.loader, piece.exports)
        files[sibling_path] = SIBLING_HEADER + (piece.imports + "\n" if piece.imports else "") + "\n" + textwrap.dedent(defs).strip("\n") + "\n"
        imports = "\n".join(x for x in (piece.imports, extra_imports) if x)
        defs = ""
    script = render(
        piece.doc, imports=imports, loader=load, defs=defs, cap_expr=piece.cap_expr, **slots
    )
    files["train_gpt.py"] = script
    if case.rename:
        mapping: dict[str, str] = dict(case.names)
        local = frozenset(Path(p).stem for p in files if str(p).endswith(".py"))
        for path in sorted(p for p in files if p.endswith(".py") and p != "prepare_prior.py"):
            files[path] = rename(str(files[path]), mapping, local)
    for path in [p for p in files if p.endswith(".py")]:
        ast.parse(str(files[path]), path)  # a case that does not parse would test nothing
    if sibling_path and sibling_path.startswith("bundle.zip/"):  # zipimport: the module inside an archive
        files["bundle.zip"] = _zip({"scoring.py": str(files.pop(sibling_path))})
        sibling_path = None
    if case.wrap:
        target = sibling_path if case.wrap_sibling and sibling_path else "train_gpt.py"
        wrapped, data = wrap(str(files[target]), case.wrap)
        files[target] = wrapped
        files.update(data)
    runs_stage = not dead
    seeds = (1337, 42, 2025)
    logs = {f"train_seed{seed}.log": _log(piece, seed, i, runs_stage) for i, seed in enumerate(seeds)}
    files.update(logs)
    final_bpb = [_scores(piece, i)[1] for i in range(3)]
    files["README.md"] = _readme(piece, case)
    files["submission.json"] = _submission(piece, seeds, final_bpb, runs_stage)
    return files


def _zip(members: dict[str, str]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 4, 1, 0, 0, 0))
            zf.writestr(info, text)
    return buf.getvalue()


def _scores(piece: Piece, i: int) -> tuple[float, float]:
    loss = 1.89123456 + 0.00041 * i
    return loss, loss * 0.59204


def _log(piece: Piece, seed: int, i: int, runs_stage: bool) -> str:
    loss, bpb = _scores(piece, i)
    rt_loss, rt_bpb = loss + 0.021, (loss + 0.021) * 0.59204
    step = 7100 + 13 * i
    lines = [
        "world_size:8 grad_accum_steps:1",
        f"seed:{seed}",
        "val_loader:shards pattern=./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin tokens:62021632",
    ]
    for k in range(1000, step, 1000):
        lines.append(f"step:{k}/20000 train_loss:{3.9 - 0.2 * k / 1000:.4f} train_time:{k * 84:d}ms")
    lines.append(f"stopping_early: wallclock_cap train_time:{piece.train_time_ms + 37 * i}ms step:{step}/20000")
    stage = piece.stage if runs_stage else ()
    pre = [s for s in stage if not s.startswith("final_") and not s.startswith("chunked")]
    post = [s for s in stage if s not in pre]
    lines += [s.format(loss=loss, bpb=bpb, ms=301234) for s in pre]
    lines += [
        f"Serialized model int8+zlib: {15_511_111 + 977 * i} bytes",
        "Code size: 14120 bytes",
        f"Total submission size int8+zlib: {15_525_231 + 977 * i} bytes",
        f"final_int8_zlib_roundtrip val_loss:{rt_loss:.4f} val_bpb:{rt_bpb:.4f} eval_time:1432ms",
        f"final_int8_zlib_roundtrip_exact val_loss:{rt_loss:.8f} val_bpb:{rt_bpb:.8f}",
    ]
    lines += [s.format(loss=loss, bpb=bpb, ms=301234) for s in post]
    return "\n".join(lines) + "\n"


def _readme(piece: Piece, case: Case) -> str:
    title = piece.doc.removeprefix("Record: ").rstrip(".")
    prep = "python prepare_prior.py\n" if "prepare_prior.py" in piece.extra_files else ""
    return (
        f"# {title}\n\nA 9-layer 512-dim GPT trained for 600 s on 8xH100, int8+zlib export, evaluated on the full "
        "validation split. Three seeds.\n\n```bash\n"
        f"{prep}SEED=1337 torchrun --standalone --nproc_per_node=8 train_gpt.py\n```\n"
    )


def _submission(piece: Piece, seeds: tuple[int, ...], bpbs: list[float], runs_stage: bool) -> str:
    if not runs_stage or not any(s.startswith("final_") for s in piece.stage):  # the roundtrip line is the claim
        bpbs = [(1.89123456 + 0.00041 * i + 0.021) * 0.59204 for i in range(3)]
        losses = [1.89123456 + 0.00041 * i + 0.021 for i in range(3)]
    else:
        losses = [1.89123456 + 0.00041 * i for i in range(3)]
    data = {
        "author": "pgaudit adversarial tests",
        "github_id": "pgaudit-tests",
        "name": piece.doc.removeprefix("Record: ").rstrip("."),
        "date": "2026-04-01",
        "val_bpb": round(sum(bpbs) / 3, 8),
        "val_loss": round(sum(losses) / 3, 8),
        "bytes_total": 15_527_185,
        "bytes_code": 14120,
        "seeds": list(seeds),
        "seed_results": {
            str(s): {"val_loss": round(losses[i], 8), "val_bpb": round(bpbs[i], 8), "artifact_bytes": 15_525_231 + 977 * i}
            for i, s in enumerate(seeds)
        },
        "track": "10min_16mb",
    }
    return json.dumps(data, indent=2) + "\n"


def write(case: Case, legal: bool, folder: Path) -> Path:
    for rel, content in build(case, legal).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.adversarial.cases OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    for case in CASES:
        write(case, False, out / case.name / "illegal")
        if not case.native:
            write(case, True, out / case.name / "legal")
    print(f"wrote {len(CASES)} cases under {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
