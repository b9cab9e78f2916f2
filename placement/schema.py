"""The problem file's shape (SPEC section 3), checked by pydantic in strict mode.

This module checks types, signs and unknown keys, field by field. Rules that relate
fields to each other (ids unique, edges name blocks, the graph is acyclic, ...) are
checked in `placement.loader`, after this. Every failure becomes one
`ProblemError` naming the field path, e.g. ``model.blocks[3].flops``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ProblemError, did_you_mean, json_kind

NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Id = Annotated[str, Field(min_length=1)]

#: metrics that may appear in ``constraints`` and their sense: an upper bound, except
#: ``throughput_per_s`` which is a lower bound (a stream must reach at least that rate).
CONSTRAINT_METRICS = ("latency_s", "latency_max_s", "period_s", "throughput_per_s", "energy_j")
#: objective names and the metric each minimises.
OBJECTIVE_METRIC = {"latency": "latency_s", "throughput": "period_s", "energy": "energy_j"}


class SchemaRule(ValueError):
    """A rule broken inside the schema, with the parts of a `ProblemError` message."""

    def __init__(self, expected: str, found: object = None, detail: str | None = None):
        super().__init__(expected)
        self.expected, self.found, self.detail = expected, found, detail


class _Strict(BaseModel):
    """Strict types, no unknown keys; an unknown key is reported with the closest valid name."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            valid = list(cls.model_fields)
            for key in data:
                if key not in cls.model_fields:
                    hint = did_you_mean(str(key), valid) or "valid keys: " + ", ".join(valid)
                    raise SchemaRule("only known keys", key, hint)
        return data


#: most shards one block may be split into (each shard is a block the solvers place).
MAX_SPLIT_WAYS = 64


class Split(_Strict):
    ways: list[Annotated[int, Field(ge=1, le=MAX_SPLIT_WAYS)]] = Field(min_length=1)
    mode: Literal["tensor", "spatial"] = "tensor"
    overhead_flops: NonNeg = 0.0
    halo_bytes: NonNeg = 0.0

    @model_validator(mode="before")
    @classmethod
    def _ways_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("ways"), int) and not isinstance(data["ways"], bool):
            return {**data, "ways": [data["ways"]]}
        return data


class BlockSpec(_Strict):
    id: Id
    flops: NonNeg
    params_bytes: NonNeg = 0.0
    activation_bytes: NonNeg = 0.0
    output_bytes: NonNeg = 0.0
    kind: str = "other"
    time_s: dict[str, NonNeg] = Field(default_factory=dict)
    allowed_devices: list[Id] | None = None
    split: Split | None = None
    #: bytes this block receives from ``source`` when it has no predecessor (default:
    #: ``model.input_bytes``); the split transform sets it on the shards of an input block.
    input_bytes: NonNeg | None = None
    modules: list[str] = Field(default_factory=list)
    fx_nodes: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)


class EdgeSpec(_Strict):
    src: Id
    dst: Id
    bytes: NonNeg | None = None


class ScenarioSpec(_Strict):
    """One way an inference can go: the blocks that do NOT run (SPEC section 10)."""
    name: Id
    probability: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    skip: list[Id] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)


class ModelSpec(_Strict):
    name: str = "model"
    input_bytes: NonNeg = 0.0
    blocks: list[BlockSpec] = Field(min_length=1)
    edges: list[Union[Annotated[list[Id], Field(min_length=2, max_length=2)], EdgeSpec]] = Field(
        default_factory=list)
    scenarios: list[ScenarioSpec] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)


class DeviceSpec(_Strict):
    id: Id
    type: str | None = None
    flops_per_s: Positive
    memory_bytes: Positive
    power_active_w: NonNeg = 0.0
    power_idle_w: NonNeg = 0.0
    tx_power_w: NonNeg = 0.0
    rx_power_w: NonNeg = 0.0
    efficiency: dict[str, Positive] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)


class LinkDefault(_Strict):
    bandwidth_bytes_per_s: Positive
    latency_s: NonNeg = 0.0


class LinkSpec(_Strict):
    src: Id
    dst: Id
    bandwidth_bytes_per_s: Positive
    latency_s: NonNeg = 0.0
    symmetric: bool = True


class MediumSpec(_Strict):
    """Devices that share the air (one WiFi channel, one access point): transfers between two
    of them are sent one at a time (SPEC section 5a)."""
    id: Id
    devices: list[Id] = Field(min_length=2)
    meta: dict[str, Any] = Field(default_factory=dict)


class NetworkSpec(_Strict):
    default: LinkDefault | None = None
    links: list[LinkSpec] = Field(default_factory=list)
    media: list[MediumSpec] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _no_contention(cls, data: Any) -> Any:
        if isinstance(data, dict) and "contention" in data:
            raise SchemaRule("no 'contention' key", "contention", "shared air is declared as "
                             "'media': [{\"id\": \"wifi\", \"devices\": [...]}]; see docs/format.md")
        return data


class Constraints(_Strict):
    latency_s: NonNeg | None = None
    #: the worst scenario's latency (SPEC section 10); without scenarios: latency_s
    latency_max_s: NonNeg | None = None
    period_s: NonNeg | None = None
    throughput_per_s: NonNeg | None = None
    energy_j: NonNeg | None = None


ObjectiveName = Literal["latency", "throughput", "energy"]


class ProblemSpec(_Strict):
    name: str = "problem"
    objective: Union[ObjectiveName, dict[ObjectiveName, NonNeg]] = "latency"
    constraints: Constraints = Field(default_factory=Constraints)
    model: ModelSpec
    devices: list[DeviceSpec] = Field(min_length=1)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    source: Id | None = None
    sink: Id | None = None
    pinned: dict[str, Id] = Field(default_factory=dict)
    count_idle: bool = False
    meta: dict[str, Any] = Field(default_factory=dict)


# ------------------------------------------------------------------ the plan file
class ScheduledBlock(BaseModel):
    device: str
    start_s: float
    end_s: float


class PlanSpec(BaseModel):
    """The plan file (SPEC section 7), as `placement.plan.Plan.to_dict` writes it. Reading is
    lenient (`Plan.from_dict` needs only ``assignment``); this model documents the whole file
    and gives ``placement schema plan``."""

    model_config = ConfigDict(extra="allow")

    problem: str = Field("", description="the problem's name")
    method: str = Field("", description="the method that made the plan (see 'placement methods')")
    objective: Union[ObjectiveName, dict[ObjectiveName, float]] = "latency"
    status: Literal["optimal", "feasible", "infeasible", "time_limit", "no_solution", "error"] = "feasible"
    value: float | None = Field(None, description="the objective's value, from the evaluator (s, or J for energy)")
    bound: float | None = Field(None, description="a proven lower bound on the objective, from the package")
    gap: float | None = Field(None, description="(value - bound) / value")
    solve_time_s: float = 0.0
    assignment: dict[str, str] = Field(description="block id -> device id (the only required key)")
    order: dict[str, list[str]] | None = Field(None, description="device id -> its blocks in run order")
    schedule: dict[str, ScheduledBlock] = Field(default_factory=dict,
                                                description="block id -> device, start_s, end_s (one inference)")
    metrics: dict[str, Any] = Field(default_factory=dict, description=(
        "latency_s, period_s, throughput_per_s, energy_j, memory_bytes (per device), transfer_bytes"))
    violations: list[str] = Field(default_factory=list)
    message: str = ""
    stats: dict[str, Any] = Field(default_factory=dict)


def json_schema(kind: str = "problem") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a problem file or a plan file, from the pydantic
    models that check them, so that an editor validates a file as it is typed."""
    model = {"problem": ProblemSpec, "plan": PlanSpec}[kind]
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema.setdefault("title", f"placement {kind} file")
    return schema


def field_path(loc: tuple) -> str:
    """``('model', 'blocks', 3, 'flops')`` -> ``model.blocks[3].flops``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _items(n: Any) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def _expected(err: dict) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    table = {
        "missing": "a value (the field is required)",
        "finite_number": "a finite number",
        "float_type": "a number",
        "int_type": "a whole number",
        "string_type": "a string",
        "bool_type": "true or false",
        "dict_type": "an object",
        "model_type": "an object",
        "model_attributes_type": "an object",
        "literal_error": f"one of {ctx.get('expected', '')}",
        "list_type": "an array",
        "too_short": f"at least {_items(ctx.get('min_length'))}",
        "too_long": f"at most {_items(ctx.get('max_length'))}",
        "string_too_short": "a non-empty string",
    }
    if kind == "greater_than_equal":
        return f"a finite number >= {ctx['ge']:g}"
    if kind == "less_than_equal":
        return f"a number <= {ctx['le']:g}"
    if kind == "greater_than":
        return f"a finite number > {ctx['gt']:g}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return table.get(kind, err["msg"])


# pydantic's loc for a Union member names the member type (e.g. 'list[...]', 'EdgeSpec',
# 'function-after[...]'); these parts are not field names and are dropped from the path.
def _is_member(part: Any) -> bool:
    return not isinstance(part, int) and (
        part[:1].isupper() or "[" in part or part in ("str", "int", "float", "bool", "function-after"))


def _clean_loc(loc: tuple) -> tuple:
    return tuple(p for p in loc if not _is_member(p))


def _union_root(loc: tuple) -> tuple | None:
    """The path of the Union field an error is about (its alternatives each report one)."""
    for i, part in enumerate(loc):
        if _is_member(part):
            return loc[:i]
    return None


def _other_problems(errors: list[dict], picked: dict) -> int:
    """How many other fields are wrong: each Union field's alternatives count once, and the
    alternatives of the field already reported not at all."""
    root = _union_root(picked["loc"])
    others = set()
    for err in errors:
        if err is picked:
            continue
        r = _union_root(err["loc"])
        if root is not None and r == root:
            continue
        others.add(r if r is not None else tuple(err["loc"]))
    return len(others)


def _pick(errors: list[dict]) -> dict:
    """The most useful of pydantic's errors: the deepest, preferring non-union noise."""
    def score(err: dict) -> tuple:
        is_union_noise = err["type"] in ("list_type", "model_type", "model_attributes_type",
                                         "literal_error", "dict_type")
        return (not is_union_noise, len(_clean_loc(err["loc"])))
    return max(errors, key=score)


def validate(raw: Any, file: str | None = None) -> ProblemSpec:
    """Check the shape of a problem dict; raise `ProblemError` naming the first bad field."""
    if not isinstance(raw, dict):
        raise ProblemError("(top level)", "a JSON object", json_kind(raw), file=file)
    try:
        return ProblemSpec.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        err = _pick(errors)
        loc = _clean_loc(err["loc"])
        found = err.get("input")
        if err["type"] in ("missing", "value_error"):
            found = None
        elif isinstance(found, (dict, list)):
            found = json_kind(found)
        expected, details = _expected(err), []
        rule = (err.get("ctx") or {}).get("error")
        if isinstance(rule, SchemaRule):
            expected, found = rule.expected, rule.found
            details.append(rule.detail)
        more = _other_problems(errors, err)
        if more:
            details.append(f"and {more} more wrong field{'s' if more != 1 else ''} after this one")
        raise ProblemError(field_path(loc), expected, found, file=file,
                           detail="; ".join(d for d in details if d) or None) from None
