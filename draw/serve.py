"""`anigan serve`: a local web page that draws faces from a checkpoint, with the hair and eye colour picked.

    GET /                    the page (draw/serve_page.html): colour selects (ACGAN), seed, count, Generate
    GET /api/faces?hair=&eyes=&seed=&count=
                             JSON {"image": PNG grid as a data: URI, "count", "seed", "hair", "eyes"},
                             or {"error": one line} with status 400 for a bad request
    GET /api/faces.png?...   the same grid as image/png, for scripts

An empty or missing colour means "any": drawn per face from the seed, as `anigan generate` does.
Bad requests are answered, logged and forgotten; the server keeps serving. It binds to loopback
unless told otherwise, since anyone who can reach it can make it compute.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import parse_qs, urlsplit

from anigan.errors import UserError
from anigan.images import data_uri, png_bytes
from anigan.local_server import LOOPBACK, LocalServer, is_loopback
from gan.checkpoint import load_generator, resolve_checkpoint
from gan.conditions import conditions_of
from gan.runtime import pick_device
from gan.samples import draw_faces, image_grid

log = logging.getLogger(__name__)

PAGE = "serve_page.html"
MAX_SEED = 2**63 - 1  # what torch.Generator.manual_seed takes without wrapping around
DEFAULT_MAX_COUNT = 64
DEFAULT_COUNT = 16  # faces drawn when the request names no count (never more than the server allows)


@dataclass(frozen=True)
class FaceRequest:
    """What the page asks for: colours (None: any), the seed of the noise and colours, how many faces."""

    hair: str | None
    eyes: str | None
    seed: int
    count: int


def _integer(query: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    text = query.get(key, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{key} {text!r}: not a whole number; give one from {low} to {high}") from None
    if not low <= value <= high:
        raise UserError(f"{key} {value}: out of range; give one from {low} to {high}")
    return value


class FaceMaker:
    """A checkpoint's generator, turning requests into PNG grids; one request computes at a time."""

    def __init__(self, checkpoint: str | Path, device: str = "auto", max_count: int = DEFAULT_MAX_COUNT) -> None:
        self.checkpoint = resolve_checkpoint(checkpoint)
        self.device = pick_device(device)
        self.generator, self.meta = load_generator(self.checkpoint, self.device)
        self.conditions = conditions_of(self.meta)
        self.max_count = max_count
        self.default_count = min(DEFAULT_COUNT, max_count)
        self._lock = threading.Lock()  # requests arrive on their own threads; the generator is not shared safely

    def parse(self, query: Mapping[str, str]) -> FaceRequest:
        """A request from query parameters; raises UserError naming what is wrong."""
        hair, eyes = (query.get(key, "").strip() or None for key in ("hair", "eyes"))
        return FaceRequest(hair, eyes, _integer(query, "seed", 0, 0, MAX_SEED), _integer(query, "count", self.default_count, 1, self.max_count))

    def faces_png(self, request: FaceRequest) -> bytes:
        """The faces asked for, tiled into one PNG (a square-ish grid); an unknown colour is a UserError listing the known ones."""
        with self._lock:
            images = draw_faces(self.generator, self.meta, request.count, request.seed, self.device, hair=request.hair, eyes=request.eyes)
        return png_bytes(image_grid(images))

    def page(self) -> str:
        """The page, with the checkpoint's colours in the selects (hidden for a DCGAN)."""
        template = Template(resources.files(__package__).joinpath(PAGE).read_text(encoding="utf-8"))
        conditional = self.conditions is not None
        return template.substitute(
            checkpoint=html.escape(str(self.checkpoint)),
            model=html.escape(self.meta["model"].upper()),
            iteration=self.meta["iteration"],
            image_size=self.meta["image_size"],
            max_count=self.max_count,
            default_count=self.default_count,
            hair_options=_options(self.conditions["hair"] if conditional else []),
            eye_options=_options(self.conditions["eyes"] if conditional else []),
            colours_hidden="" if conditional else "hidden",
            dcgan_note_hidden="hidden" if conditional else "",
        )


def _options(names: list[str]) -> str:
    any_colour = '<option value="">any (drawn per face)</option>'
    return "\n".join([any_colour] + [f'<option value="{html.escape(n)}">{html.escape(n)}</option>' for n in names])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        maker: FaceMaker = self.server.context  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if not self._addressed_here():
            log.warning("refused %s for Host %r", self.path, self.headers.get("Host"))
            return self._json(403, {"error": "this page answers only requests to a loopback address"})
        try:
            if url.path in ("/", "/index.html"):
                return self._send(200, maker.page().encode("utf-8"), "text/html; charset=utf-8")
            if url.path in ("/api/faces", "/api/faces.png"):
                request = maker.parse(query)
                png = maker.faces_png(request)
                log.info("%d faces, seed %d, hair %s, eyes %s", request.count, request.seed, request.hair or "any", request.eyes or "any")
                if url.path.endswith(".png"):
                    return self._send(200, png, "image/png")
                answer = {"image": data_uri(png, "image/png"), "count": request.count, "seed": request.seed, "hair": request.hair, "eyes": request.eyes}
                return self._json(200, answer)
            return self._json(404, {"error": f"no page at {url.path}; the page is at /"})
        except UserError as e:
            log.warning("bad request %s: %s", self.path, e)
            return self._json(400, {"error": str(e)})
        except (BrokenPipeError, ConnectionResetError):
            log.info("the browser left before %s was answered", self.path)  # nobody to tell
        except Exception as e:  # a bug: say so in the page, keep the traceback in the log, keep serving
            log.exception("request %s failed", self.path)
            return self._json(500, {"error": f"the server failed on this request ({type(e).__name__}); see its log"})

    def _addressed_here(self) -> bool:
        """On loopback, only requests naming a loopback host: a web page that rebinds its own domain
        to 127.0.0.1 sends its domain as Host, and must not use the page (nor its CPU)."""
        if not is_loopback(self.server.server_address[0]):
            return True  # --allow-remote: the user opened the page to the network
        host = self.headers.get("Host", "")
        name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
        return is_loopback(name)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode("utf-8"), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse to listen beyond this machine unless the user said so."""
    if not allow_remote and not is_loopback(host):
        raise UserError(
            f"--host {host}: not a loopback address, so anyone on the network could use the page; "
            "add --allow-remote to serve there anyway"
        )


def face_server(maker: FaceMaker, host: str = LOOPBACK, port: int = 0, allow_remote: bool = False) -> LocalServer:
    """The page's server for `maker` on (host, port), not yet started; port 0 picks a free one."""
    check_host(host, allow_remote)
    try:
        return LocalServer(_Handler, maker, host, port, name="anigan-serve")
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
