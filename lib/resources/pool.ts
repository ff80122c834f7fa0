// The pool lives in ./pool/ (one concern per file); this path stays importable.
export * from './pool/index.js';
