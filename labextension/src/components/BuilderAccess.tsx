/**
 * A model builder's part of the Access section for one runner: their requests with the status of
 * each (a decision since the sidebar loaded is marked new), and the grants they hold.
 */
import { Button } from '@jupyterlab/ui-components';
import React from 'react';

import { AccessModel, grantOf, IRunnerAccess } from '../access';
import { age, grantSummary, requestSummary } from '../format';
import { describeError } from '../handler';
import { IAccessRequest, IGrant } from '../tokens';
import { Empty, ErrorNote } from './common';

export interface IBuilderAccessProps {
  access: AccessModel;
  state: IRunnerAccess;
}

/** What came of a request: the decision's terms and note, in words. */
function outcome(request: IAccessRequest, grant: IGrant | null): string {
  const who = request.decided_by ? ` by ${request.decided_by}` : '';
  const when = request.decided_at ? ` ${age(request.decided_at)}` : '';
  switch (request.status) {
    case 'approved':
      return grant
        ? `granted${who}${when}: ${grantSummary(grant)}`
        : `granted${who}${when}; the grant has since been revoked or has expired`;
    case 'denied':
      return `denied${who}${when}`;
    case 'withdrawn':
      return `withdrawn${when}`;
    default:
      return 'waiting for the custodian';
  }
}

function RequestRow(props: {
  access: AccessModel;
  state: IRunnerAccess;
  request: IAccessRequest;
  onError: (message: string | null) => void;
}): JSX.Element {
  const { access, state, request, onError } = props;
  const [busy, setBusy] = React.useState(false);
  const fresh = access.isFresh(request.request_id);
  const withdraw = async (): Promise<void> => {
    setBusy(true);
    onError(null);
    try {
      await access.withdraw(state.runner, request.request_id);
    } catch (err) {
      onError(`could not withdraw the request: ${describeError(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li
      className={`jp-Fed-item jp-Fed-request${fresh ? ' jp-mod-fresh' : ''}`}
      data-request={request.request_id}
      data-status={request.status}
    >
      <div className="jp-Fed-itemBody">
        <div className="jp-Fed-itemTitle">
          <span className="jp-Fed-name jp-Fed-requestDataset">{request.dataset}</span>
          <span className={`jp-Fed-status jp-Fed-status-${request.status}`}>{request.status}</span>
          {fresh && (
            <button
              type="button"
              className="jp-Fed-newBadge"
              title="Decided since you opened JupyterLab; click to dismiss"
              onClick={() => access.dismiss(request.request_id)}
            >
              new
            </button>
          )}
        </div>
        <div className="jp-Fed-muted jp-Fed-requestSummary">asked: {requestSummary(request)}</div>
        <div className="jp-Fed-muted jp-Fed-outcome">{outcome(request, grantOf(request, state.grants))}</div>
        {request.note && <div className="jp-Fed-reason jp-Fed-decisionNote">{request.note}</div>}
      </div>
      {request.status === 'pending' && (
        <Button
          small
          className="jp-mod-styled jp-mod-reject"
          disabled={busy}
          aria-label={`Withdraw the request for ${request.dataset}`}
          onClick={withdraw}
        >
          Withdraw
        </Button>
      )}
    </li>
  );
}

export function BuilderAccess(props: IBuilderAccessProps): JSX.Element {
  const { access, state } = props;
  const [error, setError] = React.useState<string | null>(null);
  return (
    <div className="jp-Fed-builder">
      <div className="jp-Fed-detailsLabel">Your requests</div>
      <ErrorNote message={error} />
      {state.mine.length === 0 ? (
        <Empty>No requests filed here.</Empty>
      ) : (
        <ul className="jp-Fed-list jp-Fed-myRequests">
          {state.mine.map(r => (
            <RequestRow key={r.request_id} access={access} state={state} request={r} onError={setError} />
          ))}
        </ul>
      )}
      {state.grants.length > 0 && (
        <>
          <div className="jp-Fed-detailsLabel">Your grants</div>
          <ul className="jp-Fed-list jp-Fed-myGrants">
            {state.grants.map(g => (
              <li key={g.grant_id} className="jp-Fed-item jp-Fed-grant" data-grant={g.grant_id}>
                <div className="jp-Fed-itemBody">
                  <span className="jp-Fed-name">{g.dataset}</span>
                  <div className="jp-Fed-muted jp-Fed-grantSummary">{grantSummary(g)}</div>
                </div>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
