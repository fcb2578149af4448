"""The coverage dashboard: web pages that regional governments read, served by the reporting service from its
read model (routes.py), in Bahasa Indonesia and English (i18n.py), every chart drawn in the browser from the
table beside it (views.py, tables.py, templates/, static/). docs/dashboard.md describes it.
"""

from services.reporting.dashboard.routes import Dashboard

__all__ = ["Dashboard"]
