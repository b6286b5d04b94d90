/**
 * A small SVG line chart of one metric over a session's models (model 0 = before training).
 * Undefined values (`null`) break the line instead of being drawn as zero.
 */
import React from 'react';

import { formatMetric } from '../metrics';

export interface IMetricChartProps {
  /** One value per model, in order; `null` where the metric is undefined. */
  values: ReadonlyArray<number | null>;
  label: string;
  width?: number;
  height?: number;
}

const PAD = { left: 40, right: 8, top: 8, bottom: 18 };

/** SVG path segments for the defined runs of `values` (exported for tests). */
export function chartPath(
  values: ReadonlyArray<number | null>,
  width: number,
  height: number
): { path: string; points: [number, number][]; min: number; max: number } | null {
  const defined = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (defined.length === 0) {
    return null;
  }
  let min = Math.min(...defined);
  let max = Math.max(...defined);
  if (min === max) {
    min -= 0.5 * (Math.abs(min) || 1);
    max += 0.5 * (Math.abs(max) || 1);
  }
  const innerW = width - PAD.left - PAD.right;
  const innerH = height - PAD.top - PAD.bottom;
  const x = (i: number): number =>
    PAD.left + (values.length > 1 ? (i / (values.length - 1)) * innerW : innerW / 2);
  const y = (v: number): number => PAD.top + (1 - (v - min) / (max - min)) * innerH;
  const points: [number, number][] = [];
  let path = '';
  let pen = false;
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    const px = +x(i).toFixed(1);
    const py = +y(v).toFixed(1);
    points.push([px, py]);
    path += `${pen ? 'L' : 'M'}${px},${py} `;
    pen = true;
  });
  return { path: path.trim(), points, min, max };
}

export function MetricChart(props: IMetricChartProps): JSX.Element {
  const { values, label, width = 260, height = 120 } = props;
  const chart = chartPath(values, width, height);
  if (chart === null) {
    return <div className="jp-Fed-empty">No {label} values yet.</div>;
  }
  const bottom = height - PAD.bottom;
  return (
    <svg
      className="jp-Fed-chart"
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`${label} per round`}
      preserveAspectRatio="xMidYMid meet"
    >
      <line className="jp-Fed-chartAxis" x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={bottom} />
      <line className="jp-Fed-chartAxis" x1={PAD.left} y1={bottom} x2={width - PAD.right} y2={bottom} />
      <text className="jp-Fed-chartText" x={PAD.left - 4} y={PAD.top + 8} textAnchor="end">
        {formatMetric(chart.max)}
      </text>
      <text className="jp-Fed-chartText" x={PAD.left - 4} y={bottom} textAnchor="end">
        {formatMetric(chart.min)}
      </text>
      <text className="jp-Fed-chartText" x={PAD.left} y={height - 4} textAnchor="start">
        0
      </text>
      <text className="jp-Fed-chartText" x={width - PAD.right} y={height - 4} textAnchor="end">
        {values.length - 1}
      </text>
      <text className="jp-Fed-chartText" x={(PAD.left + width - PAD.right) / 2} y={height - 4} textAnchor="middle">
        round
      </text>
      <path className="jp-Fed-chartLine" d={chart.path} />
      {chart.points.map(([px, py], i) => (
        <circle key={i} className="jp-Fed-chartPoint" cx={px} cy={py} r={2.5} />
      ))}
    </svg>
  );
}
