/**
 * The Sessions section: every session with its status, round progress and latest federated
 * metric, live from the event stream; cancel one, or open its details.
 */
import { Button, stopIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { isTerminal, roundProgress, roundText } from '../format';
import { describeError } from '../handler';
import { summarizeMetrics } from '../metrics';
import { FedModel } from '../model';
import { ISession } from '../tokens';
import { Empty, ErrorNote, Loading, useModel } from './common';
import { SessionDetails } from './SessionDetails';

export interface ISessionsViewProps {
  model: FedModel;
  confirm: (title: string, body: string, accept: string) => Promise<boolean>;
}

function ProgressBar(props: { session: ISession }): JSX.Element {
  const fraction = roundProgress(props.session);
  const pct = Math.round(fraction * 100);
  return (
    <div
      className={`jp-Fed-progress jp-Fed-progress-${props.session.status}`}
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct}
      aria-label={roundText(props.session)}
    >
      <div className="jp-Fed-progressFill" style={{ width: `${pct}%` }} />
    </div>
  );
}

function SessionRow(props: {
  model: FedModel;
  session: ISession;
  open: boolean;
  onOpen: (id: string) => void;
  onCancel: (session: ISession) => void;
  cancelling: boolean;
}): JSX.Element {
  const { model, session, open, onOpen, onCancel, cancelling } = props;
  const metric = summarizeMetrics(model.live(session.id).latest);
  return (
    <li
      className={`jp-Fed-item jp-Fed-session${open ? ' jp-mod-selected' : ''}`}
      data-session={session.id}
      data-status={session.status}
    >
      <div className="jp-Fed-itemBody">
        <div className="jp-Fed-itemTitleRow">
          <button
            type="button"
            className="jp-Fed-itemTitle jp-Fed-link"
            aria-expanded={open}
            title={`${session.name} (${session.id}): show details`}
            onClick={() => onOpen(session.id)}
          >
            <span className="jp-Fed-name">{session.name}</span>
          </button>
          <span className={`jp-Fed-status jp-Fed-status-${session.status}`}>{session.status}</span>
          {session.warnings && session.warnings.length > 0 && (
            <span
              className="jp-Fed-warningBadge"
              title={session.warnings.join('\n')}
              aria-label={`${session.warnings.length} warning(s)`}
            >
              ⚠
            </span>
          )}
          {!isTerminal(session) && (
            <Button
              minimal
              small
              className="jp-Fed-iconButton"
              title={`Cancel session ${session.name}`}
              aria-label={`Cancel session ${session.name}`}
              disabled={cancelling}
              onClick={() => onCancel(session)}
            >
              <stopIcon.react tag="span" elementSize="small" />
            </Button>
          )}
        </div>
        <ProgressBar session={session} />
        <div className="jp-Fed-muted jp-Fed-sessionSummary">
          {session.package} · {roundText(session)}
          {metric && (
            <>
              {' · '}
              <span className="jp-Fed-metric">{metric}</span>
            </>
          )}
        </div>
        {open && <SessionDetails model={model} session={session} />}
      </div>
    </li>
  );
}

export function SessionsView(props: ISessionsViewProps): JSX.Element {
  const { model, confirm } = props;
  useModel(model, ['sessions', 'stream']);
  const [open, setOpen] = React.useState<string | null>(null);
  const [cancelling, setCancelling] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);

  const cancel = async (session: ISession): Promise<void> => {
    const ok = await confirm(
      'Cancel session',
      `Stop ${session.name} (${session.id})? The runners stop their work; rounds already ` +
        'committed keep their models and metrics.',
      'Cancel session'
    );
    if (!ok) {
      return;
    }
    setCancelling(session.id);
    setError(null);
    try {
      await model.cancelSession(session.id);
    } catch (err) {
      setError(`could not cancel ${session.name}: ${describeError(err)}`);
    } finally {
      setCancelling(null);
    }
  };

  const sessions = model.sessions;
  return (
    <div className="jp-Fed-section jp-Fed-sessions">
      <ErrorNote message={model.sessionsError} />
      <ErrorNote message={model.sessionsError ? null : model.streamError} />
      <ErrorNote message={error} />
      {!model.loaded('sessions') ? (
        <Loading what="sessions" />
      ) : sessions.length === 0 && !model.sessionsError ? (
        <Empty>No sessions yet. Insert a %%federate cell from the datasets above and run it.</Empty>
      ) : null}
      <ul className="jp-Fed-list">
        {sessions.map(s => (
          <SessionRow
            key={s.id}
            model={model}
            session={s}
            open={open === s.id}
            onOpen={id => setOpen(open === id ? null : id)}
            onCancel={cancel}
            cancelling={cancelling === s.id}
          />
        ))}
      </ul>
    </div>
  );
}
