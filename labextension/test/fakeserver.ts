/**
 * A fake jupyter_fed REST API behind `ServerConnection.makeSettings({fetch})`: requests go
 * through the real `requestAPI` and `ServerConnection` code, only the network is replaced.
 */
import { ServerConnection } from '@jupyterlab/services';

export interface IRecorded {
  method: string;
  path: string;
  body: unknown;
  headers: Headers;
}

export type Route = (req: IRecorded) => Response | Promise<Response>;

export const BASE = 'http://lab.test/base/';
export const API = `${BASE}jupyter-fed/api/v1/`;

export function json(status: number, body: unknown): Response {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return new Response(status === 204 ? null : text, {
    status,
    headers: { 'Content-Type': 'application/json' }
  });
}

export class FakeServer {
  readonly calls: IRecorded[] = [];
  private routes = new Map<string, Route>();

  /** `on('GET runners', req => json(200, [...]))`; the path excludes the API prefix. */
  on(key: string, route: Route): this {
    this.routes.set(key, route);
    return this;
  }

  settings(): ServerConnection.ISettings {
    return ServerConnection.makeSettings({
      baseUrl: BASE,
      wsUrl: 'ws://lab.test/base/',
      token: 'secret-token',
      appendToken: false,
      fetch: (input: RequestInfo | URL, init?: RequestInit) => this.handle(input, init)
    });
  }

  private async handle(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const url = request.url;
    if (!url.startsWith(API)) {
      return new Response('<html>404 Not Found</html>', { status: 404 });
    }
    // ServerConnection appends a cache-busting timestamp where `cache: 'no-store'` is unknown.
    const path = url.slice(API.length).replace(/[?&]\d{10,}$/, '');
    const text = await request.text();
    const recorded: IRecorded = {
      method: request.method,
      path,
      body: text ? JSON.parse(text) : undefined,
      headers: request.headers
    };
    this.calls.push(recorded);
    const route = this.routes.get(`${request.method} ${path.split('?')[0]}`);
    if (!route) {
      return new Response('<html>404 Not Found</html>', {
        status: 404,
        headers: { 'Content-Type': 'text/html' }
      });
    }
    return route(recorded);
  }
}
