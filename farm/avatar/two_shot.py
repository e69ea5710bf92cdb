"""Two people in one frame: each speaker's portrait framed on their own face, laid into their region.

Every model that renders a two-shot shares this geometry, so previz and the diffusion model put the
faces in the same places the plan (and the per-person checks) expect: a speaker's region of the frame
(``Speaker.region``, fractions) becomes a pixel box, the speaker's portrait is framed for that box with
``farm.media.framing.frame_single`` (a medium close-up of the face the portrait shows), and the boxes
are laid over a background. Side by side the two boxes tile the frame. Over the shoulder they do not:
the background is the second speaker's portrait, blurred, as the room behind them, and the first
speaker (nearest the camera) is mirrored so the two face each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from farm.avatar.base import Speaker
from farm.media.faces import detect_faces
from farm.media.framing import Framing, choose_face, frame_centre, frame_single
from farm.shotlist.types import TwoShotLayout

BACKGROUND_BLUR = 0.04
"""The over-the-shoulder background's blur radius, as a fraction of the frame width (out of focus)."""
BACKGROUND_DIM = 0.7
"""...and its brightness, so the two faces read as the subject."""
FEATHER = 0.18
"""Over the shoulder, a tile fades into the background over this share of its smaller side."""
NO_FACE_WARNING = "no face found in speaker {speaker}'s portrait; framed its centre"


@dataclass(frozen=True)
class PixelBox:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def pixel_box(region: tuple[float, float, float, float], width: int, height: int) -> PixelBox:
    """A region (fractions) as whole pixels of a ``width`` x ``height`` frame, at least 2 px a side."""
    left, top, right, bottom = region
    box = PixelBox(round(left * width), round(top * height), round(right * width), round(bottom * height))
    return PixelBox(
        box.left, box.top, max(box.right, min(width, box.left + 2)), max(box.bottom, min(height, box.top + 2))
    )


def mirrored(layout: str, index: int) -> bool:
    """Whether speaker ``index`` is shown mirrored: the foreground speaker over the shoulder."""
    return layout == TwoShotLayout.OVER_THE_SHOULDER.value and index == 0


def frame_speaker(speaker: Speaker, box: PixelBox) -> tuple[np.ndarray, Framing, tuple[str, ...]]:
    """The speaker's portrait framed on its face for ``box``: (box.height, box.width, 3) uint8, the framing,
    and warnings (no face found, an upscaled crop)."""
    image = np.ascontiguousarray(speaker.reference_image)
    size = (image.shape[1], image.shape[0])
    face = choose_face(detect_faces(image))
    framing = frame_single(size, face, (box.width, box.height)) if face else frame_centre(size, (box.width, box.height))
    warnings = framing.warnings if face else (NO_FACE_WARNING.format(speaker=speaker.character_id), *framing.warnings)
    crop = Image.fromarray(image).resize((box.width, box.height), Image.Resampling.LANCZOS, box=framing.crop.box())
    return np.asarray(crop), framing, tuple(f"{speaker.character_id}: {w}" for w in warnings)


def background(speakers: tuple[Speaker, ...], layout: str, width: int, height: int) -> np.ndarray:
    """What shows where no speaker's box is: the second speaker's portrait, blurred and dimmed, filling the
    frame (side by side the boxes cover it all; it only shows through gaps a shot list's regions leave)."""
    portrait = Image.fromarray(np.ascontiguousarray(speakers[-1].reference_image))
    size = (portrait.width, portrait.height)
    crop = frame_centre(size, (width, height)).crop
    filled = portrait.resize((width, height), Image.Resampling.BILINEAR, box=crop.box())
    blurred = filled.filter(ImageFilter.GaussianBlur(max(1.0, BACKGROUND_BLUR * width)))
    return (np.asarray(blurred).astype(np.float32) * BACKGROUND_DIM).astype(np.uint8)


def feather(box: PixelBox, width: int, height: int) -> np.ndarray:
    """(h, w, 1) float32 alpha for a tile over the shoulder: 1 inside, fading to 0 over FEATHER of the box
    toward every edge that is not the frame's own edge, so a tile melts into the background."""
    reach = max(1.0, FEATHER * min(box.width, box.height))
    ys, xs = np.mgrid[0 : box.height, 0 : box.width].astype(np.float32) + 0.5
    alpha = np.ones((box.height, box.width), np.float32)
    for distance, at_frame_edge in (
        (xs, box.left == 0),
        (box.width - xs, box.right >= width),
        (ys, box.top == 0),
        (box.height - ys, box.bottom >= height),
    ):
        if not at_frame_edge:
            alpha = np.minimum(alpha, np.clip(distance / reach, 0.0, 1.0))
    return (alpha * alpha * (3 - 2 * alpha))[..., None]


def lay_tiles(
    canvas: np.ndarray,
    tiles: list[np.ndarray],
    boxes: list[PixelBox],
    layout: str,
    alphas: list[np.ndarray | None] | None = None,
) -> np.ndarray:
    """``canvas`` (H, W, 3) with each speaker's tile laid into its box (blended by its alpha, if any); the
    canvas is changed and returned. The second speaker goes down first, the foreground speaker on top."""
    for index in reversed(range(len(tiles))):
        box, tile = boxes[index], tiles[index]
        tile = tile[:, ::-1] if mirrored(layout, index) else tile
        alpha = alphas[index] if alphas else None
        target = canvas[box.top : box.bottom, box.left : box.right]
        if alpha is None:
            target[...] = tile
        else:
            target[...] = (target + (tile.astype(np.float32) - target) * alpha + 0.5).astype(np.uint8)
    return canvas


def tile_alphas(boxes: list[PixelBox], layout: str, width: int, height: int) -> list[np.ndarray | None]:
    """Side by side the tiles meet in a clean split (no alpha); over the shoulder each is feathered."""
    if layout != TwoShotLayout.OVER_THE_SHOULDER.value:
        return [None for _ in boxes]
    return [feather(box, width, height) for box in boxes]


def compose_reference(
    speakers: tuple[Speaker, ...], layout: str, width: int, height: int
) -> tuple[np.ndarray, tuple[str, ...]]:
    """One (height, width, 3) reference image holding every speaker's framed face in its region (what a
    single-reference diffusion model conditions on), and the framing warnings."""
    boxes = [pixel_box(speaker.region, width, height) for speaker in speakers]
    framed = [frame_speaker(speaker, box) for speaker, box in zip(speakers, boxes, strict=True)]
    canvas = background(speakers, layout, width, height)
    warnings = tuple(w for _, _, ws in framed for w in ws)
    alphas = tile_alphas(boxes, layout, width, height)
    return lay_tiles(canvas, [tile for tile, _, _ in framed], boxes, layout, alphas), warnings
