import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import type { TrustProxySetting } from '../config/types.js';

/** Decides whether the proxy at `addr`, `i` hops from the socket, is trusted. */
export type TrustFunction = (addr: string, i: number) => boolean;

const trustNone: TrustFunction = () => false;
const trustAll: TrustFunction = () => true;

/**
 * Compiles a trust-proxy setting exactly as Express does (`true`, a hop count, a comma list or
 * array of addresses, subnets and presets), so keys match `req.ip` when the two settings agree.
 */
export function compileTrust(setting: TrustProxySetting): TrustFunction {
  if (setting === true) return trustAll;
  if (setting === false) return trustNone;
  if (typeof setting === 'number') return (_addr, i) => i < setting;
  const list = typeof setting === 'string' ? setting.split(',').map((s) => s.trim()) : [...setting];
  return proxyaddr.compile(list);
}

/**
 * The client's address under `trust`. Reads the socket directly when no proxy is trusted:
 * the common case, and proxy-addr's header parsing is the expensive part.
 */
export function clientIp(req: IncomingMessage, trust: TrustFunction): string | undefined {
  if (trust === trustNone) return req.socket.remoteAddress;
  return proxyaddr(req, trust);
}

/** A stable comparable form of a trust-proxy setting, for the mismatch warning. */
export function normaliseTrust(setting: unknown): string {
  if (setting === undefined || setting === null || setting === false) return 'false';
  if (setting === true) return 'true';
  if (typeof setting === 'number') return String(setting);
  if (typeof setting === 'string') {
    return setting
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .sort()
      .join(',');
  }
  if (Array.isArray(setting)) return normaliseTrust(setting.join(','));
  return 'function';
}
