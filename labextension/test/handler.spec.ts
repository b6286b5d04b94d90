import { FedAPI } from '../src/api';
import {
  describeError,
  errorFromReply,
  FedAPIError,
  NETWORK,
  NOT_ENABLED,
  parseLenientJSON,
  requestAPI
} from '../src/handler';
import { FakeServer, json } from './fakeserver';

describe('parseLenientJSON', () => {
  it('reads plain JSON as JSON.parse does', () => {
    expect(parseLenientJSON('{"a": [1, 2.5, null]}')).toEqual({ a: [1, 2.5, null] });
  });

  it("turns Python's NaN and infinities into null, outside strings only", () => {
    const text = '{"loss": NaN, "auc": Infinity, "r2": -Infinity, "note": "NaN or Infinity"}';
    expect(parseLenientJSON(text)).toEqual({
      loss: null,
      auc: null,
      r2: null,
      note: 'NaN or Infinity'
    });
  });

  it('keeps escaped quotes inside strings intact', () => {
    expect(parseLenientJSON('{"m": "say \\"NaN\\"", "v": NaN}')).toEqual({ m: 'say "NaN"', v: null });
  });

  it('still refuses what is not JSON', () => {
    expect(() => parseLenientJSON('<html>')).toThrow(SyntaxError);
  });
});

describe('errorFromReply', () => {
  it("keeps the server's code, message and hint", () => {
    const body = JSON.stringify({
      code: 'runner_unavailable',
      message: "runner 'a' at http://x is unreachable: ConnectError",
      hint: 'start the runner, or check its URL'
    });
    const error = errorFromReply(503, body);
    expect(error).toBeInstanceOf(FedAPIError);
    expect(error.code).toBe('runner_unavailable');
    expect(error.status).toBe(503);
    expect(error.text).toBe(
      "runner 'a' at http://x is unreachable: ConnectError — start the runner, or check its URL"
    );
  });

  it('reads a 404 without our JSON body as the server extension being off', () => {
    const error = errorFromReply(404, '<html>404: Not Found</html>');
    expect(error.code).toBe(NOT_ENABLED);
    expect(error.message).toBe('the jupyter_fed server extension is not enabled');
  });

  it('keeps a 404 from our own API as what it says (an unknown session, say)', () => {
    const error = errorFromReply(
      404,
      JSON.stringify({ code: 'not_found', message: "no session 'x'", hint: '' })
    );
    expect(error.code).toBe('not_found');
    expect(error.text).toBe("no session 'x'");
  });

  it('says a non-JSON 403 is a login problem', () => {
    expect(errorFromReply(403, 'Forbidden').message).toMatch(/not logged in/);
  });
});

describe('requestAPI', () => {
  it("sends Jupyter's token and JSON, and decodes NaN metrics", async () => {
    const server = new FakeServer().on('POST sessions/abc/cancel', () =>
      json(200, '{"id": "abc", "value": NaN}')
    );
    const reply = await requestAPI<{ id: string; value: number | null }>(
      'sessions/abc/cancel',
      { method: 'POST', body: '{}' },
      server.settings()
    );
    expect(reply).toEqual({ id: 'abc', value: null });
    const [call] = server.calls;
    expect(call.headers.get('Authorization')).toBe('token secret-token');
    expect(call.headers.get('Content-Type')).toBe('application/json');
  });

  it('returns undefined for an empty reply (204)', async () => {
    const server = new FakeServer().on('DELETE runners/a', () => json(204, ''));
    await expect(
      requestAPI('runners/a', { method: 'DELETE' }, server.settings())
    ).resolves.toBeUndefined();
  });

  it('turns a failed connection into a sentence', async () => {
    const settings = new FakeServer().settings();
    const broken = { ...settings, fetch: () => Promise.reject(new TypeError('Failed to fetch')) };
    const error: unknown = await requestAPI('status', {}, broken).catch(e => e);
    expect(error).toBeInstanceOf(FedAPIError);
    expect((error as FedAPIError).code).toBe(NETWORK);
    expect(describeError(error)).toMatch(/cannot reach the Jupyter server/);
  });

  it('reports a missing extension in words', async () => {
    const server = new FakeServer(); // no routes: every call gets an HTML 404
    const error = await new FedAPI(server.settings()).runners().catch(e => e);
    expect(describeError(error)).toMatch(/^the jupyter_fed server extension is not enabled/);
  });
});

describe('describeError', () => {
  it('handles plain errors and other values', () => {
    expect(describeError(new Error('boom'))).toBe('boom');
    expect(describeError('text')).toBe('text');
  });
});
