/**
 * One session in detail: the metric curve, its clients and their errors, recent log lines.
 */
import { HTMLSelect } from '@jupyterlab/ui-components';
import React from 'react';

import { duration } from '../format';
import { describeError } from '../handler';
import { formatMetric, metricLabel, metricNames } from '../metrics';
import { FedModel } from '../model';
import { ISession, ISessionMetrics, MetricValues } from '../tokens';
import { ErrorNote, WarningNote } from './common';
import { MetricChart } from './MetricChart';

export interface ISessionDetailsProps {
  model: FedModel;
  session: ISession;
}

export function SessionDetails(props: ISessionDetailsProps): JSX.Element {
  const { model, session } = props;
  const [metrics, setMetrics] = React.useState<ISessionMetrics | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [chosen, setChosen] = React.useState<string | null>(null);

  // Reload the history when a round is committed or the session ends.
  React.useEffect(() => {
    let live = true;
    model.metrics(session.id).then(
      m => {
        if (live) {
          setMetrics(m);
          setError(null);
        }
      },
      err => live && setError(`metrics unavailable: ${describeError(err)}`)
    );
    return () => {
      live = false;
    };
  }, [model, session.id, session.current_round, session.status]);

  const history = metrics?.federated_metrics ?? [];
  const names = metricNames(history);
  const metric = chosen && names.includes(chosen) ? chosen : (names[0] ?? null);
  const values = metric ? history.map(entry => entry?.[metric] ?? null) : [];
  const overlap = linkage(metrics);
  const logs = model.live(session.id).logs;
  const took = duration(session.started_at, session.finished_at);

  return (
    <div className="jp-Fed-details jp-Fed-sessionDetails" data-session-details={session.id}>
      <ErrorNote message={session.error ? `${session.status}: ${session.error}` : null} />
      <ErrorNote message={error} />
      <WarningNote messages={session.warnings} />
      {metric ? (
        <>
          <div className="jp-Fed-chartHeader">
            <HTMLSelect
              aria-label="Metric to plot"
              value={metric}
              onChange={e => setChosen(e.currentTarget.value)}
              options={names.map(n => ({ value: n, label: metricLabel(n) }))}
            />
            <span className="jp-Fed-muted">
              latest {formatMetric(values[values.length - 1])}
            </span>
          </div>
          <MetricChart values={values} label={metricLabel(metric)} />
        </>
      ) : overlap ? (
        <OverlapTable rows={overlap} />
      ) : (
        !error && (
          <div className="jp-Fed-empty">
            {ENDED.includes(session.status)
              ? 'This session reported no metrics.'
              : 'No metrics yet: the first round has not ended.'}
          </div>
        )
      )}
      <div className="jp-Fed-detailsLabel">Clients</div>
      <ul className="jp-Fed-clients">
        {session.clients.length === 0 && <li className="jp-Fed-muted">none joined yet</li>}
        {session.clients.map(c => (
          <li key={c.client_id} className="jp-Fed-client">
            <span className="jp-Fed-name">{c.client_id}</span>{' '}
            <span className="jp-Fed-muted">
              on {c.runner} · {Object.values(c.datasets).filter(Boolean).join(', ')} · {c.status}
            </span>
            <ErrorNote message={c.error} />
          </li>
        ))}
      </ul>
      <div className="jp-Fed-muted">
        {session.package} · id {session.id}
        {took ? ` · took ${took}` : ''}
      </div>
      {logs.length > 0 && (
        <>
          <div className="jp-Fed-detailsLabel">Recent log</div>
          <pre className="jp-Fed-log">{logs.slice(-5).join('\n')}</pre>
        </>
      )}
    </div>
  );
}

const ENDED = ['completed', 'failed', 'cancelled'];

/** One client's linked records in one role (train or test) of a record-linkage session. */
interface IOverlapRow {
  client: string;
  role: string;
  records: number;
  linked: number;
  fraction: number;
}

/**
 * A record-linkage session's metrics are per client and role (the reference SDK's shape:
 * `client_metrics[client][train|test] = {n_records, n_overlapped_records, frac_overlapped}`), not
 * a curve; null for any other session.
 */
export function linkage(metrics: ISessionMetrics | null): IOverlapRow[] | null {
  const per = metrics?.client_metrics;
  if (!per || Array.isArray(per)) {
    return null;
  }
  const rows: IOverlapRow[] = [];
  for (const [client, roles] of Object.entries(per)) {
    for (const [role, m] of Object.entries(roles ?? {})) {
      const values = m as MetricValues;
      if (typeof values?.n_overlapped_records !== 'number') {
        continue;
      }
      rows.push({
        client,
        role,
        records: Number(values.n_records ?? NaN),
        linked: values.n_overlapped_records,
        fraction: Number(values.frac_overlapped ?? NaN)
      });
    }
  }
  return rows.length ? rows : null;
}

function OverlapTable(props: { rows: IOverlapRow[] }): JSX.Element {
  const count = (n: number) => (Number.isFinite(n) ? n.toLocaleString('en-US') : '–');
  return (
    <table className="jp-Fed-overlap" aria-label="Linked records">
      <thead>
        <tr>
          <th>client</th>
          <th>set</th>
          <th>records</th>
          <th>linked</th>
          <th>share</th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map(r => (
          <tr key={`${r.client}/${r.role}`}>
            <td>{r.client}</td>
            <td>{r.role}</td>
            <td>{count(r.records)}</td>
            <td>{count(r.linked)}</td>
            <td>{Number.isFinite(r.fraction) ? `${(100 * r.fraction).toFixed(1)}%` : '–'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
