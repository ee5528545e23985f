"""The Procfile's processes as argument lists, for the dev tooling that starts them: the benchmarks
(``bench/``), the tests that run real processes (``tests/faults/``, ``tests/hardening/``) and
``make run`` (``scripts/run_local.py``). The Procfile is the one statement of how production runs
each process; a caller that needs a variation (its own queues, pool, concurrency or log level, an
option more or less) says so as an override of the Procfile's line instead of writing the line out
again. Standard library only: it is imported before Django is set up, and by scripts outside the
project's apps.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"

# The Celery options a caller may override or drop, by their short and long spellings.
CELERY_OPTIONS = {
    "loglevel": ("-l", "--loglevel"),
    "queues": ("-Q", "--queues"),
    "pool": ("-P", "--pool"),
    "concurrency": ("-c", "--concurrency"),
    "node_name": ("-n", "--hostname"),
}
# Programs run as ``python -m <program>`` when the caller names its interpreter.
PYTHON_MODULES = ("celery", "gunicorn")


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    """``name: command`` of every line of the Procfile, in its order."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def is_celery_worker(name: str, path: Path = PROCFILE) -> bool:
    """Whether the Procfile's process ``name`` is a Celery worker (``celery … worker …``)."""
    argv = shlex.split(procfile(path)[name])
    return argv[0] == "celery" and "worker" in argv


def process_argv(
    name: str,
    *,
    python: str | None = None,
    loglevel: str | None = None,
    queues: str | Iterable[str] | None = None,
    pool: str | None = None,
    concurrency: int | None = None,
    node_name: str | None = None,
    drop: Sequence[str] = (),
    extra: Sequence[str] = (),
    path: Path = PROCFILE,
) -> list[str]:
    """The argv of the Procfile's process ``name``, with the caller's overrides.

    ``python`` runs ``celery`` and ``gunicorn`` as ``<python> -m …`` and ``python`` as that
    interpreter (the caller's venv rather than whatever comes first on PATH). ``loglevel``,
    ``queues``, ``pool``, ``concurrency`` and ``node_name`` replace the value of that option in the
    line, or add the option; ``drop`` leaves options of the line out, by the same names; ``extra``
    is appended as it is.
    """
    argv = shlex.split(procfile(path)[name])
    overrides = {
        "loglevel": loglevel,
        "queues": queues if queues is None or isinstance(queues, str) else ",".join(queues),
        "pool": pool,
        "concurrency": None if concurrency is None else str(concurrency),
        "node_name": node_name,
    }
    overrides = {option: value for option, value in overrides.items() if value is not None}
    unknown = set(drop) - set(CELERY_OPTIONS)
    if unknown:
        raise ValueError(f"drop: no such option {sorted(unknown)}; the options are {sorted(CELERY_OPTIONS)}")
    if (overrides or drop) and argv[0] != "celery":
        raise ValueError(f"the Procfile's {name!r} is not a Celery process: {shlex.join(argv)}")
    for option in drop:
        argv = _without(argv, CELERY_OPTIONS[option])
    for option, value in overrides.items():
        argv = _with(argv, CELERY_OPTIONS[option], value)
    if python is not None:
        if argv[0] in PYTHON_MODULES:
            argv = [python, "-m", *argv]
        elif argv[0] == "python":
            argv = [python, *argv[1:]]
    return [*argv, *extra]


def _with(argv: list[str], spellings: tuple[str, str], value: str) -> list[str]:
    """``argv`` with the option's value replaced where the line has it, else the option added."""
    short, long = spellings
    for i, token in enumerate(argv):
        if token in spellings and i + 1 < len(argv):
            return [*argv[: i + 1], value, *argv[i + 2 :]]
        if token.startswith(f"{long}="):
            return [*argv[:i], f"{long}={value}", *argv[i + 1 :]]
    return [*argv, short, value]


def _without(argv: list[str], spellings: tuple[str, str]) -> list[str]:
    """``argv`` without the option (and its value)."""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token in spellings:
            skip = True
        elif not token.startswith(f"{spellings[1]}="):
            kept.append(token)
    return kept
