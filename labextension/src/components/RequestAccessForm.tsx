/**
 * A builder asks a runner's custodian for a dataset: runner, dataset name, packages, epsilon and
 * a reason. The custodian sees it in their Access section (or `jupyter-fed runner requests`).
 */
import { Button, HTMLSelect, InputGroup } from '@jupyterlab/ui-components';
import React from 'react';

import { AccessModel, parseOptionalNumber, parsePackages } from '../access';
import { describeError } from '../handler';
import { INewAccessRequest } from '../tokens';
import { ErrorNote } from './common';

export interface IRequestAccessFormProps {
  access: AccessModel;
  /** Runners the request may go to (the first is picked). */
  runners: string[];
  onClose: () => void;
}

export function RequestAccessForm(props: IRequestAccessFormProps): JSX.Element {
  const { access, runners, onClose } = props;
  const [runner, setRunner] = React.useState(runners[0] ?? '');
  const [dataset, setDataset] = React.useState('');
  const [packages, setPackages] = React.useState('');
  const [epsilon, setEpsilon] = React.useState('');
  const [reason, setReason] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const runnerId = React.useId();

  const submit = async (e: React.FormEvent): Promise<void> => {
    e.preventDefault();
    const eps = parseOptionalNumber(epsilon, 'ε');
    if (!eps.ok) {
      setError(eps.error);
      return;
    }
    const request: INewAccessRequest = { dataset: dataset.trim(), reason: reason.trim() };
    const pkgs = parsePackages(packages);
    if (pkgs !== null) {
      request.packages = pkgs;
    }
    if (eps.value !== null) {
      request.epsilon = eps.value;
    }
    setBusy(true);
    setError(null);
    try {
      await access.fileRequest(runner, request);
      onClose();
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  };

  return (
    <form className="jp-Fed-form jp-Fed-requestForm" onSubmit={submit} aria-label="Request access">
      <div className="jp-Fed-label">
        <label htmlFor={runnerId}>Runner</label>
        <HTMLSelect
          id={runnerId}
          name="runner"
          value={runner}
          onChange={e => setRunner(e.target.value)}
          options={runners}
        />
      </div>
      <label className="jp-Fed-label">
        Dataset
        <InputGroup
          name="dataset"
          placeholder="the dataset's name at the runner"
          value={dataset}
          onChange={e => setDataset(e.target.value)}
        />
      </label>
      <label className="jp-Fed-label">
        <span>
          Packages <span className="jp-Fed-muted">(comma-separated; empty: what the policy allows)</span>
        </span>
        <InputGroup
          name="packages"
          placeholder="ffnet, eda"
          value={packages}
          onChange={e => setPackages(e.target.value)}
        />
      </label>
      <label className="jp-Fed-label">
        <span>
          ε <span className="jp-Fed-muted">(empty: the policy's budget)</span>
        </span>
        <InputGroup name="epsilon" inputMode="decimal" value={epsilon} onChange={e => setEpsilon(e.target.value)} />
      </label>
      <label className="jp-Fed-label">
        Reason
        <textarea
          className="jp-Fed-textarea jp-mod-styled"
          name="reason"
          rows={2}
          placeholder="what you want to learn from it"
          value={reason}
          onChange={e => setReason(e.target.value)}
        />
      </label>
      <ErrorNote message={error} />
      <div className="jp-Fed-buttons">
        <Button small type="button" className="jp-mod-styled jp-mod-reject" onClick={onClose} disabled={busy}>
          Cancel
        </Button>
        <Button
          small
          type="submit"
          className="jp-mod-styled jp-mod-accept"
          disabled={busy || !runner || dataset.trim() === ''}
        >
          {busy ? 'Sending…' : 'Send request'}
        </Button>
      </div>
    </form>
  );
}
