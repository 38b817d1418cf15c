from jobkeeper.store.queries import all_queries, query


def test_named_queries_load_and_are_not_empty() -> None:
    queries = all_queries()
    assert {"insert_jobs", "get_jobs", "load_queues", "load_job_types"} <= set(queries)
    assert all(text.strip() for text in queries.values())
    assert query("get_jobs") is queries["get_jobs"]
