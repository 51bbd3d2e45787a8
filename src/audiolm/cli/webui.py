"""Listen to runs and try them in a browser:

    python -m audiolm.cli.webui                         # http://127.0.0.1:7860, runs under logs/
    python -m audiolm.cli.webui --runs-root /data/runs --port 8000

Tabs: Model (pick a run folder or export under the runs root, and a device), Text to speech,
Continue audio, Caption and Codec. The page binds to 127.0.0.1: only this machine can open it.
``--host 0.0.0.0`` (every network interface) and ``--share`` (a public gradio.live link) let
others in, with no login, to run models on this machine and upload files to it: use them only
on a network you trust.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

LOCALHOST = "127.0.0.1"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m audiolm.cli.webui",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--port", type=int, default=7860, help="port to serve the page on")
    p.add_argument("--runs-root", type=Path, default=Path("logs"), help="the run picker lists run folders under it")
    p.add_argument(
        "--host",
        default=LOCALHOST,
        help="address to bind; anything but 127.0.0.1 lets other machines use this one (see the warning)",
    )
    p.add_argument("--share", action="store_true", help="also serve a public gradio.live link (see the warning)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest file the page accepts")
    p.add_argument("--max-clip-seconds", type=float, default=60.0, help="longest clip the page accepts")
    p.add_argument("--concurrency", type=int, default=1, help="jobs (generation, codec round trips) run at once")
    return p


def exposure_warning(host: str, share: bool) -> str | None:
    """What to tell the user when the page is reachable from other machines (None when it is not)."""
    reach = [f"every machine that can reach {host}"] if host != LOCALHOST else []
    reach += ["anyone with the public link"] if share else []
    if not reach:
        return None
    return (
        f"WARNING: {' and '.join(reach)} can open this page, with no login, run models on this machine and "
        f"upload files to it. Use --host/--share only on a network you trust."
    )


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
    if not args.runs_root.is_dir():
        p.error(f"--runs-root {args.runs_root} is not a folder; train a run first (make demo)")
    if args.concurrency < 1 or args.max_upload_mb <= 0 or args.max_clip_seconds <= 0:
        p.error("--concurrency, --max-upload-mb and --max-clip-seconds must be > 0")
    warning = exposure_warning(args.host, args.share)
    if warning:
        print(warning)
    # Gradio and torch take seconds to import: imported here, so --help and mistakes answer at once.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine unasked
    from audiolm.ui.app import launch
    from audiolm.ui.handlers import Settings, Studio

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    settings = Settings(args.runs_root, args.max_upload_mb, args.max_clip_seconds, args.concurrency)
    launch(Studio(settings), args.host, args.port, args.share)


if __name__ == "__main__":
    main()
