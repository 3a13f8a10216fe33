"""Load, validate and compile the rule files under ``rules/`` (once, at start-up).

Any problem stops start-up with ``RuleFileError`` naming the file, the line and what is wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from service.rules.errors import RuleFileError
from service.rules.examples import EXAMPLES_DIR, Example, load_examples
from service.rules.expr import Compiler, ExprError
from service.rules.fields import FieldSpec, Scope, scope_of
from service.rules.forms import FormBook, load_forms
from service.rules.model import ConditionSpec, IncludeSpec, ItemGroupSpec, QuotaSpec, RuleFileSpec
from service.rules.params import Parameter, build_parameter
from service.rules.program import Condition, ItemGroup, Program
from service.rules.yaml_lines import LineDict, line_of, load_yaml
from service.schemas.forms import Application
from service.schemas.messages import register_owners
from service.schemas.partial import field_paths

# Facts the service supplies beside the request (see service/engine/facts.py).
CONTEXT_FIELDS = {"context.disqualified": FieldSpec("bool")}


@dataclass(frozen=True)
class RuleBook:
    """Every compiled program, and the version (content hash) of the files that made them."""

    programs: dict[str, Program]
    version: str
    root: Path
    forms: FormBook
    examples: dict[str, Example]  # program id -> its Swagger example (rules/<policy>/examples)

    def get(self, program_id: str) -> Program | None:
        return self.programs.get(program_id)


@dataclass
class _Source:
    path: Path
    label: str
    raw: Any
    spec: IncludeSpec


def rules_version(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.yaml")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def load_rules(root: Path) -> RuleBook:
    root = root.resolve()
    if not root.is_dir():
        raise RuleFileError(root, 0, "the rules directory does not exist")
    forms = load_forms(root)
    programs: dict[str, Program] = {}
    for path in sorted(root.rglob("*.yaml")):
        if path.name.startswith("_") or EXAMPLES_DIR in path.relative_to(root).parts[:-1]:
            continue
        for program in _load_programs(root, path, forms):
            if program.id in programs:
                raise RuleFileError(
                    _label(root, path), 1, f"program id '{program.id}' is used twice"
                )
            programs[program.id] = program
    if not programs:
        raise RuleFileError(root, 0, "no rule files found")
    examples = load_examples(root, programs)
    _register_owners(forms, programs)
    return RuleBook(programs, rules_version(root), root, forms, examples)


def _register_owners(forms: FormBook, programs: dict[str, Program]) -> None:
    """Which forms (and their programs) have each field: what a 422 for an unknown field says."""
    owners: dict[str, list[tuple[str, list[str]]]] = {}
    for form_id, form in forms.forms.items():
        users = [p.id for p in programs.values() if p.form_name == form_id]
        for path in field_paths(form):
            owners.setdefault(path, []).append((form_id, users))
    register_owners(dict(forms.forms), owners)


def _label(root: Path, path: Path) -> str:
    return f"rules/{path.relative_to(root).as_posix()}"


def _read(root: Path, path: Path, model: type[IncludeSpec]) -> _Source:
    label = _label(root, path)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise RuleFileError(label, (mark.line + 1) if mark else 1, str(exc.problem)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(label, 0, str(exc)) from exc
    if not isinstance(raw, LineDict):
        raise RuleFileError(label, 1, "a rule file is a mapping of keys to values")
    try:
        spec = model.model_validate(raw)
    except ValidationError as exc:
        # Name the error that points at a line that exists (an unknown key) before one about
        # something absent (a missing key), then list the rest.
        errors = sorted(exc.errors(), key=lambda e: -_depth(raw, e["loc"]))
        messages = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        raise RuleFileError(label, line_of(raw, errors[0]["loc"]), messages) from exc
    return _Source(path, label, raw, spec)


def _depth(data: Any, loc: tuple[Any, ...]) -> int:
    depth = 0
    for part in loc:
        if isinstance(data, dict | list) and (
            part in data if isinstance(data, dict) else isinstance(part, int)
        ):
            data = data[part]
            depth += 1
        else:
            break
    return depth


def _with_includes(root: Path, source: _Source, seen: tuple[Path, ...] = ()) -> list[_Source]:
    """The included files (depth first, in order), then the file itself."""
    out: list[_Source] = []
    for index, name in enumerate(source.spec.include):
        path = (source.path.parent / name).resolve()
        line = line_of(source.raw, ("include", index))
        if not path.is_file() or root not in path.parents:
            raise RuleFileError(source.label, line, f"included file '{name}' not found")
        if path in seen:
            raise RuleFileError(source.label, line, f"'{name}' includes itself")
        included = _read(root, path, IncludeSpec)
        out.extend(_with_includes(root, included, (*seen, source.path)))
    out.append(source)
    return out


@dataclass(frozen=True)
class _Edition:
    id: str
    guide_year: int | None
    title_zh: str
    title_en: str
    article: str
    effective_from: date
    effective_to: date
    quota: QuotaSpec | None


def _editions(spec: RuleFileSpec) -> list[_Edition]:
    if not spec.editions:
        assert spec.id and spec.title_zh and spec.title_en and spec.article
        assert spec.effective_from and spec.effective_to
        return [
            _Edition(
                spec.id, None, spec.title_zh, spec.title_en, spec.article,
                spec.effective_from, spec.effective_to, spec.quota,
            )
        ]  # fmt: skip
    return [
        _Edition(
            e.id,
            e.guide_year,
            e.title_zh,
            e.title_en,
            e.article,
            e.effective_from,
            e.effective_to,
            e.quota,
        )
        for e in spec.editions
    ]


def _load_programs(root: Path, path: Path, forms: FormBook) -> list[Program]:
    main = _read(root, path, RuleFileSpec)
    spec = main.spec
    assert isinstance(spec, RuleFileSpec)
    sources = _with_includes(root, main)
    form = forms.forms.get(spec.form)
    if form is None:
        raise RuleFileError(
            main.label,
            line_of(main.raw, ("form",)),
            f"unknown form '{spec.form}' ({sorted(forms.forms)}; see rules/**/_forms.yaml)",
        )
    enums = {name: tuple(e.values) for name, e in forms.enums.items()}
    return [_load_edition(main, sources, spec, form, edition, enums) for edition in _editions(spec)]


def _load_edition(
    main: _Source,
    sources: list[_Source],
    spec: RuleFileSpec,
    form: type[Application],
    edition: _Edition,
    enums: dict[str, tuple[Any, ...]],
) -> Program:
    scope = scope_of(form, spec.form)
    scope.fields.update(CONTEXT_FIELDS)
    params: dict[str, Parameter] = {}
    for src in sources:
        for name, pspec in src.spec.parameters.items():
            line = line_of(src.raw, ("parameters", name, "value"))
            if name in params:
                raise RuleFileError(src.label, line, f"parameter '{name}' is defined twice")
            if name.split(".")[0] in {f.split(".")[0] for f in scope.fields}:
                raise RuleFileError(src.label, line, f"parameter '{name}' shadows a form field")
            chosen = pspec.for_edition(edition.guide_year)
            if chosen is None:
                continue  # this guide year does not have it
            try:
                params[name] = build_parameter(name, chosen)
            except ValueError as exc:
                raise RuleFileError(src.label, line, f"{edition.id}: {exc}") from exc

    compiler = Compiler(scope, params, enums=enums)
    conditions: list[Condition] = []
    groups: list[ItemGroup] = []
    disbursement = None
    once = None
    for src in sources:
        for index, cspec in enumerate(src.spec.conditions):
            if _applies(cspec, edition):
                conditions.append(_condition(compiler, src, ("conditions", index), cspec, edition))
        for gindex, gspec in enumerate(src.spec.items):
            groups.append(_item_group(scope, params, enums, src, gindex, gspec, edition))
        disbursement = src.spec.disbursement or disbursement
        once = src.spec.once_per_applicant or once
    _unique_ids(main, conditions, groups)
    program = Program(
        id=edition.id,
        policy=spec.policy,
        kind=spec.kind,
        title_zh=edition.title_zh,
        title_en=edition.title_en,
        article=edition.article,
        source=spec.source,
        file=main.label,
        effective_from=edition.effective_from,
        effective_to=edition.effective_to,
        description_zh=spec.description_zh,
        description_en=spec.description_en,
        form=form,
        form_name=spec.form,
        scope=scope,
        parameters=params,
        conditions=tuple(conditions),
        item_groups=tuple(groups),
        award=spec.award,
        quota=edition.quota,
        guide_year=edition.guide_year,
        disbursement=disbursement,
        suggestions=tuple(spec.suggestions),
        once_per_applicant=once,
        requirements=tuple(
            r for r in spec.requirements if r.editions is None or edition.guide_year in r.editions
        ),
    )
    _check_award(main, program)
    _check_extras(main, program)
    return program


def _applies(cspec: ConditionSpec, edition: _Edition) -> bool:
    return cspec.editions is None or edition.guide_year in cspec.editions


def _condition(
    compiler: Compiler, src: _Source, loc: tuple[Any, ...], cspec: ConditionSpec, edition: _Edition
) -> Condition:
    line = line_of(src.raw, (*loc, "when"))
    try:
        node = compiler.compile(cspec.when)
    except ExprError as exc:
        where = f" in {edition.id}" if edition.guide_year is not None else ""
        raise RuleFileError(
            src.label, line, f"condition '{cspec.id}'{where}: {exc} (column {exc.col + 1})"
        ) from exc
    article = (cspec.articles or {}).get(edition.guide_year or 0, cspec.article)
    return Condition(
        cspec.id,
        article,
        cspec.zh,
        cspec.en,
        cspec.severity,
        cspec.when,
        node,
        f"{src.label}:{line}",
    )


def _item_group(
    scope: Scope,
    params: dict[str, Parameter],
    enums: dict[str, tuple[Any, ...]],
    src: _Source,
    gindex: int,
    gspec: ItemGroupSpec,
    edition: _Edition,
) -> ItemGroup:
    loc = ("items", gindex)
    item_scope = scope.lists.get(gspec.list_name)
    if item_scope is None:
        raise RuleFileError(
            src.label,
            line_of(src.raw, (*loc, "list")),
            f"the form has no item list '{gspec.list_name}'",
        )
    if gspec.distinct_by is not None and gspec.distinct_by not in item_scope.fields:
        raise RuleFileError(
            src.label,
            line_of(src.raw, (*loc, "distinct_by")),
            f"items of '{gspec.list_name}' have no field '{gspec.distinct_by}'",
        )
    if gspec.distinct_by is not None and gspec.duplicate is None:
        raise RuleFileError(
            src.label, line_of(src.raw, loc), "distinct_by needs a 'duplicate' statement"
        )
    compiler = Compiler(scope, params, item=item_scope, enums=enums)
    conditions = tuple(
        _condition(compiler, src, (*loc, "conditions", index), cspec, edition)
        for index, cspec in enumerate(gspec.conditions)
        if _applies(cspec, edition)
    )
    return ItemGroup(
        gspec.list_name,
        item_scope,
        gspec.on_fail,
        gspec.distinct_by,
        gspec.duplicate,
        gspec.at_least_one,
        conditions,
    )


def _unique_ids(main: _Source, conditions: list[Condition], groups: list[ItemGroup]) -> None:
    seen: set[str] = set()
    ids = [c.id for c in conditions] + [c.id for g in groups for c in g.conditions]
    ids += [s.id for g in groups for s in (g.duplicate, g.at_least_one) if s is not None]
    for cid in ids:
        if cid in seen:
            raise RuleFileError(
                main.label, 1, f"condition id '{cid}' is used twice in this program"
            )
        seen.add(cid)


def _check_award(main: _Source, program: Program) -> None:
    award = program.award
    line = line_of(main.raw, ("award",))

    def need_param(name: str | None, types: tuple[str, ...], what: str) -> None:
        if name is None or name not in program.parameters:
            raise RuleFileError(main.label, line, f"award.{what}: no parameter '{name}'")
        if program.parameters[name].type not in types:
            raise RuleFileError(
                main.label, line, f"award.{what}: '{name}' must be a {' or '.join(types)}"
            )

    def need_field(fields: dict[str, FieldSpec], name: str | None, kind: str, what: str) -> None:
        if name is None or name not in fields or fields[name].kind != kind:
            raise RuleFileError(main.label, line, f"award.{what}: '{name}' must be a {kind} field")

    for cap in award.caps:
        need_param(cap, ("money",), "caps")
    if award.kind in ("per_item", "rate_of_items"):
        groups = {g.list_name: g for g in program.item_groups}
        if award.items not in groups:
            raise RuleFileError(main.label, line, f"award.items: no item group '{award.items}'")
        if award.kind == "per_item":
            need_param(award.amount, ("money",), "amount")
        else:
            need_param(award.rate, ("rate",), "rate")
            need_field(groups[award.items].scope.fields, award.base, "money", "base")
    elif award.kind == "requested":
        need_field(program.scope.fields, award.requested, "money", "requested")
    elif award.kind == "fixed":
        need_param(award.amount, ("money",), "amount")
    elif award.kind == "tier":
        need_param(award.tiers, ("money_by_tier",), "tiers")
        need_field(program.scope.fields, award.tier_field, "int", "tier_field")


def _check_extras(main: _Source, program: Program) -> None:
    """Quotas, disbursement and suggestions name parameters and fields that must exist."""
    quota = program.quota
    if (
        quota is not None
        and quota.kind == "per_district"
        and (quota.district_field is None or quota.district_field not in program.scope.fields)
    ):
        raise RuleFileError(
            main.label,
            line_of(main.raw, ("quota",)),
            "a per_district quota needs district_field, a field of the form",
        )
    if program.disbursement is not None:
        d = program.disbursement
        spec = program.scope.fields.get(d.duration_field)
        if spec is None or spec.kind != "int":
            raise RuleFileError(
                main.label,
                1,
                f"disbursement.duration_field: no whole-number field '{d.duration_field}'",
            )
        for years, tranches in d.schedules.items():
            if sum(Decimal(t.share) for t in tranches) != 1:
                raise RuleFileError(
                    main.label, 1, f"disbursement.schedules[{years}]: shares must add up to 1"
                )
    for req in program.requirements:
        if req.times is not None and program.parameters.get(req.times) is None:
            raise RuleFileError(
                main.label,
                line_of(main.raw, ("requirements",)),
                f"requirement {req.name}: no parameter '{req.times}'",
            )
    for sug in program.suggestions:
        line = line_of(main.raw, ("suggestions",))
        ids = {c.id for c in program.conditions}
        if sug.when_failed not in ids:
            raise RuleFileError(
                main.label, line, f"suggestion {sug.name}: no condition '{sug.when_failed}'"
            )
        field = program.scope.fields.get(sug.divide)
        if field is None or field.kind != "money":
            raise RuleFileError(
                main.label, line, f"suggestion {sug.name}: '{sug.divide}' must be a money field"
            )
        if sug.by not in program.parameters or program.parameters[sug.by].type != "ratio":
            raise RuleFileError(
                main.label, line, f"suggestion {sug.name}: '{sug.by}' must be a ratio parameter"
            )
