/**
 * consola, as an ES module of bunbox's own: src/cli/log.ts require()s this
 * file on the first message, and the bundler gives a require()'d ES module a
 * chunk of its own, read at that call (consola's package would give
 * require() its CommonJS build, which the bundler inlines into the caller's
 * chunk, read at every start).
 */
export { createConsola } from "consola/core";
