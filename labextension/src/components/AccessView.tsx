/**
 * The Access section: for each connected runner, the custodian's queue and grants or the
 * builder's own requests, depending on what the stored token may do there; and a form to
 * request access to a dataset.
 */
import { addIcon, Button } from '@jupyterlab/ui-components';
import React from 'react';

import { AccessModel, IRunnerAccess } from '../access';
import { plural } from '../format';
import { BuilderAccess } from './BuilderAccess';
import { Empty, ErrorNote, Loading, useModel, useSignal } from './common';
import { CustodianAccess } from './CustodianAccess';
import { RequestAccessForm } from './RequestAccessForm';

export interface IAccessViewProps {
  access: AccessModel;
  /** Ask the user to confirm; resolves `true` to go ahead. */
  confirm: (title: string, body: string, accept: string) => Promise<boolean>;
}

function RunnerAccess(props: IAccessViewProps & { state: IRunnerAccess }): JSX.Element {
  const { access, state, confirm } = props;
  const role = state.role;
  const pending = role === 'custodian' ? state.pending.length : 0;
  return (
    <li className="jp-Fed-accessRunner" data-runner={state.runner} data-role={role ?? 'unknown'}>
      <div className="jp-Fed-itemTitle jp-Fed-accessHeader">
        <span className="jp-Fed-name">{state.runner}</span>
        {role && (
          <span
            className="jp-Fed-badge"
            title={
              role === 'custodian'
                ? 'The stored token may grant datasets and decide requests here'
                : 'The stored token is a model builder’s: you may request datasets here'
            }
          >
            {role === 'custodian' ? 'custodian' : 'builder'}
            {state.user ? ` · ${state.user}` : ''}
          </span>
        )}
        {pending > 0 && (
          <span className="jp-Fed-count" title={`${plural(pending, 'request')} waiting for a decision`}>
            {pending}
          </span>
        )}
      </div>
      <ErrorNote message={state.error ? `${state.runner}: ${state.error}` : null} />
      {!state.loaded ? (
        <Loading what="grants and requests" />
      ) : role === 'custodian' ? (
        <CustodianAccess access={access} state={state} confirm={confirm} />
      ) : role === 'builder' ? (
        <BuilderAccess access={access} state={state} />
      ) : null}
    </li>
  );
}

export function AccessView(props: IAccessViewProps): JSX.Element {
  const { access, confirm } = props;
  useSignal(access.changed);
  useModel(access.fed, ['runners']);
  const [requesting, setRequesting] = React.useState(false);

  const states = access.runners;
  // A request goes to a runner whose token is a builder's; custodians grant themselves.
  const targets = states.filter(s => s.role === 'builder').map(s => s.runner);
  const connected = access.fed.runners.length;
  return (
    <div className="jp-Fed-section jp-Fed-access">
      {!access.fed.loaded('runners') ? (
        <Loading what="runners" />
      ) : connected === 0 ? (
        <Empty>Connect a runner to see its grants and access requests.</Empty>
      ) : states.length === 0 ? (
        <Loading what="grants and requests" />
      ) : null}
      <ul className="jp-Fed-list">
        {states.map(s => (
          <RunnerAccess key={s.runner} access={access} state={s} confirm={confirm} />
        ))}
      </ul>
      {requesting ? (
        <RequestAccessForm access={access} runners={targets} onClose={() => setRequesting(false)} />
      ) : (
        targets.length > 0 && (
          <Button small className="jp-Fed-addRunner jp-Fed-requestAccess" onClick={() => setRequesting(true)}>
            <addIcon.react tag="span" elementSize="small" className="jp-Fed-buttonIcon" />
            Request access
          </Button>
        )
      )}
    </div>
  );
}
