/**
 * Connecting a runner: paste a custodian's invitation and its password (the usual way), or give
 * an address and a token directly.
 */
import { Button, InputGroup } from '@jupyterlab/ui-components';
import React from 'react';

import { describeError, FedAPIError } from '../handler';
import { FedModel } from '../model';
import { ErrorNote } from './common';

type Mode = 'invitation' | 'token';

export interface IAddRunnerFormProps {
  model: FedModel;
  /** Called after a runner was added, or when the user cancels. */
  onClose: () => void;
}

function errorText(error: unknown): string {
  if (error instanceof FedAPIError && error.details && error.details.length > 0) {
    const fields = error.details.map(d => `${d.field}: ${d.error}`).join('; ');
    return `${error.message} (${fields})`;
  }
  return describeError(error);
}

export function AddRunnerForm(props: IAddRunnerFormProps): JSX.Element {
  const { model, onClose } = props;
  const [mode, setMode] = React.useState<Mode>('invitation');
  const [blob, setBlob] = React.useState('');
  const [password, setPassword] = React.useState('');
  const [name, setName] = React.useState('');
  const [url, setUrl] = React.useState('');
  const [token, setToken] = React.useState('');
  const [fingerprint, setFingerprint] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);

  const ready =
    mode === 'invitation'
      ? blob.trim() !== '' && password !== ''
      : name.trim() !== '' && url.trim() !== '' && token !== '';

  const submit = async (event: React.FormEvent): Promise<void> => {
    event.preventDefault();
    if (!ready || busy) {
      return;
    }
    setBusy(true);
    setError(null);
    try {
      if (mode === 'invitation') {
        await model.joinInvitation({ blob, password, name: name.trim() || null });
      } else {
        await model.addRunner({
          name: name.trim(),
          url: url.trim(),
          token,
          fingerprint: fingerprint.trim() || null
        });
      }
      onClose();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return (
    <form className="jp-Fed-form" onSubmit={submit} aria-label="Add a runner">
      <div className="jp-Fed-tabs" role="tablist">
        {(['invitation', 'token'] as Mode[]).map(m => (
          <button
            key={m}
            type="button"
            role="tab"
            aria-selected={mode === m}
            className={`jp-Fed-tab${mode === m ? ' jp-mod-active' : ''}`}
            onClick={() => {
              setMode(m);
              setError(null);
            }}
          >
            {m === 'invitation' ? 'Invitation' : 'Address and token'}
          </button>
        ))}
      </div>
      {mode === 'invitation' ? (
        <>
          <label className="jp-Fed-label">
            Invitation
            <textarea
              className="jp-Fed-textarea jp-mod-styled"
              name="blob"
              rows={3}
              placeholder="Paste the invitation the data custodian sent you"
              value={blob}
              onChange={e => setBlob(e.target.value)}
              spellCheck={false}
            />
          </label>
          <label className="jp-Fed-label">
            Password
            <InputGroup
              type="password"
              name="password"
              autoComplete="off"
              value={password}
              onChange={e => setPassword(e.target.value)}
            />
          </label>
          <label className="jp-Fed-label">
            <span>
              Name <span className="jp-Fed-muted">(optional)</span>
            </span>
            <InputGroup
              name="name"
              placeholder="the runner's own name"
              value={name}
              onChange={e => setName(e.target.value)}
            />
          </label>
        </>
      ) : (
        <>
          <label className="jp-Fed-label">
            Name
            <InputGroup name="name" value={name} onChange={e => setName(e.target.value)} />
          </label>
          <label className="jp-Fed-label">
            URL
            <InputGroup
              name="url"
              placeholder="https://runner.example.org:8765"
              value={url}
              onChange={e => setUrl(e.target.value)}
            />
          </label>
          <label className="jp-Fed-label">
            Token
            <InputGroup
              type="password"
              name="token"
              autoComplete="off"
              value={token}
              onChange={e => setToken(e.target.value)}
            />
          </label>
          <label className="jp-Fed-label">
            <span>
              Certificate fingerprint <span className="jp-Fed-muted">(https)</span>
            </span>
            <InputGroup
              name="fingerprint"
              placeholder="sha256:…"
              value={fingerprint}
              onChange={e => setFingerprint(e.target.value)}
            />
          </label>
        </>
      )}
      <ErrorNote message={error} />
      <div className="jp-Fed-buttons">
        <Button small type="button" className="jp-mod-styled jp-mod-reject" onClick={onClose} disabled={busy}>
          Cancel
        </Button>
        <Button small type="submit" className="jp-mod-styled jp-mod-accept" disabled={!ready || busy}>
          {busy ? 'Connecting…' : 'Connect'}
        </Button>
      </div>
    </form>
  );
}
