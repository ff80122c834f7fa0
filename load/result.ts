import type { ArtillerySummary, CheckResult } from './artillery.js';
import type { Capacity } from './checks.js';
import type { Chart, ResilienceSummary } from './resilience.js';

/** One scenario of a run, as written to the JSON results and rendered in the report. */
export interface ScenarioResult {
  name: string;
  description: string;
  /** The variables it ran with. */
  variables: Record<string, string>;
  /** Epoch milliseconds (the runner's clock). */
  startedAt: number;
  endedAt: number;
  /** Every check passed (optional ensure checks aside) and nothing went wrong. */
  passed: boolean;
  /** What went wrong outside the checks (the service did not start, Artillery crashed). */
  error?: string;
  /** Artillery's exit code (1: an ensure check failed; 21: an expectation failed). */
  exitCode?: number;
  checks: CheckResult[];
  artillery?: ArtillerySummary;
  resilience?: ResilienceSummary;
  capacity?: Capacity;
  charts: Chart[];
  /** Files of this scenario: Artillery's JSON report and its console output. */
  artifacts: { artilleryJson?: string; log?: string };
}

/** A whole `npm run load`. */
export interface RunResult {
  id: string;
  startedAt: number;
  endedAt: number;
  /** The service under load. */
  target: string;
  /** True when the runner started the example service and fake upstream itself. */
  managed: boolean;
  /** Whether the service used Redis (known only when the runner started it). */
  redis?: boolean;
  node: string;
  passed: boolean;
  scenarios: ScenarioResult[];
}
