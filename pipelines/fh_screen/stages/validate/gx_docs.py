"""Data Docs pages rendered with one Jinja environment per process.

Great Expectations' page views each build their own Jinja ``Environment``, and Jinja keeps
compiled templates per environment. So every site section (expectations, validations,
profiling) and the index compiled the same templates again, and so did every night a
process runs (the test suite runs many): about 0.3 CPU s a night, most of the Data Docs'
cost. These views are GX's own page views, named in the site's configuration
(``gx_runner.docs_site_config``, GX's supported ``view`` setting of a site section and of
the index builder); they differ only in sharing one environment, so the pages are the same.

The environment is keyed by the custom styles and views folders GX hands a view (none in
this pipeline). Its filters are bound to the first view made: GX's filters read nothing of
a view but those folders, which the key fixes.
"""

from __future__ import annotations

from typing import ClassVar

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import Environment


class _SharedEnvironment:
    """Mixin: take the environment of an earlier view with the same folders, else make it."""

    _environments: ClassVar[dict[tuple, Environment]] = {}

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        key = (custom_styles_directory, custom_views_directory)
        shared = _SharedEnvironment._environments.get(key)
        if shared is None:
            super().__init__(custom_styles_directory, custom_views_directory)
            _SharedEnvironment._environments[key] = self.env
        else:
            self.custom_styles_directory = custom_styles_directory
            self.custom_views_directory = custom_views_directory
            self.env = shared


class PageView(_SharedEnvironment, DefaultJinjaPageView):
    """GX's page of a suite or a validation result."""


class IndexPageView(_SharedEnvironment, DefaultJinjaIndexPageView):
    """GX's index page of the site."""
