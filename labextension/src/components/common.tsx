/**
 * Small pieces shared by the sections: the model subscription hook, error notes, loading text.
 */
import { ISignal } from '@lumino/signaling';
import React from 'react';

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
