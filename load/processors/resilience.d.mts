// Types of the Artillery processor (resilience.mjs), for the tests and the type checker.

export interface Order {
  customerId: string;
  items: { sku: string; quantity: number; price: number }[];
}
export interface TimeWindow {
  name: string;
  /** Milliseconds from the run's start. */
  from: number;
  to: number;
}
export type FaultPhase = 'before' | 'during' | 'recovering' | 'after';

interface Context {
  vars: Record<string, unknown>;
}
interface Events {
  emit(kind: 'counter' | 'histogram', name: string, value: number): void;
}
interface Response {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  timings?: { phases?: { total?: number } };
}
type Done = (err?: Error) => void;

export function makeOrder(customerId: string): Order;
export function parseTimeline(text: unknown): TimeWindow[];
export function faultPhase(
  at: number,
  startsAt: number,
  endsAt: number,
  recoverWithin: number,
): FaultPhase;
export function setUp(context: Context, events: Events, done: Done): void;
export function politeClient(context: Context, events: Events, done: Done): void;
export function greedyClient(context: Context, events: Events, done: Done): void;
export function orderBody(
  requestParams: Record<string, unknown>,
  context: Context,
  events: Events,
  done: Done,
): void;
export function pickOrder(
  requestParams: unknown,
  response: Response,
  context: Context,
  events: Events,
  done: Done,
): void;
export function rememberOrder(
  requestParams: unknown,
  response: Response,
  context: Context,
  events: Events,
  done: Done,
): void;
export function observe(
  requestParams: unknown,
  response: Response,
  context: Context,
  events: Events,
  done: Done,
): void;
