"""The regulation's data, loaded and cross-checked once at start-up: catalog, SLA and quota
policies, and the Russian working calendar."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from services import sla
from services.catalog import DEFAULT_CATALOG, Catalog, load_catalog
from services.queue.base import Priority
from services.working_calendar import WorkingCalendar

# Merchants who have not linked a store yet get the deadlines of a regular paid plan: the
# regulation's general promise. Their tickets show no quota (it belongs to a store).
UNLINKED_PLAN = "site"

# A ticket's priority in the queue follows the plan: premium promises the shortest reaction,
# free the longest. A plan not named here (a new one in policies.toml) is normal.
PLAN_PRIORITY = {
    "premium": Priority.HIGH,
    "combo": Priority.NORMAL,
    "site": Priority.NORMAL,
    "free": Priority.LOW,
}
# Labels in the queue are for its specialists, who read Russian.
QUEUE_LOCALE = "ru"


class UnlinkedFiling(StrEnum):
    """What a Telegram user linked to no store may file (UNLINKED_MAY_FILE). The regulation takes
    requests from a store's admin panel, so by default a request belongs to a store: nothing."""

    NONE = "none"
    # Technical requests that touch no account (services/intake.py decides from the catalog).
    TECHNICAL = "technical"


@dataclass(frozen=True)
class IntakePolicy:
    """The operator's choices about who may file what, from the settings."""

    unlinked_may_file: UnlinkedFiling = UnlinkedFiling.NONE
    # Requests one merchant may file in an hour (flood control; services/intake.py).
    tickets_per_hour: int = 10


@dataclass(frozen=True)
class Regulation:
    catalog: Catalog
    policies: sla.Policies
    calendar: WorkingCalendar
    intake: IntakePolicy = field(default_factory=IntakePolicy)

    def priority_for(self, plan: str | None) -> Priority:
        return PLAN_PRIORITY.get(plan or UNLINKED_PLAN, Priority.NORMAL)

    def labels(self, type_code: str, category: str) -> tuple[str | None, str | None]:
        """The type's and the category's labels as a specialist reads them (None: unknown)."""
        request_type = self.catalog.type(type_code)
        found = request_type.category(category) if request_type else None
        return (
            request_type.label.get(QUEUE_LOCALE) if request_type else None,
            found.label.get(QUEUE_LOCALE) if found else None,
        )

    def deadlines(
        self, *, plan: str | None, type_code: str, category: str, registered_at: datetime
    ) -> sla.Deadlines:
        return sla.deadlines_for(
            self.policies,
            self.calendar,
            plan=plan or UNLINKED_PLAN,
            type_code=type_code,
            category=category,
            registered_at=registered_at,
        )


def load_regulation(
    catalog_path: Path = DEFAULT_CATALOG,
    policies_path: Path = sla.DEFAULT_POLICIES,
    intake: IntakePolicy | None = None,
) -> Regulation:
    """Raises CatalogError or PolicyFileError with one line that names the file and the field."""
    catalog = load_catalog(catalog_path)
    policies = sla.load_policies(policies_path)
    sla.check_against_catalog(policies, catalog)
    return Regulation(
        catalog=catalog,
        policies=policies,
        calendar=WorkingCalendar.russian(),
        intake=intake or IntakePolicy(),
    )
