import { BlockList, isIP, isIPv4 } from 'node:net';
import ipaddr from 'ipaddr.js';
import { InvalidArgumentError } from '../../errors.js';

/** Decides whether a request is exempt from a rate limit. */
export type AllowlistMatcher = (key: string, ip?: string) => boolean;

const never: AllowlistMatcher = () => false;
// "Looks like an address with a prefix": such an entry must be a valid CIDR, so a typo such as
// `10.0.0/8` fails at start-up instead of silently becoming a literal key nobody sends.
const CIDR_LIKE = /^[0-9a-fA-F:.]*[:.][0-9a-fA-F:.]*\/.*$/;

function invalid(entry: unknown, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`allowlist entry ${JSON.stringify(entry)} ${why}`);
}

function stripZone(address: string): string {
  const zone = address.indexOf('%');
  return zone === -1 ? address : address.slice(0, zone);
}

/**
 * Compiles a rate-limit allowlist into a matcher. Each entry is one of
 * - an IP address (`10.1.2.3`, `2001:db8::1`),
 * - a CIDR range (`10.0.0.0/8`, `2001:db8::/32`; IPv4-mapped IPv6 ranges such as
 *   `::ffff:10.0.0.0/104` are treated as the IPv4 range),
 * - or any other string, matched literally against the key (an API key, a user id).
 *
 * The matcher checks the key against the literal entries, and the client address against
 * the addresses and ranges: `ip` when given, else the key itself when it is an IP address.
 * IPv4-mapped IPv6 clients (`::ffff:10.1.2.3`) match IPv4 entries.
 *
 * @throws InvalidArgumentError when an entry is not a non-empty string, or looks like a CIDR
 *   (address characters, then `/`) but is not a valid one.
 */
export function compileAllowlist(entries: readonly string[]): AllowlistMatcher {
  if (!Array.isArray(entries)) {
    throw new InvalidArgumentError(`allowlist must be an array of strings, got ${String(entries)}`);
  }
  const keys = new Set<string>();
  const ranges = new BlockList();
  let hasRanges = false;
  for (const entry of entries) {
    if (typeof entry !== 'string' || entry.trim() === '') {
      throw invalid(entry, 'must be a non-empty string');
    }
    const text = entry.trim();
    if (CIDR_LIKE.test(text)) {
      addRange(ranges, text);
      hasRanges = true;
    } else if (!text.includes('/') && isIP(stripZone(text)) !== 0) {
      addAddress(ranges, stripZone(text));
      hasRanges = true;
    } else {
      keys.add(text);
    }
  }
  if (keys.size === 0 && !hasRanges) return never;
  return (key, ip) => {
    if (keys.has(key)) return true;
    if (!hasRanges) return false;
    const address = stripZone(ip ?? key);
    const family = isIP(address);
    if (family === 4) return ranges.check(address, 'ipv4');
    if (family === 6) return ranges.check(address, 'ipv6');
    return false;
  };
}

function addAddress(ranges: BlockList, address: string): void {
  if (isIPv4(address)) {
    ranges.addAddress(address, 'ipv4');
    return;
  }
  const parsed = ipaddr.IPv6.parse(address);
  if (parsed.isIPv4MappedAddress()) ranges.addAddress(parsed.toIPv4Address().toString(), 'ipv4');
  else ranges.addAddress(address, 'ipv6');
}

function addRange(ranges: BlockList, entry: string): void {
  const slash = entry.indexOf('/');
  const address = entry.slice(0, slash);
  const prefixText = entry.slice(slash + 1);
  const family = isIP(address);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (family === 0) throw invalid(entry, 'is not a valid CIDR: bad address');
  const max = family === 4 ? 32 : 128;
  if (!(prefix >= 0 && prefix <= max)) {
    throw invalid(entry, `is not a valid CIDR: prefix must be an integer from 0 to ${max}`);
  }
  if (family === 4) {
    ranges.addSubnet(address, prefix, 'ipv4');
    return;
  }
  const parsed = ipaddr.IPv6.parse(address);
  if (parsed.isIPv4MappedAddress() && prefix >= 96) {
    ranges.addSubnet(parsed.toIPv4Address().toString(), prefix - 96, 'ipv4');
  } else {
    ranges.addSubnet(address, prefix, 'ipv6');
  }
}
