// Loaded with `node --require` into the Artillery process (and its workers) by the runner.
//
// Artillery 2.0.21 still sends an anonymous event to PostHog when ARTILLERY_DISABLE_TELEMETRY
// is set, and waits for it before exiting: without network access that is three 3-second
// retries (about 12 s) at the end of every run. Telemetry is off, so nothing needs to leave the
// machine: the PostHog client is replaced by one that does nothing.
const Module = require('node:module');

const load = Module._load;
Module._load = function loadWithoutTelemetry(request, parent, isMain) {
  if (request === 'posthog-node') {
    return {
      PostHog: class {
        capture() {}
        async shutdownAsync() {}
      },
    };
  }
  return load.call(this, request, parent, isMain);
};
