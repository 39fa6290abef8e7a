"""The name vocabulary (pgaudit/analysis/names.py): hints that raise confidence, never what decides a role."""

from __future__ import annotations

from pgaudit.analysis.names import (
    is_paid_prefix_name,
    is_target_name,
    is_train_data_name,
    is_val_data_name,
    literal_data_kind,
)


def test_validation_data_names_are_not_metrics():
    assert is_val_data_name("val_tokens") and is_val_data_name("fineweb_val") and is_val_data_name("val_files")
    assert not is_val_data_name("val_loss") and not is_val_data_name("val_bpb")
    assert not is_val_data_name("val_batch_size") and not is_val_data_name("tokens")


def test_training_data_names():
    assert is_train_data_name("train_tokens") and is_train_data_name("train_files")
    assert not is_train_data_name("train_seq_len") and not is_train_data_name("train_loss")


def test_target_names_exclude_predictions_and_sizes():
    assert is_target_name("y") and is_target_name("tgt_np") and is_target_name("next_tokens")
    assert not is_target_name("y_pred") and not is_target_name("tgt_bytes") and not is_target_name("x")


def test_shard_literals_name_their_split():
    assert literal_data_kind("./data/fineweb_val_*.bin") == "val"
    assert literal_data_kind("fineweb_train_000001.bin") == "train"
    assert literal_data_kind("final_model.pt") is None


def test_a_model_path_for_evaluation_is_not_validation_data():
    # a merged record's `eval_only_quantized_path` (a checkpoint), read while loading the model for eval
    assert not is_val_data_name("eval_only_quantized_path")
    assert not is_val_data_name("eval_model_path")
    assert not is_val_data_name("val_checkpoint_path")
    assert is_val_data_name("eval_tokens") and is_val_data_name("val_files")


def test_paid_prefix_names_only_raise_confidence():
    assert is_paid_prefix_name("paid_prefix_tokens") and is_paid_prefix_name("stored_prefix_blob")
    assert not is_paid_prefix_name("prefix_len") and not is_paid_prefix_name("blob")
