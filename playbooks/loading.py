"""Reading playbooks: built-ins (package data) and YAML files, with errors that say where.

The agent calls ``load_playbooks(settings)`` at start; the CLI calls ``list_playbooks``
and ``validate_playbook_file`` (``explaining.explain`` describes one playbook). A file
holds one playbook, a list of them, or several YAML documents. Every problem names the
file, the playbook and the key path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from vigil.core import ConfigError
from vigil.playbooks.schema import Playbook
from vigil.playbooks.settings import PlaybookSettings

__all__ = [
    "PlaybookError",
    "builtin_playbooks",
    "list_playbooks",
    "load_playbooks",
    "parse_playbooks",
    "validate_playbook_file",
]


class PlaybookError(ConfigError):
    """A playbook file that cannot be used; ``problems`` lists each, with file and key path."""


def _describe(error: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ())) or "(top level)"
    if error.get("type") == "extra_forbidden":
        return f"{loc}: unknown key"
    got = error.get("input")
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{loc}: {message}{shown}"


def _documents(text: str, source: str) -> list[tuple[str, Any]]:
    """Each playbook mapping in the text, with a label saying where it sits."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        msg = f"{source}: not valid YAML{where}: {problem}"
        raise PlaybookError(msg, problems=(msg,)) from exc
    out: list[tuple[str, Any]] = []
    for d, doc in enumerate(docs):
        items = doc if isinstance(doc, list) else [doc]
        for i, item in enumerate(items):
            where = f"document {d + 1}" if len(docs) > 1 else ""
            if isinstance(doc, list):
                where = f"{where} item {i + 1}".strip()
            out.append((where, item))
    return out


def parse_playbooks(text: str, source: str) -> list[Playbook]:
    """Validate every playbook in ``text``; one ``PlaybookError`` listing all problems."""
    problems: list[str] = []
    books: list[Playbook] = []
    for where, item in _documents(text, source):
        if not isinstance(item, dict):
            problems.append(
                f"{source}: {where or 'top level'}: a playbook is a mapping "
                f"(name, description, when, steps, …), got {type(item).__name__}"
            )
            continue
        name = item.get("name")
        label = f"playbook {name!r}" if isinstance(name, str) else (where or "playbook")
        try:
            books.append(Playbook.model_validate(item))
        except ValidationError as exc:
            problems.extend(f"{source}: {label}: {_describe(e)}" for e in exc.errors())
    seen: dict[str, int] = {}
    for book in books:
        seen[book.name] = seen.get(book.name, 0) + 1
    problems.extend(
        f"{source}: playbook {n!r}: defined {c} times" for n, c in seen.items() if c > 1
    )
    if problems:
        head = f"{source}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise PlaybookError(head + "\n  " + "\n  ".join(problems), problems=tuple(problems))
    return books


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"playbook file {path} does not exist"
        raise PlaybookError(msg, problems=(msg,)) from None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read playbook file {path}: {exc}"
        raise PlaybookError(msg, problems=(msg,)) from exc


def validate_playbook_file(path: Path) -> list[Playbook]:
    """Validate one file (for ``vigil playbooks validate FILE``); raises ``PlaybookError``."""
    return parse_playbooks(_read(path), str(path))


def builtin_playbooks() -> list[Playbook]:
    """The playbooks shipped in ``vigil/playbooks/builtin/*.yaml``."""
    folder = resources.files("vigil.playbooks").joinpath("builtin")
    books: list[Playbook] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            books.extend(
                parse_playbooks(entry.read_text(encoding="utf-8"), f"builtin/{entry.name}")
            )
    return books


def _files(directories: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for folder in directories:
        if not folder.is_dir():
            msg = f"playbooks.directories: {folder} is not a directory"
            raise PlaybookError(msg, problems=(msg,))
        files.extend(sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]))
    return files


def load_playbooks(settings: PlaybookSettings | None = None) -> list[Playbook]:
    """Built-ins, then user files (same name replaces), minus disabled, ordered by priority.

    Problems of every file are collected into one ``PlaybookError``.
    """
    settings = settings or PlaybookSettings()
    by_name = {book.name: book for book in builtin_playbooks()}
    problems: list[str] = []
    user: dict[str, Path] = {}
    for path in _files(settings.directories):
        try:
            books = validate_playbook_file(path)
        except PlaybookError as exc:
            problems.extend(exc.problems)
            continue
        for book in books:
            if book.name in user:
                problems.append(
                    f"{path}: playbook {book.name!r}: also defined in {user[book.name]}"
                )
            user[book.name] = path
            by_name[book.name] = book
    unknown = sorted(set(settings.disabled) - set(by_name))
    problems.extend(f"playbooks.disabled: no playbook named {n!r}" for n in unknown)
    unknown_modes = sorted(set(settings.modes) - set(by_name))
    problems.extend(f"playbooks.modes: no playbook named {n!r}" for n in unknown_modes)
    if problems:
        head = f"{len(problems)} playbook problem{'s' if len(problems) != 1 else ''}"
        raise PlaybookError(head + "\n  " + "\n  ".join(problems), problems=tuple(problems))
    active = [
        book.model_copy(update={"mode": settings.modes.get(book.name, book.mode)})
        for name, book in by_name.items()
        if name not in settings.disabled
    ]
    return sorted(active, key=lambda b: (b.priority, b.name))


def list_playbooks(settings: PlaybookSettings | None = None) -> list[Playbook]:
    """What ``vigil playbooks list`` shows: the active playbooks in the order they are tried."""
    return load_playbooks(settings)
