"""Request dispatch by path prefix: a request is matched only against the routes that can serve its path.

Starlette and FastAPI match a request by trying every route of the app in order (here ~250 routes in ~25 included
routers, each try a regular expression and some bookkeeping), so the cost of routing grew with every API added and
a TMF request near the end of the list paid for all the routes before it. The dispatcher indexes the routes by the
literal part of their path and hands each request to a *view* of the app's router that holds only the routes that
can match it, in their original order; the framework's own matching then runs on that short list unchanged.

**The rule.** A route's *static prefix* is the sequence of complete path segments before its first path parameter
(``/tmf-api/party/v4/individual/{id}`` → ``tmf-api/party/v4/individual``; a mount ``/selfcare/assets`` →
``selfcare/assets``; a route without parameters → all its segments). A route can match a path only if its static
prefix is a prefix of the path's segments, so a request is matched against the routes whose static prefix is a
prefix of its path, plus, when the path does not end with ``/``, the routes registered at ``<path>/`` (what the
framework's trailing-slash redirect looks for). Routes whose path cannot be known (a ``Host`` route, a router
included without paths, low-priority "frontend" routes) are candidates for every request. Inside an included
router the same rule narrows the router's own routes. Order, first-full-match-wins, ``405`` with ``Allow`` for a
path served with other methods, ``404``, trailing-slash redirects, path parameters, mounts, ``scope["route"]`` and
``url_for`` behave exactly as without the dispatcher (``url_for`` sees the whole app).

**Routes added later.** The index is built on the first request and rebuilt on the first request after the app's
routes change: it compares, on every request, the number of routes of the app and of every router included in it
with the numbers it was built from (so ``app.mount(...)`` or ``include_router(...)`` after start-up, as the demo
does for its identity providers, takes effect on the next request). Code that *replaces* a route in place, keeping
the count, or assigns a new list to an included router's ``routes``, calls ``invalidate()``. OpenAPI generation
reads ``app.routes``, which the dispatcher never changes.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Mount, Route, Router, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

try:  # FastAPI versions that include routers lazily (an "included router" entry instead of copied routes)
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI copies the routes of an included router into the app's list
    iter_route_contexts = None  # type: ignore[assignment]

Key = tuple[str, ...]
#: the static prefix of a route that may serve any path
ANYWHERE: Key = ()


def static_prefix(path: str | None, *, mount: bool = False) -> Key:
    """The complete literal path segments of a route path before its first parameter."""
    if path is None or (path and not path.startswith("/")):
        return ANYWHERE
    literal, brace, _ = (path + "/{path:path}" if mount else path).partition("{")
    parts = literal.split("/")[1:]
    if brace:  # the last part is incomplete (a parameter follows in the same segment) or empty after a '/'
        parts = parts[:-1]
    return tuple(parts)


def route_prefix(route: BaseRoute, path: str | None) -> Key:
    """The static prefix of ``route`` served at ``path``; routes of other kinds (``Host``, custom matching) may
    serve any path."""
    if isinstance(route, Mount):
        return static_prefix(path, mount=True)
    if isinstance(route, (Route, WebSocketRoute)):
        return static_prefix(path)
    return ANYWHERE


def _is_included_router(route: BaseRoute) -> bool:
    return dataclasses.is_dataclass(route) and isinstance(getattr(route, "original_router", None), Router)


def _has_low_priority_routes(router: Router) -> bool:
    if getattr(router, "_low_priority_routes", None):
        return True
    return any(_has_low_priority_routes(r.original_router)  # type: ignore[attr-defined]
               for r in router.routes if _is_included_router(r))


def _leaf_prefixes(entry: BaseRoute) -> dict[int, set[Key]]:
    """For an included router: the static prefixes of its routes, by the id of each (original) route."""
    out: dict[int, set[Key]] = {}
    assert iter_route_contexts is not None
    for rc in iter_route_contexts([entry]):
        original = rc.original_route
        out.setdefault(id(original), set()).add(route_prefix(original, rc.path))
    return out


class _Node:
    __slots__ = ("children", "key", "lineage", "slash_view", "view")

    def __init__(self, key: Key, lineage: tuple[_Node, ...]) -> None:
        self.key = key
        self.children: dict[str, _Node] = {}
        self.lineage = (*lineage, self)  # the root ... this node
        self.view: Router | None = None
        self.slash_view: Router | None = None


class PrefixDispatcher:
    """Installed as the innermost layer of the app's router (see ``install_dispatcher``)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._fallback: ASGIApp = router.app
        self._root = _Node(ANYWHERE, ())
        #: the route lists the index was built from (the app's, then each included router's) and their lengths
        self._lists: list[list[BaseRoute]] = []
        self._lengths: tuple[int, ...] = ()
        #: per top-level entry: the keys it is registered at, and (for included routers) the keys of each route
        self._entry_keys: list[set[Key]] = []
        self._child_keys: list[dict[int, set[Key]] | None] = []

    # --- index ----------------------------------------------------------------------------------------------
    def invalidate(self) -> None:
        self._lists = []

    def _fresh(self) -> bool:
        lists = self._lists
        return bool(lists) and self.router.routes is lists[0] and tuple(map(len, lists)) == self._lengths

    def _node(self, key: Key) -> _Node:
        node = self._root
        for i, segment in enumerate(key):
            child = node.children.get(segment)
            if child is None:
                child = node.children[segment] = _Node(key[: i + 1], node.lineage)
            node = child
        return node

    def _build(self) -> None:
        routes = self.router.routes
        self._root = _Node(ANYWHERE, ())
        self._entry_keys, self._child_keys = [], []
        lists: list[list[BaseRoute]] = [routes]
        for entry in routes:
            keys: set[Key]
            children: dict[int, set[Key]] | None = None
            if _is_included_router(entry):
                inner: Router = entry.original_router  # type: ignore[attr-defined]
                lists.append(inner.routes)
                lists.extend(r.original_router.routes for r in _walk_included(inner))  # type: ignore[attr-defined]
                if iter_route_contexts is None or _has_low_priority_routes(inner):
                    keys = {ANYWHERE}
                else:
                    children = _leaf_prefixes(entry)
                    keys = set().union(*children.values()) if children else {ANYWHERE}
            else:
                keys = {route_prefix(entry, getattr(entry, "path", None))}
            for key in keys:
                self._node(key)
            self._entry_keys.append(keys)
            self._child_keys.append(children)
        self._lists, self._lengths = lists, tuple(map(len, lists))

    # --- views ----------------------------------------------------------------------------------------------
    def _view(self, node: _Node, with_slash_child: bool) -> Router:
        keys = {n.key for n in node.lineage}
        if with_slash_child and "" in node.children:
            keys.add(node.children[""].key)
        kept: list[BaseRoute] = []
        for entry, entry_keys, children in zip(self.router.routes, self._entry_keys, self._child_keys, strict=True):
            if entry_keys.isdisjoint(keys):
                continue
            kept.append(entry if children is None else self._narrow(entry, children, keys))
        view = copy.copy(self.router)
        view.routes = kept
        return view

    def _narrow(self, entry: BaseRoute, children: dict[int, set[Key]], keys: set[Key]) -> BaseRoute:
        """The included router ``entry`` restricted to its routes that can serve a path under ``keys``."""
        inner: Router = entry.original_router  # type: ignore[attr-defined]
        kept = [r for r in inner.routes
                if _is_included_router(r) or id(r) not in children or not children[id(r)].isdisjoint(keys)]
        if len(kept) == len(inner.routes):
            return entry
        narrowed = copy.copy(inner)
        narrowed.routes = kept
        try:
            return type(entry)(original_router=narrowed, include_context=entry.include_context)  # type: ignore[call-arg,attr-defined]
        except (TypeError, AttributeError):  # pragma: no cover - an included-router type this code does not know
            return entry

    def view_for(self, path: str) -> Router:
        """The router view that serves ``path`` (a route path, i.e. without the app's root path)."""
        if not self._fresh():
            self._build()
        node = self._root
        consumed = True
        for segment in path.split("/")[1:]:
            child = node.children.get(segment)
            if child is None:
                consumed = False
                break
            node = child
        if consumed and not path.endswith("/"):
            if node.slash_view is None:
                node.slash_view = self._view(node, with_slash_child=True)
            return node.slash_view
        if node.view is None:
            node.view = self._view(node, with_slash_child=False)
        return node.view

    def candidates(self, path: str) -> list[BaseRoute]:
        return list(self.view_for(path).routes)

    # --- ASGI -----------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._fallback(scope, receive, send)
            return
        view = self.view_for(_route_path(scope))
        if "router" not in scope:
            scope["router"] = self.router  # url_for and friends see every route, not the view
        await view.app(scope, receive, send)


def _walk_included(router: Router) -> Iterable[BaseRoute]:
    for r in router.routes:
        if _is_included_router(r):
            yield r
            yield from _walk_included(r.original_router)  # type: ignore[attr-defined]


def _route_path(scope: Scope) -> str:
    """The path the routes match (Starlette's ``get_route_path``: the path without the app's root path)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path):] if path[len(root_path)] == "/" else path


def install_dispatcher(app: Any) -> PrefixDispatcher:
    """Route the requests of a Starlette/FastAPI ``app`` through a ``PrefixDispatcher`` (idempotent)."""
    router: Router = app.router
    current = router.middleware_stack
    if isinstance(current, PrefixDispatcher):
        return current
    if current != router.app:
        raise RuntimeError("the app's router has its own middleware; install the dispatcher before adding it")
    dispatcher = PrefixDispatcher(router)
    router.middleware_stack = dispatcher
    return dispatcher
