"""Regenerate framing-before.png and framing-after.png: the demo's full-length portrait at 480x832.

Before: the centred crop every adapter made before framing from the face. After: the crop
farm.media.framing plans from the face. The yellow line is the upper third. Run from the repository root:
.venv/bin/python docs/images/make_framing_stills.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from farm.media.face_memo import detect_portrait_faces
from farm.media.framing import crop_image, frame_centre, frame_portrait
from farm.media.image import load_rgb

REPO = Path(__file__).resolve().parents[2]
PORTRAIT = REPO / "shots" / "demo" / "media" / "walter_wide.jpg"
OUTPUT = (480, 832)


def main() -> None:
    image = load_rgb(PORTRAIT)
    found = detect_portrait_faces(PORTRAIT)
    for name, framing in (
        ("before", frame_centre(found.size, OUTPUT)),
        ("after", frame_portrait(found.size, found.faces, OUTPUT)),
    ):
        still = Image.fromarray(crop_image(image, framing.crop)).resize(OUTPUT, Image.Resampling.LANCZOS)
        ImageDraw.Draw(still).line([(0, OUTPUT[1] / 3), (OUTPUT[0], OUTPUT[1] / 3)], fill=(255, 255, 0), width=1)
        still = still.resize((OUTPUT[0] // 2, OUTPUT[1] // 2), Image.Resampling.LANCZOS)  # small for the docs
        still.save(REPO / "docs" / "images" / f"framing-{name}.png", optimize=True)
        print(name, framing.describe(), *framing.warnings)


if __name__ == "__main__":
    main()
