"""`anigan serve`: the page and its API on a real loopback server, driven in headless Chromium.

Checkpoints are trained for two iterations with tiny widths on 32 px faces: an ACGAN on the
tiny colour dataset (4 hair, 3 eye colours) and a DCGAN, so both kinds of page are seen.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from PIL import Image

from anigan.cli import main
from anigan.errors import UserError
from tests.browser import Browser, needs_chromium
from tests.conftest import TINY_EYES, TINY_HAIR, make_tiny_dataset
from tests.stages.test_train import tiny_params
from train.loop import run_train
from draw.serve import FaceMaker, check_host, face_server

HAIR, EYES = sorted(TINY_HAIR), sorted(TINY_EYES)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{"acgan": run folder, "dcgan": run folder}, each trained two iterations."""
    root = tmp_path_factory.mktemp("serve")
    dataset = make_tiny_dataset(root / "dataset", colors=True)
    runs = {}
    for model, extra in (("acgan", {"train.min_color_count": 5}), ("dcgan", {})):
        runs[model] = root / model
        run_train(tiny_params(**{"train.model": model, "iterations": 2, **extra}), dataset_dir=dataset, run_dir=runs[model])
    return runs


@pytest.fixture(scope="module")
def servers(checkpoints):
    """A running page server per model, on free loopback ports: {"acgan": url, "dcgan": url}."""
    running = {model: face_server(FaceMaker(run, "cpu", max_count=16), port=0).start() for model, run in checkpoints.items()}
    yield {model: server.url for model, server in running.items()}
    for server in running.values():
        server.stop()


def get(url, headers=None):
    """(status, content type, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def grid_size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return im.size


def data_uri_bytes(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return base64.b64decode(uri[len(prefix) :])


def test_the_api_draws_the_colours_asked_as_one_png_grid_the_same_for_the_same_seed(servers):
    url = servers["acgan"]
    status, kind, body = get(f"{url}/api/faces?hair=pink&eyes=green&seed=3&count=4")
    assert (status, kind) == (200, "application/json")
    answer = json.loads(body)
    assert (answer["count"], answer["seed"], answer["hair"], answer["eyes"]) == (4, 3, "pink", "green")
    png = data_uri_bytes(answer["image"])
    assert grid_size(png) == (2 * 34 + 2, 2 * 34 + 2)  # 4 faces of 32 px in a 2x2 grid, 2 px apart
    status, kind, same = get(f"{url}/api/faces.png?hair=pink&eyes=green&seed=3&count=4")
    assert (status, kind, same) == (200, "image/png", png)
    _, _, other = get(f"{url}/api/faces.png?hair=blue&eyes=green&seed=3&count=4")
    assert other != png


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("hair=teal", f"hair colour 'teal': this checkpoint knows {', '.join(HAIR)}"),
        ("eyes=gold", f"eyes colour 'gold': this checkpoint knows {', '.join(EYES)}"),
        ("count=0", "count 0: out of range; give one from 1 to 16"),
        ("count=17", "count 17: out of range; give one from 1 to 16"),
        ("seed=-1", "seed -1: out of range"),
        ("seed=abc", "seed 'abc': not a whole number"),
    ],
)
def test_a_bad_request_gets_one_line_and_the_server_keeps_serving(servers, query, message, caplog):
    url = servers["acgan"]
    with caplog.at_level(logging.WARNING, logger="draw.serve"):
        status, kind, body = get(f"{url}/api/faces?{query}")
    assert (status, kind) == (400, "application/json")
    error = json.loads(body)["error"]
    assert error.startswith(message) and "\n" not in error
    assert any(message in record.getMessage() for record in caplog.records)
    assert get(f"{url}/api/faces?count=1")[0] == 200


def test_a_dcgan_draws_faces_but_refuses_colours(servers):
    url = servers["dcgan"]
    status, _, body = get(f"{url}/api/faces?seed=1&count=3")
    assert status == 200 and json.loads(body)["count"] == 3
    status, _, body = get(f"{url}/api/faces?hair=blue")
    assert status == 400 and "unconditional DCGAN" in json.loads(body)["error"]
    assert get(f"{url}/nowhere")[0] == 404


def test_a_request_naming_another_host_is_refused_as_a_rebinding_page_would_send_it(servers):
    url = servers["dcgan"]
    port = url.rsplit(":", 1)[1]
    status, _, body = get(f"{url}/api/faces?count=1", {"Host": f"attacker.example:{port}"})
    assert status == 403 and "loopback" in json.loads(body)["error"]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "127.0.0.1"):
        assert get(f"{url}/api/faces?count=1", {"Host": host})[0] == 200


def test_the_server_listens_on_loopback_unless_told_otherwise():
    for host in ("127.0.0.1", "localhost", "::1"):
        check_host(host, allow_remote=False)
    with pytest.raises(UserError, match="--allow-remote"):
        check_host("0.0.0.0", allow_remote=False)
    check_host("0.0.0.0", allow_remote=True)


def test_the_command_refuses_a_network_host_in_one_line_before_loading_anything(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--checkpoint", str(tmp_path / "none.pt"), "--host", "0.0.0.0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --host 0.0.0.0: not a loopback address") and len(err.strip().splitlines()) == 1


def test_the_command_names_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--checkpoint", str(tmp_path / "none"), "--port", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no checkpoint" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with Browser(tmp_path_factory.mktemp("chromium-profile")) as running:
        yield running


def page_state(page):
    """Wait until the page has shown faces or an error; returns "shown" or "error"."""
    return page.wait_for('["shown", "error"].indexOf(document.body.dataset.state) >= 0 && document.body.dataset.state')


@needs_chromium
def test_in_chromium_a_person_picks_colours_clicks_generate_and_sees_the_faces(servers, browser):
    page = browser.open(servers["acgan"] + "/")
    assert page.evaluate("Array.from(document.querySelectorAll('#hair option')).map(o => o.value)") == ["", *HAIR]
    assert page.evaluate("Array.from(document.querySelectorAll('#eyes option')).map(o => o.value)") == ["", *EYES]
    assert page.evaluate("document.getElementById('colours').hidden") is False
    page.set_value("#hair", "pink")
    page.set_value("#eyes", "green")
    page.set_value("#seed", "3")
    page.set_value("#count", "4")
    page.click("#generate")
    assert page_state(page) == "shown"
    assert page.evaluate("document.getElementById('faces').naturalWidth") == 2 * 34 + 2
    assert page.evaluate("document.getElementById('status').textContent") == "4 faces, seed 3, pink hair, green eyes"
    # The page shows exactly what the API draws for the same request.
    shown = data_uri_bytes(page.evaluate("document.getElementById('faces').src"))
    assert shown == get(servers["acgan"] + "/api/faces.png?hair=pink&eyes=green&seed=3&count=4")[2]


@needs_chromium
def test_in_chromium_a_bad_count_shows_the_error_in_the_page_and_the_next_request_works(servers, browser):
    page = browser.open(servers["acgan"] + "/")
    page.set_value("#count", "500")
    page.click("#generate")
    assert page_state(page) == "error"
    assert page.evaluate("document.getElementById('error').hidden") is False
    assert page.evaluate("document.getElementById('error').textContent").startswith("count 500: out of range")
    page.set_value("#count", "2")
    page.click("#generate")
    assert page_state(page) == "shown"
    assert page.evaluate("document.getElementById('error').hidden") is True
    assert page.evaluate("document.getElementById('faces').naturalWidth") > 0


@needs_chromium
def test_in_chromium_a_dcgan_page_hides_the_colours_and_still_draws(servers, browser):
    page = browser.open(servers["dcgan"] + "/")
    assert page.evaluate("document.getElementById('colours').hidden") is True
    assert page.evaluate("document.getElementById('dcgan-note').hidden") is False
    page.click("#generate")
    assert page_state(page) == "shown"
    assert page.evaluate("document.getElementById('faces').naturalWidth") > 0
    assert page.evaluate("document.getElementById('status').textContent") == "16 faces, seed 0"


@pytest.mark.slow
def test_the_command_prints_its_url_serves_the_page_and_stops_cleanly_on_ctrl_c(checkpoints):
    command = [sys.executable, "-m", "anigan", "serve", "--checkpoint", str(checkpoints["acgan"]), "--port", "0", "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
        status, kind, body = get(url)
        assert (status, kind) == (200, "text/html; charset=utf-8") and b'<option value="pink">' in body
        process.send_signal(signal.SIGINT)
        # communicate() drains stderr while waiting: a child blocked on a full stderr pipe never exits.
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"serve did not stop within 60 s of Ctrl-C; its stderr ends:\n{stderr[-3000:]}")
        assert process.returncode == 0, stderr[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "serving ACGAN faces from" in stderr and "4 hair and 3 eye colours" in stderr and "Traceback" not in stderr
