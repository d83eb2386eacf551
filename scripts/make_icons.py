"""Draw the application icon (a turbofan seen from the front) and write every size the platforms need.

Run from the repository root:  ``QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_icons.py``

It writes ``resources/icons/turbofan-desktop_<N>.png`` for each of :data:`PNG_SIZES`, a Windows
``turbofan-desktop.ico`` and a macOS ``turbofan-desktop.icns``. The glyph is drawn as vectors at every
size (not scaled down from one bitmap) so that the 16 and 24 pixel versions stay crisp; small sizes get
fewer, thicker fan blades. The output is deterministic for a given Qt and Pillow version, so the
committed files can be regenerated and compared.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image  # noqa: E402 - Qt needs the platform variable before it is imported
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt  # noqa: E402
from PySide6.QtGui import (  # noqa: E402
    QBrush,
    QColor,
    QGuiApplication,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QRadialGradient,
)

PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # the .ico format stops at 256
ICON_NAME = "turbofan-desktop"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "resources" / "icons"

BACKGROUND = QColor("#1d3557")
NACELLE = QColor("#e9eef3")
FAN_DISC = QColor("#22303f")
BLADE = QColor("#a8c5e0")
SPINNER_LIGHT = QColor("#ffffff")
SPINNER_DARK = QColor("#8d99a6")
ACCENT = QColor("#e76f51")


def blade_count(size: int) -> int:
    """Fewer blades at small sizes: 18 thin blades at 16 px are a grey smear, 8 thick ones read as a fan."""
    if size <= 24:
        return 8
    if size <= 64:
        return 12
    return 18


def _blade_path(centre: QPointF, r_in: float, r_out: float, angle: float, width: float) -> QPainterPath:
    """One swept fan blade: a curved wedge from the hub to the casing, leaning with the rotation."""
    sweep = math.radians(22)

    def polar(radius: float, theta: float) -> QPointF:
        return QPointF(centre.x() + radius * math.cos(theta), centre.y() + radius * math.sin(theta))

    half_in = width / (2 * r_in)
    half_out = width * 1.6 / (2 * r_out)
    path = QPainterPath(polar(r_in, angle - half_in))
    mid = (r_in + r_out) / 2
    path.quadTo(polar(mid, angle + sweep * 0.4 - half_out), polar(r_out, angle + sweep - half_out))
    path.lineTo(polar(r_out, angle + sweep + half_out))
    path.quadTo(polar(mid, angle + sweep * 0.4 + half_out), polar(r_in, angle + half_in))
    path.closeSubpath()
    return path


def draw_icon(size: int) -> QImage:
    """Render the glyph at ``size`` x ``size`` pixels on a transparent background."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    s = float(size)
    centre = QPointF(s / 2, s / 2)

    # Rounded-square tile, as the desktop launchers expect.
    margin = s * 0.03
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(BACKGROUND)
    painter.drawRoundedRect(QRectF(margin, margin, s - 2 * margin, s - 2 * margin), s * 0.18, s * 0.18)

    # Nacelle lip: a light ring around the fan.
    r_nacelle = s * 0.42
    painter.setBrush(NACELLE)
    painter.drawEllipse(centre, r_nacelle, r_nacelle)
    r_fan = s * 0.35
    painter.setBrush(FAN_DISC)
    painter.drawEllipse(centre, r_fan, r_fan)

    # Fan blades.
    r_hub = s * 0.11
    blades = blade_count(size)
    painter.setBrush(BLADE)
    width = max(s * 0.055, 1.2) if size > 24 else s * 0.09
    for k in range(blades):
        angle = 2 * math.pi * k / blades - math.pi / 2
        painter.drawPath(_blade_path(centre, r_hub * 0.9, r_fan * 0.97, angle, width))

    # Spinner cone: a radial gradient so it reads as a dome even at 32 px.
    r_spinner = s * 0.12
    gradient = QRadialGradient(
        QPointF(centre.x() - r_spinner * 0.35, centre.y() - r_spinner * 0.35), r_spinner * 1.3
    )
    gradient.setColorAt(0.0, SPINNER_LIGHT)
    gradient.setColorAt(1.0, SPINNER_DARK)
    painter.setBrush(QBrush(gradient))
    painter.drawEllipse(centre, r_spinner, r_spinner)

    # Accent: a short arc on the casing, hinting at a monitored signal (omitted where it would blur).
    if size >= 32:
        pen = QPen(ACCENT, max(s * 0.035, 1.0))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        arc = QRectF(centre.x() - r_nacelle, centre.y() - r_nacelle, 2 * r_nacelle, 2 * r_nacelle)
        painter.drawArc(arc, 20 * 16, 50 * 16)
    painter.end()
    return image


def _to_pillow(image: QImage) -> Image.Image:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return Image.open(io.BytesIO(bytes(data))).convert("RGBA")


def write_icons(out_dir: Path) -> list[Path]:
    """Write all PNG sizes, the .ico and the .icns into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    images: dict[int, Image.Image] = {}
    for size in PNG_SIZES:
        picture = _to_pillow(draw_icon(size))
        images[size] = picture
        path = out_dir / f"{ICON_NAME}_{size}.png"
        picture.save(path, format="PNG", optimize=True)
        written.append(path)
    # Pillow takes the largest image and the list of sizes; each size is then drawn from our own
    # vector rendering (append_images) rather than resampled, so small entries stay crisp.
    ico = out_dir / f"{ICON_NAME}.ico"
    largest_ico = images[max(ICO_SIZES)]
    largest_ico.save(
        ico,
        format="ICO",
        sizes=[(n, n) for n in ICO_SIZES],
        append_images=[images[n] for n in ICO_SIZES if n != max(ICO_SIZES)],
    )
    written.append(ico)
    icns = out_dir / f"{ICON_NAME}.icns"
    images[512].save(icns, format="ICNS", append_images=[images[n] for n in (16, 32, 64, 128, 256)])
    written.append(icns)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - QPainter needs one
    for path in write_icons(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
