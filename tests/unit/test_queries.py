from jobkeeper.store.queries import all_queries, query


def test_named_queries_load_and_are_not_empty() -> None:
    queries = all_queries()
    assert {"insert_jobs", "get_jobs", "load_queues", "load_job_types"} <= set(queries)
    assert all(text.strip() for text in queries.values())
    assert query("get_jobs") is queries["get_jobs"]


def test_queries_are_sent_without_comments_and_hot_ones_fit_psycopgs_cache() -> None:
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    for name, text in all_queries().items():
        assert not any(line.lstrip().startswith("--") for line in text.splitlines()), name
    # psycopg converts placeholders once per text only below this size; above it, on every execution.
    for name in ("claim_jobs", "record_outcomes", "insert_jobs", "heartbeat"):
        assert len(query(name).encode()) <= MAX_CACHED_STATEMENT_LENGTH, name


def test_planned_per_call_marker_is_read_from_the_commented_source() -> None:
    from jobkeeper.store.queries import planned_per_call

    marked = {name for name in all_queries() if planned_per_call(name)}
    assert {"api_list_jobs", "api_list_jobs_edge", "dashboard_list_jobs", "dashboard_count_jobs"} <= marked
    assert "claim_jobs" not in marked
