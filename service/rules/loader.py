"""Load, validate and compile the rule files under ``rules/`` (once, at start-up).

Any problem stops start-up with ``RuleFileError`` naming the file, the line and what is wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from service.performance.notation import NotationError, parse_target
from service.performance.standards import SCORE_FILE, score_standard
from service.rules.award_plan import AwardPlan, PlanError, compile_plan
from service.rules.errors import RuleFileError
from service.rules.examples import EXAMPLES_DIR, Example, load_examples
from service.rules.expr import Compiler, ExprError
from service.rules.fields import FieldSpec, Scope, scope_of
from service.rules.forms import FormBook, load_forms
from service.rules.model import (
    ConditionSpec,
    DisbursementSpec,
    FamiliesSpec,
    FamilySpec,
    IncludeSpec,
    ItemGroupSpec,
    QuotaSpec,
    RequirementSpec,
    RuleFileSpec,
)
from service.rules.params import Parameter, build_parameter
from service.rules.program import Condition, ItemGroup, Program, ProgramTarget
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
    # Programs a published table may report as one row (rules/<policy>/_families.yaml).
    families: dict[str, FamilySpec] = field(default_factory=dict)

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
    _check_score_standard(root)
    _register_owners(forms, programs)
    families = _families(root, programs)
    return RuleBook(programs, rules_version(root), root, forms, examples, families)


def _families(root: Path, programs: dict[str, Program]) -> dict[str, FamilySpec]:
    out: dict[str, FamilySpec] = {}
    for path in sorted(root.rglob("_families.yaml")):
        label = _label(root, path)
        try:
            raw = load_yaml(path.read_text(encoding="utf-8"))
            spec = FamiliesSpec.model_validate(raw)
        except (yaml.YAMLError, OSError, UnicodeDecodeError, ValidationError) as exc:
            raise RuleFileError(label, 1, str(exc)) from exc
        for index, family in enumerate(spec.families):
            line = line_of(raw, ("families", index))
            unknown = [m for m in family.members if m not in programs]
            if unknown:
                raise RuleFileError(label, line, f"family '{family.id}': no program {unknown}")
            if family.id in programs or family.id in out:
                raise RuleFileError(label, line, f"family id '{family.id}' is used twice")
            out[family.id] = family
    return out


def _check_score_standard(root: Path) -> None:
    """The grading standard of score sheets (``performance/_score.yaml``), read at start-up so
    that a broken one stops the service, like any rule file."""
    if not (root / SCORE_FILE).is_file():
        return  # a rules directory without score sheets (the tests' partial copies)
    try:
        score_standard(root)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise RuleFileError(_label(root, root / SCORE_FILE), 1, str(exc)) from exc


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
    names: tuple[str, ...] = ()


def _editions(spec: RuleFileSpec) -> list[_Edition]:
    if not spec.editions:
        assert spec.id and spec.title_zh and spec.title_en and spec.article
        assert spec.effective_from and spec.effective_to
        return [
            _Edition(
                spec.id, None, spec.title_zh, spec.title_en, spec.article,
                spec.effective_from, spec.effective_to, spec.quota, tuple(spec.names),
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
            tuple(e.names),
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
    acceptance = None
    targets: list[ProgramTarget] = []
    once_unit = None
    cross_claim = None
    for src in sources:
        for index, cspec in enumerate(src.spec.conditions):
            if _applies(cspec, edition):
                conditions.append(_condition(compiler, src, ("conditions", index), cspec, edition))
        for gindex, gspec in enumerate(src.spec.items):
            groups.append(_item_group(scope, params, enums, src, gindex, gspec, edition))
        disbursement = src.spec.disbursement or disbursement
        once = src.spec.once_per_applicant or once
        acceptance = src.spec.acceptance or acceptance
        targets.extend(_targets(src, edition))
        once_unit = src.spec.once_per_unit or once_unit
        cross_claim = src.spec.claimed_by_another_applicant or cross_claim
    _unique_ids(main, conditions, groups)
    requirements = tuple(
        r for r in spec.requirements if r.editions is None or edition.guide_year in r.editions
    )
    plan = _plan(main, spec, params, scope, groups, conditions, disbursement, requirements)
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
        names=edition.names,
        requirements=requirements,
        plan=plan,
        targets=tuple(targets),
        acceptance=acceptance,
        once_per_unit=once_unit,
        claimed_by_another_applicant=cross_claim,
    )
    _check_quota(main, program)
    _check_targets(main, program)
    return program


def _targets(src: _Source, edition: _Edition) -> list[ProgramTarget]:
    """This edition's per-project targets, each readable in the bureau's notation."""
    out = []
    for index, tspec in enumerate(src.spec.targets):
        text = tspec.values.get(edition.guide_year or 0)
        if text is None:
            continue
        line = line_of(src.raw, ("targets", index, "values"))
        try:
            parsed = parse_target(text)
        except NotationError as exc:
            raise RuleFileError(src.label, line, f"target '{tspec.id}': {exc}") from exc
        if parsed.kind == "qualitative":
            raise RuleFileError(
                src.label, line, f"target '{tspec.id}': a project target must be measurable"
            )
        out.append(
            ProgramTarget(
                tspec.id,
                tspec.article,
                tspec.zh,
                tspec.en,
                text,
                tuple(tspec.entity_types) if tspec.entity_types is not None else None,
                tspec.growth,
            )
        )
    return out


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
    for name in gspec.claim_key or ():
        if name not in item_scope.fields:
            raise RuleFileError(
                src.label,
                line_of(src.raw, (*loc, "claim_key")),
                f"items of '{gspec.list_name}' have no field '{name}'",
            )
    if gspec.claim_key is not None and gspec.claimed_before is None:
        raise RuleFileError(
            src.label, line_of(src.raw, loc), "claim_key needs a 'claimed_before' statement"
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
        tuple(gspec.claim_key) if gspec.claim_key is not None else None,
        gspec.claimed_before,
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


def _plan(
    main: _Source,
    spec: RuleFileSpec,
    params: dict[str, Parameter],
    scope: Scope,
    groups: list[ItemGroup],
    conditions: list[Condition],
    disbursement: DisbursementSpec | None,
    requirements: tuple[RequirementSpec, ...],
) -> AwardPlan:
    """The award compiled once; a name it needs that is not there stops start-up."""
    try:
        return compile_plan(
            spec.award,
            params,
            scope,
            {g.list_name: g.scope for g in groups},
            {c.id for c in conditions},
            disbursement,
            tuple(spec.suggestions),
            requirements,
        )
    except PlanError as exc:
        # The disbursement is written in a shared file (_general.yaml): no line here.
        line = 1 if exc.part == "disbursement" else line_of(main.raw, (exc.part,))
        raise RuleFileError(main.label, line, str(exc)) from exc


def _check_quota(main: _Source, program: Program) -> None:
    """A per-district quota names the field that holds the district."""
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


def _check_targets(main: _Source, program: Program) -> None:
    seen: set[str] = set()
    kinds = program.scope.fields.get("applicant.entity_type")
    choices = set(kinds.choices or ()) if kinds is not None else set()
    for target in program.targets:
        if target.id in seen:
            raise RuleFileError(main.label, 1, f"target id '{target.id}' is used twice")
        seen.add(target.id)
        unknown = set(target.entity_types or ()) - choices
        if unknown:
            raise RuleFileError(
                main.label, 1, f"target '{target.id}': unknown entity types {sorted(unknown)}"
            )
