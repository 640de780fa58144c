// Small live line charts in SVG: a fixed window of samples, one path per series.

const NS = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

/** A rounded-up axis maximum: 1, 2, 5 × 10^n. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/**
 * A line chart of the last `points` samples. `series`: [{ name, color }]; `format(v)` labels values;
 * `max` fixes the y-axis top (otherwise it follows the data). Null values leave gaps.
 */
export class LineChart {
  constructor(container, { series, points = 60, format = (v) => v.toFixed(0), max = null, small = false, legend = true }) {
    this.series = series;
    this.points = points;
    this.format = format;
    this.fixedMax = max;
    this.height = small ? 80 : 150;
    this.data = series.map(() => []);
    this.width = 600;
    this.svg = svgEl('svg', { class: small ? 'chart small' : 'chart', viewBox: `0 0 ${this.width} ${this.height}` });
    this.grid = svgEl('g', {});
    this.svg.append(this.grid);
    this.paths = series.map((s) => {
      const area = svgEl('path', { class: 'area', fill: s.color, d: '' });
      const line = svgEl('path', { class: 'series', stroke: s.color, d: '' });
      this.svg.append(area, line);
      return { line, area };
    });
    this.labels = svgEl('g', {});
    this.svg.append(this.labels);
    container.append(this.svg);
    this.legend = null;
    if (legend && series.length > 1) {
      this.legend = document.createElement('div');
      this.legend.className = 'legend';
      this.values = series.map((s) => {
        const item = document.createElement('span');
        const sw = document.createElement('i');
        sw.style.background = s.color;
        const b = document.createElement('b');
        b.textContent = '–';
        item.append(sw, document.createTextNode(s.name), b);
        this.legend.append(item);
        return b;
      });
      container.append(this.legend);
    }
  }

  /** Appends one sample per series (same order as `series`) and redraws. */
  push(values) {
    values.forEach((v, i) => {
      const d = this.data[i];
      d.push(Number.isFinite(v) ? v : null);
      if (d.length > this.points) d.shift();
      if (this.values) this.values[i].textContent = Number.isFinite(v) ? this.format(v) : '–';
    });
    this.draw();
  }

  draw() {
    // The drawing has the element's own size, so text and strokes are never stretched.
    const W = this.svg.clientWidth || this.width;
    if (W !== this.width) {
      this.width = W;
      this.svg.setAttribute('viewBox', `0 0 ${W} ${this.height}`);
    }
    const all = this.data.flat().filter((v) => v !== null);
    const max = this.fixedMax ?? niceMax(Math.max(0, ...all) * 1.1);
    const h = this.height;
    const top = 12;
    const y = (v) => h - 2 - ((h - top - 2) * Math.min(v, max)) / max;
    const x = (i) => (W * i) / (this.points - 1);
    this.grid.replaceChildren(...[0, 0.5, 1].map((f) => svgEl('line', {
      class: 'grid', x1: 0, x2: W, y1: y(max * f), y2: y(max * f),
    })));
    const label = svgEl('text', { class: 'axis', x: 4, y: top - 2 });
    label.textContent = this.format(max);
    this.labels.replaceChildren(label);
    this.data.forEach((d, si) => {
      const start = this.points - d.length;
      let line = '';
      let pen = false;
      d.forEach((v, i) => {
        if (v === null) { pen = false; return; }
        line += `${pen ? 'L' : 'M'}${x(start + i).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      });
      this.paths[si].line.setAttribute('d', line);
      const firstIdx = d.findIndex((v) => v !== null);
      const allPresent = firstIdx >= 0 && d.slice(firstIdx).every((v) => v !== null);
      this.paths[si].area.setAttribute('d', allPresent && line && this.series.length === 1
        ? `${line}L${x(this.points - 1).toFixed(1)},${h}L${x(start + firstIdx).toFixed(1)},${h}Z`
        : '');
    });
    this.svg.dataset.samples = String(Math.max(...this.data.map((d) => d.length)));
  }
}
