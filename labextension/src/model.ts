/**
 * The sidebar's state: runners, the catalog and sessions, kept fresh by polling and the event
 * stream. Views read it and call its actions; it knows nothing about React or widgets.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { FedAPI } from './api';
import { EventStream, StreamState } from './events';
import { describeError, FedAPIError, NOT_ENABLED } from './handler';
import {
  FedEvent,
  ICatalog,
  IDataset,
  IDatasetPolicy,
  IInvitation,
  IRunner,
  IRunnerSpec,
  ISession,
  ISessionMetrics,
  MetricValues,
  TERMINAL_STATUSES
} from './tokens';

/** Which part of the state changed. */
export type FedModelPart = 'runners' | 'datasets' | 'sessions' | 'stream';

/** What the model knows of a session beyond `GET /sessions`: live metrics from the stream. */
export interface ILiveSession {
  /** Federated metrics of the latest model seen. */
  latest: MetricValues | null;
  /** A few recent log lines from the stream, oldest first. */
  logs: string[];
}

export interface IFedModelOptions {
  api?: FedAPI;
  /** Milliseconds between runner health checks (0: never poll). */
  runnersInterval?: number;
  /** Milliseconds between session list refreshes, a fallback for the event stream (0: never). */
  sessionsInterval?: number;
  /** Open the event stream (tests may turn it off). */
  stream?: boolean;
  /** Whether the panel is on screen; polls rest while it is not. */
  isVisible?: () => boolean;
}

const MAX_LOGS = 20;
/** Sessions whose latest metric is fetched for the list (the newest ones). */
const MAX_SUMMARIES = 20;

export class FedModel implements IDisposable {
  readonly api: FedAPI;

  constructor(options: IFedModelOptions = {}) {
    this.api = options.api ?? new FedAPI();
    this._options = options;
  }

  /** Emitted after any part of the state changed. */
  get changed(): ISignal<this, FedModelPart> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  // state ---------------------------------------------------------------------------------------
  get runners(): ReadonlyArray<IRunner> {
    return this._runners;
  }
  get runnersError(): string | null {
    return this._runnersError;
  }
  get datasets(): ReadonlyArray<IDataset> {
    return this._catalog.datasets;
  }
  /** Runners the catalog could not be read from, with the reason. */
  get catalogErrors(): ICatalog['errors'] {
    return this._catalog.errors;
  }
  get datasetsError(): string | null {
    return this._datasetsError;
  }
  /** Sessions, newest first. */
  get sessions(): ReadonlyArray<ISession> {
    return this._sessions;
  }
  get sessionsError(): string | null {
    return this._sessionsError;
  }
  get streamState(): StreamState {
    return this._streamState;
  }
  get streamError(): string | null {
    return this._streamError;
  }
  /** `true` once a first refresh of that part finished (successfully or not). */
  loaded(part: 'runners' | 'datasets' | 'sessions'): boolean {
    return this._loaded.has(part);
  }
  live(id: string): ILiveSession {
    return this._live.get(id) ?? { latest: null, logs: [] };
  }

  // lifecycle -----------------------------------------------------------------------------------
  /** Start polling and the event stream; returns at once (nothing here is awaited). */
  start(): void {
    if (this._started || this._disposed) {
      return;
    }
    this._started = true;
    const runnersEvery = this._options.runnersInterval ?? 15000;
    const sessionsEvery = this._options.sessionsInterval ?? 30000;
    if (runnersEvery > 0) {
      this._polls.push(this._poll(() => this.refreshRunners(), runnersEvery));
    } else {
      void this.refreshRunners();
    }
    if (sessionsEvery > 0) {
      this._polls.push(this._poll(() => this.refreshSessions(), sessionsEvery));
    } else {
      void this.refreshSessions();
    }
    void this.refreshDatasets();
    if (this._options.stream !== false) {
      this._stream = new EventStream({
        settings: this.api.settings,
        onEvent: event => this.handleEvent(event),
        onState: (state, error) => this._onStreamState(state, error)
      });
      this._stream.start();
    }
  }

  /** The panel became visible: start on first use, else check runners and sessions now. */
  wake(): void {
    if (!this._started) {
      this.start();
      return;
    }
    this._polls.forEach(p => void p.refresh());
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._polls.forEach(p => p.dispose());
    this._stream?.dispose();
    Signal.clearData(this);
  }

  private _poll(factory: () => Promise<unknown>, interval: number): Poll {
    const poll = new Poll({
      factory: async () => {
        await factory();
      },
      frequency: { interval, backoff: false },
      // Rest while the panel is out of sight or the browser tab is hidden.
      standby: () => (this._options.isVisible ? !this._options.isVisible() : false) || 'when-hidden'
    });
    return poll;
  }

  // refreshing ----------------------------------------------------------------------------------
  async refreshAll(): Promise<void> {
    await Promise.all([this.refreshRunners(), this.refreshDatasets(), this.refreshSessions()]);
  }

  async refreshRunners(): Promise<void> {
    try {
      this._runners = await this.api.runners();
      this._runnersError = null;
    } catch (error) {
      this._runnersError = describeError(error);
    }
    this._emit('runners');
  }

  async refreshDatasets(): Promise<void> {
    try {
      this._catalog = await this.api.catalog();
      this._datasetsError = null;
    } catch (error) {
      this._datasetsError = describeError(error);
    }
    this._emit('datasets');
  }

  async refreshSessions(): Promise<void> {
    try {
      const sessions = await this.api.sessions();
      this._sessions = sortSessions(sessions);
      this._sessionsError = null;
      void this._fillLatest(this._sessions.slice(0, MAX_SUMMARIES));
    } catch (error) {
      this._sessionsError = describeError(error);
    }
    this._emit('sessions');
  }

  /** Latest federated metrics for sessions the stream has told us nothing about yet. */
  private async _fillLatest(sessions: ReadonlyArray<ISession>): Promise<void> {
    const missing = sessions.filter(
      s => s.current_round > 0 && this.live(s.id).latest === null && !this._asked.has(s.id)
    );
    if (missing.length === 0) {
      return;
    }
    missing.forEach(s => this._asked.add(s.id));
    await Promise.all(
      missing.map(async s => {
        try {
          const history = (await this.api.metrics(s.id)).federated_metrics;
          const live = this._liveFor(s.id);
          if (live.latest === null && history.length > 0) {
            live.latest = history[history.length - 1];
          }
        } catch {
          this._asked.delete(s.id); // try again at the next refresh
        }
      })
    );
    this._emit('sessions');
  }

  private async _refreshSession(id: string): Promise<void> {
    try {
      this._putSession(await this.api.session(id));
      this._emit('sessions');
    } catch (error) {
      this._sessionsError = describeError(error);
      this._emit('sessions');
    }
  }

  // actions (they throw FedAPIError; the view shows its text next to the form) ------------------
  async joinInvitation(invitation: IInvitation): Promise<void> {
    await this.api.joinInvitation(invitation);
    await Promise.all([this.refreshRunners(), this.refreshDatasets()]);
  }

  async addRunner(spec: IRunnerSpec): Promise<void> {
    await this.api.addRunner(spec);
    await Promise.all([this.refreshRunners(), this.refreshDatasets()]);
  }

  async removeRunner(name: string): Promise<void> {
    await this.api.removeRunner(name);
    await Promise.all([this.refreshRunners(), this.refreshDatasets()]);
  }

  async cancelSession(id: string): Promise<void> {
    this._putSession(await this.api.cancel(id));
    this._emit('sessions');
  }

  /** A dataset's policy, read once per dataset and cached. */
  policy(runner: string, dataset: string): Promise<IDatasetPolicy> {
    const key = `${runner}/${dataset}`;
    let pending = this._policies.get(key);
    if (!pending) {
      pending = this.api.datasetPolicy(runner, dataset);
      pending.catch(() => this._policies.delete(key)); // retry a failure next time
      this._policies.set(key, pending);
    }
    return pending;
  }

  /** A session's metric history (not cached: the details view reloads it after each round). */
  metrics(id: string): Promise<ISessionMetrics> {
    return this.api.metrics(id);
  }

  // events --------------------------------------------------------------------------------------
  /** Apply one event from the stream (public for tests). */
  handleEvent(event: FedEvent): void {
    switch (event.type) {
      case 'ready':
        // Nothing is replayed: catch up on whatever happened while we were away.
        void this.refreshSessions();
        return;
      case 'round': {
        const session = this._sessions.find(s => s.id === event.session_id);
        const live = this._liveFor(event.session_id);
        live.latest = event.federated_metrics;
        if (!session) {
          void this._refreshSession(event.session_id);
          return;
        }
        this._putSession({
          ...session,
          status: session.status === 'pending' ? 'running' : session.status,
          current_round: Math.min(event.round, event.num_rounds),
          num_rounds: event.num_rounds
        });
        this._emit('sessions');
        return;
      }
      case 'status': {
        const session = this._sessions.find(s => s.id === event.session_id);
        if (session) {
          this._putSession({ ...session, status: event.status, error: event.error ?? session.error });
          this._emit('sessions');
        }
        // Unknown sessions, and ended ones (final round, finish time, client errors): ask.
        if (!session || TERMINAL_STATUSES.includes(event.status)) {
          void this._refreshSession(event.session_id);
        }
        return;
      }
      case 'warning': {
        const session = this._sessions.find(s => s.id === event.session_id);
        if (session) {
          const warnings = session.warnings ?? [];
          if (!warnings.includes(event.message)) {
            this._putSession({ ...session, warnings: [...warnings, event.message] });
            this._emit('sessions');
          }
        }
        return;
      }
      case 'log': {
        const live = this._liveFor(event.session_id);
        const who = event.client ? `${event.client}: ` : '';
        live.logs = [...live.logs, `${who}${event.message}`].slice(-MAX_LOGS);
        this._emit('sessions');
        return;
      }
    }
  }

  private _liveFor(id: string): ILiveSession {
    let live = this._live.get(id);
    if (!live) {
      live = { latest: null, logs: [] };
      this._live.set(id, live);
    }
    return live;
  }

  private _putSession(session: ISession): void {
    const others = this._sessions.filter(s => s.id !== session.id);
    this._sessions = sortSessions([session, ...others]);
  }

  private _onStreamState(state: StreamState, error: FedAPIError | null): void {
    this._streamState = state;
    this._streamError = error && error.code !== NOT_ENABLED ? error.text : null;
    if (error?.code === NOT_ENABLED) {
      // The extension is off: the sections already say so; stop knocking.
      this._stream?.dispose();
    }
    this._emit('stream');
  }

  private _emit(part: FedModelPart): void {
    if (part !== 'stream') {
      this._loaded.add(part);
    }
    if (!this._disposed) {
      this._changed.emit(part);
    }
  }

  private _options: IFedModelOptions;
  private _changed = new Signal<this, FedModelPart>(this);
  private _disposed = false;
  private _started = false;
  private _polls: Poll[] = [];
  private _stream: EventStream | null = null;
  private _streamState: StreamState = 'stopped';
  private _streamError: string | null = null;
  private _loaded = new Set<string>();
  private _runners: IRunner[] = [];
  private _runnersError: string | null = null;
  private _catalog: ICatalog = { datasets: [], errors: [] };
  private _datasetsError: string | null = null;
  private _sessions: ISession[] = [];
  private _sessionsError: string | null = null;
  private _live = new Map<string, ILiveSession>();
  private _asked = new Set<string>();
  private _policies = new Map<string, Promise<IDatasetPolicy>>();
}

/** Newest first (by creation time, then id for a stable order). */
export function sortSessions(sessions: ReadonlyArray<ISession>): ISession[] {
  return [...sessions].sort(
    (a, b) => (b.created_at ?? '').localeCompare(a.created_at ?? '') || a.id.localeCompare(b.id)
  );
}
