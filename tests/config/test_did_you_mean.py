"""The one "did you mean" (jobkeeper.errors.did_you_mean): each caller keeps the form its message had."""

from __future__ import annotations

from jobkeeper.errors import did_you_mean


def test_the_closest_option_is_named_in_the_callers_form() -> None:
    assert did_you_mean("mony", ["money", "background"]) == " (did you mean 'money'?)"
    assert did_you_mean("JOBKEEPER_POOL_MAXX", ["JOBKEEPER_POOL_MAX"], "; did you mean {}?") == (
        "; did you mean JOBKEEPER_POOL_MAX?"
    )


def test_nothing_close_says_nothing() -> None:
    assert did_you_mean("zzz", ["money", "background"]) == ""
    assert did_you_mean("money", []) == ""
