"""SLA deadlines: clocks, the policy table from policies.toml, and the deadlines of a ticket.

Three clocks measure a duration from the moment a ticket is registered:

* ``continuous`` counts every instant: "Техническая поддержка доступна всем пользователям
  платформы круглосуточно без выходных".
* ``working_days`` counts only instants whose Moscow date is a working day, at any hour: "Время
  ожидания обращения в выходные и нерабочие дни не учитывается". 24 hours from Friday 15:00 end on
  Monday 15:00; "10 working days" is 10 × 24 counted hours.
* ``business_hours`` counts only instants inside the working window (10:00–19:00 Moscow time by
  default) of a working day: "в рабочие дни (понедельник - пятница с 10:00 до 19:00 по московскому
  времени)". No default rule uses it; it is there for an operator who reads the regulation so.

The deadline of a duration D from T is the *earliest* instant t >= T such that the counted time in
[T, t) equals D. Consequences, each covered by a property test:

* a zero duration ends at T itself, wherever T falls;
* a positive duration never ends in uncounted time, and never at the opening of a window: it ends
  inside a counted interval or exactly at its close. For ``business_hours`` the Moscow time of the
  deadline is in (10:00, 19:00] on a working day: 9 counted hours from Monday 10:00 end on Monday
  at 19:00, not on Tuesday at 10:00. For ``working_days`` the deadline is after 00:00 of a working
  day and at most the following 00:00 (which may be the first instant of a day off);
* durations add: ``add(add(T, a), b) == add(T, a + b)``.

Policies are rows keyed by plan, type and category; see services/data/policies.toml for the table
and the precedence rule. Words for deadlines belong to the bot's gettext layer: this module only
returns structured values (`describe_deadline`).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from services.quota import QuotaPolicy, UnknownPlan, quota_period
from services.working_calendar import MOSCOW, WorkingCalendar

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from services.catalog import Catalog

DEFAULT_POLICIES = Path(__file__).resolve().parent / "data" / "policies.toml"
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,23}$"  # the catalog's code pattern
RULE_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"


# --- clocks -------------------------------------------------------------------------------------


class Clock(StrEnum):
    CONTINUOUS = "continuous"
    WORKING_DAYS = "working_days"
    BUSINESS_HOURS = "business_hours"


@dataclass(frozen=True)
class BusinessHours:
    """The daily working window of the ``business_hours`` clock, in the calendar's zone."""

    opens: time = time(10, 0)
    closes: time = time(19, 0)

    def __post_init__(self) -> None:
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("business hours are local times without a zone")
        if not self.opens < self.closes:
            raise ValueError("business hours must open before they close on the same day")


DEFAULT_BUSINESS_HOURS = BusinessHours()

# A clock that counts nothing for this long is a broken calendar, not a long wait.
_IDLE_DAYS_LIMIT = 366 * 2


def add_duration(
    clock: Clock,
    start: datetime,
    duration: timedelta,
    calendar: WorkingCalendar,
    hours: BusinessHours = DEFAULT_BUSINESS_HOURS,
) -> datetime:
    """The earliest instant (aware, UTC) by which `clock` has counted `duration` since `start`.

    Runs in O(days spanned): whole counted intervals are subtracted day by day.
    """
    start = _as_utc(start, "start")
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    if clock is Clock.CONTINUOUS:
        return start + duration
    if duration == timedelta(0):
        return start
    remaining = duration
    day = start.astimezone(calendar.tz).date()
    idle_days = 0
    while True:
        interval = _counted_interval(clock, day, calendar, hours)
        if interval is not None:
            opens, closes = interval
            cursor = max(start, opens)
            if cursor < closes:
                idle_days = 0
                available = closes - cursor
                if remaining <= available:
                    return cursor + remaining
                remaining -= available
        idle_days += 1
        if idle_days > _IDLE_DAYS_LIMIT:
            raise ValueError(f"clock {clock} counts no time for {_IDLE_DAYS_LIMIT} days")
        day += timedelta(days=1)


def _counted_interval(
    clock: Clock, day: date, calendar: WorkingCalendar, hours: BusinessHours
) -> tuple[datetime, datetime] | None:
    """The UTC range [opens, closes) that `clock` counts on the local `day`, if any."""
    if not calendar.is_working_day(day):
        return None
    if clock is Clock.WORKING_DAYS:
        opens_at, closes_day, closes_at = time.min, day + timedelta(days=1), time.min
    else:
        opens_at, closes_day, closes_at = hours.opens, day, hours.closes
    # Local wall time to UTC through the zone, so that any offset change is honoured.
    opens = datetime.combine(day, opens_at, tzinfo=calendar.tz).astimezone(UTC)
    closes = datetime.combine(closes_day, closes_at, tzinfo=calendar.tz).astimezone(UTC)
    return opens, closes


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(UTC)


# --- durations in the policy file ---------------------------------------------------------------

_DURATION_RE = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")


def parse_duration(text: str) -> timedelta:
    """``"24h"``, ``"10d"``, ``"1d12h"``, ``"90m"``. A day is 24 hours of the clock's counted
    time: on ``working_days`` "10d" is ten working days."""
    match = _DURATION_RE.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f'invalid duration {text!r}: write it like "24h", "10d" or "1d12h"')
    return timedelta(
        days=int(match["d"] or 0), hours=int(match["h"] or 0), minutes=int(match["m"] or 0)
    )


def _duration_from_file(value: Any) -> timedelta:
    if not isinstance(value, str):
        raise ValueError('a duration is a string like "24h", "10d" or "1d12h"')
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError("a duration must be longer than zero")
    return duration


Duration = Annotated[timedelta, BeforeValidator(_duration_from_file)]


# --- the policy table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SlaRule:
    """One row of the table: the keys it matches and the fields it sets (None: leaves unset)."""

    rule: str
    plan: str | None = None
    type: str | None = None
    category: str | None = None
    except_categories: frozenset[str] = frozenset()
    clock: Clock | None = None
    first_reaction: timedelta | None = None
    resolution: timedelta | None = None

    def matches(self, plan: str, type_code: str, category: str) -> bool:
        return (
            (self.plan is None or self.plan == plan)
            and (self.type is None or self.type == type_code)
            and (self.category is None or self.category == category)
            and category not in self.except_categories
        )

    @property
    def rank(self) -> tuple[bool, bool, bool]:
        """Precedence, highest first: a rule naming a plan outranks one that does not, then one
        naming a category, then one naming a type. So a rule naming a superset of another's keys
        always wins, and a plan's promise ("Премиум — 3 часа") overrides the general rows."""
        return (self.plan is not None, self.category is not None, self.type is not None)


@dataclass(frozen=True)
class SlaPolicy:
    """The resolved policy of one ticket; `rules` names the rows it came from."""

    clock: Clock
    first_reaction: timedelta
    resolution: timedelta | None
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Deadlines:
    first_reaction_due: datetime  # aware, UTC
    resolution_due: datetime | None  # aware, UTC
    policy: SlaPolicy


class NoSlaPolicy(LookupError):
    """No rule gives a clock or a first-reaction time for this ticket."""


class ScopeRefusal(StrEnum):
    TYPE_NOT_COVERED = "type_not_covered"
    CATEGORY_NOT_COVERED = "category_not_covered"
    MONTHLY_LIMIT_REACHED = "monthly_limit_reached"


@dataclass(frozen=True)
class SupportScope:
    """What a plan may file. None in a field means "no restriction"."""

    plan: str
    types: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    system_errors_only: bool = False
    monthly_tickets: int | None = None


@dataclass(frozen=True)
class ScopeDecision:
    allowed: bool
    refusal: ScopeRefusal | None
    monthly_limit: int | None
    # With a monthly limit: tickets left this month, counting this one if it is allowed.
    left_this_month: int | None


@dataclass(frozen=True)
class Policies:
    """Everything policies.toml says, validated; build it with `load_policies`."""

    plans: tuple[str, ...]
    rules: tuple[SlaRule, ...]
    business_hours: BusinessHours
    scopes: Mapping[str, SupportScope]
    quota: QuotaPolicy
    source: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", MappingProxyType(dict(self.scopes)))

    def sla_policy(self, plan: str, type_code: str, category: str) -> SlaPolicy:
        """Each field comes from the highest-ranked matching rule that sets it."""
        if plan not in self.plans:
            raise UnknownPlan(plan)
        matching = sorted(
            (rule for rule in self.rules if rule.matches(plan, type_code, category)),
            key=lambda rule: rule.rank,
            reverse=True,
        )
        clock = next((rule for rule in matching if rule.clock is not None), None)
        first = next((rule for rule in matching if rule.first_reaction is not None), None)
        resolution = next((rule for rule in matching if rule.resolution is not None), None)
        if clock is None or clock.clock is None or first is None or first.first_reaction is None:
            raise NoSlaPolicy(
                f"no SLA rule gives a clock and a first reaction for plan {plan!r}, "
                f"type {type_code!r}, category {category!r}"
            )
        sources = {clock.rule, first.rule} | ({resolution.rule} if resolution else set())
        return SlaPolicy(
            clock=clock.clock,
            first_reaction=first.first_reaction,
            resolution=resolution.resolution if resolution else None,
            rules=tuple(rule.rule for rule in matching if rule.rule in sources),
        )

    def office_hours(self, policy: SlaPolicy) -> tuple[time, time] | None:
        """The working window to tell a merchant whose deadline counts working days only
        ("в рабочие дни (понедельник - пятница с 10:00 до 19:00 по московскому времени)");
        None for a round-the-clock deadline."""
        if policy.clock is Clock.CONTINUOUS:
            return None
        return self.business_hours.opens, self.business_hours.closes

    def scope_for(self, plan: str) -> SupportScope:
        if plan not in self.plans:
            raise UnknownPlan(plan)
        return self.scopes.get(plan) or SupportScope(plan=plan)


def compute_deadlines(
    policy: SlaPolicy,
    registered_at: datetime,
    calendar: WorkingCalendar,
    hours: BusinessHours = DEFAULT_BUSINESS_HOURS,
) -> Deadlines:
    """Both deadlines count from the registration of the ticket."""
    first = add_duration(policy.clock, registered_at, policy.first_reaction, calendar, hours)
    resolution = (
        add_duration(policy.clock, registered_at, policy.resolution, calendar, hours)
        if policy.resolution is not None
        else None
    )
    return Deadlines(first_reaction_due=first, resolution_due=resolution, policy=policy)


def deadlines_for(
    policies: Policies,
    calendar: WorkingCalendar,
    *,
    plan: str,
    type_code: str,
    category: str,
    registered_at: datetime,
) -> Deadlines:
    """The deadlines of a ticket of `plan`, `type_code` and `category` registered at the given
    moment."""
    policy = policies.sla_policy(plan, type_code, category)
    return compute_deadlines(policy, registered_at, calendar, policies.business_hours)


def check_scope(
    policies: Policies,
    *,
    plan: str,
    type_code: str,
    category: str,
    system_error: bool,
    tickets_this_month: int,
) -> ScopeDecision:
    """Whether a merchant on `plan` may file this ticket ("На бесплатном тарифном плане имеются
    ограничения на обращения"). `system_error` is the catalog's flag of the category;
    `tickets_this_month` counts the tickets already filed in the calendar month, Moscow time
    (`services.quota.quota_period` gives its bounds)."""
    scope = policies.scope_for(plan)
    limit = scope.monthly_tickets
    refusal: ScopeRefusal | None = None
    if scope.types is not None and type_code not in scope.types:
        refusal = ScopeRefusal.TYPE_NOT_COVERED
    elif not scope_allows(scope, type_code, category, system_error=system_error):
        refusal = ScopeRefusal.CATEGORY_NOT_COVERED
    elif limit is not None and tickets_this_month >= limit:
        refusal = ScopeRefusal.MONTHLY_LIMIT_REACHED
    filed_after = tickets_this_month + (1 if refusal is None else 0)
    return ScopeDecision(
        allowed=refusal is None,
        refusal=refusal,
        monthly_limit=limit,
        left_this_month=None if limit is None else max(limit - filed_after, 0),
    )


def scope_allows(scope: SupportScope, type_code: str, category: str, *, system_error: bool) -> bool:
    """Whether `scope` covers the category, leaving the monthly limit aside."""
    if scope.types is not None and type_code not in scope.types:
        return False
    if scope.categories is not None and category not in scope.categories:
        return False
    return system_error or not scope.system_errors_only


@dataclass(frozen=True)
class ScopeChoice:
    """A type a plan may file, with the categories of it the plan may file (in catalog order);
    `whole_type` when every category of the type is allowed."""

    type_code: str
    categories: tuple[str, ...]
    whole_type: bool


def scope_choices(policies: Policies, catalog: Catalog, plan: str) -> tuple[ScopeChoice, ...]:
    """What a merchant on `plan` may choose among the catalog's buttons, in the catalog's order:
    computed from the scope in policies.toml and the catalog, so a refusal can name it."""
    scope = policies.scope_for(plan)
    choices = []
    for request_type in catalog.types:
        allowed = tuple(
            category.code
            for category in request_type.categories
            if scope_allows(
                scope, request_type.code, category.code, system_error=category.system_error
            )
        )
        if allowed:
            choices.append(
                ScopeChoice(
                    type_code=request_type.code,
                    categories=allowed,
                    whole_type=len(allowed) == len(request_type.categories),
                )
            )
    return tuple(choices)


def working_day_types(policies: Policies, catalog: Catalog, plan: str) -> tuple[str, ...]:
    """The type codes (catalog order) whose deadlines on `plan` count working days only, for any
    of their categories: the bot says the office hours for these."""
    return tuple(
        request_type.code
        for request_type in catalog.types
        if any(
            policies.sla_policy(plan, request_type.code, category.code).clock
            is not Clock.CONTINUOUS
            for category in request_type.categories
        )
    )


def ticket_month(at: datetime) -> tuple[datetime, datetime]:
    """The calendar month (Moscow time) that a monthly ticket limit counts, as UTC [start, end)."""
    return quota_period(at, MOSCOW)


# --- describing a deadline ----------------------------------------------------------------------


class PhraseKind(StrEnum):
    OVERDUE = "overdue"
    WITHIN_HOURS = "within_hours"  # "within {hours} hours"
    TODAY = "today"  # "today at {time}" / "by the end of today"
    TOMORROW = "tomorrow"
    WEEKDAY = "weekday"  # "on {weekday} at {time}", within the coming week
    DATE = "date"  # "on {date} at {time}"


@dataclass(frozen=True)
class DeadlinePhrase:
    """What the bot needs to word a deadline in any language."""

    kind: PhraseKind
    local: datetime  # the deadline in the merchant-facing zone
    day: date  # the day to name: the day before `local` when `end_of_day`
    end_of_day: bool  # `local` is 00:00: say "by the end of {day}", not "{day+1} at 00:00"
    weekday: int  # of `day`, Monday = 0
    hours: int | None  # WITHIN_HOURS only: whole hours, rounded up, at least 1
    remaining: timedelta  # due - now; negative when overdue


def describe_deadline(
    now: datetime,
    due: datetime,
    tz: ZoneInfo = MOSCOW,
    *,
    within_hours_limit: timedelta = timedelta(hours=6),
) -> DeadlinePhrase:
    """Classify `due` as seen at `now` in `tz`: overdue, within N hours (up to
    `within_hours_limit`), today, tomorrow, a weekday of the coming week, or a date."""
    now = _as_utc(now, "now")
    due = _as_utc(due, "due")
    remaining = due - now
    local = due.astimezone(tz)
    end_of_day = local.time() == time.min
    day = local.date() - timedelta(days=1) if end_of_day else local.date()
    days_ahead = (day - now.astimezone(tz).date()).days
    hours: int | None = None
    if remaining < timedelta(0):
        kind = PhraseKind.OVERDUE
    elif remaining <= within_hours_limit:
        kind = PhraseKind.WITHIN_HOURS
        hours = max(1, math.ceil(remaining / timedelta(hours=1)))
    elif days_ahead <= 0:
        kind = PhraseKind.TODAY
    elif days_ahead == 1:
        kind = PhraseKind.TOMORROW
    elif days_ahead <= 6:
        kind = PhraseKind.WEEKDAY
    else:
        kind = PhraseKind.DATE
    return DeadlinePhrase(
        kind=kind,
        local=local,
        day=day,
        end_of_day=end_of_day,
        weekday=day.weekday(),
        hours=hours,
        remaining=remaining,
    )


# --- loading policies.toml ----------------------------------------------------------------------


class PolicyFileError(Exception):
    """policies.toml is missing or invalid; start-up stops with this one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _RuleModel(_Strict):
    rule: str = Field(pattern=RULE_PATTERN)
    cite: str | None = None  # the regulation's words, for people reading the file
    plan: str | None = Field(default=None, pattern=CODE_PATTERN)
    type: str | None = Field(default=None, pattern=CODE_PATTERN)
    category: str | None = Field(default=None, pattern=CODE_PATTERN)
    except_categories: tuple[Annotated[str, Field(pattern=CODE_PATTERN)], ...] = ()
    clock: Clock | None = None
    first_reaction: Duration | None = None
    resolution: Duration | None = None

    @model_validator(mode="after")
    def _sets_something(self) -> _RuleModel:
        if self.clock is None and self.first_reaction is None and self.resolution is None:
            raise ValueError("a rule must set clock, first_reaction or resolution")
        if self.category is not None and self.except_categories:
            raise ValueError("a rule for one category cannot also except categories")
        return self


class _BusinessHoursModel(_Strict):
    opens: time = time(10, 0)
    closes: time = time(19, 0)

    @model_validator(mode="after")
    def _ordered(self) -> _BusinessHoursModel:
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("business hours are local times without a zone")
        if not self.opens < self.closes:
            raise ValueError("opens must be before closes")
        return self


class _ScopeModel(_Strict):
    types: tuple[Annotated[str, Field(pattern=CODE_PATTERN)], ...] | None = None
    categories: tuple[Annotated[str, Field(pattern=CODE_PATTERN)], ...] | None = None
    system_errors_only: bool = False
    monthly_tickets: int | None = Field(default=None, ge=0)


class _QuotaModel(_Strict):
    allowance: dict[str, Annotated[int, Field(ge=0)]]
    free_minutes_limit: int = Field(default=15, ge=0)
    price_beyond: int = Field(ge=0)
    currency: str = Field(default="RUB", pattern=r"^[A-Z]{3}$")


class _PolicyFileModel(_Strict):
    plans: tuple[Annotated[str, Field(pattern=CODE_PATTERN)], ...] = Field(min_length=1)
    business_hours: _BusinessHoursModel = _BusinessHoursModel()
    sla: tuple[_RuleModel, ...] = Field(min_length=1)
    scope: dict[str, _ScopeModel] = {}
    quota: _QuotaModel

    @model_validator(mode="after")
    def _cross_references(self) -> _PolicyFileModel:
        plans = set(self.plans)
        if len(plans) != len(self.plans):
            raise ValueError("plans: duplicate plan codes")
        names: dict[str, int] = {}
        keys: dict[tuple[str | None, str | None, str | None], str] = {}
        for index, rule in enumerate(self.sla):
            where = f"sla.{index} (rule {rule.rule!r})"
            if rule.rule in names:
                raise ValueError(f"{where}: rule name already used by sla.{names[rule.rule]}")
            names[rule.rule] = index
            if rule.plan is not None and rule.plan not in plans:
                raise ValueError(f"{where}.plan: unknown plan {rule.plan!r}")
            key = (rule.plan, rule.type, rule.category)
            if key in keys:
                # Equal keys would have equal rank: which one wins would be an accident.
                raise ValueError(f"{where}: same plan, type and category as rule {keys[key]!r}")
            keys[key] = rule.rule
        for plan in self.scope:
            if plan not in plans:
                raise ValueError(f"scope.{plan}: unknown plan {plan!r}")
        missing = sorted(plans - set(self.quota.allowance))
        if missing:
            raise ValueError(f"quota.allowance: missing plans: {', '.join(missing)}")
        extra = sorted(set(self.quota.allowance) - plans)
        if extra:
            raise ValueError(f"quota.allowance: unknown plans: {', '.join(extra)}")
        return self


def load_policies(path: Path = DEFAULT_POLICIES) -> Policies:
    """Read and validate policies.toml once, at start-up."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        model = _PolicyFileModel.model_validate(raw)
    except FileNotFoundError as error:
        raise PolicyFileError(f"SLA policies {path}: file not found") from error
    except tomllib.TOMLDecodeError as error:
        raise PolicyFileError(f"SLA policies {path}: not valid TOML: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        where = _field_path(first["loc"], raw)
        message = first["msg"].removeprefix("Value error, ")
        detail = f"{where}: {message}" if where else message
        raise PolicyFileError(f"SLA policies {path}: {detail}") from error
    return Policies(
        plans=model.plans,
        rules=tuple(
            SlaRule(
                rule=rule.rule,
                plan=rule.plan,
                type=rule.type,
                category=rule.category,
                except_categories=frozenset(rule.except_categories),
                clock=rule.clock,
                first_reaction=rule.first_reaction,
                resolution=rule.resolution,
            )
            for rule in model.sla
        ),
        business_hours=BusinessHours(
            opens=model.business_hours.opens, closes=model.business_hours.closes
        ),
        scopes={
            plan: SupportScope(
                plan=plan,
                types=None if scope.types is None else frozenset(scope.types),
                categories=None if scope.categories is None else frozenset(scope.categories),
                system_errors_only=scope.system_errors_only,
                monthly_tickets=scope.monthly_tickets,
            )
            for plan, scope in model.scope.items()
        },
        quota=QuotaPolicy(
            allowance=dict(model.quota.allowance),
            free_minutes_limit=model.quota.free_minutes_limit,
            price_beyond=model.quota.price_beyond,
            currency=model.quota.currency,
            tz=MOSCOW,
        ),
        source=path,
    )


def _field_path(loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    """``sla.6.first_reaction`` -> ``sla.6 (rule 'premium').first_reaction``: name the row."""
    parts = [str(part) for part in loc]
    if len(loc) >= 2 and loc[0] == "sla" and isinstance(loc[1], int):
        try:
            name = raw["sla"][loc[1]]["rule"]
        except (KeyError, IndexError, TypeError):
            name = None
        if isinstance(name, str):
            parts[1] = f"{loc[1]} (rule {name!r})"
    return ".".join(parts)


def check_against_catalog(policies: Policies, catalog: Catalog) -> None:
    """Start-up check that policies.toml and catalog.toml agree: every code a rule or a scope names
    exists (a category under the type the rule names), and every plan, type and category of the
    catalog resolves to a policy. Raises one `PolicyFileError` listing the problems."""
    problems: list[str] = []
    type_of = {
        category.code: request_type.code
        for request_type in catalog.types
        for category in request_type.categories
    }
    types = {request_type.code for request_type in catalog.types}
    for rule in policies.rules:
        if rule.type is not None and rule.type not in types:
            problems.append(f"rule {rule.rule!r}: unknown type {rule.type!r}")
        for code in filter(None, [rule.category, *sorted(rule.except_categories)]):
            if code not in type_of:
                problems.append(f"rule {rule.rule!r}: unknown category {code!r}")
            elif rule.type is not None and type_of[code] != rule.type:
                problems.append(f"rule {rule.rule!r}: category {code!r} is not of {rule.type!r}")
    for plan, scope in policies.scopes.items():
        for code in sorted(scope.types or ()):
            if code not in types:
                problems.append(f"scope {plan!r}: unknown type {code!r}")
        for code in sorted(scope.categories or ()):
            if code not in type_of:
                problems.append(f"scope {plan!r}: unknown category {code!r}")
            elif scope.types is not None and type_of[code] not in scope.types:
                problems.append(
                    f"scope {plan!r}: category {code!r} is of type {type_of[code]!r}, "
                    "which the scope does not allow"
                )
        if not scope_choices(policies, catalog, plan):
            problems.append(f"scope {plan!r}: allows no category of the catalog")
    for plan in policies.plans:
        for category, type_code in type_of.items():
            try:
                policies.sla_policy(plan, type_code, category)
            except NoSlaPolicy as error:
                problems.append(str(error))
    if problems:
        where = policies.source or "policies"
        raise PolicyFileError(f"SLA policies {where}: " + "; ".join(problems))
