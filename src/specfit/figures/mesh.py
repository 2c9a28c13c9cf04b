"""Meshes in the report: cleaned of floating specks, shaded still renders and a 3-D view to turn.

- :func:`keep_large_components` drops connected pieces far smaller than the largest (the specks an
  occupancy network leaves in empty space); the metrics are measured before, on the whole surface.
- :func:`render_mesh` is a small z-buffer rasteriser in NumPy: orthographic camera, smooth
  (interpolated vertex normal) shading under a light from the upper left, two-sided, antialiased by
  rendering at twice the size.
- :func:`decimate` shrinks a mesh by vertex clustering for the page's 3-D view, and
  :func:`viewer_html` embeds meshes (quantised, base64) with a vanilla-JavaScript canvas renderer
  written for this page (no external script): drag to turn, wheel to zoom, double-click to reset.
"""

from __future__ import annotations

import base64
import html
import math

import numpy as np

from specfit.figures import json_script

BACKGROUND = (1.0, 1.0, 1.0)
TARGET_COLOUR = (0.80, 0.72, 0.60)
FIT_COLOUR = (0.62, 0.72, 0.86)
LIGHT = (-0.45, 0.6, 0.66)  # towards the light, in view space (x right, y up, z towards the viewer)
SPECK_SHARE = 0.01  # pieces with fewer faces than this share of the largest piece are specks
VIEWER_FACES = 20000  # at most this many faces per mesh in the 3-D view


def keep_large_components(
    vertices: np.ndarray, faces: np.ndarray, share: float = SPECK_SHARE
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The mesh without connected pieces smaller than ``share`` of the largest one (by faces).

    Returns ``(vertices, faces, pieces dropped, faces dropped)``; unused vertices are removed.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return vertices, faces, 0, 0
    n = len(vertices)
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    face_label = labels[faces[:, 0]]
    sizes = np.bincount(face_label)
    big = sizes >= max(share * sizes.max(), 1)
    keep = big[face_label]
    dropped_pieces = int(np.count_nonzero((sizes > 0) & ~big))
    vertices, faces = _compact(vertices, faces[keep])
    return vertices, faces, dropped_pieces, int(np.count_nonzero(~keep))


def _compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the vertices no face uses and renumber the faces."""
    used, inverse = np.unique(faces.reshape(-1), return_inverse=True)
    return np.asarray(vertices)[used], inverse.reshape(-1, 3).astype(np.int64)


def decimate(vertices: np.ndarray, faces: np.ndarray, max_faces: int = VIEWER_FACES
             ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_faces`` faces by vertex clustering: vertices in one cell of a cubic grid merge
    into their mean; faces that collapse, and repeats, are dropped. Returns the mesh unchanged when
    it is small enough."""
    vertices, faces = np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    if len(faces) <= max_faces:
        return vertices, faces
    low = vertices.min(axis=0)
    extent = float((vertices.max(axis=0) - low).max()) or 1.0
    edge = float(np.linalg.norm(vertices[faces[:, 0]] - vertices[faces[:, 1]], axis=1).mean()) or extent
    # Faces scale with the square of the cells across: start from the mesh's own resolution, shrunk.
    cells = max(8, int(extent / edge * math.sqrt(max_faces / len(faces)) * 0.9))
    while True:
        key = np.floor((vertices - low) / extent * (cells - 1e-9)).astype(np.int64)
        ids = (key[:, 0] * cells + key[:, 1]) * cells + key[:, 2]
        unique, cluster = np.unique(ids, return_inverse=True)
        sums = np.zeros((len(unique), 3))
        np.add.at(sums, cluster, vertices)
        merged = sums / np.bincount(cluster)[:, None]
        new = cluster[faces]
        good = (new[:, 0] != new[:, 1]) & (new[:, 1] != new[:, 2]) & (new[:, 0] != new[:, 2])
        new = new[good]
        _, first = np.unique(np.sort(new, axis=1), axis=0, return_index=True)
        new = new[np.sort(first)]
        if len(new) <= max_faces or cells <= 8:
            return _compact(merged, new)
        cells = max(8, int(cells * math.sqrt(len(new) / max_faces) ** -1 * 0.95))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals: the area-weighted mean of the faces' normals around each vertex."""
    v = np.asarray(vertices, dtype=np.float64)
    cross = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    normals = np.zeros_like(v)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], cross)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def rotation(yaw: float, pitch: float) -> np.ndarray:
    """World to view: turn by ``yaw`` degrees about the vertical (y) axis, then tilt by ``pitch``
    degrees about the horizontal (x) axis (positive: seen from above)."""
    a, b = math.radians(yaw), math.radians(pitch)
    turn = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return tilt @ turn


def _fragments(screen: np.ndarray, depth: np.ndarray, faces: np.ndarray, width: int, height: int
               ) -> tuple[np.ndarray, ...]:
    """Every (pixel, depth, face, barycentric weights) a triangle covers: the pixels of its bounding
    box are tested in groups of triangles whose boxes round up to the same power-of-two size."""
    corners = screen[faces]  # (F, 3, 2)
    low = np.maximum(np.floor(corners.min(axis=1)), 0).astype(np.int64)
    high = np.minimum(np.ceil(corners.max(axis=1)), [width - 1, height - 1]).astype(np.int64)
    extent = high - low + 1
    a, b, c = (corners[:, k] - low for k in range(3))  # relative to the box's corner
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    good = (extent > 0).all(axis=1) & (np.abs(area) > 1e-12)
    inv = np.where(good, 1.0 / np.where(good, area, 1.0), 0.0)
    # w0 = A0 * y + B0 * x + C0 and w1 likewise: the barycentric weights of b-c and c-a's edges.
    a0, b0 = (c[:, 0] - b[:, 0]) * inv, -(c[:, 1] - b[:, 1]) * inv
    c0 = -(a0 * b[:, 1] + b0 * b[:, 0])
    a1, b1 = (a[:, 0] - c[:, 0]) * inv, -(a[:, 1] - c[:, 1]) * inv
    c1 = -(a1 * c[:, 1] + b1 * c[:, 0])
    coefficients = np.stack([a0, b0, c0, a1, b1, c1], axis=1).astype(np.float32)
    rounded = 2 ** np.ceil(np.log2(np.maximum(extent, 1))).astype(np.int64)
    key = np.where(good, rounded[:, 0] * 65536 + rounded[:, 1], -1)
    out: list[tuple[np.ndarray, ...]] = []
    for group_key in np.unique(key[key >= 0]):
        kw, kh = int(group_key // 65536), int(group_key % 65536)
        members = np.nonzero(key == group_key)[0]
        dy, dx = (m.reshape(-1).astype(np.float32) for m in np.meshgrid(np.arange(kh), np.arange(kw),
                                                                           indexing="ij"))
        chunk = max(1, 2**21 // (kw * kh))
        for start in range(0, len(members), chunk):
            ids = members[start:start + chunk]
            k = coefficients[ids]
            w0 = k[:, 0, None] * dy + k[:, 1, None] * dx + k[:, 2, None]
            w1 = k[:, 3, None] * dy + k[:, 4, None] * dx + k[:, 5, None]
            row, column = np.nonzero((w0 >= -1e-6) & (w1 >= -1e-6) & (w0 + w1 <= 1 + 1e-6))
            face = ids[row]
            x = low[face, 0] + dx[column].astype(np.int64)
            y = low[face, 1] + dy[column].astype(np.int64)
            keep = (x < width) & (y < height)
            face, x, y = face[keep], x[keep], y[keep]
            u, v = w0[row, column][keep], w1[row, column][keep]
            weights = np.stack([u, v, 1.0 - u - v], axis=1).astype(np.float64)
            out.append((y * width + x, (depth[faces[face]] * weights).sum(axis=1), face, weights))
    if not out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros(0), empty, np.zeros((0, 3))
    return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))


def orientation(vertices: np.ndarray, faces: np.ndarray) -> int:
    """``1`` for a closed mesh whose faces turn outward, ``-1`` inward, ``0`` for an open or
    inconsistently wound one (every directed edge of a closed, consistent mesh appears once and its
    reverse once)."""
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return 0
    n = int(faces.max()) + 1
    start, end = faces.reshape(-1), faces[:, [1, 2, 0]].reshape(-1)
    forward, backward = np.sort(start * n + end), np.sort(end * n + start)
    if np.any(forward[1:] == forward[:-1]) or not np.array_equal(forward, backward):
        return 0
    v = np.asarray(vertices, dtype=np.float64)
    volume = np.einsum("ij,ij->i", v[faces[:, 0]], np.cross(v[faces[:, 1]], v[faces[:, 2]])).sum()
    return 1 if volume > 0 else -1


def render_mesh(
    vertices: np.ndarray, faces: np.ndarray, view: np.ndarray, centre: np.ndarray, radius: float,
    size: int = 320, colour: tuple[float, float, float] = FIT_COLOUR, supersample: int = 2,
    vertex_colours: np.ndarray | None = None, facing: int | None = None,
) -> np.ndarray:
    """A shaded ``(size, size, 3)`` image in [0, 1] of the mesh seen through ``view`` (a rotation,
    :func:`rotation`), orthographic, framing a sphere of ``radius`` about ``centre`` (share it
    between meshes to compare them at one scale). ``vertex_colours`` ``(V, 3)`` replace ``colour``.
    ``facing`` is the mesh's :func:`orientation` (computed when ``None``): the back faces of a closed
    mesh are skipped, an open one is drawn two-sided."""
    paint = colour if vertex_colours is None else vertex_colours
    return render_paints(vertices, faces, view, centre, radius, [paint], size, supersample, facing)[0]


def render_paints(
    vertices: np.ndarray, faces: np.ndarray, view: np.ndarray, centre: np.ndarray, radius: float,
    paints: list, size: int = 320, supersample: int = 2, facing: int | None = None,
) -> list[np.ndarray]:
    """:func:`render_mesh` once per paint (an RGB colour, or ``(V, 3)`` vertex colours) from one
    rasterisation: the same surface and light in several colourings."""
    full = size * supersample
    images = []
    for _ in paints:
        image = np.empty((full * full, 3), dtype=np.float32)
        image[:] = BACKGROUND
        images.append(image)
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces):
        facing = orientation(vertices, faces) if facing is None else facing
        points = (np.asarray(vertices, dtype=np.float64) - centre) @ view.T
        drawn = faces
        if facing:  # a closed mesh: only faces turned towards the viewer can be seen
            normal_z = np.cross(points[faces[:, 1]] - points[faces[:, 0]],
                                points[faces[:, 2]] - points[faces[:, 0]])[:, 2]
            drawn = faces[normal_z * facing > 0]
        scale = (full - 1) / (2.0 * radius * 1.04)
        screen = np.stack([points[:, 0] * scale + full / 2, full / 2 - points[:, 1] * scale], axis=1)
        pixel, depth, face, weights = _fragments(screen, points[:, 2], drawn, full, full)
        if len(pixel):
            nearest = np.full(full * full, -np.inf)
            np.maximum.at(nearest, pixel, depth)
            front = np.nonzero(depth >= nearest[pixel])[0]
            front = front[np.unique(pixel[front], return_index=True)[1]]  # one fragment per pixel
            pixel, face, weights = pixel[front], drawn[face[front]], weights[front]
            normals = vertex_normals(vertices, faces) @ view.T
            normal = np.einsum("pk,pkc->pc", weights, normals[face])
            flat = np.cross(points[face[:, 1]] - points[face[:, 0]], points[face[:, 2]] - points[face[:, 0]])
            normal = np.where(np.linalg.norm(normal, axis=1, keepdims=True) > 1e-9, normal, flat)
            normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
            normal *= np.where(normal[:, 2:3] < 0, -1.0, 1.0)  # shade the side that faces the viewer
            light = np.asarray(LIGHT) / np.linalg.norm(LIGHT)
            halfway = light + np.array([0.0, 0.0, 1.0])
            halfway /= np.linalg.norm(halfway)
            diffuse = np.clip(normal @ light, 0, 1)
            specular = np.clip(normal @ halfway, 0, 1) ** 40
            fill = np.clip(normal @ np.array([0.5, -0.2, 0.8]), 0, 1)  # a weak second light
            shade = 0.22 + 0.68 * diffuse + 0.14 * fill
            for image, paint in zip(images, paints, strict=True):
                paint = np.asarray(paint, dtype=np.float64)
                base = paint[None, :] if paint.ndim == 1 else np.einsum("pk,pkc->pc", weights, paint[face])
                image[pixel] = np.clip(base * shade[:, None] + 0.28 * specular[:, None], 0, 1)
    out = []
    for image in images:
        image = image.reshape(full, full, 3)
        if supersample > 1:
            image = image.reshape(size, supersample, size, supersample, 3).mean(axis=(1, 3))
        out.append(image.astype(np.float64))
    return out


def frame_of(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (bounding-box middle) and radius of a sphere holding ``vertices``."""
    v = np.asarray(vertices, dtype=np.float64)
    centre = (v.min(axis=0) + v.max(axis=0)) / 2
    return centre, float(np.linalg.norm(v - centre, axis=1).max()) or 1.0


def mesh_payload(vertices: np.ndarray, faces: np.ndarray, label: str) -> dict:
    """A mesh for the 3-D view: vertices quantised to 16 bits over their bounding box, faces as
    16- or 32-bit indices, both little-endian base64."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    low = v.min(axis=0) if len(v) else np.zeros(3)
    span = float((v.max(axis=0) - low).max()) if len(v) else 1.0
    span = span or 1.0
    quantised = np.round((v - low) / span * 65535).astype("<u2")
    index = "<u2" if len(v) <= 65535 else "<u4"
    return {
        "label": label,
        "vertices": base64.b64encode(quantised.tobytes()).decode("ascii"),
        "faces": base64.b64encode(f.astype(index).tobytes()).decode("ascii"),
        "index_bytes": 2 if index == "<u2" else 4,
        "low": [float(x) for x in low],
        "span": span,
        "vertex_count": len(v),
        "face_count": len(f),
    }


def decode_payload(payload: dict) -> tuple[np.ndarray, np.ndarray]:
    """The ``(vertices, faces)`` a :func:`mesh_payload` holds (for tests and checks)."""
    q = np.frombuffer(base64.b64decode(payload["vertices"]), dtype="<u2").reshape(-1, 3)
    dtype = "<u2" if payload["index_bytes"] == 2 else "<u4"
    f = np.frombuffer(base64.b64decode(payload["faces"]), dtype=dtype).reshape(-1, 3).astype(np.int64)
    return np.asarray(payload["low"]) + q / 65535.0 * payload["span"], f


def viewer_html(meshes: list[dict], centre: np.ndarray | None = None, radius: float | None = None,
                view: tuple[float, float] = (30.0, 15.0), element_id: str = "mesh3d") -> str:
    """The 3-D view: one canvas per payload (:func:`mesh_payload`, with a ``colour``), turned
    together from ``view`` (yaw, pitch in degrees, as :func:`rotation`) and framing the sphere of
    ``radius`` about ``centre``; the mesh data as inert JSON and the renderer as an inline script."""

    canvases = "".join(
        f"<figure class='m3'><canvas width='440' height='440' data-mesh='{i}' "
        f"aria-label='{html.escape(m['label'])}'></canvas><figcaption>{html.escape(m['label'])}</figcaption>"
        "</figure>" for i, m in enumerate(meshes))
    style = ("<style>.m3wrap{display:flex;flex-wrap:wrap;gap:12px}.m3{margin:0}"
             ".m3 canvas{border:1px solid #ddd;border-radius:4px;cursor:grab;touch-action:none;"
             "background:#fff;width:440px;max-width:100%}.m3 figcaption{font-size:.88em;color:#555;"
             "text-align:center}</style>")
    data: dict = {"meshes": meshes, "yaw": float(view[0]), "pitch": float(view[1])}
    if centre is not None and radius is not None:
        data.update(centre=[float(c) for c in centre], radius=float(radius))
    return (f"{style}<div class='m3wrap' id='{html.escape(element_id)}'>{canvases}</div>"
            + json_script(f"{element_id}-data", data)
            + f"<script>{_VIEWER_JS.replace('__ID__', element_id)}</script>")


# The page's 3-D view: a software z-buffer rasteriser on a 2-D canvas with Gouraud shading; all
# canvases share one orientation. About 20 ms a frame for 30 000 faces.
_VIEWER_JS = r"""
(function () {
  "use strict";
  var root = document.getElementById("__ID__");
  var data = JSON.parse(document.getElementById("__ID__-data").textContent);
  function bytes(b64) {
    var s = atob(b64), u = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    return u.buffer;
  }
  function prepare(m) {
    var q = new Uint16Array(bytes(m.vertices));
    var f = m.index_bytes === 2 ? new Uint16Array(bytes(m.faces)) : new Uint32Array(bytes(m.faces));
    var n = q.length / 3, v = new Float32Array(q.length), nr = new Float32Array(q.length);
    var lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    for (var i = 0; i < n; i++) {
      for (var k = 0; k < 3; k++) {
        var x = m.low[k] + q[3 * i + k] / 65535 * m.span;
        v[3 * i + k] = x; if (x < lo[k]) lo[k] = x; if (x > hi[k]) hi[k] = x;
      }
    }
    for (var t = 0; t < f.length; t += 3) {
      var a = 3 * f[t], b = 3 * f[t + 1], c = 3 * f[t + 2];
      var ux = v[b] - v[a], uy = v[b + 1] - v[a + 1], uz = v[b + 2] - v[a + 2];
      var wx = v[c] - v[a], wy = v[c + 1] - v[a + 1], wz = v[c + 2] - v[a + 2];
      var cx = uy * wz - uz * wy, cy = uz * wx - ux * wz, cz = ux * wy - uy * wx;
      for (var j = 0; j < 3; j++) {
        var p = 3 * f[t + j]; nr[p] += cx; nr[p + 1] += cy; nr[p + 2] += cz;
      }
    }
    for (i = 0; i < n; i++) {
      var l = Math.hypot(nr[3 * i], nr[3 * i + 1], nr[3 * i + 2]) || 1;
      nr[3 * i] /= l; nr[3 * i + 1] /= l; nr[3 * i + 2] /= l;
    }
    return {v: v, f: f, n: nr, count: n, colour: m.colour || [0.7, 0.7, 0.7],
            centre: [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2]};
  }
  var meshes = data.meshes.map(prepare);
  var centre = data.centre || meshes[0].centre, radius = data.radius || 1;
  var home = {yaw: +data.yaw || 0, pitch: +data.pitch || 0};
  var state = {yaw: home.yaw, pitch: home.pitch, zoom: 1};
  var L = [-0.45, 0.6, 0.66], Ll = Math.hypot(L[0], L[1], L[2]);
  L = [L[0] / Ll, L[1] / Ll, L[2] / Ll];
  var H = [L[0], L[1], L[2] + 1], Hl = Math.hypot(H[0], H[1], H[2]);
  H = [H[0] / Hl, H[1] / Hl, H[2] / Hl];
  function draw(canvas, mesh) {
    var ctx = canvas.getContext("2d"), W = canvas.width, Ht = canvas.height;
    var img = ctx.createImageData(W, Ht), px = img.data, z = new Float32Array(W * Ht);
    z.fill(-Infinity);
    for (var i = 0; i < px.length; i += 4) { px[i] = px[i + 1] = px[i + 2] = 255; px[i + 3] = 255; }
    var a = state.yaw * Math.PI / 180, b = state.pitch * Math.PI / 180;
    var ca = Math.cos(a), sa = Math.sin(a), cb = Math.cos(b), sb = Math.sin(b);
    var R = [ca, 0, sa, sb * sa, cb, -sb * ca, -cb * sa, sb, cb * ca];
    var s = (Math.min(W, Ht) - 1) / (2 * radius * 1.04) * state.zoom, n = mesh.count;
    var sx = new Float32Array(n), sy = new Float32Array(n), sz = new Float32Array(n);
    var shade = new Float32Array(n), shine = new Float32Array(n), v = mesh.v, nr = mesh.n;
    for (i = 0; i < n; i++) {
      var x = v[3 * i] - centre[0], y = v[3 * i + 1] - centre[1], w = v[3 * i + 2] - centre[2];
      sx[i] = W / 2 + s * (R[0] * x + R[1] * y + R[2] * w);
      sy[i] = Ht / 2 - s * (R[3] * x + R[4] * y + R[5] * w);
      sz[i] = R[6] * x + R[7] * y + R[8] * w;
      var nx = R[0] * nr[3 * i] + R[1] * nr[3 * i + 1] + R[2] * nr[3 * i + 2];
      var ny = R[3] * nr[3 * i] + R[4] * nr[3 * i + 1] + R[5] * nr[3 * i + 2];
      var nz = R[6] * nr[3 * i] + R[7] * nr[3 * i + 1] + R[8] * nr[3 * i + 2];
      if (nz < 0) { nx = -nx; ny = -ny; nz = -nz; }
      var d = Math.max(0, nx * L[0] + ny * L[1] + nz * L[2]);
      var fl = Math.max(0, 0.5 * nx - 0.2 * ny + 0.8 * nz);
      shade[i] = 0.22 + 0.68 * d + 0.14 * fl;
      shine[i] = 0.28 * Math.pow(Math.max(0, nx * H[0] + ny * H[1] + nz * H[2]), 40);
    }
    var f = mesh.f, col = mesh.colour;
    for (var t = 0; t < f.length; t += 3) {
      var i0 = f[t], i1 = f[t + 1], i2 = f[t + 2];
      var x0 = sx[i0], y0 = sy[i0], x1 = sx[i1], y1 = sy[i1], x2 = sx[i2], y2 = sy[i2];
      var area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0);
      if (Math.abs(area) < 1e-9) continue;
      var xa = Math.max(0, Math.floor(Math.min(x0, x1, x2)));
      var xb = Math.min(W - 1, Math.ceil(Math.max(x0, x1, x2)));
      var ya = Math.max(0, Math.floor(Math.min(y0, y1, y2)));
      var yb = Math.min(Ht - 1, Math.ceil(Math.max(y0, y1, y2)));
      var inv = 1 / area;
      for (var py = ya; py <= yb; py++) {
        for (var qx = xa; qx <= xb; qx++) {
          var w0 = ((x2 - x1) * (py - y1) - (y2 - y1) * (qx - x1)) * inv;
          var w1 = ((x0 - x2) * (py - y2) - (y0 - y2) * (qx - x2)) * inv;
          var w2 = 1 - w0 - w1;
          if (w0 < 0 || w1 < 0 || w2 < 0) continue;
          var depth = w0 * sz[i0] + w1 * sz[i1] + w2 * sz[i2], o = py * W + qx;
          if (depth <= z[o]) continue;
          z[o] = depth;
          var g = w0 * shade[i0] + w1 * shade[i1] + w2 * shade[i2];
          var h = w0 * shine[i0] + w1 * shine[i1] + w2 * shine[i2];
          px[4 * o] = 255 * Math.min(1, col[0] * g + h);
          px[4 * o + 1] = 255 * Math.min(1, col[1] * g + h);
          px[4 * o + 2] = 255 * Math.min(1, col[2] * g + h);
        }
      }
    }
    ctx.putImageData(img, 0, 0);
  }
  var canvases = root.querySelectorAll("canvas"), pending = false;
  function redraw() {
    pending = false;
    for (var i = 0; i < canvases.length; i++) draw(canvases[i], meshes[+canvases[i].dataset.mesh]);
  }
  function later() { if (!pending) { pending = true; requestAnimationFrame(redraw); } }
  var drag = null;
  Array.prototype.forEach.call(canvases, function (c) {
    c.addEventListener("pointerdown", function (e) {
      drag = {x: e.clientX, y: e.clientY}; c.style.cursor = "grabbing";
      try { c.setPointerCapture(e.pointerId); } catch (err) { /* a synthetic pointer */ }
    });
    c.addEventListener("pointermove", function (e) {
      if (!drag) return;
      state.yaw += (e.clientX - drag.x) * 0.5;
      state.pitch = Math.max(-89, Math.min(89, state.pitch + (e.clientY - drag.y) * 0.5));
      drag = {x: e.clientX, y: e.clientY}; later();
    });
    function release() { drag = null; c.style.cursor = "grab"; }
    c.addEventListener("pointerup", release);
    c.addEventListener("pointercancel", release);
    c.addEventListener("wheel", function (e) {
      e.preventDefault();
      state.zoom = Math.max(0.3, Math.min(8, state.zoom * Math.exp(-e.deltaY * 0.001))); later();
    }, {passive: false});
    c.addEventListener("dblclick", function () {
      state.yaw = home.yaw; state.pitch = home.pitch; state.zoom = 1; later();
    });
  });
  redraw();
})();
"""
