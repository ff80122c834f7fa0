import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';

// The fault-injectable upstream is shared with the examples and the load runner (where it runs
// as a process of its own, with an admin API); the tests use it in-process.
export { startUpstream } from '../../examples/fake-upstream/upstream.js';
export type {
  Backend,
  Behaviour,
  EchoBody,
  Reply,
  RequestRecord,
  ScheduleInfo,
  ScheduleStep,
  Upstream,
  UpstreamOptions,
} from '../../examples/fake-upstream/upstream.js';

/** A listening TCP server that never writes a byte; see {@link startBlackhole}. */
export interface Blackhole {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * Starts a TCP server on 127.0.0.1 that accepts connections and then stays silent. An HTTPS
 * client's TLS handshake never completes against it, which is how a connect timeout can be
 * provoked on loopback (the kernel completes a plain TCP handshake on its own).
 */
export async function startBlackhole(): Promise<Blackhole> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: NetServer = createNetServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    port,
    get connections() {
      return connections;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}

/**
 * A port on 127.0.0.1 that nothing listens on (bound then released), so connecting to it is
 * refused at once.
 */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
