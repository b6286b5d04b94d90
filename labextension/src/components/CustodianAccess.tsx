/**
 * A custodian's part of the Access section for one runner: the requests waiting for a decision
 * (approve, optionally changing what is granted, or deny, each with a note) and the active
 * grants (revoke).
 */
import { Button } from '@jupyterlab/ui-components';
import React from 'react';

import { AccessModel, IRunnerAccess, parseOptionalNumber, parsePackages } from '../access';
import { grantSummary, requestSummary } from '../format';
import { describeError } from '../handler';
import { IAccessRequest, IApproval, IGrant } from '../tokens';
import { Empty, ErrorNote, FormButtons, TextField, useSubmit } from './common';

export interface ICustodianAccessProps {
  access: AccessModel;
  state: IRunnerAccess;
  confirm: (title: string, body: string, accept: string) => Promise<boolean>;
}

type Decision = 'approve' | 'deny';

/** Approve with the terms the custodian settles on; every field starts as the builder asked. */
function ApproveForm(props: {
  request: IAccessRequest;
  onSubmit: (approval: IApproval) => Promise<void>;
  onCancel: () => void;
}): JSX.Element {
  const { request, onSubmit, onCancel } = props;
  const [epsilon, setEpsilon] = React.useState(request.epsilon === null ? '' : String(request.epsilon));
  const [packages, setPackages] = React.useState((request.packages ?? []).join(', '));
  const [expires, setExpires] = React.useState('');
  const [note, setNote] = React.useState('');
  const { busy, error, setError, run } = useSubmit();

  const submit = async (e: React.FormEvent): Promise<void> => {
    e.preventDefault();
    const eps = parseOptionalNumber(epsilon, 'ε');
    const days = parseOptionalNumber(expires, 'expiry', { positive: true });
    if (!eps.ok || !days.ok) {
      setError(!eps.ok ? eps.error : !days.ok ? days.error : null);
      return;
    }
    const approval: IApproval = { epsilon: eps.value, packages: parsePackages(packages), note };
    if (days.value !== null) {
      approval.expires_days = days.value;
    }
    await run(() => onSubmit(approval));
  };

  return (
    <form className="jp-Fed-form jp-Fed-decision" onSubmit={submit} aria-label="Approve the request">
      <TextField label="ε budget" hint="(empty: the policy's)" name="epsilon" inputMode="decimal"
        value={epsilon} onChange={setEpsilon} />
      <TextField label="Packages" hint="(comma-separated; empty: the policy's)" name="packages"
        value={packages} onChange={setPackages} />
      <TextField label="Expires after" hint="(days; empty: never)" name="expires" inputMode="decimal"
        value={expires} onChange={setExpires} />
      <TextField label="Note" hint="(the requester sees it)" name="note" value={note} onChange={setNote} />
      <ErrorNote message={error} />
      <FormButtons onCancel={onCancel} busy={busy} label="Grant" busyLabel="Granting…" />
    </form>
  );
}

function DenyForm(props: { onSubmit: (note: string) => Promise<void>; onCancel: () => void }): JSX.Element {
  const { onSubmit, onCancel } = props;
  const [note, setNote] = React.useState('');
  const { busy, error, run } = useSubmit();

  const submit = async (e: React.FormEvent): Promise<void> => {
    e.preventDefault();
    await run(() => onSubmit(note));
  };

  return (
    <form className="jp-Fed-form jp-Fed-decision" onSubmit={submit} aria-label="Deny the request">
      <TextField label="Note" hint="(why; the requester sees it)" name="note" value={note} onChange={setNote} />
      <ErrorNote message={error} />
      <FormButtons onCancel={onCancel} busy={busy} label="Deny request" busyLabel="Denying…" kind="warn" />
    </form>
  );
}

function PendingRow(props: {
  access: AccessModel;
  runner: string;
  request: IAccessRequest;
  open: Decision | null;
  onOpen: (decision: Decision | null) => void;
}): JSX.Element {
  const { access, runner, request, open, onOpen } = props;
  const unknown = request.dataset_exists === false;
  return (
    <li className="jp-Fed-item jp-Fed-request" data-request={request.request_id} data-status={request.status}>
      <div className="jp-Fed-itemBody">
        <div className="jp-Fed-itemTitle">
          <span className="jp-Fed-name">{request.user}</span>
          <span className="jp-Fed-muted">→</span>
          <span className="jp-Fed-name jp-Fed-requestDataset">{request.dataset}</span>
          {unknown && (
            <span className="jp-Fed-flag" title="No dataset of this name is registered at this runner">
              unknown dataset
            </span>
          )}
        </div>
        <div className="jp-Fed-muted jp-Fed-requestSummary">{requestSummary(request)}</div>
        {request.reason && <div className="jp-Fed-reason">{request.reason}</div>}
        {open === 'approve' ? (
          <ApproveForm
            request={request}
            onCancel={() => onOpen(null)}
            onSubmit={async approval => {
              await access.approve(runner, request.request_id, approval);
              onOpen(null);
            }}
          />
        ) : open === 'deny' ? (
          <DenyForm
            onCancel={() => onOpen(null)}
            onSubmit={async note => {
              await access.deny(runner, request.request_id, note);
              onOpen(null);
            }}
          />
        ) : (
          <div className="jp-Fed-buttons jp-Fed-rowButtons">
            <Button small className="jp-mod-styled jp-mod-reject" onClick={() => onOpen('deny')}>
              Deny…
            </Button>
            <Button
              small
              className="jp-mod-styled jp-mod-accept"
              disabled={unknown}
              title={unknown ? 'Register the dataset first: a grant needs a dataset' : undefined}
              onClick={() => onOpen('approve')}
            >
              Approve…
            </Button>
          </div>
        )}
      </div>
    </li>
  );
}

function GrantRow(props: { grant: IGrant; busy: boolean; onRevoke: (grant: IGrant) => void }): JSX.Element {
  const { grant, busy, onRevoke } = props;
  return (
    <li className="jp-Fed-item jp-Fed-grant" data-grant={grant.grant_id}>
      <div className="jp-Fed-itemBody">
        <div className="jp-Fed-itemTitle">
          <span className="jp-Fed-name">{grant.user}</span>
          <span className="jp-Fed-muted">→</span>
          <span className="jp-Fed-name jp-Fed-grantDataset">{grant.dataset}</span>
        </div>
        <div className="jp-Fed-muted jp-Fed-grantSummary">{grantSummary(grant)}</div>
        {grant.note && <div className="jp-Fed-reason">{grant.note}</div>}
      </div>
      <Button
        small
        className="jp-mod-styled jp-mod-reject jp-Fed-revoke"
        disabled={busy}
        aria-label={`Revoke ${grant.user}'s grant on ${grant.dataset}`}
        onClick={() => onRevoke(grant)}
      >
        Revoke
      </Button>
    </li>
  );
}

export function CustodianAccess(props: ICustodianAccessProps): JSX.Element {
  const { access, state, confirm } = props;
  const [open, setOpen] = React.useState<{ id: string; decision: Decision } | null>(null);
  const [revoking, setRevoking] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);

  const revoke = async (grant: IGrant): Promise<void> => {
    const ok = await confirm(
      'Revoke grant',
      `${grant.user} will no longer be able to use ${grant.dataset} at ${state.runner}.`,
      'Revoke'
    );
    if (!ok) {
      return;
    }
    setRevoking(grant.grant_id);
    setError(null);
    try {
      await access.revoke(state.runner, grant.grant_id);
    } catch (err) {
      setError(`could not revoke the grant: ${describeError(err)}`);
    } finally {
      setRevoking(null);
    }
  };

  return (
    <div className="jp-Fed-custodian">
      <div className="jp-Fed-detailsLabel">Pending requests</div>
      {state.pending.length === 0 ? (
        <Empty>No request is waiting.</Empty>
      ) : (
        <ul className="jp-Fed-list jp-Fed-pending">
          {state.pending.map(r => (
            <PendingRow
              key={r.request_id}
              access={access}
              runner={state.runner}
              request={r}
              open={open?.id === r.request_id ? open.decision : null}
              onOpen={decision => setOpen(decision ? { id: r.request_id, decision } : null)}
            />
          ))}
        </ul>
      )}
      <div className="jp-Fed-detailsLabel">Grants</div>
      <ErrorNote message={error} />
      {state.grants.length === 0 ? (
        <Empty>No dataset is granted to anyone.</Empty>
      ) : (
        <ul className="jp-Fed-list jp-Fed-grants">
          {state.grants.map(g => (
            <GrantRow key={g.grant_id} grant={g} busy={revoking === g.grant_id} onRevoke={revoke} />
          ))}
        </ul>
      )}
    </div>
  );
}
