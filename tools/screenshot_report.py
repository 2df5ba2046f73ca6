"""Screenshot an HTML report with headless Chromium, for docs/report.png.

    python tools/screenshot_report.py build/demo/report.html docs/report.png [--width 1200 --height 1700]

The page is rendered at WIDTH x HEIGHT CSS pixels (the top of the page: summary, fit verdict and the
start of the per-layer table), then reduced to a 256-colour palette and saved optimised, which keeps
a text-and-plots page small (the docs screenshot stays well under 300 KB).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image


def screenshot(html: Path, png: Path, width: int = 1200, height: int = 1700) -> Path:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium missing: apt-get install --no-install-recommends chromium")
    with tempfile.TemporaryDirectory(prefix="mb_shot_") as tmp:
        raw = Path(tmp) / "raw.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp}/profile", f"--window-size={width},{height}", f"--screenshot={raw}",
                        html.resolve().as_uri()], check=True, capture_output=True, timeout=120)
        with Image.open(raw) as im:
            small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    png.parent.mkdir(parents=True, exist_ok=True)
    small.save(png, optimize=True)
    return png


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("html", type=Path)
    p.add_argument("png", type=Path)
    p.add_argument("--width", type=int, default=1200)
    p.add_argument("--height", type=int, default=1700)
    args = p.parse_args()
    out = screenshot(args.html, args.png, args.width, args.height)
    print(f"wrote {out}: {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
