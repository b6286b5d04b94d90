/**
 * The Runners section: each connected runner with its health, latency and number of datasets;
 * add one from an invitation, remove one.
 */
import { addIcon, Button, closeIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { runnerProblem, runnerSummary } from '../format';
import { describeError } from '../handler';
import { FedModel } from '../model';
import { IRunner } from '../tokens';
import { AddRunnerForm } from './AddRunnerForm';
import { Empty, ErrorNote, Loading, useModel } from './common';

export interface IRunnersViewProps {
  model: FedModel;
  /** Ask the user to confirm; resolves `true` to go ahead. */
  confirm: (title: string, body: string, accept: string) => Promise<boolean>;
}

function RunnerRow(props: {
  runner: IRunner;
  onRemove: (name: string) => void;
  busy: boolean;
}): JSX.Element {
  const { runner, onRemove, busy } = props;
  return (
    <li className="jp-Fed-item jp-Fed-runner" data-runner={runner.name} data-status={runner.status}>
      <span
        className={`jp-Fed-dot jp-Fed-dot-${runner.status}`}
        role="img"
        aria-label={runner.status === 'ok' ? 'healthy' : runner.status}
      />
      <div className="jp-Fed-itemBody">
        <div className="jp-Fed-itemTitle">
          <span className="jp-Fed-name">{runner.name}</span>
        </div>
        <div className="jp-Fed-url" title={runner.url}>
          {runner.url}
        </div>
        <div className="jp-Fed-muted jp-Fed-runnerSummary">{runnerSummary(runner)}</div>
        <ErrorNote message={runnerProblem(runner)} />
      </div>
      <Button
        minimal
        small
        className="jp-Fed-iconButton"
        title={`Remove runner ${runner.name}`}
        aria-label={`Remove runner ${runner.name}`}
        disabled={busy}
        onClick={() => onRemove(runner.name)}
      >
        <closeIcon.react tag="span" elementSize="small" />
      </Button>
    </li>
  );
}

export function RunnersView(props: IRunnersViewProps): JSX.Element {
  const { model, confirm } = props;
  useModel(model, ['runners']);
  const [adding, setAdding] = React.useState(false);
  const [removing, setRemoving] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);

  const remove = async (name: string): Promise<void> => {
    const ok = await confirm(
      'Remove runner',
      `Disconnect ${name}? Its token is forgotten; sessions already finished keep their results.`,
      'Remove'
    );
    if (!ok) {
      return;
    }
    setRemoving(name);
    setError(null);
    try {
      await model.removeRunner(name);
    } catch (err) {
      setError(`could not remove ${name}: ${describeError(err)}`);
    } finally {
      setRemoving(null);
    }
  };

  const runners = model.runners;
  return (
    <div className="jp-Fed-section jp-Fed-runners">
      <ErrorNote message={model.runnersError} />
      <ErrorNote message={error} />
      {!model.loaded('runners') ? (
        <Loading what="runners" />
      ) : runners.length === 0 && !model.runnersError ? (
        <Empty>No runners yet. Paste an invitation from a data custodian to connect one.</Empty>
      ) : null}
      <ul className="jp-Fed-list">
        {runners.map(r => (
          <RunnerRow key={r.name} runner={r} onRemove={remove} busy={removing === r.name} />
        ))}
      </ul>
      {adding ? (
        <AddRunnerForm model={model} onClose={() => setAdding(false)} />
      ) : (
        <Button small className="jp-Fed-addRunner" onClick={() => setAdding(true)}>
          <addIcon.react tag="span" elementSize="small" className="jp-Fed-buttonIcon" />
          Add runner
        </Button>
      )}
    </div>
  );
}
