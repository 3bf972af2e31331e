"""Where the suite's time goes: every XLA compilation, by test and process (a developer tool, not CI).

    CENSUS_FILE=/tmp/census.tsv PYTHONPATH=tests/census pytest     # every process the suite starts inherits both
    python tests/census/sitecustomize.py /tmp/census.tsv            # seconds by program and by test

Python imports `sitecustomize` at start-up from PYTHONPATH, so the worker processes and every train.py, eval.py or
`python -m graphgen` a test starts record too. Each compilation (a persistent-cache hit counts, at a few ms) is a
line: process id, the test running it (PYTEST_CURRENT_TEST, inherited by subprocesses), the script, the program,
seconds."""

import os
import sys

CENSUS_FILE = os.environ.get("CENSUS_FILE")
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def _record(event: str, duration: float, **kwargs) -> None:
    if event == COMPILE_EVENT:
        test = os.environ.get("PYTEST_CURRENT_TEST", "-").split(" ")[0]
        script = os.path.basename(sys.argv[0]) if sys.argv else "-"
        with open(CENSUS_FILE, "a") as f:
            f.write(f"{os.getpid()}\t{test}\t{script}\t{kwargs.get('fun_name')}\t{duration:.4f}\n")


def report(path: str, top: int = 25) -> None:
    from collections import Counter

    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    by_program, count, by_test = Counter(), Counter(), Counter()
    for _, test, script, program, seconds in rows:
        by_program[program] += float(seconds)
        count[program] += 1
        by_test[f"{test.split('[')[0]} ({script})"] += float(seconds)
    print(f"{sum(by_program.values()):.0f} s in {len(rows)} compilations")
    for title, table in (("by program", by_program), ("by test", by_test)):
        print(f"\n{title}:")
        for name, seconds in table.most_common(top):
            print(f"{seconds:8.1f} s  {f'{count[name]:5d}x  ' if table is by_program else ''}{name}")


if __name__ == "__main__":
    report(sys.argv[1])
elif CENSUS_FILE:
    import jax.monitoring

    jax.monitoring.register_event_duration_secs_listener(_record)
