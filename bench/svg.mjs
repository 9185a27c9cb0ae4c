// A horizontal bar chart as a standalone SVG string (no dependency): one bar per library,
// Dovetail's bars highlighted, the value printed at the end of each bar.

const escape = (text) =>
  String(text).replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c],
  );

const format = (value, unit) => {
  if (!Number.isFinite(value)) return 'n/a';
  if (unit === '%') return `${value.toFixed(1)}%`;
  return `${Math.round(value).toLocaleString('en-US')} ${unit}`;
};

/**
 * @param {{ title: string, unit: string, bars: { label: string, value: number, highlight?: boolean }[],
 *           log?: boolean, max?: number }} options
 * @returns {string} the SVG document
 */
export function barChart({ title, unit, bars, log = false, max }) {
  const labelWidth = 330;
  const plotWidth = 420;
  const valueWidth = 110;
  const barHeight = 22;
  const gap = 8;
  const top = 44;
  const width = labelWidth + plotWidth + valueWidth;
  const height = top + bars.length * (barHeight + gap) + 16;
  const finite = bars.map((b) => b.value).filter(Number.isFinite);
  const top1 = max ?? Math.max(1, ...finite);
  // Log scale from one decade below the smallest value, so the smallest bar is still visible.
  const low = log ? 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...finite))) - 1) : 0;
  const scale = (v) => {
    if (!Number.isFinite(v) || v <= 0) return 0;
    if (!log) return Math.min(1, v / top1) * plotWidth;
    return Math.max(0, Math.min(1, Math.log10(v / low) / Math.log10(top1 / low))) * plotWidth;
  };
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="24" font-size="15" font-weight="600" fill="#111">${escape(title)}</text>`,
  ];
  bars.forEach((bar, i) => {
    const y = top + i * (barHeight + gap);
    const w = scale(bar.value);
    out.push(
      `<text x="${labelWidth - 10}" y="${y + barHeight * 0.7}" text-anchor="end" fill="#222">${escape(bar.label)}</text>`,
      `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" rx="3" fill="${bar.highlight ? '#d9480f' : '#868e96'}"/>`,
      `<text x="${labelWidth + w + 6}" y="${y + barHeight * 0.7}" fill="#222">${escape(format(bar.value, unit))}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
