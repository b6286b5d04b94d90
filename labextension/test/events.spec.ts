import { EventStream, SSEParser, StreamState, toFedEvent } from '../src/events';
import { FedAPIError, NOT_ENABLED } from '../src/handler';
import { FedEvent } from '../src/tokens';
import { FakeServer } from './fakeserver';

function stream(chunks: string[]): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      chunks.forEach(c => controller.enqueue(encoder.encode(c)));
      controller.close();
    }
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

const until = async (check: () => boolean, ms = 2000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error('condition not met in time');
    }
    await new Promise(r => setTimeout(r, 5));
  }
};

describe('SSEParser', () => {
  it('assembles frames split anywhere across chunks', () => {
    const parser = new SSEParser();
    const text = 'event: ready\ndata: {"session_id": null}\n\nevent: status\ndata: {"a": 1}\n\n';
    const frames = [];
    for (let i = 0; i < text.length; i += 7) {
      frames.push(...parser.feed(text.slice(i, i + 7)));
    }
    expect(frames).toEqual([
      { event: 'ready', data: '{"session_id": null}' },
      { event: 'status', data: '{"a": 1}' }
    ]);
  });

  it('skips comments, handles CRLF and joins multi-line data', () => {
    const parser = new SSEParser();
    const frames = parser.feed(': keepalive\r\n\r\ndata: line one\r\ndata: line two\r\n\r\n');
    expect(frames).toEqual([{ event: 'message', data: 'line one\nline two' }]);
  });

  it('waits for the \\n of a \\r\\n split between chunks', () => {
    const parser = new SSEParser();
    expect(parser.feed('data: x\r')).toEqual([]);
    expect(parser.feed('\n\r\n')).toEqual([{ event: 'message', data: 'x' }]);
  });
});

describe('toFedEvent', () => {
  it('types known events and reads NaN metrics as null', () => {
    const event = toFedEvent({
      event: 'round',
      data: '{"type": "round", "session_id": "s", "round": 2, "num_rounds": 5, "model_round": 1, ' +
        '"federated_metrics": {"loss": 0.5, "roc_auc": NaN}, "dropped": []}'
    });
    expect(event).toMatchObject({ type: 'round', round: 2, federated_metrics: { roc_auc: null } });
  });

  it('ignores unknown events and bad data', () => {
    expect(toFedEvent({ event: 'other', data: '{}' })).toBeNull();
    expect(toFedEvent({ event: 'status', data: 'not json' })).toBeNull();
  });
});

describe('EventStream', () => {
  it('delivers events, then reconnects when the stream ends', async () => {
    let connections = 0;
    const server = new FakeServer().on('GET events', () => {
      connections++;
      return stream([
        'event: ready\ndata: {"session_id": null}\n\n',
        ': keepalive\n\n',
        'event: status\ndata: {"type": "status", "session_id": "s1", "status": "running"}\n\n'
      ]);
    });
    const events: FedEvent[] = [];
    const states: StreamState[] = [];
    const es = new EventStream({
      settings: server.settings(),
      onEvent: e => events.push(e),
      onState: s => states.push(s),
      retryDelays: [5]
    });
    es.start();
    await until(() => connections >= 2 && events.length >= 4);
    es.dispose();
    expect(events.slice(0, 2)).toEqual([
      { type: 'ready', session_id: null },
      { type: 'status', session_id: 's1', status: 'running' }
    ]);
    expect(states.slice(0, 3)).toEqual(['connecting', 'open', 'retrying']);
    expect(states[states.length - 1]).toBe('stopped');
    expect(server.calls[0].headers.get('Authorization')).toBe('token secret-token');
  });

  it('reports a missing server extension', async () => {
    const server = new FakeServer(); // GET events → HTML 404
    const errors: (FedAPIError | null)[] = [];
    const es = new EventStream({
      settings: server.settings(),
      onEvent: () => undefined,
      onState: (_, error) => errors.push(error),
      retryDelays: [60_000]
    });
    es.start();
    await until(() => errors.some(e => e !== null));
    es.dispose();
    expect(errors.find(e => e !== null)?.code).toBe(NOT_ENABLED);
  });
});
