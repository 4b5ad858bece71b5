"""The app's routes, flat: which template and which methods serve a path, outside routing.

Two answers need this before (or without) routing: a 405's `Allow` header, which must name
every method the path serves (RFC 9110 §15.5.6) while Starlette names only the first route
that matched and FastAPI makes one route per method; and the metrics label of an answer the
Idempotency-Key middleware gives before routing (a replay, a key problem).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

UNMATCHED = "unmatched"


class RouteTable:
    """Routes with a path template and methods, in the order the app tries them."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.routes = tuple(r for r in routes if isinstance(r, Route) and r.methods)

    def template(self, scope: Scope) -> str:
        """The template of the route serving this request, else of one serving its path."""
        partial: str | None = None
        for route in self.routes:
            match = route.matches(scope)[0]
            if match is Match.FULL:
                return route.path
            if match is Match.PARTIAL and partial is None:
                partial = route.path
        return partial or UNMATCHED

    def allowed(self, scope: Scope) -> str:
        """The methods every route serving this request's path accepts, for `Allow`."""
        methods: set[str] = set()
        for route in self.routes:
            if route.matches(scope)[0] is not Match.NONE:
                methods.update(route.methods or ())
        return ", ".join(sorted(methods))


def route_table_of(scope: Scope) -> RouteTable:
    """The table the app factory left on the app's state (empty for a bare app)."""
    found = getattr(scope["app"].state, "route_table", None)
    return found if isinstance(found, RouteTable) else RouteTable(())
