"""Renders the configuration reference (docs/configuration.md) from the pydantic models.

The docs test compares the file with this output, so the reference cannot drift from
the code. Regenerate with ``make docs``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr

from vigil.agent.config import ENV_PREFIX, Config

__all__ = ["config_reference"]

_HEAD = """# Configuration reference

vigil reads one YAML file (`vigil --config FILE …`, or `$VIGIL_CONFIG`), then applies
environment overrides named `VIGIL_<GROUP>__<KEY>` (nested groups add another `__`,
e.g. `VIGIL_NOTIFY__SLACK__TOKEN`). Lists are written as YAML, e.g.
`VIGIL_GUARDRAILS__NAMESPACES_ALLOW='[shop, payments]'`. Every group and key is
optional; an empty file is valid and safe (dry-run, `kube-system` denied). Unknown keys
are errors. Check a file with `vigil config validate FILE`, see the effective
configuration with `vigil config show` (secrets print as `***`), and give your editor
the JSON schema from `vigil config schema`.

This page is generated from the code (`make docs`); a test keeps it in step.
"""


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(group)"
        return f"`{value}`"
    value = field.default
    if value is None:
        return "`null`"
    if isinstance(value, tuple):
        return "`[" + ", ".join(str(v) for v in value) + "]`" if value else "`[]`"
    return f"`{value}`"


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")
    return text.replace("|", "or")


def _section(model: type[BaseModel], path: list[str], out: list[str]) -> None:
    rows: list[str] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            nested.append((name, ann))
            continue
        env = ENV_PREFIX + "__".join([*path, name]).upper()
        secret = " (secret)" if "SecretStr" in str(ann) or ann is SecretStr else ""
        desc = (field.description or "").replace("|", "\\|")
        rows.append(
            f"| `{name}` | {_type_name(ann)}{secret} | {_default(field)} | {desc} | `{env}` |"
        )
    if rows:
        out.append(f"\n## `{'.'.join(path)}`\n")
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith("!!!"):
            out.append(doc + "\n")
        out.append("| key | type | default | meaning | environment |")
        out.append("|---|---|---|---|---|")
        out.extend(rows)
    for name, sub in nested:
        _section(sub, [*path, name], out)


def config_reference() -> str:
    """The whole reference as Markdown."""
    out = [_HEAD]
    for name, field in Config.model_fields.items():
        ann = field.annotation
        assert isinstance(ann, type) and issubclass(ann, BaseModel)
        _section(ann, [name], out)
    return "\n".join(out).rstrip() + "\n"
