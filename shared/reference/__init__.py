"""Reference data every service reads: the agency tree, the procedure catalogue and the
working-day calendar, as validated files under ``data/`` and ``calendar/``.

The level structure is data: the three-level variant (province, district, commune) and the
two-level one (province, commune) run on the same code; ``LGSP_REFERENCE_VARIANT`` chooses.
"""
