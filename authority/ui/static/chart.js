// One gate over time as a small SVG line chart: the observed value and the threshold it is
// held to. Hand-drawn: one series and one line need about sixty lines, not a charting library.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 360;
const HEIGHT = 140;
const PAD = { top: 10, right: 10, bottom: 22, left: 52 };

function el(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * `points`: [{t: ms, observed: number|null, threshold: number|null}], oldest first.
 * `format` turns a value into its label. Returns an <svg> described by its title.
 */
export function gateChart(title, points, format) {
  const svg = el("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "chart" });
  const last = points.at(-1);
  svg.append(
    el(
      "title",
      {},
      `${title}: ${last?.observed == null ? "no value yet" : format(last.observed)}, threshold ${
        last?.threshold == null ? "none" : format(last.threshold)
      }, ${points.length} samples`,
    ),
  );
  const values = points.flatMap((p) => [p.observed, p.threshold]).filter((v) => v != null);
  const top = Math.max(...values, 0) * 1.15 || 1;
  const t0 = points[0]?.t ?? 0;
  const span = Math.max((last?.t ?? 0) - t0, 1);
  const x = (t) => PAD.left + ((t - t0) / span) * (WIDTH - PAD.left - PAD.right);
  const y = (v) => HEIGHT - PAD.bottom - (v / top) * (HEIGHT - PAD.top - PAD.bottom);

  svg.append(
    el("line", { x1: PAD.left, y1: y(0), x2: WIDTH - PAD.right, y2: y(0), class: "axis" }),
    el("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: y(0), class: "axis" }),
    el("text", { x: PAD.left - 4, y: PAD.top + 8, class: "tick", "text-anchor": "end" }, format(top)),
    el("text", { x: PAD.left - 4, y: y(0), class: "tick", "text-anchor": "end" }, format(0)),
    el("text", { x: WIDTH - PAD.right, y: HEIGHT - 6, class: "tick", "text-anchor": "end" }, "now"),
  );
  const line = (key, cls) => {
    const drawn = points.filter((p) => p[key] != null);
    if (drawn.length === 0) return;
    if (drawn.length === 1) {
      svg.append(el("circle", { cx: x(drawn[0].t), cy: y(drawn[0][key]), r: 3, class: cls }));
      return;
    }
    svg.append(el("polyline", { points: drawn.map((p) => `${x(p.t)},${y(p[key])}`).join(" "), class: cls }));
  };
  line("threshold", "threshold");
  line("observed", "observed");
  return svg;
}
