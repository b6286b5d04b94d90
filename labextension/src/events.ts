/**
 * The server's event stream (`GET /jupyter-fed/api/v1/events`, server-sent events), read with
 * `fetch` through `ServerConnection.makeRequest` so it authenticates exactly like every other call
 * (an `EventSource` cannot send Jupyter's token header). The stream reconnects with a growing
 * delay; events are not replayed, so whoever listens refreshes on every (re)connection.
 */
import { IDisposable } from '@lumino/disposable';
import { ServerConnection } from '@jupyterlab/services';

import { apiURL, errorFromReply, FedAPIError, NETWORK, parseLenientJSON } from './handler';
import { FedEvent } from './tokens';

/** One server-sent event frame. */
export interface ISSEFrame {
  event: string;
  data: string;
}

/**
 * Incremental parser for the `text/event-stream` format: feed it chunks as they arrive, get the
 * complete frames back. Comments (`: keepalive`) are skipped; multi-line `data` is joined by
 * newlines, as the specification says.
 */
export class SSEParser {
  private _buffer = '';
  private _event = '';
  private _data: string[] = [];

  feed(chunk: string): ISSEFrame[] {
    this._buffer += chunk;
    const frames: ISSEFrame[] = [];
    let newline: number;
    while ((newline = this._buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this._buffer.slice(0, newline);
      const width = this._buffer.startsWith('\r\n', newline) ? 2 : 1;
      if (width === 1 && this._buffer[newline] === '\r' && newline === this._buffer.length - 1) {
        break; // a lone \r at the end may be the first half of \r\n: wait for more
      }
      this._buffer = this._buffer.slice(newline + width);
      if (line === '') {
        if (this._data.length > 0) {
          frames.push({ event: this._event || 'message', data: this._data.join('\n') });
        }
        this._event = '';
        this._data = [];
        continue;
      }
      if (line.startsWith(':')) {
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) {
        value = value.slice(1);
      }
      if (field === 'event') {
        this._event = value;
      } else if (field === 'data') {
        this._data.push(value);
      }
    }
    return frames;
  }
}

/** A frame as a typed event, or `null` for frames this version does not know. */
export function toFedEvent(frame: ISSEFrame): FedEvent | null {
  let data: unknown;
  try {
    data = parseLenientJSON(frame.data);
  } catch {
    return null;
  }
  if (typeof data !== 'object' || data === null) {
    return null;
  }
  if (!['ready', 'round', 'status', 'log'].includes(frame.event)) {
    return null;
  }
  return { ...(data as object), type: frame.event } as FedEvent;
}

/** Where the stream stands, for the panel's connection indicator. */
export type StreamState = 'connecting' | 'open' | 'retrying' | 'stopped';

export interface IEventStreamOptions {
  settings: ServerConnection.ISettings;
  /** Called with every event, `ready` included (then refresh: events are not replayed). */
  onEvent: (event: FedEvent) => void;
  /** Called when the state changes; `error` says why the stream is retrying or stopped. */
  onState?: (state: StreamState, error: FedAPIError | null) => void;
  /** Milliseconds to wait before each reconnection attempt; the last repeats. */
  retryDelays?: number[];
}

const DEFAULT_DELAYS = [1000, 2000, 5000, 10000, 30000];

/** Keeps one event stream open until disposed. */
export class EventStream implements IDisposable {
  private _options: IEventStreamOptions;
  private _abort: AbortController | null = null;
  private _disposed = false;
  private _attempt = 0;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _state: StreamState = 'stopped';

  constructor(options: IEventStreamOptions) {
    this._options = options;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  get state(): StreamState {
    return this._state;
  }

  /** Open the stream (no-op when already open). */
  start(): void {
    if (this._disposed || this._abort !== null || this._timer !== null) {
      return;
    }
    void this._run();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    this._abort?.abort();
    this._abort = null;
    this._setState('stopped', null);
  }

  private _setState(state: StreamState, error: FedAPIError | null): void {
    this._state = state;
    this._options.onState?.(state, error);
  }

  private async _run(): Promise<void> {
    const abort = (this._abort = new AbortController());
    const { settings } = this._options;
    this._setState('connecting', null);
    let failure: FedAPIError | null = null;
    try {
      const response = await ServerConnection.makeRequest(
        apiURL(settings, 'events'),
        { method: 'GET', signal: abort.signal, headers: { Accept: 'text/event-stream' } },
        settings
      );
      if (!response.ok) {
        throw errorFromReply(response.status, await response.text());
      }
      await this._read(response);
    } catch (error) {
      failure =
        error instanceof FedAPIError
          ? error
          : new FedAPIError(0, {
              code: NETWORK,
              message: 'the live event stream from the Jupyter server was interrupted',
              hint: 'reconnecting'
            });
    }
    this._abort = null;
    if (this._disposed) {
      return;
    }
    const delays = this._options.retryDelays ?? DEFAULT_DELAYS;
    const delay = delays[Math.min(this._attempt, delays.length - 1)];
    this._attempt++;
    this._setState('retrying', failure);
    this._timer = setTimeout(() => {
      this._timer = null;
      if (!this._disposed) {
        void this._run();
      }
    }, delay);
  }

  private async _read(response: Response): Promise<void> {
    if (!response.body) {
      throw new FedAPIError(0, {
        code: NETWORK,
        message: 'this browser cannot read a streamed reply',
        hint: 'the panel falls back to polling'
      });
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SSEParser();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        return;
      }
      for (const frame of parser.feed(decoder.decode(value, { stream: true }))) {
        const event = toFedEvent(frame);
        if (event === null) {
          continue;
        }
        if (event.type === 'ready') {
          this._attempt = 0;
          this._setState('open', null);
        }
        this._options.onEvent(event);
      }
    }
  }
}
