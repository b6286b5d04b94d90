/**
 * Choosing and formatting the metric a session is summarised by.
 */
import { MetricValues } from './tokens';

/** Metrics in order of preference for the one-number summary of a session. */
const PREFERRED = ['roc_auc', 'auc', 'accuracy', 'r2', 'loss'];

/** Short labels for well-known metric names. */
const LABELS: Record<string, string> = {
  roc_auc: 'AUC',
  auc: 'AUC',
  accuracy: 'accuracy',
  r2: 'R²',
  loss: 'loss'
};

/** Keys that are counts, not quality measures: never charted or summarised. */
const NOT_METRICS = new Set(['num_examples', 'num_clients', 'round']);

/** Metric names present in any entry, preferred ones first. */
export function metricNames(entries: ReadonlyArray<MetricValues>): string[] {
  const seen = new Set<string>();
  for (const entry of entries) {
    for (const [key, value] of Object.entries(entry ?? {})) {
      if (!NOT_METRICS.has(key) && (typeof value === 'number' || value === null)) {
        seen.add(key);
      }
    }
  }
  const rank = (name: string): number => {
    const i = PREFERRED.indexOf(name);
    return i < 0 ? PREFERRED.length : i;
  };
  return [...seen].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** The metric to summarise `values` with, or `null` when there is none with a value. */
export function primaryMetric(values: MetricValues | null | undefined): string | null {
  if (!values) {
    return null;
  }
  return metricNames([values]).find(name => typeof values[name] === 'number') ?? null;
}

export function metricLabel(name: string): string {
  return LABELS[name] ?? name.replace(/_/g, ' ');
}

/** A metric value for display: 3 significant decimals, "n/a" when undefined. */
export function formatMetric(value: number | null | undefined): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return 'n/a';
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 0.001 || abs >= 100000)) {
    return value.toExponential(2);
  }
  return value.toFixed(abs >= 100 ? 1 : 3);
}

/** `"AUC 0.812"` for the preferred metric of `values`, or `""`. */
export function summarizeMetrics(values: MetricValues | null | undefined): string {
  const name = primaryMetric(values);
  return name && values ? `${metricLabel(name)} ${formatMetric(values[name])}` : '';
}
