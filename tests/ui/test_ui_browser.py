"""The web UI in a real headless Chromium (Debian's ``chromium``, driven by Playwright for Python): a user picks a
run, uploads a WAV, clicks and hears the result in every tab; bad uploads are refused in the page. Each tab's
screenshot is saved under the test's tmp dir."""

from __future__ import annotations

import shutil

import pytest

from audiolm.ui.app import launch
from audiolm.ui.handlers import Settings, Studio

from ui_runs import bad_clips, corpus_clip, free_port, make_runs_root, noise_wav

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make system installs it: apt-get install chromium)"
)
MAX_UPLOAD_MB, MAX_CLIP = 1.0, 30.0
GENERATION_MS = 90_000  # tiny models on a loaded 2-core machine
TOAST_MS = 20_000


@pytest.fixture(scope="module")
def url(trained_run, tts_run, caption_run, tmp_path_factory):
    root = make_runs_root(tmp_path_factory.mktemp("ui_runs"), trained_run, tts_run, caption_run[0])
    studio = Studio(Settings(runs_root=root, max_upload_mb=MAX_UPLOAD_MB, max_clip_seconds=MAX_CLIP))
    demo = launch(studio, "127.0.0.1", free_port(), False, prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(url)
    yield page
    page.close()


def load(page, run: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Model").click()
    page.locator("#run input").click()
    page.get_by_role("option", name=run, exact=True).click()
    page.locator("#load").click()
    expect(page.locator("#info")).to_contain_text(f"{run} on cpu", timeout=GENERATION_MS)


def upload(page, widget: str, path) -> None:
    page.locator(f"#{widget} input[type=file]").set_input_files(str(path))


def test_every_tab_in_a_real_browser(page, data_dir, tmp_path):
    from playwright.sync_api import expect

    voice = corpus_clip(data_dir)
    load(page, "lm")
    expect(page.locator("#info")).to_contain_text("MelVQCodec")
    page.screenshot(path=tmp_path / "model.png", full_page=True)

    page.get_by_role("tab", name="Continue audio").click()
    expect(page.locator("#lm-status")).to_have_text("ready: lm")
    upload(page, "lm-prompt", voice)
    page.locator("#lm-go").click()
    page.wait_for_selector("#lm-out audio[src]", state="attached", timeout=GENERATION_MS)
    expect(page.locator("#lm-summary")).to_contain_text("s of prompt + 4.00 s generated")
    page.screenshot(path=tmp_path / "continue.png", full_page=True)

    load(page, "tts")
    page.get_by_role("tab", name="Text to speech").click()
    expect(page.locator("#tts-status")).to_have_text("ready: tts")
    page.locator("#tts-text textarea").fill("Hello there.")
    upload(page, "tts-ref", voice)
    page.locator("#tts-go").click()
    page.wait_for_selector("#tts-out audio[src]", state="attached", timeout=GENERATION_MS)
    expect(page.locator("#tts-scores")).to_contain_text("speech_fraction", timeout=GENERATION_MS)
    page.screenshot(path=tmp_path / "tts.png", full_page=True)

    load(page, "caption")
    page.get_by_role("tab", name="Caption").click()
    upload(page, "cap-clip", voice)
    page.locator("#cap-go").click()
    expect(page.locator("#cap-out textarea")).not_to_have_value("", timeout=GENERATION_MS)
    page.screenshot(path=tmp_path / "caption.png", full_page=True)

    page.get_by_role("tab", name="Codec").click()
    upload(page, "codec-clip", voice)
    page.locator("#codec-go").click()
    page.wait_for_selector("#codec-out audio[src]", state="attached", timeout=GENERATION_MS)
    expect(page.locator("#codec-table")).to_contain_text("DNSMOS OVRL")
    page.screenshot(path=tmp_path / "codec.png", full_page=True)
    tabs = ("model", "continue", "tts", "caption", "codec")
    assert {p.name for p in tmp_path.glob("*.png")} == {f"{tab}.png" for tab in tabs}


def test_bad_uploads_are_refused_in_the_page(page, tmp_path):
    from playwright.sync_api import expect

    clips = bad_clips(tmp_path / "bad")
    clips["big.wav"] = noise_wav(tmp_path / "big.wav", MAX_UPLOAD_MB * 1024 / 32 * 1.5)
    expected = {
        "notes.wav": "the clip (notes.wav): not decodable",
        "empty.wav": "the clip (empty.wav): empty file (0 bytes)",
        "ten_minutes.flac": f"the clip (ten_minutes.flac): 600.0 s long; this page takes clips of at most {MAX_CLIP:g}",
        "big.wav": 'exceed the maximum allowed size of 1.0 Mb: "big.wav"',
    }
    page.get_by_role("tab", name="Codec").click()
    for name, path in clips.items():
        upload(page, "codec-clip", path)
        if name != "big.wav":  # gradio refuses that one as it uploads
            page.locator("#codec-go").click()
        toast = page.locator(".toast-body").filter(has_text=expected[name])
        expect(toast).to_be_visible(timeout=TOAST_MS)
        assert "Traceback" not in toast.inner_text()
        page.screenshot(path=tmp_path / f"refused_{path.stem}.png")
        for close in page.locator(".toast-close").all():
            close.click()
        clear = page.locator("#codec-clip button[aria-label='Clear']")
        if clear.count():
            clear.first.click()
