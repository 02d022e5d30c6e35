"""Reference data every service reads: the agency tree, the procedure catalogue and the
working-day calendar, as validated files under ``data/`` and ``calendar/``.

The level structure is data: the three-level variant (province, district, commune) and the
two-level one (province, commune) run on the same code; ``LGSP_REFERENCE_VARIANT`` chooses.
"""

from dataclasses import dataclass

from shared.reference.calendar import WorkingCalendar
from shared.reference.catalogue import Catalogue, load_catalogue


@dataclass(frozen=True)
class Reference:
    catalogue: Catalogue
    calendar: WorkingCalendar


def load_reference(variant: str) -> Reference:
    """Load and validate everything; inconsistent files stop the service at start."""
    return Reference(load_catalogue(variant), WorkingCalendar.load())
