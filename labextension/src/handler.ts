/**
 * `requestAPI<T>()`: the one way the sidebar talks to the jupyter_fed server extension.
 *
 * It wraps `ServerConnection.makeRequest` (so the token, cookies and XSRF header are Jupyter's
 * own), reads the server's JSON leniently (metric values may be `NaN`), and turns every failure
 * into a `FedAPIError` whose `message` is a sentence a user can act on.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { API_NAMESPACE, IErrorBody } from './tokens';

/** Code of the error raised when our routes are missing: the server extension is off. */
export const NOT_ENABLED = 'extension_not_enabled';

/** Code of the error raised when the Jupyter server itself cannot be reached. */
export const NETWORK = 'network_error';

/** A refused or failed call, in words (`message`), with what to do about it (`hint`). */
export class FedAPIError extends Error {
  readonly code: string;
  readonly status: number;
  readonly hint: string;
  readonly details: IErrorBody['details'];

  constructor(status: number, body: IErrorBody) {
    super(body.message);
    this.name = 'FedAPIError';
    this.status = status;
    this.code = body.code;
    this.hint = body.hint ?? '';
    this.details = body.details;
  }

  /** Message and hint as one sentence for the panel. */
  get text(): string {
    return this.hint ? `${this.message} — ${this.hint}` : this.message;
  }
}

/**
 * Parse JSON that may contain Python's `NaN`, `Infinity` and `-Infinity` (which `json.dumps`
 * writes for undefined metrics); they become `null`. Strings are left untouched.
 */
export function parseLenientJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const fixed = replaceNonFinite(text);
    if (fixed === text) {
      throw err;
    }
    return JSON.parse(fixed);
  }
}

function replaceNonFinite(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      out += ch;
      if (ch === '\\') {
        out += text[++i] ?? '';
      } else if (ch === '"') {
        inString = false;
      }
      continue;
    }
    if (ch === '"') {
      inString = true;
      out += ch;
      continue;
    }
    const token = ['-Infinity', 'Infinity', 'NaN'].find(t => text.startsWith(t, i));
    if (token) {
      out += 'null';
      i += token.length - 1;
      continue;
    }
    out += ch;
  }
  return out;
}

function isErrorBody(value: unknown): value is IErrorBody {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as IErrorBody).code === 'string' &&
    typeof (value as IErrorBody).message === 'string'
  );
}

/** The error for a non-2xx reply, from our JSON body or, failing that, from the status alone. */
export function errorFromReply(status: number, text: string): FedAPIError {
  let body: unknown = undefined;
  try {
    body = text ? parseLenientJSON(text) : undefined;
  } catch {
    body = undefined;
  }
  if (isErrorBody(body)) {
    return new FedAPIError(status, { ...body, hint: body.hint ?? '' });
  }
  // Our routes always answer with {code, message}: anything else comes from Jupyter itself.
  if (status === 404) {
    return new FedAPIError(status, {
      code: NOT_ENABLED,
      message: 'the jupyter_fed server extension is not enabled',
      hint: 'run `jupyter server extension enable jupyter_fed` and restart JupyterLab'
    });
  }
  if (status === 403 || status === 401) {
    return new FedAPIError(status, {
      code: 'unauthorized',
      message: 'the Jupyter server refused the request: you are not logged in',
      hint: 'reload the page and log in with the server token'
    });
  }
  return new FedAPIError(status, {
    code: 'http_error',
    message: `the Jupyter server answered ${status}`,
    hint: 'the server log has the details'
  });
}

/** The full URL of an API path such as `runners` or `sessions/abc/metrics`. */
export function apiURL(settings: ServerConnection.ISettings, endPoint: string): string {
  return URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
}

/**
 * Call the jupyter_fed REST API.
 *
 * @param endPoint - path under `/jupyter-fed/api/v1/`, e.g. `runners` or `sessions/abc/cancel`
 * @param init - `fetch` options; a `body` is sent as JSON
 * @param settings - server settings (default: the page's)
 * @returns the decoded JSON body (`undefined` for an empty reply such as a 204)
 * @throws FedAPIError with the server's `{code, message, hint}`, or a `network_error`
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const headers = new Headers(init.headers);
  if (init.body !== undefined && !headers.has('Content-Type')) {
    headers.set('Content-Type', 'application/json');
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      apiURL(settings, endPoint),
      { ...init, headers },
      settings
    );
  } catch (error) {
    throw new FedAPIError(0, {
      code: NETWORK,
      message: 'cannot reach the Jupyter server',
      hint: 'check that JupyterLab is still running'
    });
  }
  const text = await response.text();
  if (!response.ok) {
    throw errorFromReply(response.status, text);
  }
  if (!text) {
    return undefined as T;
  }
  try {
    return parseLenientJSON(text) as T;
  } catch {
    throw new FedAPIError(response.status, {
      code: 'bad_reply',
      message: `the server sent a reply that is not JSON for ${endPoint}`,
      hint: 'the server log has the details'
    });
  }
}

/** Any thrown value as a sentence for the panel. */
export function describeError(error: unknown): string {
  if (error instanceof FedAPIError) {
    return error.text;
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
