/**
 * One session in detail: the metric curve, its clients and their errors, recent log lines.
 */
import { HTMLSelect } from '@jupyterlab/ui-components';
import React from 'react';

import { duration } from '../format';
import { describeError } from '../handler';
import { formatMetric, metricLabel, metricNames } from '../metrics';
import { FedModel } from '../model';
import { ISession, ISessionMetrics } from '../tokens';
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
      ) : (
        !error && <div className="jp-Fed-empty">No metrics yet: the first round has not ended.</div>
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
