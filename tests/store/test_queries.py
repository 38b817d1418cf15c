from pathlib import Path

import pytest

from jobkeeper.store.queries import SQL_DIR, QueryInfo, all_queries, info, load_queries, query_infos


def test_named_queries_load_and_are_not_empty() -> None:
    queries = all_queries()
    assert {"insert_jobs", "get_jobs", "load_queues", "load_job_types"} <= set(queries)
    assert all(text.strip() for text in queries.values())
    assert info("get_jobs").text is queries["get_jobs"]


def test_queries_are_sent_without_comments_and_hot_ones_fit_psycopgs_cache() -> None:
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    for name, text in all_queries().items():
        assert not any(line.lstrip().startswith("--") for line in text.splitlines()), name
    # psycopg converts placeholders once per text only below this size; above it, on every execution.
    for name in ("claim_jobs", "record_outcomes", "insert_jobs", "heartbeat"):
        assert len(info(name).text.encode()) <= MAX_CACHED_STATEMENT_LENGTH, name


def test_plan_per_call_is_read_from_the_header() -> None:
    marked = {name for name, query_info in query_infos().items() if query_info.per_call}
    assert {"list_jobs", "list_jobs_edge", "count_jobs_for_action"} <= marked
    assert "claim_jobs" not in marked


def test_files_are_by_subject_and_the_benchmarks_query_is_not_in_the_package() -> None:
    files = {path.stem for path in SQL_DIR.glob("*.sql")}
    assert not files & {"api", "dashboard", "cli", "worker", "maintenance", "retention", "limits"}
    assert "start_latency" not in all_queries()
    bench = Path(__file__).parents[2] / "bench" / "sql"
    assert "start_latency" in load_queries(SQL_DIR, bench)


def _load(tmp_path: Path, text: str) -> dict[str, QueryInfo]:
    (tmp_path / "q.sql").write_text(text, encoding="utf-8")
    return load_queries(tmp_path)


def test_header_keys(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path, "-- name: new_name\n-- plan: per call\n-- Why: a comment, not a key.\nSELECT 1;\n"
    )
    assert loaded["new_name"] == QueryInfo("new_name", "SELECT 1;", per_call=True)


def test_a_part_stands_where_it_is_used_indented_as_the_use(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "-- part: flag\n-- Why: shared.\nWHERE a\n  AND b\n\n"
        "-- name: one\nSELECT 1\nFROM (\n    SELECT a, b FROM t\n    -- use: flag\n) s;\n",
    )
    assert loaded["one"].text == "SELECT 1\nFROM (\n    SELECT a, b FROM t\n    WHERE a\n      AND b\n) s;"
    assert set(loaded) == {"one"}


@pytest.mark.parametrize(
    "text",
    [
        "-- name: a\n-- prepare: never\nSELECT 1;\n",  # an unknown key
        "-- name: a\n-- plan: generic\nSELECT 1;\n",  # an unknown value
        "-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n",  # a name twice
        "-- name: a\n-- alias: b\nSELECT 1;\n",  # aliases are gone: every caller names the query
        "-- name: a\nSELECT 1\n  -- use: nope\n;\n",  # an unknown part
        "-- part: a\nWHERE true\n-- name: a\nSELECT 1;\n",  # a part and a query of one name
    ],
)
def test_a_bad_header_or_a_duplicate_fails_the_load(tmp_path: Path, text: str) -> None:
    with pytest.raises(RuntimeError):
        _load(tmp_path, text)


def test_an_unknown_name_says_where_queries_live() -> None:
    with pytest.raises(KeyError, match="no SQL query named 'nope'"):
        info("nope")
