/**
 * Small pieces shared by the sections: the model subscription hook, error notes, loading text,
 * and the parts of a small form (a labelled field, its submission state, its buttons).
 */
import { Button, InputGroup } from '@jupyterlab/ui-components';
import { ISignal } from '@lumino/signaling';
import React from 'react';

import { describeError } from '../handler';
import { FedModel, FedModelPart } from '../model';

/** Re-render when one of `parts` of the model changes. */
export function useModel(model: FedModel, parts: ReadonlyArray<FedModelPart>): void {
  const [, setTick] = React.useState(0);
  const key = parts.join(',');
  React.useEffect(() => {
    const wanted = key.split(',');
    const onChange = (_: FedModel, part: FedModelPart): void => {
      if (wanted.includes(part)) {
        setTick(tick => tick + 1);
      }
    };
    model.changed.connect(onChange);
    return () => {
      model.changed.disconnect(onChange);
    };
  }, [model, key]);
}

/** An error in words, inline where it happened. */
export function ErrorNote(props: { message: string | null | undefined }): JSX.Element | null {
  if (!props.message) {
    return null;
  }
  return (
    <div className="jp-Fed-error" role="alert">
      {props.message}
    </div>
  );
}

export function WarningNote(props: { messages: string[] | undefined }): JSX.Element | null {
  if (!props.messages || props.messages.length === 0) {
    return null;
  }
  return (
    <div className="jp-Fed-warning" role="status" data-warnings={props.messages.length}>
      {props.messages.map((m, i) => (
        <div key={i}>⚠ {m}</div>
      ))}
    </div>
  );
}

export function Loading(props: { what: string }): JSX.Element {
  return <div className="jp-Fed-empty">Loading {props.what}…</div>;
}

export function Empty(props: { children: React.ReactNode }): JSX.Element {
  return <div className="jp-Fed-empty">{props.children}</div>;
}

/** Re-render whenever `signal` fires (e.g. the Access model's `changed`). */
export function useSignal<T>(signal: ISignal<T, unknown>): void {
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    const onChange = (): void => setTick(tick => tick + 1);
    signal.connect(onChange);
    return () => {
      signal.disconnect(onChange);
    };
  }, [signal]);
}

/** A labelled one-line text field, with an optional muted hint after the label. */
export function TextField(props: {
  label: string;
  hint?: string;
  name: string;
  value: string;
  onChange: (value: string) => void;
  placeholder?: string;
  inputMode?: 'decimal' | 'text';
}): JSX.Element {
  const { label, hint, name, value, onChange, placeholder, inputMode } = props;
  return (
    <label className="jp-Fed-label">
      <span>
        {label}
        {hint ? <span className="jp-Fed-muted"> {hint}</span> : null}
      </span>
      <InputGroup
        name={name}
        placeholder={placeholder}
        inputMode={inputMode}
        value={value}
        onChange={e => onChange(e.target.value)}
      />
    </label>
  );
}

/**
 * A form's submission state: `run(action)` marks it busy, clears the error, and on failure shows
 * the error in words and frees the form (on success the form is usually closed by its owner).
 */
export function useSubmit(): {
  busy: boolean;
  error: string | null;
  setError: (error: string | null) => void;
  run: (action: () => Promise<void>) => Promise<void>;
} {
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const run = async (action: () => Promise<void>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

/** A form's Cancel and submit buttons; the submit button says `busyLabel` while busy. */
export function FormButtons(props: {
  onCancel: () => void;
  busy: boolean;
  label: string;
  busyLabel: string;
  kind?: 'accept' | 'warn';
  disabled?: boolean;
}): JSX.Element {
  const { onCancel, busy, label, busyLabel, kind = 'accept', disabled = false } = props;
  return (
    <div className="jp-Fed-buttons">
      <Button small type="button" className="jp-mod-styled jp-mod-reject" onClick={onCancel} disabled={busy}>
        Cancel
      </Button>
      <Button small type="submit" className={`jp-mod-styled jp-mod-${kind}`} disabled={busy || disabled}>
        {busy ? busyLabel : label}
      </Button>
    </div>
  );
}
