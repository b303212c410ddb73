/**
 * A TCP proxy in front of a real server that can be switched, while clients use it, to cut every
 * connection (an outage) or to accept connections and never answer (a stall). The S3 test server
 * stays real; only the network between it and the job misbehaves.
 */
import net from 'node:net';

export type ProxyMode = 'pass' | 'down' | 'stall';

export interface FaultProxy {
  readonly url: string;
  mode: ProxyMode;
  /** Connections refused or cut while down, and held while stalled. */
  readonly faults: { cut: number; stalled: number };
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  const faults = { cut: 0, stalled: 0 };
  const proxy: { mode: ProxyMode } = { mode: 'pass' };
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (proxy.mode === 'down') {
      faults.cut += 1;
      client.resetAndDestroy();
      return;
    }
    if (proxy.mode === 'stall') {
      faults.stalled += 1;
      client.pause(); // read nothing, answer nothing
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    // Forwarded by hand so that a stall also holds connections that were already open (kept alive).
    const forward = (from: net.Socket, to: net.Socket): void => {
      const held: Buffer[] = [];
      from.on('data', (chunk: Buffer) => {
        if (proxy.mode === 'stall') {
          held.push(chunk);
          faults.stalled += held.length === 1 ? 1 : 0;
          const release = setInterval(() => {
            if (proxy.mode === 'stall') return;
            clearInterval(release);
            if (!to.destroyed) for (const c of held.splice(0)) to.write(c);
          }, 20);
          return;
        }
        if (held.length > 0) held.push(chunk);
        else if (!to.destroyed) to.write(chunk);
      });
      from.on('end', () => to.end());
    };
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    get mode() {
      return proxy.mode;
    },
    set mode(mode: ProxyMode) {
      proxy.mode = mode;
      // Going down cuts what is open too, as a dropped network does.
      if (mode === 'down') for (const socket of sockets) socket.resetAndDestroy();
    },
    faults,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
