/**
 * A builder asks a runner's custodian for a dataset: runner, dataset name, packages, epsilon and
 * a reason. The custodian sees it in their Access section (or `jupyter-fed runner requests`).
 */
import { HTMLSelect } from '@jupyterlab/ui-components';
import React from 'react';

import { AccessModel, parseOptionalNumber, parsePackages } from '../access';
import { INewAccessRequest } from '../tokens';
import { ErrorNote, FormButtons, TextField, useSubmit } from './common';

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
  const { busy, error, setError, run } = useSubmit();
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
    await run(async () => {
      await access.fileRequest(runner, request);
      onClose();
    });
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
      <TextField label="Dataset" name="dataset" placeholder="the dataset's name at the runner"
        value={dataset} onChange={setDataset} />
      <TextField label="Packages" hint="(comma-separated; empty: what the policy allows)" name="packages"
        placeholder="ffnet, eda" value={packages} onChange={setPackages} />
      <TextField label="ε" hint="(empty: the policy's budget)" name="epsilon" inputMode="decimal"
        value={epsilon} onChange={setEpsilon} />
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
      <FormButtons onCancel={onClose} busy={busy} label="Send request" busyLabel="Sending…"
        disabled={!runner || dataset.trim() === ''} />
    </form>
  );
}
