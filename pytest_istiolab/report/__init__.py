"""What a run reports: the per-lab, per-check conformance result, failure diagnostics, and the
pytest glue that shows them (report header, terminal summary, report sections, pytest-html).

May import pytest (with plugin.py and fixtures.py, the only places that do). Its modules are
imported one by one (``from pytest_istiolab.report import diagnostics``): none is re-exported.
"""
