export { loadConfig, resolveConfig, isResolvedConfig } from './load.js';
export type { LoadConfigOptions, ResolveConfigOptions } from './load.js';
export { redactConfig } from './redact.js';
export { parseRouteMatch } from './route-match.js';
export type * from './types.js';
