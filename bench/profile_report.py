"""Reads a py-spy `raw` (collapsed stacks) profile of the worker and says where its time went.

Each line of the file is `frame;frame;...;leaf COUNT`, root first; a frame is `function (file:line)`. The
profile was recorded with `--idle`, so samples of the event loop waiting in epoll are included (their share
is the time the worker had nothing to do but wait for the database), and those of the worker's other
threads blocked waiting (reported apart, left out of the tables of running code).

    python bench/profile_report.py docs/profiles/jk-worker-drain.collapsed.txt
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Inclusive buckets, first match wins, looked for from the leaf up (the innermost jobkeeper part counts).
# The store's frames (jobkeeper/store/run.py driving an operation, store/outcomes.py's claim and record) are
# in no bucket on purpose: one module holds both the claim and the outcomes, so a sample there counts for
# the worker part that ran the operation, the claim loop or the completer, found further up the stack.
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("claim: claim_jobs statement, rows to Job objects", ("jobkeeper/worker/claimer.py",)),
    ("outcomes: record_outcomes statement", ("jobkeeper/worker/completer.py",)),
    ("heartbeat", ("jobkeeper/worker/heartbeat.py",)),
    ("LISTEN notifications", ("jobkeeper/worker/notifier.py",)),
    ("maintenance leader", ("jobkeeper/maintenance/",)),
    (
        "running jobs: task per job, context, executor, handler",
        (
            "jobkeeper/worker/worker.py",
            "jobkeeper/worker/executor.py",
            "jobkeeper/worker/context.py",
            "jk_tasks.py",
        ),
    ),
]
# Leaves where a thread is blocked rather than running: the event loop in epoll (nothing to run until the
# database answers), and the worker's other threads (the heartbeat's, the thread pool's) waiting on a
# condition, a queue or their own connection.
LOOP_IDLE = ("select (selectors.py", "EpollSelector.select")
THREAD_WAIT = (
    "Condition.wait (threading.py",
    "Event.wait (threading.py",
    "Queue.get (queue.py",
    "_worker (concurrent/futures/thread.py",
    "wait_c (psycopg/waiting.py",
    "wait_epoll (psycopg/waiting.py",
    "wait_select (psycopg/waiting.py",
    "wait_poll (psycopg/waiting.py",
)
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


def parse(path: Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        samples.append((stack.split(";"), int(count)))
    return samples


def _file(frame: str) -> str:
    match = FRAME.match(frame)
    return match.group("file") if match else frame


def _package(frame: str) -> str:
    path = _file(frame)
    for name in ("psycopg_pool", "psycopg", "asyncio", "jobkeeper", "json", "uuid", "logging", "selectors"):
        if path.startswith(name + "/") or path.startswith(name + ".") or path == name + ".py":
            return name
    if path.startswith("<frozen"):
        return "import machinery"
    if "/" not in path:
        return "stdlib (other)"
    return path.split("/", 1)[0]


def summarise(samples: list[tuple[list[str], int]]) -> dict[str, Any]:
    total = sum(count for _, count in samples)
    startup = idle = waiting = 0
    components: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for stack, count in samples:
        joined = ";".join(stack)
        if not joined or "_find_and_load" in joined or "<module>" in stack[-1]:
            startup += count
            continue
        leaf = stack[-1] if stack else ""
        if any(mark in leaf for mark in LOOP_IDLE):
            idle += count
            continue
        if any(mark in leaf for mark in THREAD_WAIT):
            waiting += count
            continue
        packages[_package(leaf)] += count
        leaves[leaf] += count
        for frame in reversed(stack):
            path = _file(frame)
            label = next((name for name, files in COMPONENTS if any(f in path for f in files)), None)
            if label is not None:
                components[label] += count
                break
        else:
            components["event loop and library code outside jobkeeper frames"] += count
    running = total - startup
    return {
        "total": total,
        "startup": startup,
        "running": running,
        "idle": idle,
        "waiting": waiting,
        "busy": running - idle - waiting,
        "components": components.most_common(),
        "packages": packages.most_common(),
        "leaves": leaves.most_common(15),
    }


def markdown(summary: dict[str, Any], rate: int) -> str:
    running = summary["running"] or 1
    busy = summary["busy"] or 1
    out = [
        f"Samples: {summary['total']:,} at {rate} Hz; start-up (imports) and frameless samples "
        f"{summary['startup']:,}, excluded below. "
        f"Of the {summary['running']:,} samples after start-up (every thread of the worker is sampled), "
        f"**{100 * summary['busy'] / running:.0f} %** ran Python; the event loop waited in epoll (nothing to "
        f"run until the database answered) in **{100 * summary['idle'] / running:.0f} %**, and other "
        f"threads (the heartbeat's, the thread pool's) were blocked waiting in "
        f"**{100 * summary.get('waiting', 0) / running:.0f} %**. The tables below cover the running samples.",
        "",
        "Where the Python time went (inclusive, by the innermost jobkeeper part on the stack; share of the "
        "busy samples):",
        "",
        "| part | share of busy |",
        "|---|---|",
    ]
    for name, count in summary["components"]:
        out.append(f"| {name} | {100 * count / busy:.1f} % |")
    out += [
        "",
        "Self time by package (the function on top of the stack):",
        "",
        "| package | share of busy |",
        "|---|---|",
    ]
    for name, count in summary["packages"][:10]:
        out.append(f"| {name} | {100 * count / busy:.1f} % |")
    out += ["", "Hottest functions (self time):", "", "| function | share of busy |", "|---|---|"]
    for name, count in summary["leaves"]:
        out.append(f"| `{name.replace('|', '/')}` | {100 * count / busy:.1f} % |")
    return "\n".join(out)


def main() -> None:
    path = Path(sys.argv[1])
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 250
    print(markdown(summarise(parse(path)), rate))


if __name__ == "__main__":
    main()
