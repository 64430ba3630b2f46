"""``covid19-images browse``: the live browser, a Starlette app served by uvicorn on 127.0.0.1.

Why this stack: Starlette is a small, well-kept ASGI toolkit (routing, static files, trusted
hosts, a test client) without an ORM or a form layer we would not use; uvicorn is its reference
server; Jinja2 renders the pages with autoescaping, and the same templates write the static
catalog (``browse --export``). The pages need no JavaScript at all (mask toggles are CSS, charts
are HTML bars whose segments are links), so there is no client build step and the published
catalog opens from ``file://``.

Safety: only ``127.0.0.1`` is bound, and only ``127.0.0.1``/``localhost`` Host headers are
answered (a DNS-rebinding page cannot reach it). Pictures are served by manifest id, looked
up, never joined to a folder. Every refusal is a small error page with a 4xx status (400 bad
parameter, 403 writing without ``--review``, 404 unknown id or page); debug tracebacks are
never shown. A decision is recorded only when the server was started with ``--review`` and
the form carries this server's random token (another site cannot post one).
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from covid19_images.browse import pages
from covid19_images.browse.collection import BadRequest, Collection, NotFound, page_number
from covid19_images.browse.links import ServerLinks
from covid19_images.browse.render import STATIC, render
from covid19_images.browse.review import candidate_pairs
from covid19_images.browse.thumbnails import DISPLAY_SIZE, THUMB_SIZE, Renderer
from covid19_images.manifest.build import MANIFEST_FILE
from covid19_images.manifest.duplicates import CONFIRM_MSE, NEAR_ACCEPT, NEAR_CANDIDATE
from covid19_images.manifest.reviews import ReviewError, append_review

HOST = "127.0.0.1"
_MAX_FORM = 16_384
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Browser:
    """The app's state: the collection (reloaded when a sync replaces the manifest) and the renderer."""

    def __init__(self, root: Path, *, review: bool = False, cache_dir: Path | None = None) -> None:
        self.root = Path(root).resolve()
        self.review = review
        self.token = secrets.token_urlsafe(24)
        self.renderer = Renderer(self.root, cache_dir)
        self.links = ServerLinks()
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._collection: Collection | None = None

    def collection(self) -> Collection:
        try:
            stat = (self.root / MANIFEST_FILE).stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if self._collection is None or stamp != self._stamp:
                self._collection = Collection(self.root)
                self._stamp = stamp
            return self._collection

    def page(self, template: str, status: int = 200, **context) -> HTMLResponse:
        total = len(self.collection().manifest)
        return HTMLResponse(
            render(template, self.links, total, **context), status_code=status, headers=SECURITY_HEADERS
        )


def _one_value_each(request: Request) -> dict[str, str]:
    items = request.query_params.multi_items()
    if len({k for k, _ in items}) != len(items):
        raise BadRequest("each parameter may be given once")
    return dict(items)


def _picture(data: bytes, media: str) -> Response:
    return Response(data, media_type=media, headers={**SECURITY_HEADERS, "Cache-Control": "max-age=3600"})


def make_app(root: Path, *, review: bool = False, cache_dir: Path | None = None) -> Starlette:
    """The browser for ``root``; ``review`` allows recording duplicate decisions."""
    browser = Browser(root, review=review, cache_dir=cache_dir)

    def sources(request: Request) -> Response:
        if request.query_params:
            raise BadRequest("this page takes no parameters")
        collection = browser.collection()
        return browser.page("sources.html", cards=collection.remember("cards", lambda: pages.source_cards(collection)))

    def source(request: Request) -> Response:
        collection = browser.collection()
        name = request.path_params["name"]
        cards = [c for c in collection.remember("cards", lambda: pages.source_cards(collection)) if c["name"] == name]
        if not cards:
            raise NotFound("no such source")
        examples = [pages.card(collection, p) for p in pages.source_examples(collection, name)]
        return browser.page("source.html", c=cards[0], examples=examples)

    def grid(request: Request) -> Response:
        collection = browser.collection()
        query = _one_value_each(request)
        filters = collection.parse_filters(query)
        return browser.page("grid.html", **pages.grid(collection, filters, page_number(query.get("page"))))

    def image(request: Request) -> Response:
        return browser.page("image.html", **pages.image(browser.collection(), request.path_params["image_id"]))

    def thumb(request: Request) -> Response:
        row = browser.collection().row(request.path_params["image_id"])
        return _picture(*browser.renderer.picture(row, THUMB_SIZE))

    def display(request: Request) -> Response:
        row = browser.collection().row(request.path_params["image_id"])
        return _picture(*browser.renderer.picture(row, DISPLAY_SIZE))

    def overlay(request: Request) -> Response:
        collection = browser.collection()
        image_id = request.path_params["image_id"]
        row = collection.row(image_id)
        annotation = collection.annotation(request.path_params["annotation_id"], image_id)
        if annotation["kind"] != "mask":
            raise NotFound("that annotation is not a mask")
        return _picture(browser.renderer.overlay(row, annotation), "image/png")

    def difference(request: Request) -> Response:
        collection = browser.collection()
        a, b = collection.row(request.path_params["a"]), collection.row(request.path_params["b"])
        return _picture(browser.renderer.difference(a, b), "image/png")

    def review_page(request: Request, message: str = "", reviewer: str = "") -> Response:
        collection = browser.collection()
        pairs = candidate_pairs(collection)
        ids = {i for p in pairs for i in (p.a, p.b)}
        rows = {i: collection.row(i) for i in ids}
        return browser.page(
            "review.html",
            pairs=pairs,
            names={i: pages.inside_source(r) for i, r in rows.items()},
            sources={i: r["source"] for i, r in rows.items()},
            reviewing=browser.review,
            token=browser.token,
            message=message,
            reviewer=reviewer,
            accept=NEAR_ACCEPT,
            candidate=NEAR_CANDIDATE,
            confirm=CONFIRM_MSE,
        )

    def review(request: Request) -> Response:
        if request.query_params:
            raise BadRequest("this page takes no parameters")
        return review_page(request)

    async def record(request: Request) -> Response:
        if not browser.review:
            raise HTTPException(403, "read-only: start `covid19-images browse --review` to record decisions")
        body = await request.body()
        if len(body) > _MAX_FORM:
            raise BadRequest("form too large")
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), strict_parsing=False).items()}
        except UnicodeDecodeError as err:
            raise BadRequest("form is not UTF-8") from err
        if not secrets.compare_digest(form.get("token", ""), browser.token):
            raise HTTPException(403, "this form did not come from this server")
        collection = browser.collection()
        a, b = collection.row(form.get("a", "")), collection.row(form.get("b", ""))
        try:
            append_review(
                browser.root,
                str(a["sha256"]),
                str(b["sha256"]),
                form.get("decision", ""),
                reviewer=form.get("reviewer", ""),
                reason=form.get("reason", ""),
                image_ids=(str(a["image_id"]), str(b["image_id"])),
            )
        except ReviewError as err:
            raise BadRequest(str(err)) from err
        return RedirectResponse(f"/review#pair-{min(a['image_id'], b['image_id'])}", status_code=303)

    def bias(request: Request) -> Response:
        if request.query_params:
            raise BadRequest("this page takes no parameters")
        collection = browser.collection()
        return browser.page("bias.html", **collection.remember("bias", lambda: pages.bias(collection)))

    def problems(request: Request) -> Response:
        query = _one_value_each(request)
        context = pages.problems(browser.collection(), query, page_number(query.get("page")))
        return browser.page("problems.html", **context)

    def refuse(status: int, title: str, detail: str) -> Response:
        return browser.page("error.html", status, code=status, title=title, detail=detail)

    async def bad_request(request: Request, err: Exception) -> Response:
        return refuse(400, "bad request", str(err))

    async def not_found(request: Request, err: Exception) -> Response:
        return refuse(404, "not found", str(err.args[0]) if err.args else "")

    async def http_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, HTTPException)
        return refuse(err.status_code, "refused" if err.status_code == 403 else "not found", str(err.detail))

    async def server_error(request: Request, err: Exception) -> Response:
        return refuse(500, "server error", "the page could not be made; nothing was changed")

    routes = [
        Route("/", sources),
        Route("/source/{name}", source),
        Route("/grid", grid),
        Route("/image/{image_id}", image),
        Route("/thumb/{image_id}.jpg", thumb),
        Route("/display/{image_id}.jpg", display),
        Route("/overlay/{image_id}/{annotation_id}.png", overlay),
        Route("/difference/{a}/{b}.png", difference),
        Route("/review", review, methods=["GET"]),
        Route("/review", record, methods=["POST"]),
        Route("/bias", bias),
        Route("/problems", problems),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {BadRequest: bad_request, NotFound: not_found, HTTPException: http_error, Exception: server_error}
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=[HOST, "localhost"])]
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=middleware)
    app.state.browser = browser
    return app


def serve(root: Path, port: int, *, review: bool = False) -> None:
    """Run the browser until interrupted (uvicorn on 127.0.0.1 only)."""
    import uvicorn

    uvicorn.run(make_app(root, review=review), host=HOST, port=port, log_level="warning", access_log=False)
