/**
 * Grants and access requests at each connected runner, for the sidebar's Access section.
 *
 * The stored token of a runner decides the view: a custodian's token (`register_dataset` or
 * `admin`) sees the pending requests and the grants; any other token is a model builder's, who
 * sees their own requests and is told when one is decided. State and polling live here; the
 * views (`components/Access*.tsx`) and the notifications (`plugins/sidebar.ts`) only read it.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { FedAPI } from './api';
import { describeError } from './handler';
import { FedModel } from './model';
import { IAccessRequest, IApproval, IGrant, INewAccessRequest, ITokenInfo } from './tokens';

/** What the stored token may do at a runner, as far as the Access section is concerned. */
export type AccessRole = 'custodian' | 'builder';

/** Scopes that make a token a custodian's: they may list requests and grant datasets. */
export const CUSTODIAN_SCOPES: ReadonlyArray<string> = ['register_dataset', 'admin'];

/** The Access section's view of one runner. */
export interface IRunnerAccess {
  runner: string;
  /** `null` until the runner said who the token is. */
  role: AccessRole | null;
  /** The user the stored token belongs to. */
  user: string | null;
  /** Custodian: requests waiting for a decision, oldest first. */
  pending: IAccessRequest[];
  /** Active grants: all of them for a custodian, a builder's own for a builder. */
  grants: IGrant[];
  /** Builder: their own requests, newest first. */
  mine: IAccessRequest[];
  /** Why the last refresh failed, in words. */
  error: string | null;
  /** A first refresh finished (successfully or not). */
  loaded: boolean;
}

/** A builder's request that a custodian approved or denied since the sidebar last looked. */
export interface IDecision {
  runner: string;
  request: IAccessRequest;
  /** What an approval granted (it may differ from what was asked). */
  grant: IGrant | null;
}

export interface IAccessModelOptions {
  /** Milliseconds between refreshes (0: never poll). */
  interval?: number;
}

/** `custodian` if the scopes let the token list and decide requests, else `builder`. */
export function roleOf(scopes: ReadonlyArray<string>): AccessRole {
  return scopes.some(s => CUSTODIAN_SCOPES.includes(s)) ? 'custodian' : 'builder';
}

/**
 * Requests that were pending in `before` and are approved or denied in `after`. With no earlier
 * list (`null`, the first look) nothing counts as news: old decisions are not announced again.
 */
export function findDecisions(
  before: ReadonlyArray<IAccessRequest> | null,
  after: ReadonlyArray<IAccessRequest>
): IAccessRequest[] {
  if (before === null) {
    return [];
  }
  const wasPending = new Set(before.filter(r => r.status === 'pending').map(r => r.request_id));
  return after.filter(
    r => wasPending.has(r.request_id) && (r.status === 'approved' || r.status === 'denied')
  );
}

/** A form field's value, or why it is not one. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** `"ffnet, eda.summary"` → `["ffnet", "eda.summary"]`; empty → `null` (the policy decides). */
export function parsePackages(text: string): string[] | null {
  const names = text
    .split(/[\s,]+/)
    .map(s => s.trim())
    .filter(Boolean);
  return names.length > 0 ? [...new Set(names)] : null;
}

/** An optional non-negative number (`""` → `null`), e.g. an epsilon or a number of days. */
export function parseOptionalNumber(
  text: string,
  field: string,
  { positive = false }: { positive?: boolean } = {}
): Parsed<number | null> {
  const trimmed = text.trim();
  if (trimmed === '') {
    return { ok: true, value: null };
  }
  const value = Number(trimmed);
  if (!Number.isFinite(value) || value < 0 || (positive && value === 0)) {
    const what = positive ? 'a number above 0' : 'a number ≥ 0';
    return { ok: false, error: `${field} must be ${what}, not "${trimmed}"` };
  }
  return { ok: true, value };
}

/** The active grant an approved request made, if it still stands. */
export function grantOf(request: IAccessRequest, grants: ReadonlyArray<IGrant>): IGrant | null {
  if (!request.grant_id) {
    return null;
  }
  return grants.find(g => g.grant_id === request.grant_id) ?? null;
}

/** Newest first (by filing time, then id). */
function newestFirst(requests: ReadonlyArray<IAccessRequest>): IAccessRequest[] {
  return [...requests].sort(
    (a, b) => b.created_at.localeCompare(a.created_at) || a.request_id.localeCompare(b.request_id)
  );
}

export class AccessModel implements IDisposable {
  constructor(
    private readonly _fed: FedModel,
    options: IAccessModelOptions = {}
  ) {
    this._interval = options.interval ?? 20000;
    this._fed.changed.connect(this._onFedChanged, this);
  }

  get api(): FedAPI {
    return this._fed.api;
  }

  /** The sidebar's model, whose runner list this follows. */
  get fed(): FedModel {
    return this._fed;
  }

  /** Emitted after any runner's access state changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted with a builder's requests that were just approved or denied. */
  get decided(): ISignal<this, IDecision[]> {
    return this._decided;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** One entry per connected runner, in the Runners section's order. */
  get runners(): IRunnerAccess[] {
    return this._fed.runners
      .map(r => this._state.get(r.name))
      .filter((s): s is IRunnerAccess => s !== undefined);
  }

  access(runner: string): IRunnerAccess | undefined {
    return this._state.get(runner);
  }

  /** Requests waiting for this user's decision, over every runner they are custodian of. */
  get pendingCount(): number {
    return this.runners.reduce((n, s) => n + (s.role === 'custodian' ? s.pending.length : 0), 0);
  }

  /** Decided since the sidebar loaded, and not yet dismissed: marked in the list. */
  isFresh(requestId: string): boolean {
    return this._fresh.has(requestId);
  }

  dismiss(requestId: string): void {
    if (this._fresh.delete(requestId)) {
      this._emit();
    }
  }

  // lifecycle -----------------------------------------------------------------------------------
  /**
   * Start polling; returns at once. Unlike the other sections this polls while the panel is
   * closed (only not while the browser tab is hidden): a builder learns of a decision anyway.
   */
  start(): void {
    if (this._started || this._disposed) {
      return;
    }
    this._started = true;
    if (this._interval <= 0) {
      void this.refresh();
      return;
    }
    this._poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval: this._interval, backoff: false },
      standby: 'when-hidden'
    });
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._poll?.dispose();
    this._fed.changed.disconnect(this._onFedChanged, this);
    Signal.clearData(this);
  }

  // refreshing ----------------------------------------------------------------------------------
  /**
   * Read every healthy runner's requests (and grants, for a custodian). `who` asks the runners
   * again who the stored tokens are (an explicit refresh: a token may have been replaced).
   */
  async refresh(who = false): Promise<void> {
    this._refreshing++;
    try {
      if (!this._fed.loaded('runners')) {
        await this._fed.refreshRunners();
      }
      if (who) {
        this._roles.clear();
      }
      await Promise.all(
        this._fed.runners.filter(r => r.status === 'ok').map(r => this.refreshRunner(r.name))
      );
    } finally {
      this._refreshing--;
    }
  }

  async refreshRunner(runner: string): Promise<void> {
    const state = this._stateFor(runner);
    try {
      const info = await this._whoAmI(runner);
      state.user = info.user;
      state.role = roleOf(info.scopes);
      if (state.role === 'custodian') {
        const [pending, grants] = await Promise.all([
          this.api.pendingRequests(runner),
          this.api.grants(runner)
        ]);
        state.pending = pending;
        state.grants = grants.filter(g => g.active);
      } else {
        const [mine, grants] = await Promise.all([
          this.api.myRequests(runner).then(newestFirst),
          this.api.myGrants(runner)
        ]);
        state.mine = mine;
        state.grants = grants.filter(g => g.active);
        this._notice(runner, mine, state.grants);
      }
      state.error = null;
    } catch (error) {
      state.error = describeError(error);
    }
    state.loaded = true;
    this._emit();
  }

  // actions (they throw FedAPIError; the view shows its text next to the form) ------------------
  async approve(runner: string, requestId: string, approval: IApproval): Promise<void> {
    await this.api.approveRequest(runner, requestId, approval);
    await this.refreshRunner(runner);
  }

  async deny(runner: string, requestId: string, note: string): Promise<void> {
    await this.api.denyRequest(runner, requestId, note);
    await this.refreshRunner(runner);
  }

  async revoke(runner: string, grantId: string): Promise<void> {
    await this.api.revokeGrant(runner, grantId);
    await this.refreshRunner(runner);
  }

  async fileRequest(runner: string, request: INewAccessRequest): Promise<IAccessRequest> {
    const filed = await this.api.fileRequest(runner, request);
    await this.refreshRunner(runner);
    return filed;
  }

  async withdraw(runner: string, requestId: string): Promise<void> {
    await this.api.withdrawRequest(runner, requestId);
    await this.refreshRunner(runner);
  }

  // internals -----------------------------------------------------------------------------------
  private _whoAmI(runner: string): Promise<ITokenInfo> {
    let pending = this._roles.get(runner);
    if (!pending) {
      pending = this.api.tokenSelf(runner);
      pending.catch(() => this._roles.delete(runner)); // ask again next time
      this._roles.set(runner, pending);
    }
    return pending;
  }

  /** Announce the builder's requests decided since the last look (each one once). */
  private _notice(runner: string, mine: IAccessRequest[], grants: IGrant[]): void {
    const before = this._seen.get(runner) ?? null;
    this._seen.set(runner, mine);
    const news = findDecisions(before, mine).filter(r => !this._announced.has(r.request_id));
    if (news.length === 0) {
      return;
    }
    news.forEach(r => {
      this._announced.add(r.request_id);
      this._fresh.add(r.request_id);
    });
    if (!this._disposed) {
      this._decided.emit(
        news.map(request => ({ runner, request, grant: grantOf(request, grants) }))
      );
    }
  }

  private _stateFor(runner: string): IRunnerAccess {
    let state = this._state.get(runner);
    if (!state) {
      state = {
        runner,
        role: null,
        user: null,
        pending: [],
        grants: [],
        mine: [],
        error: null,
        loaded: false
      };
      this._state.set(runner, state);
    }
    return state;
  }

  /** Runners connected or removed: look at the new ones now, forget the removed ones. */
  private _onFedChanged(_: FedModel, part: string): void {
    if (part !== 'runners') {
      return;
    }
    const current = new Map(this._fed.runners.map(r => [r.name, r]));
    let removed = false;
    for (const name of [...this._state.keys()]) {
      if (!current.has(name)) {
        this._state.delete(name);
        this._roles.delete(name);
        this._seen.delete(name);
        removed = true;
      }
    }
    if (removed) {
      this._emit();
    }
    if (!this._started || this._refreshing > 0) {
      return; // the (first) refresh under way looks at every runner
    }
    for (const runner of current.values()) {
      if (runner.status === 'ok' && !this._state.has(runner.name)) {
        void this.refreshRunner(runner.name);
      }
    }
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _interval: number;
  private _poll: Poll | null = null;
  private _started = false;
  private _refreshing = 0;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
  private _decided = new Signal<this, IDecision[]>(this);
  private _state = new Map<string, IRunnerAccess>();
  private _roles = new Map<string, Promise<ITokenInfo>>();
  /** A builder's requests as last seen, per runner (what a decision is compared with). */
  private _seen = new Map<string, IAccessRequest[]>();
  private _announced = new Set<string>();
  private _fresh = new Set<string>();
}
