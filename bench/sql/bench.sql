-- Named queries of the benchmarks, loaded with the package's by `load_queries` (bench/common.py).

-- name: start_latency
-- For benchmarks: how fast jobs of a type created since %(since)s were started and finished.
SELECT count(*) AS jobs,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       min(started_at) AS first_started,
       max(completed_at) AS last_completed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)) AS p99
FROM jobkeeper.jobs
WHERE type = %(type)s AND created_at >= %(since)s;
