from __future__ import annotations

import pytest

from pgaudit.errors import UsageError
from pgaudit.policy import Policy


def test_defaults_are_the_readme_and_practice_values() -> None:
    policy = Policy()
    assert policy.size_cap_bytes == 16_000_000  # decimal, not 16 MiB
    assert policy.accepted_train_time_ms == 600_137
    assert (policy.eval_time_cap_s, policy.line_limit, policy.min_seeds) == (600.0, 1500, 3)
    assert (policy.margin_nats, policy.readme_p_threshold, policy.progression_p_threshold) == (0.005, 0.01, 0.25)
    assert policy.canonical_val_tokens["fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model"] == (47_851_520,)


def test_from_mapping_overrides_and_coerces() -> None:
    policy = Policy.from_mapping({"size-cap-bytes": 16_777_216, "eval_time_cap_s": 700,
                                  "canonical_val_tokens": {"my.model": [123, 456]}})
    assert policy.size_cap_bytes == 16_777_216
    assert policy.eval_time_cap_s == 700.0 and isinstance(policy.eval_time_cap_s, float)
    assert policy.canonical_val_tokens == {"my.model": (123, 456)}
    assert policy.line_limit == 1500  # untouched keys keep their defaults


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"size_cap": 1}, "unknown key 'size_cap'"),
        ({"line_limit": "1500"}, "expected an integer"),
        ({"line_limit": True}, "expected an integer"),
        ({"margin_nats": -0.1}, "must not be negative"),
        ({"readme_p_threshold": 1.5}, "between 0 and 1"),
        ({"canonical_val_tokens": {"x.model": ["many"]}}, "positive integer token counts"),
        ({"canonical_val_tokens": [1, 2]}, "expected a table"),
    ],
)
def test_from_mapping_rejects_bad_tables(table: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Policy.from_mapping(table)


def test_from_mapping_rejects_a_non_table() -> None:
    with pytest.raises(UsageError, match="must be a table"):
        Policy.from_mapping(["size_cap_bytes"])  # type: ignore[arg-type]


def test_to_dict_round_trips() -> None:
    policy = Policy(line_limit=2000)
    assert Policy.from_mapping(policy.to_dict()) == policy


def test_policy_is_hashable_for_caches() -> None:
    assert hash(Policy()) == hash(Policy())
